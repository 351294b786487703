/**
 * `npm run usage [-- --json] [-- --days N]`
 *
 * What the operator pays: images per guild today, over the last N UTC days (7 by default) and
 * this calendar month, with the cost when PRICE_PER_IMAGE is set. Reads the usage ledger in
 * STORAGE_URL (from `.env` or the environment, as `npm start` does); needs nothing else.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { formatProblems, loadConfig } from '../config.ts';
import { isRedisUrl, openSharedState, redactStorageUrl, sqlitePath } from '../storage/open.ts';
import {
  createUsageLedger,
  rowName,
  money,
  usageReport,
  type Price,
  type UsageReport,
  type UsageTotals,
} from '../usage/ledger.ts';
import { storageFailureMessage } from '../storage/errors.ts';

const USAGE = 'Usage: npm run usage [-- --json] [-- --days N]   (N from 1 to 400; default 7)';
const OPEN_TIMEOUT_MS = 5_000;

function readArgs(): { json: boolean; days: number } | string {
  try {
    const { values } = parseArgs({
      options: { json: { type: 'boolean' }, days: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) return USAGE;
    const days = values.days === undefined ? 7 : Number(values.days);
    if (!Number.isInteger(days) || days < 1 || days > 400)
      return `--days must be a whole number from 1 to 400.\n${USAGE}`;
    return { json: values.json ?? false, days };
  } catch (e) {
    return `${(e as Error).message}\n${USAGE}`;
  }
}

/** Cells: images, with the cost when priced. */
const cell = (totals: UsageTotals, price: Price | undefined) =>
  price ? `${totals.images} (${money(totals.images, price)})` : String(totals.images);

/** PRICE_PER_EDIT and PRICE_PER_UPSCALE (each PRICE_PER_IMAGE when unset), in PRICE_CURRENCY. */
export interface ToolPrices {
  pricePerEdit?: string | undefined;
  pricePerUpscale?: string | undefined;
}

/** Generations, edits and upscales apart, every guild together, each at its own price. */
function byTool(report: UsageReport, price: Price | undefined, tools: ToolPrices): string[] {
  const { total } = report;
  const as = (perImage: string | undefined) => (perImage ? { perImage, currency: price?.currency } : undefined);
  const kinds = [
    { name: 'generations', key: 'images', price },
    { name: 'edits', key: 'edits', price: as(tools.pricePerEdit) },
    { name: 'upscales', key: 'upscales', price: as(tools.pricePerUpscale) },
  ] as const;
  if (!kinds.slice(1).some((k) => total.month[k.key] || total.lastDays[k.key])) return [];
  const at = (n: number, p: Price | undefined) => (p ? `${n} (${money(n, p)})` : String(n));
  return [
    '',
    'By tool (every guild): today, last days, this month',
    ...kinds.map(
      (k) =>
        `  ${k.name.padEnd(12)} ${at(total.today[k.key], k.price)}  ${at(total.lastDays[k.key], k.price)}  ${at(total.month[k.key], k.price)}`,
    ),
  ];
}

export function formatTable(report: UsageReport, price: Price | undefined, tools: ToolPrices = {}): string {
  const header = ['guild', 'today', `last ${report.periods.lastDays.days} days`, 'this month', 'failed', 'flagged'];
  const row = (name: string, r: UsageReport['total']) => [
    name,
    cell(r.today, price),
    cell(r.lastDays, price),
    cell(r.month, price),
    String(r.month.failed),
    String(r.month.flagged),
  ];
  const rows = [header, ...report.guilds.map((g) => row(rowName(g.guildId), g)), row('total', report.total)];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const { month, lastDays } = report.periods;
  return [
    `Images made, ${report.day} (UTC)${price ? `, at ${price.perImage}${price.currency ? ` ${price.currency}` : ''} per image` : ''}`,
    '',
    line(rows[0]!),
    ...rows.slice(1, -1).map(line),
    widths.map((w) => '-'.repeat(w)).join('  '),
    line(rows[rows.length - 1]!),
    '',
    `last ${lastDays.days} days: ${lastDays.from} to ${lastDays.to}; this month: ${month.from} to ${month.to}; failed and flagged: this month.`,
    ...(report.guilds.length ? [] : ['No usage recorded in these days.']),
    ...byTool(report, price, tools),
  ].join('\n');
}

/** Rejects when the storage does not answer in time. */
const inTime = <T>(work: Promise<T>) =>
  Promise.race([
    work,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no answer within ${OPEN_TIMEOUT_MS / 1000} s`)), OPEN_TIMEOUT_MS).unref(),
    ),
  ]);

async function main(): Promise<number> {
  dotenv.config({ quiet: true });
  const args = readArgs();
  if (typeof args === 'string') {
    console.error(args);
    return args === USAGE ? 0 : 2;
  }
  const loaded = loadConfig(process.env, { discord: false, ppinfra: false });
  if (!loaded.ok) {
    console.error(formatProblems(loaded.problems));
    return 2;
  }
  const { storageUrl, price, tools } = loaded.config;
  if (storageUrl.startsWith('sqlite://') && !existsSync(sqlitePath(storageUrl))) {
    // Opening it would create an empty file: say what is wrong instead.
    console.error(
      `qwen-imagine usage: the SQLite storage at STORAGE_URL (${redactStorageUrl(storageUrl)}) does not exist: ${sqlitePath(storageUrl)}. Set STORAGE_URL as the bot has it (in .env or the environment), and run this where the bot runs.`,
    );
    return 2;
  }
  if (storageUrl.startsWith('memory://')) {
    console.error(
      'qwen-imagine usage: STORAGE_URL is memory://, which keeps nothing after the bot stops. Point STORAGE_URL at the bot’s SQLite file or Redis.',
    );
    return 2;
  }
  const shared = openSharedState(storageUrl);
  try {
    const ledger = createUsageLedger(shared);
    let report: UsageReport;
    try {
      report = await inTime(usageReport(ledger, Date.now(), args.days));
    } catch (err) {
      console.error(`qwen-imagine usage: ${storageFailureMessage(storageUrl, err)}`);
      return 2;
    }
    console.log(args.json ? JSON.stringify(toJson(report, price, tools), null, 2) : formatTable(report, price, tools));
    return 0;
  } finally {
    await inTime(shared.close()).catch(() => undefined);
    // node-redis may keep a reconnect timer: the report is out, nothing else is needed.
    if (isRedisUrl(storageUrl)) setTimeout(() => process.exit(process.exitCode ?? 0), 100).unref();
  }
}

/** The report as JSON: periods, per guild and total, with `cost` (a decimal string) when priced. */
export function toJson(report: UsageReport, price: Price | undefined, tools: ToolPrices = {}) {
  const at = (n: number, perImage: string | undefined) =>
    perImage ? money(n, { perImage, currency: undefined }) : undefined;
  const priced = (totals: UsageTotals) => ({
    ...totals,
    ...(price ? { cost: money(totals.images, { ...price, currency: undefined }) } : {}),
    ...(totals.edits && at(totals.edits, tools.pricePerEdit) ? { editCost: at(totals.edits, tools.pricePerEdit) } : {}),
    ...(totals.upscales && at(totals.upscales, tools.pricePerUpscale)
      ? { upscaleCost: at(totals.upscales, tools.pricePerUpscale) }
      : {}),
  });
  const periods = (r: UsageReport['total']) => ({
    today: priced(r.today),
    lastDays: priced(r.lastDays),
    month: priced(r.month),
  });
  return {
    day: report.day,
    price: price ? { perImage: price.perImage, currency: price.currency ?? null } : null,
    periods: report.periods,
    guilds: report.guilds.map((g) => ({ guildId: g.guildId, ...periods(g) })),
    total: periods(report.total),
  };
}

process.exitCode = await main();
