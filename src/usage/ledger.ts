import type { Job } from '../domain/job.ts';
import type { SharedState } from '../storage/shared-state.ts';
import { budgetKey, USER_INSTALL_BUDGET } from '../domain/place.ts';

/**
 * The usage ledger: what the operator pays for, per guild per UTC day. It is written once per job,
 * by the finisher, when the job reaches its end (delivered, held for review, or failed), from the
 * job record as it is then; the job records themselves are kept only a week (`src/jobs/store.ts`),
 * the ledger ~400 days. Counters live in the shared state (`increment`), so several processes on
 * one Redis add up exactly and the numbers survive restarts.
 *
 * Per guild per day, hash `usage:<guildId>:<yyyy-mm-dd>` (`dm` for direct messages):
 * `images`, `failed`, `flagged`, and `member:<userId>` (images per member). Per day, hash
 * `usage:all:<yyyy-mm-dd>`: one field per guild that had a job that day, with its images: the
 * guilds of the day and the cross-guild total.
 */

const DAY_MS = 24 * 3600_000;
/** How long a day's counters are kept: over a year, for year-on-year comparisons. */
export const USAGE_RETENTION_MS = 400 * DAY_MS;
/** The once-per-job guard outlives the job record (a week), so a step replayed late is not counted twice. */
const COUNTED_TTL_MS = 8 * DAY_MS;
const MEMBER = 'member:';

export interface UsageTotals {
  /** Tasks that produced an image from a prompt: the provider bills these (delivered, held, spoiler, over the upload limit). */
  images: number;
  /** The same for edits and upscales, each billed at its own price. */
  edits: number;
  upscales: number;
  /** Jobs that ended failed (an image over the upload limit is one, and an image too). */
  failed: number;
  /** Images the provider flagged as possibly not safe for work. */
  flagged: number;
}

export interface DayUsage extends UsageTotals {
  /** Images per member id. */
  members: Record<string, number>;
}

/** What the finisher calls at a job's end; the default does nothing. */
export interface UsageRecorder {
  /** True when this call counted the job; false when it was counted before. */
  record(job: Job): Promise<boolean>;
}

export const noUsageRecorder: UsageRecorder = { record: async () => false };

export interface UsageLedger extends UsageRecorder {
  /** One guild's counters for one UTC day (`'dm'` for direct messages). */
  day(guildId: string, day: string): Promise<DayUsage>;
  /** The guilds that had a job that day, with their images. */
  guilds(day: string): Promise<Record<string, number>>;
}

/** What a job at its terminal transition adds: derived from the job record alone. */
export function usageOf(job: Job): UsageTotals {
  // `completedAt` is set when the API reported the task done, before the image is fetched:
  // from then on the image exists and is billed, whatever became of it.
  const billed = job.completedAt !== undefined ? 1 : 0;
  return {
    images: job.tool ? 0 : billed,
    edits: job.tool === 'edit' ? billed : 0,
    upscales: job.tool === 'upscale' ? billed : 0,
    failed: job.state === 'failed' ? 1 : 0,
    flagged: job.nsfw?.flagged ? 1 : 0,
  };
}

export const guildKey = (guildId: string | null) => guildId ?? 'dm';

/** How the operator's reports name a ledger row. */
export const rowName = (guildId: string) =>
  guildId === 'dm'
    ? 'direct messages'
    : guildId === USER_INSTALL_BUDGET
      ? 'installs for oneself (DMs, servers without the bot)'
      : guildId;

export function createUsageLedger(shared: SharedState, options: { now?: () => number } = {}): UsageLedger {
  const now = options.now ?? Date.now;
  return {
    async record(job) {
      // A BullMQ step may run twice (its process died after finishing it): the first one counts.
      const guard = `usage:${job.id}`;
      const claimed = await shared.claim(guard, job.state, COUNTED_TTL_MS);
      if (!claimed.won) return false;
      const day = utcDay(job.finishedAt ?? now());
      // Places without the bot's server install are one row: the operator's USER_INSTALL_DAILY_BUDGET pays them.
      const guild = guildKey(budgetKey(job));
      const { images: generated, edits, upscales, failed, flagged } = usageOf(job);
      // Members and the day's guilds count every billed task, whichever tool made it.
      const images = generated + edits + upscales;
      const hash = `usage:${guild}:${day}`;
      try {
        await shared.increment(
          [
            { hash, field: 'images', by: generated },
            ...(edits ? [{ hash, field: 'edits', by: edits }] : []),
            ...(upscales ? [{ hash, field: 'upscales', by: upscales }] : []),
            { hash, field: 'failed', by: failed },
            { hash, field: 'flagged', by: flagged },
            ...(images ? [{ hash, field: `${MEMBER}${job.userId}`, by: images }] : []),
            { hash: `usage:all:${day}`, field: guild, by: images },
          ],
          USAGE_RETENTION_MS,
        );
      } catch (err) {
        // Not counted: the next attempt (a replayed step) may count it.
        await shared.release(guard).catch(() => undefined);
        throw err;
      }
      return true;
    },
    async day(guildId, day) {
      const counters = await shared.counters(`usage:${guildId}:${day}`);
      const members = Object.fromEntries(
        Object.entries(counters).flatMap(([field, n]) =>
          field.startsWith(MEMBER) ? [[field.slice(MEMBER.length), n]] : [],
        ),
      );
      return {
        images: counters.images ?? 0,
        edits: counters.edits ?? 0,
        upscales: counters.upscales ?? 0,
        failed: counters.failed ?? 0,
        flagged: counters.flagged ?? 0,
        members,
      };
    },
    guilds: (day) => shared.counters(`usage:all:${day}`),
  };
}

// ---- Periods: UTC days -------------------------------------------------------------------------

/** `yyyy-mm-dd` of the UTC day `ms` falls in. */
export const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The last `n` UTC days up to and including today, oldest first. */
export function lastDays(now: number, n: number): string[] {
  const today = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate());
  return Array.from({ length: n }, (_, i) => utcDay(today - (n - 1 - i) * DAY_MS));
}

/** The days of the calendar month (UTC) so far, the 1st to today. */
export function monthDays(now: number): string[] {
  return lastDays(now, new Date(now).getUTCDate());
}

export interface Periods {
  today: string[];
  /** The last `days` UTC days, today included (7 by default). */
  lastDays: string[];
  month: string[];
}

export function periods(now: number, days = 7): Periods {
  return { today: lastDays(now, 1), lastDays: lastDays(now, days), month: monthDays(now) };
}

const allDays = (p: Periods) => [...new Set([...p.lastDays, ...p.month, ...p.today])].sort();

const sum = (days: readonly DayUsage[]): UsageTotals => ({
  images: days.reduce((n, d) => n + d.images, 0),
  edits: days.reduce((n, d) => n + (d.edits ?? 0), 0),
  upscales: days.reduce((n, d) => n + (d.upscales ?? 0), 0),
  failed: days.reduce((n, d) => n + d.failed, 0),
  flagged: days.reduce((n, d) => n + d.flagged, 0),
});

export interface PeriodUsage {
  today: UsageTotals;
  lastDays: UsageTotals;
  month: UsageTotals;
}

function byPeriod(p: Periods, daily: Map<string, DayUsage>): PeriodUsage {
  const over = (days: string[]) => sum(days.flatMap((d) => daily.get(d) ?? []));
  return { today: over(p.today), lastDays: over(p.lastDays), month: over(p.month) };
}

export interface GuildUsage extends PeriodUsage {
  /** The members who made the most images this month, most first (ties by id). */
  top: { userId: string; images: number }[];
}

/** One guild's usage for `/imagine-usage`. */
export async function guildUsage(ledger: UsageLedger, guildId: string, now: number, topCount = 5): Promise<GuildUsage> {
  const p = periods(now);
  const days = allDays(p);
  const daily = new Map(await Promise.all(days.map(async (d) => [d, await ledger.day(guildId, d)] as const)));
  const members = new Map<string, number>();
  for (const d of p.month)
    for (const [userId, n] of Object.entries(daily.get(d)?.members ?? {}))
      members.set(userId, (members.get(userId) ?? 0) + n);
  const top = [...members]
    .filter(([, images]) => images > 0)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))
    .slice(0, topCount)
    .map(([userId, images]) => ({ userId, images }));
  return { ...byPeriod(p, daily), top };
}

export interface UsageReport {
  /** The UTC day the report is for. */
  day: string;
  periods: {
    today: { from: string; to: string };
    lastDays: { from: string; to: string; days: number };
    month: { from: string; to: string };
  };
  guilds: ({ guildId: string } & PeriodUsage)[];
  total: PeriodUsage;
}

/** Every guild's usage, for `npm run usage`: guilds with the most images this month first. */
export async function usageReport(ledger: UsageLedger, now: number, days = 7): Promise<UsageReport> {
  const p = periods(now, days);
  const all = allDays(p);
  const guildIds = new Set((await Promise.all(all.map((d) => ledger.guilds(d)))).flatMap((g) => Object.keys(g)));
  const guilds = await Promise.all(
    [...guildIds].map(async (guildId) => {
      const daily = new Map(await Promise.all(all.map(async (d) => [d, await ledger.day(guildId, d)] as const)));
      return { guildId, ...byPeriod(p, daily) };
    }),
  );
  guilds.sort(
    (a, b) =>
      billedOf(b.month) - billedOf(a.month) ||
      billedOf(b.lastDays) - billedOf(a.lastDays) ||
      (a.guildId < b.guildId ? -1 : 1),
  );
  const add = (key: keyof PeriodUsage): UsageTotals => sum(guilds.map((g) => ({ ...g[key], members: {} })));
  const range = (list: string[]) => ({ from: list[0]!, to: list[list.length - 1]! });
  return {
    day: p.today[0]!,
    periods: { today: range(p.today), lastDays: { ...range(p.lastDays), days }, month: range(p.month) },
    guilds,
    total: { today: add('today'), lastDays: add('lastDays'), month: add('month') },
  };
}

/** Every billed task of a period, whichever tool. */
export const billedOf = (totals: UsageTotals) => totals.images + totals.edits + totals.upscales;

// ---- Money ----------------------------------------------------------------------------------------

/** PRICE_PER_IMAGE as given (a decimal string, kept exact) and PRICE_CURRENCY. */
export interface Price {
  perImage: string;
  currency: string | undefined;
}

/**
 * `images × price`, exactly (no floating point): `cost(3, '0.035')` is `'0.105'`, `cost(10, '0.02')`
 * `'0.20'`. At least two decimals, more when the price has them.
 */
export function cost(images: number, perImage: string): string {
  const [whole = '0', fraction = ''] = perImage.split('.');
  const decimals = Math.max(2, fraction.length);
  const units = BigInt(whole + fraction.padEnd(decimals, '0')) * BigInt(images);
  const text = units.toString().padStart(decimals + 1, '0');
  return `${text.slice(0, -decimals)}.${text.slice(-decimals)}`;
}

/** The cost with its currency label, e.g. `0.20 USD`. */
export const money = (images: number, price: Price) =>
  price.currency ? `${cost(images, price.perImage)} ${price.currency}` : cost(images, price.perImage);
