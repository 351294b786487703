/**
 * The Grafana dashboard (`ops/grafana/qwen-imagine.json`) as data: its panels, its PromQL, and the
 * metric series those queries read. `dashboardMetricNames()` is what to compare with a live
 * `/metrics`: the names are series names as Prometheus stores them (a histogram appears as
 * `…_bucket`, `…_sum` or `…_count`, a counter with its `_total`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const DASHBOARD_PATH = join(ROOT, 'ops', 'grafana', 'qwen-imagine.json');

export interface DashboardTarget {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: DashboardTarget[];
  panels?: DashboardPanel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: DashboardPanel[];
  templating?: { list: { query?: string | { query?: string } }[] };
}

export function loadDashboard(path = DASHBOARD_PATH): Dashboard {
  return JSON.parse(readFileSync(path, 'utf8')) as Dashboard;
}

/** Every panel, those inside rows (collapsed rows keep theirs in `panels`) included. */
export function dashboardPanels(dashboard: Dashboard = loadDashboard()): DashboardPanel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression: panel targets and template variable queries. */
export function dashboardExpressions(dashboard: Dashboard = loadDashboard()): { panel: string; expr: string }[] {
  const fromPanels = dashboardPanels(dashboard).flatMap((p) =>
    (p.targets ?? []).filter((t) => t.expr).map((t) => ({ panel: p.title, expr: t.expr! })),
  );
  const fromVariables = (dashboard.templating?.list ?? []).flatMap((v) => {
    const query = typeof v.query === 'string' ? v.query : v.query?.query;
    return query ? [{ panel: '(variable)', expr: query }] : [];
  });
  return [...fromPanels, ...fromVariables];
}

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
  'atan2',
]);

/** The metric names one PromQL expression selects (not functions, labels, keywords or durations). */
export function promqlMetricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // string literals
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // label lists
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w.:$])[a-zA-Z_:][\w:]*(?![\w:])(?!\s*\()/g)) {
    if (!KEYWORDS.has(m[0].toLowerCase())) names.add(m[0]);
  }
  return [...names];
}

/** Every metric series name the dashboard's queries read, sorted, each once. */
export function dashboardMetricNames(dashboard: Dashboard = loadDashboard()): string[] {
  return [...new Set(dashboardExpressions(dashboard).flatMap((e) => promqlMetricNames(e.expr)))].sort();
}
