// A strict parser of the Prometheus text exposition format (version 0.0.4), for tests: every
// line is a HELP, a TYPE or a sample; names, labels, escapes and values must be well-formed;
// each sample belongs to the family declared before it (histograms: _bucket with `le`, _sum,
// _count; counters: the family name). Throws on the first line that is not.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(raw: string, line: number): number {
  if (raw === '+Inf') return Number.POSITIVE_INFINITY;
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY;
  // Prometheus parses values with Go's ParseFloat, which ignores case: prom-client writes `Nan`.
  if (/^nan$/i.test(raw)) return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw))
    throw new Error(`line ${line}: bad value ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** Reads `{a="x",b="y"}` from `text` at `start` (the `{`); returns the labels and the index after `}`. */
function parseLabels(text: string, start: number, line: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    if (text[i] === '}') return [labels, i + 1];
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`line ${line}: label without =`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`line ${line}: bad label name ${JSON.stringify(name)}`);
    if (name in labels) throw new Error(`line ${line}: label ${name} twice`);
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label value not quoted`);
    let value = '';
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\n') throw new Error(`line ${line}: raw newline in a label value`);
      if (text[j] !== '\\') {
        value += text[j];
        continue;
      }
      const next = text[++j];
      if (next === 'n') value += '\n';
      else if (next === '\\' || next === '"') value += next;
      else throw new Error(`line ${line}: bad escape \\${next}`);
    }
    if (text[j] !== '"') throw new Error(`line ${line}: unterminated label value`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`line ${line}: expected , or } after a label`);
  }
}

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  if (text.length && !text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const lines = text.split('\n').slice(0, -1);
  let current: Family | undefined;
  const helps = new Map<string, string>();
  for (const [index, raw] of lines.entries()) {
    const n = index + 1;
    if (raw === '') continue;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(raw);
      if (!m) {
        if (/^# (HELP|TYPE)\b/.test(raw)) throw new Error(`line ${n}: malformed ${raw}`);
        continue; // a comment
      }
      const [, kind, name, rest] = m as unknown as [string, 'HELP' | 'TYPE', string, string];
      if (!METRIC_NAME.test(name)) throw new Error(`line ${n}: bad metric name ${name}`);
      if (kind === 'HELP') {
        if (helps.has(name)) throw new Error(`line ${n}: second HELP for ${name}`);
        if (/\\[^n\\]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`line ${n}: bad escape in HELP`);
        helps.set(name, rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\'));
        continue;
      }
      if (!TYPES.has(rest)) throw new Error(`line ${n}: bad type ${rest}`);
      if (families.has(name)) throw new Error(`line ${n}: second TYPE for ${name}`);
      current = { name, help: helps.get(name) ?? '', type: rest as Family['type'], samples: [] };
      families.set(name, current);
      continue;
    }
    const nameEnd = raw.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`line ${n}: not a sample: ${raw}`);
    const name = raw.slice(0, nameEnd);
    if (!METRIC_NAME.test(name)) throw new Error(`line ${n}: bad metric name ${name}`);
    let labels: Record<string, string> = {};
    let rest = nameEnd;
    if (raw[nameEnd] === '{') [labels, rest] = parseLabels(raw, nameEnd, n);
    const parts = raw.slice(rest).split(' ');
    if (parts[0] !== '' || parts.length < 2 || parts.length > 3)
      throw new Error(`line ${n}: expected " value [timestamp]": ${raw}`);
    const value = parseValue(parts[1]!, n);
    if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) throw new Error(`line ${n}: bad timestamp`);
    if (!current) throw new Error(`line ${n}: sample ${name} before any TYPE`);
    const allowed =
      current.type === 'histogram'
        ? [`${current.name}_bucket`, `${current.name}_sum`, `${current.name}_count`]
        : current.type === 'summary'
          ? [current.name, `${current.name}_sum`, `${current.name}_count`]
          : [current.name];
    if (!allowed.includes(name)) throw new Error(`line ${n}: sample ${name} outside its family ${current.name}`);
    if (name.endsWith('_bucket') && current.type === 'histogram' && !('le' in labels))
      throw new Error(`line ${n}: bucket without le`);
    current.samples.push({ name, labels, value });
  }
  for (const family of families.values()) if (!helps.has(family.name)) throw new Error(`${family.name} has no HELP`);
  return families;
}

/** The value of the sample `name` (a family name, or a histogram's `_sum` / `_count`) with exactly `labels`. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = families.get(name) ?? families.get(name.replace(/_(sum|count|bucket)$/, ''));
  const wanted = JSON.stringify(Object.entries(labels).sort());
  return family?.samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === wanted)
    ?.value;
}
