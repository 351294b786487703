/**
 * When to poll next, as a pure function so tests and the benchmark can reason about it.
 *
 * Fixed 1-second polling spends most requests on tasks that cannot be done yet. Qwen-Image's
 * duration depends mostly on the size, so with an estimate of the expected duration we skip
 * the early polls, poll densely where tasks of that size actually finish, and back off
 * exponentially once a task runs late.
 */
import type { Estimate } from '../domain/estimate.ts';

export type { Estimate };

export interface ScheduleInput extends Estimate {
  sinceSubmitMs: number;
  polls: number;
  minIntervalMs: number;
  maxIntervalMs: number;
  random: () => number;
}

/**
 * The estimate a job in flight is judged by ("taking longer than usual"): `live` (read before
 * each poll, so a busy hour learned from other sizes' tasks moves it) unless it is earlier than
 * `atSubmit`, what was expected when the task was sent. In a burst the first tasks to finish are
 * the short ones, so they pull the estimator's figures down while the tasks still running are,
 * by surviving, the long ones. A later one only says the API is slower than thought, if it
 * measures this size: a hint from other sizes (`guess`) does not replace what the job started
 * with, nor does it replace a measured distribution (`durations`). Polls follow both
 * (`inFlightPollDelay`).
 */
export function inFlightEstimate(atSubmit: Estimate | undefined, live: Estimate): Estimate {
  if (!atSubmit) return live;
  const keep = live.guess || (atSubmit.durations && !atSubmit.guess) || atSubmit.expectedMs >= live.expectedMs;
  return keep ? atSubmit : live;
}

/**
 * What one task-result request is worth, in milliseconds of a member's wait. A poll at `t + d`
 * for a task still running at `t` costs one request; skipping it makes the member whose task
 * finishes within the gap (chance F) wait about d / 2 longer. So the next poll comes at the first
 * `d` where d * F(d) reaches 2 * POLL_WORTH_MS: densely where tasks finish, sparsely where few
 * do, and the first poll where the first tasks may be done.
 *
 * A task-result request is not billed; a member's wait is the product, and the choice follows
 * it. On the widest workload of `npm run bench` (one size whose tasks take anything from 3 to
 * 15 s) even a schedule that knew the distribution exactly could not be both cheaper and
 * quicker than fixed 1-second polling: 40 ms buys a median wait after completion of 0.67x for
 * 1.0x the polls, 80 ms 0.83x for 0.77x, and 0.6x the polls costs 1.05x the wait. Over the
 * workloads of bench/virtual-family.ts (sizes, warm-up depth, waves, load shifts of -20 % to
 * +60 %, bursts and trickles), 50 ms kept the median wait at 0.5-0.75x fixed polling's on
 * every workload; 70 ms saved a fifth of the polls and let the worst median wait reach 1.1x.
 */
const POLL_WORTH_MS = 50;
/**
 * A task is late once fewer than this share of such tasks would still be running: past it
 * polls back off (exponentially, to POLL_MAX_INTERVAL_MS), since a task that far out is more
 * likely stuck at the API than about to finish.
 */
const LATE_SURVIVAL = 0.02;

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/**
 * The chance that a standard normal variable exceeds z: half erfc(z / sqrt 2), by Abramowitz &
 * Stegun 7.1.26 (error < 1.5e-7), written so the far tail keeps its relative precision.
 */
function upperTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erfc =
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

/** A robust spread of log(durations) (Silverman's rule of thumb), for a kernel in log space. */
export function logBandwidth(durations: readonly number[]): number {
  const logs = durations.map(Math.log).sort((a, b) => a - b);
  const n = logs.length;
  if (n < 2) return 0;
  const mean = logs.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(logs.reduce((a, x) => a + (x - mean) ** 2, 0) / n);
  const iqr = quantile(logs, 0.75) - quantile(logs, 0.25);
  return 0.9 * Math.min(sd, iqr > 0 ? iqr / 1.34 : sd) * n ** -0.2;
}

/** Narrower than this, a kernel would promise a precision no API keeps from one task to the next. */
const MIN_LOG_WIDTH = 0.05;

/**
 * How far the API's speed may move, unseen, between the durations an estimate was made from and
 * a task (log space; 0.35: a third faster or slower is common). In a burst every task is sent
 * before any of them can teach the estimator the load, so the schedule hedges: SHIFT_SHARE of
 * its weight on the durations widened by this. Polls there are sparse (few tasks finish there)
 * but present, where an estimate alone would have none.
 */
const SHIFT_LOG_WIDTH = 0.35;
const SHIFT_SHARE = 0.15;

interface Kernels {
  /** The kernels' centres, as logarithms (computed once: a poll evaluates them a few thousand times). */
  centers: number[];
  /** Widths (log space) of the estimate itself and of its hedge against a shifted API. */
  width: number;
  shifted: number;
  prior?: { center: number; share: number; width: number };
}

/**
 * The durations an estimate expects, as a mixture of log-normal kernels: one per duration (or
 * one at `expectedMs`, with a width from `spreadMs`, for an estimate without durations).
 */
function kernelsOf(e: Estimate): Kernels | undefined {
  const centers = (e.durations ?? [e.expectedMs]).filter((x) => x > 0);
  if (!centers.length) return undefined;
  const own =
    e.logWidth ?? (e.durations ? logBandwidth(e.durations) : Math.log1p(Math.max(0, e.spreadMs) / e.expectedMs));
  const width = Math.max(MIN_LOG_WIDTH, own);
  const sorted = [...centers].sort((a, b) => a - b);
  return {
    centers: centers.map(Math.log),
    width,
    shifted: Math.hypot(width, SHIFT_LOG_WIDTH),
    ...(e.prior &&
      e.prior.share > 0 && {
        prior: {
          center: Math.log(sorted[sorted.length >> 1]!),
          share: Math.min(1, e.prior.share),
          width: Math.max(width, e.prior.logWidth),
        },
      }),
  };
}

/** The share of tasks like `e` still running `t` ms after submission. */
function survival(k: Kernels, t: number): number {
  if (t <= 0) return 1;
  const lt = Math.log(t);
  let s = 0;
  let shifted = 0;
  for (const c of k.centers) {
    s += upperTail((lt - c) / k.width);
    shifted += upperTail((lt - c) / k.shifted);
  }
  s /= k.centers.length;
  if (k.prior) s = (1 - k.prior.share) * s + k.prior.share * upperTail((lt - k.prior.center) / k.prior.width);
  return (1 - SHIFT_SHARE) * s + (SHIFT_SHARE * shifted) / k.centers.length;
}

/** When (ms after submit) a task is late by `e`: fewer than LATE_SURVIVAL of such tasks still run. */
export function lateAfter(e: Estimate): number {
  const k = kernelsOf(e);
  return k ? lateBy(k) : 0;
}

function lateBy(k: Kernels): number {
  let lo = 0;
  let hi = Math.exp(Math.max(...k.centers, k.prior?.center ?? 0) + 4 * Math.max(k.shifted, k.prior?.width ?? 0));
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (survival(k, mid) > LATE_SURVIVAL) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * Milliseconds to wait before the next task-result request: the first gap `d` (at least
 * `minIntervalMs`) after which d * P(done within d | running now) reaches 2 * POLL_WORTH_MS, so
 * the first poll comes where the first tasks may be done and polls gather where most finish. A
 * late task (`lateAfter`) backs off exponentially up to `maxIntervalMs`. Jitter (+-10 %) keeps
 * many jobs from polling in lockstep.
 */
export function nextPollDelay(input: ScheduleInput): number {
  const { sinceSubmitMs: t, minIntervalMs, maxIntervalMs, random } = input;
  const jitter = (ms: number) => ms * (0.9 + 0.2 * random());
  const clamp = (ms: number) => Math.max(minIntervalMs, Math.min(maxIntervalMs, ms));
  const k = kernelsOf(input);
  // Nothing expected (an estimate of zero): the task may be done at any moment.
  if (!k) return minIntervalMs;
  const late = lateBy(k);
  if (t >= late) {
    const normal = Math.min(maxIntervalMs, 2 * minIntervalMs);
    return clamp(jitter(normal * 2 ** ((t - late) / Math.max(input.expectedMs, minIntervalMs))));
  }
  const now = survival(k, t);
  const worth = (d: number) => d * (1 - survival(k, t + d) / now) >= 2 * POLL_WORTH_MS;
  // Before most tasks could be done the wait may be long; within the region, no longer than the maximum.
  let hi = Math.max(maxIntervalMs, late - t);
  if (worth(minIntervalMs)) return Math.max(minIntervalMs, jitter(minIntervalMs));
  if (worth(hi)) {
    let lo = minIntervalMs;
    for (let i = 0; i < 30 && hi - lo > 5; i++) {
      const mid = (lo + hi) / 2;
      if (worth(mid)) hi = mid;
      else lo = mid;
    }
  }
  const d = jitter(hi);
  return Math.max(minIntervalMs, now < 0.95 ? Math.min(d, maxIntervalMs) : d);
}

/**
 * Milliseconds to wait before the next look at a task in flight, which was submitted with the
 * estimate `atSubmit` and whose size the estimator now sees as `live` (read before each poll):
 * the sooner of the two schedules. Another estimate can only add polls, never take them away.
 *
 * - No wait is longer than `atSubmit`'s own schedule asks for. When the live estimate moves later
 *   while the task runs (the load learned from the first tasks of a burst, a guess replaced by
 *   the size's first measurement), following it alone leaps from one early poll to the new
 *   estimate's start, straight across the time the task was expected to finish.
 * - The live estimate adds its polls, earlier or later: in a burst into a faster API, the small
 *   tasks that finish first teach the estimator the load while the large ones still run, and
 *   their finish moves ahead of the region they were submitted for. Each schedule is conditional
 *   on the task still running now, so the short tasks of the task's own burst entering the live
 *   durations do not make it poll a survivor as if it were about to finish.
 *
 * A poll of task-result is not billed and costs the API little; a member's wait is what the bot
 * is for, so where two schedules disagree the denser one wins.
 */
export function inFlightPollDelay(
  atSubmit: Estimate | undefined,
  live: Estimate,
  input: Omit<ScheduleInput, keyof Estimate>,
): number {
  const delay = nextPollDelay({ ...live, ...input });
  if (!atSubmit || atSubmit === live) return delay;
  // The wait until another schedule's first poll may be shorter than the minimum spacing, which
  // the caller (the BullMQ engine has no last-poll guard) must still keep after a poll.
  return Math.max(Math.min(delay, nextPollDelay({ ...atSubmit, ...input })), input.minIntervalMs);
}
