/**
 * Paces submissions by the provider's real limit: images per minute (Novita: 20 IPM by default
 * for text-to-image, 429 beyond). A job in flight costs the provider nothing, so this, not the
 * number of jobs in flight, is what bounds the bot.
 *
 * A sliding-window log rather than a token bucket: a bucket that holds a minute's worth lets a
 * full burst through and then refills during the same minute, so a sliding minute can see up to
 * twice the budget, which is exactly what the provider counts and refuses. With the log, a burst
 * of up to the whole budget goes out at once and no 60-second window ever holds more.
 *
 * A 429 on submit means the account's real budget is lower than configured (another bot on the
 * same key, a lowered limit): the budget halves and the next submission waits one slot; each
 * accepted submission wins a little back (additive increase, multiplicative decrease).
 */
export interface SubmitPacer {
  /** Takes a submission slot if the budget allows one now. */
  tryTake(): boolean;
  /** When the n-th submission from now (1 = the next) can go, at the current budget. */
  startsAt(n: number): number;
  /** The API answered 429: slow down. */
  throttled(): void;
  /** The API accepted a submission: recover towards the configured budget. */
  accepted(): void;
  /** The budget in force, in images per minute (for logs and metrics). */
  perMinute(): number;
  /** Submissions still possible in the current window (0 while paused after a 429), for metrics. */
  remaining(): number;
}

const MINUTE_MS = 60_000;

/**
 * When the n-th submission from `now` can go, given the sliding-window log: each future
 * submission goes once the one `limit` places before it has left the window (and not before a
 * pause ends). Shared by the in-process pacer and the Redis one, which read the log differently.
 */
export function slotAfter(input: {
  log: readonly number[];
  n: number;
  limit: number;
  windowMs: number;
  now: number;
  pausedUntil: number;
}): number {
  const future = [...input.log];
  let at = input.now;
  for (let i = 0; i < input.n; i++) {
    const before = future[future.length - input.limit];
    at = Math.max(input.now, input.pausedUntil, before === undefined ? input.now : before + input.windowMs);
    future.push(at);
  }
  return at;
}
/** The lowest share of the configured budget a run of 429s can push the bot to. */
const MIN_SHARE = 1 / 16;
/** How much of the configured budget each accepted submission wins back after a slowdown. */
const RECOVERY_STEP = 0.1;

export function createSubmitPacer(deps: { perMinute: number; now?: () => number; windowMs?: number }): SubmitPacer {
  const now = deps.now ?? Date.now;
  const windowMs = deps.windowMs ?? MINUTE_MS;
  let share = 1;
  let pausedUntil = 0;
  /** When the submissions of the last window went out, oldest first. */
  const log: number[] = [];

  const limit = () => Math.max(1, Math.floor(deps.perMinute * share));
  const prune = (t: number) => {
    while (log.length && log[0]! <= t - windowMs) log.shift();
  };

  return {
    tryTake() {
      const t = now();
      prune(t);
      if (t < pausedUntil || log.length >= limit()) return false;
      log.push(t);
      return true;
    },
    startsAt(n) {
      const t = now();
      prune(t);
      return slotAfter({ log, n, limit: limit(), windowMs, now: t, pausedUntil });
    },
    throttled() {
      share = Math.max(MIN_SHARE, share / 2);
      pausedUntil = now() + windowMs / limit();
    },
    accepted() {
      share = Math.min(1, share + RECOVERY_STEP);
    },
    perMinute: () => (limit() * MINUTE_MS) / windowMs,
    remaining() {
      const t = now();
      prune(t);
      return t < pausedUntil ? 0 : Math.max(0, limit() - log.length);
    },
  };
}
