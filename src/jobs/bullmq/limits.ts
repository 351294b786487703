import type { Redis } from 'ioredis';
import { dailyBudget, type LimitSettings, type Refusal } from '../limits.ts';
import { slotAfter } from '../pacer.ts';
import type { GuildCaps } from '../../domain/job.ts';

/**
 * The member and guild limits, the API cool-down and the submission pace, shared by every
 * process on one Redis. Each decision is one Lua script, so it runs atomically on the server:
 * two processes can never both let a member past a limit, and nothing is a read-modify-write of
 * a whole snapshot. Concurrency is a set of job ids, so releasing the same job twice is harmless.
 */
export interface SharedLimits {
  /** Checks and, when allowed, counts the job in one step. */
  /** `concurrent: false`: a later image of a batch, counted against the quotas but not the concurrency. */
  reserve(input: {
    jobId: string;
    userId: string;
    guildId: string | null;
    queued: number;
    caps?: GuildCaps;
    concurrent?: boolean;
  }): Promise<Refusal | null>;
  /** The job ended (or never started): frees its slot; `refund` gives the quota back. */
  release(input: { jobId: string; userId: string; guildId: string | null; refund: boolean }): Promise<void>;
  apiResult(healthy: boolean): Promise<void>;
  /**
   * Counts a job as in flight (submitted, not finished) across every process, unless `max` are
   * already: false means wait (`MAX_JOBS_IN_FLIGHT`). Taking it again for the same job is harmless;
   * `release` gives it back.
   */
  enterFlight(jobId: string, max: number): Promise<boolean>;
  /** Jobs counted in flight now, across every process. */
  inFlight(): Promise<number>;
  /** Their ids, for the reconciler to check against the job records. */
  flightIds(): Promise<string[]>;
  /** Jobs the guild started in the last 24 h, across processes: what its daily budget has used. */
  guildUsed(guildId: string): Promise<number>;
}

const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;

const RESERVE = `
local now = tonumber(ARGV[1])
local cool = tonumber(redis.call('GET', KEYS[1]) or '0')
if cool > now then return {'api_cooling', 0, cool} end
local maxRunning = tonumber(ARGV[2])
local concurrent = ARGV[10] ~= '0'
if concurrent and redis.call('SCARD', KEYS[2]) >= maxRunning then return {'user_concurrent', maxRunning, 0} end
local function window(key, span, limit, kind)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  local n = redis.call('ZCARD', key)
  if n >= limit then
    local at = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
    return {kind, limit, tonumber(at[2]) + span}
  end
  return nil
end
local refused = window(KEYS[3], tonumber(ARGV[5]), tonumber(ARGV[3]), 'user_hourly')
if refused then return refused end
if KEYS[4] ~= KEYS[3] then
  refused = window(KEYS[4], tonumber(ARGV[6]), tonumber(ARGV[4]), 'guild_daily')
  if refused then return refused end
end
if tonumber(ARGV[8]) >= tonumber(ARGV[9]) then return {'queue_full', tonumber(ARGV[9]), 0} end
if concurrent then
  redis.call('SADD', KEYS[2], ARGV[7])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
redis.call('ZADD', KEYS[3], now, ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
if KEYS[4] ~= KEYS[3] then
  redis.call('ZADD', KEYS[4], now, ARGV[7])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
return {'ok', 0, 0}
`;

const ENTER_FLIGHT = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
`;

const RELEASE = `
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
if ARGV[2] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return 1
`;

/** Consecutive failures open the cool-down; after it, the next job is a probe (one more failure re-opens). */
const API_RESULT = `
if ARGV[1] == '1' then
  redis.call('SET', KEYS[1], 0)
  return 0
end
local failures = redis.call('INCR', KEYS[1])
local threshold = tonumber(ARGV[2])
if failures >= threshold then
  redis.call('SET', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[4]), 'PX', ARGV[4])
  redis.call('SET', KEYS[1], threshold - 1)
end
return failures
`;

export function createRedisLimits(
  redis: Redis,
  settings: LimitSettings,
  options: { prefix?: string; now?: () => number } = {},
): SharedLimits {
  const prefix = options.prefix ?? 'qi:limits:';
  const flight = `${prefix}in-flight`;
  const now = options.now ?? Date.now;
  const keys = (userId: string, guildId: string | null) => {
    const user = `${prefix}user:${userId}`;
    // Without a guild, the guild window is the user's own (the script skips it).
    return [
      `${prefix}running:${userId}`,
      `${user}:starts`,
      guildId ? `${prefix}guild:${guildId}:starts` : `${user}:starts`,
    ];
  };

  return {
    async reserve({ jobId, userId, guildId, queued, caps, concurrent = true }) {
      const hourly = Math.min(caps?.userHourlyQuota ?? Infinity, settings.userHourlyQuota);
      const daily = dailyBudget(settings, guildId, caps);
      // A budget of 0 allows nothing: there is no start whose end frees a place.
      if (guildId && daily === 0) return { kind: 'guild_daily', limit: 0, retryAt: now() + DAY_MS };
      const [running, user, guild] = keys(userId, guildId);
      const [kind, limit, retryAt] = (await redis.eval(
        RESERVE,
        4,
        `${prefix}cooling`,
        running!,
        user!,
        guild!,
        now(),
        settings.userMaxConcurrent,
        hourly,
        daily,
        HOUR_MS,
        DAY_MS,
        jobId,
        queued,
        settings.queueMax,
        concurrent ? '1' : '0',
      )) as [string, number, number];
      const refusals: Record<string, () => Refusal> = {
        api_cooling: () => ({ kind: 'api_cooling', retryAt: Number(retryAt) }),
        user_concurrent: () => ({ kind: 'user_concurrent', limit: Number(limit) }),
        user_hourly: () => ({ kind: 'user_hourly', limit: Number(limit), retryAt: Number(retryAt) }),
        guild_daily: () => ({ kind: 'guild_daily', limit: Number(limit), retryAt: Number(retryAt) }),
        queue_full: () => ({ kind: 'queue_full', limit: Number(limit) }),
      };
      return refusals[kind]?.() ?? null;
    },

    async release({ jobId, userId, guildId, refund }) {
      const [running, user, guild] = keys(userId, guildId);
      await redis.eval(RELEASE, 4, running!, user!, guild!, flight, jobId, refund ? '1' : '0');
    },

    async enterFlight(jobId, max) {
      return Number(await redis.eval(ENTER_FLIGHT, 1, flight, jobId, max)) === 1;
    },

    inFlight: () => redis.scard(flight),
    flightIds: () => redis.smembers(flight),

    async guildUsed(guildId) {
      return redis.zcount(`${prefix}guild:${guildId}:starts`, `(${now() - DAY_MS}`, '+inf');
    },

    async apiResult(healthy) {
      await redis.eval(
        API_RESULT,
        2,
        `${prefix}failures`,
        `${prefix}cooling`,
        healthy ? '1' : '0',
        settings.breakerThreshold,
        now(),
        settings.breakerCooldownMs,
      );
    },
  };
}

/**
 * The images-per-minute budget on Redis: the same sliding-window log as `pacer.ts`, in one
 * script, so all processes together stay within the provider's limit.
 */
export interface SharedPacer {
  /** Takes a slot now (0), or says in how many ms the next one frees up. */
  take(jobId: string): Promise<number>;
  startsAt(n: number): Promise<number>;
  throttled(): Promise<number>;
  accepted(): Promise<void>;
  /** Submissions still possible in the current window, for every process together (for metrics). */
  remaining(): Promise<number>;
}

const TAKE = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local share = tonumber(redis.call('GET', KEYS[2]) or '1')
local limit = math.max(1, math.floor(tonumber(ARGV[3]) * share))
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > now then return paused - now end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local at = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return math.max(1, tonumber(at[2]) + window - now)
`;

const THROTTLE = `
local share = math.max(1 / 16, tonumber(redis.call('GET', KEYS[1]) or '1') / 2)
redis.call('SET', KEYS[1], share)
local limit = math.max(1, math.floor(tonumber(ARGV[3]) * share))
local pause = math.ceil(tonumber(ARGV[2]) / limit)
redis.call('SET', KEYS[2], tonumber(ARGV[1]) + pause, 'PX', pause)
return pause
`;

const ACCEPTED = `
local share = tonumber(redis.call('GET', KEYS[1]) or '1')
if share < 1 then redis.call('SET', KEYS[1], math.min(1, share + 0.1)) end
return 1
`;

export function createRedisPacer(
  redis: Redis,
  options: { perMinute: number; windowMs?: number; prefix?: string; now?: () => number },
): SharedPacer {
  const prefix = options.prefix ?? 'qi:pace:';
  const windowMs = options.windowMs ?? 60_000;
  const now = options.now ?? Date.now;
  const [log, share, pause] = [`${prefix}log`, `${prefix}share`, `${prefix}pause`];
  return {
    async take(jobId) {
      return Number(
        await redis.eval(TAKE, 3, log, share, pause, now(), windowMs, options.perMinute, `${jobId}:${now()}`),
      );
    },
    async startsAt(n) {
      const t = now();
      const [entries, shareRaw, pausedRaw] = await Promise.all([
        redis.zrangebyscore(log, t - windowMs, '+inf', 'WITHSCORES'),
        redis.get(share),
        redis.get(pause),
      ]);
      const limit = Math.max(1, Math.floor(options.perMinute * Number(shareRaw ?? 1)));
      // Entries alternate member, score: the scores are the log.
      const submitted = entries.filter((_, i) => i % 2 === 1).map(Number);
      return slotAfter({ log: submitted, n, limit, windowMs, now: t, pausedUntil: Number(pausedRaw ?? 0) });
    },
    async throttled() {
      return Number(await redis.eval(THROTTLE, 2, share, pause, now(), windowMs, options.perMinute));
    },
    async accepted() {
      await redis.eval(ACCEPTED, 1, share);
    },
    async remaining() {
      const t = now();
      const [count, shareRaw, pausedRaw] = await Promise.all([
        redis.zcount(log, `(${t - windowMs}`, '+inf'),
        redis.get(share),
        redis.get(pause),
      ]);
      if (Number(pausedRaw ?? 0) > t) return 0;
      return Math.max(0, Math.max(1, Math.floor(options.perMinute * Number(shareRaw ?? 1))) - count);
    },
  };
}
