import type { Config } from '../config.ts';
import type { GuildCaps } from '../domain/job.ts';
import { USER_INSTALL_BUDGET } from '../domain/place.ts';

/**
 * The limits as configured (`USER_MAX_CONCURRENT`, `BREAKER_THRESHOLD`, ...), and
 * USER_INSTALL_DAILY_BUDGET, the budget of every place without the bot's server install.
 */
export type LimitSettings = Config['limits'] & { userInstallDailyBudget?: number };

/**
 * The daily budget counted under `key` (`budgetKey` in src/domain/place.ts): the places without
 * the bot's server install share the operator's own; a server has the operator's, or its lower one.
 */
export function dailyBudget(settings: LimitSettings, key: string | null, caps?: GuildCaps): number {
  if (key === USER_INSTALL_BUDGET) return settings.userInstallDailyBudget ?? settings.guildDailyBudget;
  return Math.min(caps?.guildDailyBudget ?? Infinity, settings.guildDailyBudget);
}

export type Refusal =
  | { kind: 'user_concurrent'; limit: number }
  | { kind: 'user_hourly'; limit: number; retryAt: number }
  | { kind: 'guild_daily'; limit: number; retryAt: number }
  | { kind: 'queue_full'; limit: number }
  | { kind: 'api_cooling'; retryAt: number }
  /** The member (or the guild) has `held` images waiting for a moderator, `limit` or more (`HELD_PER_MEMBER`, `HELD_PER_GUILD`). */
  | { kind: 'held_member' | 'held_guild'; limit: number; held: number };

const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;

export interface Limits {
  /**
   * A refusal, or null when `userId` in `guildId` may start a job with `queued` jobs waiting.
   * `caps` are the guild's own, lower, quota and budget (`/imagine-settings limits`).
   */
  /** `concurrent: false`: a later image of a batch, which does not take a concurrency slot of its own. */
  check(
    userId: string,
    guildId: string | null,
    queued: number,
    caps?: GuildCaps,
    options?: { concurrent?: boolean },
  ): Refusal | null;
  /** Counts a job against the user's concurrency and quotas. */
  /** `quota: false` re-attaches a job resumed after a restart, already counted before; `concurrent: false` as in `check`. */
  take(userId: string, guildId: string | null, options?: { quota?: boolean; concurrent?: boolean }): void;
  /** The job ended: frees the concurrency slot (unless `concurrent` is false); `refund` gives back quota when nothing was billed. */
  release(userId: string, guildId: string | null, refund: boolean, concurrent?: boolean): void;
  /** API health: consecutive server errors or timeouts open a cool-down. */
  apiResult(healthy: boolean): void;
  coolingUntil(): number | null;
  /** Jobs the guild started in the last 24 h: what its daily budget has used (`/imagine-usage`). */
  guildUsed(guildId: string): number;
  /** The quota windows as plain data, to persist across restarts; `restore` takes them back. */
  snapshot(): QuotaSnapshot;
  restore(snapshot: unknown): void;
}

export interface QuotaSnapshot {
  users: Record<string, number[]>;
  guilds: Record<string, number[]>;
}

/**
 * Who may start a job now. Pure bookkeeping over timestamps, the clock passed in; the service
 * asks before it defers a reply, so a refusal is ephemeral and costs nothing.
 */
export function createLimits(
  settings: LimitSettings,
  now: () => number = Date.now,
  onQuotaChange?: (snapshot: QuotaSnapshot) => void,
): Limits {
  const running = new Map<string, number>();
  const userStarts = new Map<string, number[]>();
  const guildStarts = new Map<string, number[]>();
  let consecutiveFailures = 0;
  let coolUntil = 0;

  const recent = (map: Map<string, number[]>, key: string, windowMs: number) => {
    const list = (map.get(key) ?? []).filter((t) => t > now() - windowMs);
    map.set(key, list);
    return list;
  };

  /** Only what is still inside its window, so the saved state never grows. */
  const live = (map: Map<string, number[]>, windowMs: number) =>
    Object.fromEntries(
      [...map.keys()].map((key) => [key, recent(map, key, windowMs)] as const).filter(([, list]) => list.length),
    );
  const snapshot = (): QuotaSnapshot => ({ users: live(userStarts, HOUR_MS), guilds: live(guildStarts, DAY_MS) });
  const changed = () => onQuotaChange?.(snapshot());

  return {
    check(userId, guildId, queued, caps, options = {}) {
      if (coolUntil > now()) return { kind: 'api_cooling', retryAt: coolUntil };
      if (options.concurrent !== false && (running.get(userId) ?? 0) >= settings.userMaxConcurrent)
        return { kind: 'user_concurrent', limit: settings.userMaxConcurrent };
      const hourly = Math.min(caps?.userHourlyQuota ?? Infinity, settings.userHourlyQuota);
      const hour = recent(userStarts, userId, HOUR_MS);
      // The window may hold more starts than a lowered cap: the retry time is when it drops below.
      if (hour.length >= hourly)
        return { kind: 'user_hourly', limit: hourly, retryAt: hour[hour.length - hourly]! + HOUR_MS };
      if (guildId) {
        const daily = dailyBudget(settings, guildId, caps);
        const day = recent(guildStarts, guildId, DAY_MS);
        // A budget of 0 allows nothing: there is no start whose end frees a place.
        if (day.length >= daily)
          return { kind: 'guild_daily', limit: daily, retryAt: (day[day.length - daily] ?? now()) + DAY_MS };
      }
      if (queued >= settings.queueMax) return { kind: 'queue_full', limit: settings.queueMax };
      return null;
    },
    take(userId, guildId, options = {}) {
      if (options.concurrent !== false) running.set(userId, (running.get(userId) ?? 0) + 1);
      if (options.quota === false) return;
      recent(userStarts, userId, HOUR_MS).push(now());
      if (guildId) recent(guildStarts, guildId, DAY_MS).push(now());
      changed();
    },
    release(userId, guildId, refund, concurrent = true) {
      if (concurrent) running.set(userId, Math.max(0, (running.get(userId) ?? 1) - 1));
      if (!refund) return;
      userStarts.get(userId)?.pop();
      if (guildId) guildStarts.get(guildId)?.pop();
      changed();
    },
    apiResult(healthy) {
      consecutiveFailures = healthy ? 0 : consecutiveFailures + 1;
      if (consecutiveFailures >= settings.breakerThreshold) {
        coolUntil = now() + settings.breakerCooldownMs;
        // After the cool-down the next job is a probe: one more failure re-opens at once.
        consecutiveFailures = settings.breakerThreshold - 1;
      }
    },
    coolingUntil() {
      return coolUntil > now() ? coolUntil : null;
    },
    guildUsed: (guildId) => recent(guildStarts, guildId, DAY_MS).length,
    snapshot,
    restore(data) {
      const { users, guilds } = (data ?? {}) as Partial<QuotaSnapshot>;
      const numbers = (v: unknown) => (Array.isArray(v) ? v.filter((t): t is number => typeof t === 'number') : []);
      for (const [key, list] of Object.entries(users ?? {})) userStarts.set(key, numbers(list));
      for (const [key, list] of Object.entries(guilds ?? {})) guildStarts.set(key, numbers(list));
    },
  };
}
