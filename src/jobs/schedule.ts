/**
 * When to poll next, as a pure function so tests and the benchmark can reason about it.
 *
 * Fixed 1-second polling spends most requests on tasks that cannot be done yet. Qwen-Image's
 * duration depends mostly on the size, so with an estimate of the expected duration we skip
 * the early polls, poll densely where tasks of that size actually finish, and back off
 * exponentially once a task runs late.
 */
export interface Estimate {
  /** Expected time from submit to completion. */
  expectedMs: number;
  /** How far real durations stray from it (robust spread; larger when little is known). */
  spreadMs: number;
  /**
   * Not a measurement of this size: what the model usually takes (`COLD_ESTIMATE`), or other
   * sizes' history scaled by the pixel count.
   */
  guess?: boolean;
  /**
   * The durations tasks like this one take (ascending, ms): a size's own observations scaled
   * by the current load once there are enough (`HAZARD_MIN_SAMPLES`, estimator.ts), or the
   * prior of a fresh install. Polls are then spaced by this distribution (`hazardSpacing`).
   */
  durations?: number[];
}

export interface ScheduleInput extends Estimate {
  sinceSubmitMs: number;
  polls: number;
  minIntervalMs: number;
  maxIntervalMs: number;
  random: () => number;
}

/**
 * The estimate a job in flight polls by: `live` (read before each poll, so a busy hour learned
 * from other sizes' tasks moves it) unless it is earlier than `atSubmit`, what was expected when
 * the task was sent. In a burst the first tasks to finish are the short ones, so they pull the
 * estimator's figures down while the tasks still running are, by surviving, the long ones: an
 * earlier live estimate would push them into the late back-off. A later one only says the API
 * is slower than thought, which holds for them too, if it measures this size: a hint from other
 * sizes (`guess`) does not replace what the job started with. Nor is a measured distribution
 * (`durations`) replaced: it already expects the long tasks, and within a burst of one size the
 * later finishers, being the long ones, would only stretch it again.
 */
export function inFlightEstimate(atSubmit: Estimate | undefined, live: Estimate): Estimate {
  if (!atSubmit) return live;
  const keep = live.guess || (atSubmit.durations && !atSubmit.guess) || atSubmit.expectedMs >= live.expectedMs;
  return keep ? atSubmit : live;
}

/**
 * How many spreads before the expected finish the first poll may come. With a few durations the
 * spread is at least a tenth of the expected time. A task already done at its first poll waits
 * for it longest (the tail of a member's wait is mostly those), and a size with few durations
 * is often off by more than 0.75 spread: the API faster than its history, a size whose time
 * varies a lot. Over seeded workloads (test/jobs/workloads.ts) moving the first poll from 0.75
 * to 1.25 spreads bought about 115 ms of mean wait per extra poll, more than a poll is worth
 * (`POLL_WORTH_MS`), and took the 95th percentile from 1.7x to 1.1x fixed 1-second polling's;
 * going on to 1.5 or 2 bought only 20-25 ms per poll.
 */
const EARLY_SPREADS = 1.25;
/** Past expected + this many spreads, the task is late and polls back off. */
const LATE_SPREADS = 2;
/** An estimate this tight (spread / expected) earns the densest polling around the finish. */
const CONFIDENT_RATIO = 0.2;
/**
 * What one task-result request is worth, in milliseconds of a member's wait. Polling every d ms
 * a task that finishes at rate h (its hazard: the chance per ms of finishing now, given it has
 * not yet) costs about h*d/2 ms of waiting and 1/d polls per ms; the sum is smallest at
 * d = sqrt(2 * POLL_WORTH_MS / h). So polls gather where tasks actually finish and thin out
 * where few do: a narrow distribution is polled at the minimum spacing around its peak, a wide
 * one (3-15 s) about every 0.6-1 s across it. At 80 ms, the wide workload of `npm run bench`
 * costs about 0.75-0.8x the polls of fixed 1-second polling and sees images 0.5-0.9x as late.
 * A task-result request is not billed, so this is a judgement of the API's goodwill and the
 * bot's work, not money; on the seeded workloads of test/jobs/workloads.ts, halving it to 40 ms
 * cost about 0.9 more polls a task (+12 %) for about 40 ms less mean wait (45-50 ms a poll, less
 * than the 80 it prices one at) and left the 95th percentile where it was: the tail is set by
 * where polling starts (`EARLY_SPREADS`), not by the spacing.
 */
const POLL_WORTH_MS = 80;
/** With a distribution, the first poll comes when this share of such tasks are done. */
const FIRST_POLL_QUANTILE = 0.05;

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** The standard normal CDF (Abramowitz & Stegun 7.1.26, error < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** Silverman's rule of thumb: the kernel width that smooths `sorted` without flattening it. */
function bandwidth(sorted: number[]): number {
  const n = sorted.length;
  const mean = sorted.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(sorted.reduce((a, x) => a + (x - mean) ** 2, 0) / n);
  const iqr = quantile(sorted, 0.75) - quantile(sorted, 0.25);
  return Math.max(0.9 * Math.min(sd, iqr > 0 ? iqr / 1.34 : sd) * n ** -0.2, 0.02 * quantile(sorted, 0.5), 50);
}

/**
 * The spacing that balances a member's wait against the number of polls (`POLL_WORTH_MS`), `t`
 * ms after submission, from a kernel-smoothed hazard of `durations`. Undefined once `t` is past
 * every duration (by one kernel width): the task is late, and the caller backs off.
 */
export function hazardSpacing(durations: number[], t: number, width = bandwidth(durations)): number | undefined {
  if (t > durations.at(-1)! + width) return undefined;
  let density = 0;
  let survival = 0;
  for (const x of durations) {
    const z = (t - x) / width;
    density += Math.exp(-0.5 * z * z) / (width * Math.sqrt(2 * Math.PI));
    survival += 1 - normalCdf(z);
  }
  // n observations cannot tell a chance of outlasting them all below about 1 / (n + 1); without
  // this floor the hazard of the last few would soar and poll the tail at the minimum spacing.
  const hazard = density / Math.max(survival, durations.length / (durations.length + 1));
  return hazard > 0 ? Math.sqrt((2 * POLL_WORTH_MS) / hazard) : Number.POSITIVE_INFINITY;
}

/**
 * Milliseconds to wait before the next task-result request. With a distribution (`durations`),
 * polling starts at its 5th percentile and is spaced by its hazard; otherwise from 0.75 spread
 * before the expected finish, every `minIntervalMs` when the estimate is confident and twice
 * that otherwise. A late task backs off exponentially up to `maxIntervalMs`. Jitter (+-10 %)
 * keeps many jobs from polling in lockstep.
 */
export function nextPollDelay(input: ScheduleInput): number {
  const { sinceSubmitMs, expectedMs, spreadMs, minIntervalMs, maxIntervalMs, random, durations } = input;
  const jitter = (ms: number) => ms * (0.9 + 0.2 * random());
  const clamp = (ms: number) => Math.max(minIntervalMs, Math.min(maxIntervalMs, ms));
  const earliest = Math.max(
    minIntervalMs,
    durations ? quantile(durations, FIRST_POLL_QUANTILE) : expectedMs - EARLY_SPREADS * spreadMs,
  );
  if (sinceSubmitMs < earliest) return earliest - sinceSubmitMs;
  const normal = Math.min(maxIntervalMs, 2 * minIntervalMs);
  const backoff = (lateBy: number) => clamp(jitter(normal * 2 ** (lateBy / Math.max(expectedMs, minIntervalMs))));
  if (durations) {
    const spacing = hazardSpacing(durations, sinceSubmitMs);
    return spacing === undefined ? backoff(sinceSubmitMs - lateAfter(input)) : clamp(jitter(spacing));
  }
  const lateBy = sinceSubmitMs - lateAfter(input);
  if (lateBy > 0) return backoff(lateBy);
  return Math.max(minIntervalMs, jitter(spreadMs <= CONFIDENT_RATIO * expectedMs ? minIntervalMs : normal));
}

/** When (ms after submit) a task is late by `e`: past every duration by a kernel width, or past expected + LATE_SPREADS spreads. */
export function lateAfter(e: Estimate): number {
  return e.durations ? e.durations.at(-1)! + bandwidth(e.durations) : e.expectedMs + LATE_SPREADS * e.spreadMs;
}

/**
 * Milliseconds to wait before the next look at a task in flight, which was submitted with the
 * estimate `atSubmit` and whose size the estimator now sees as `live` (read before each poll).
 * It polls by `inFlightEstimate`, but another estimate can only add polls, never take them away:
 *
 * - No wait is longer than `atSubmit`'s own schedule asks for. When the live estimate moves later
 *   while the task runs (the load learned from the first tasks of a burst, a guess replaced by
 *   the size's first measurement), following it alone leaps from one early poll to the new
 *   estimate's start, straight across the time the task was expected to finish; and once the
 *   task is late by `atSubmit`, each later move leaps again. The tasks that finish in between
 *   (many: the load factor is a median of a few tasks and overshoots) wait seconds for a poll.
 * - Once the task is late by `atSubmit`, a later live estimate that still sees it in its region
 *   keeps it from backing off, even a guess: the task is likely one of the slow ones it describes.
 *
 * A poll of task-result is not billed and costs the API little; a member's wait is what the bot
 * is for, so where two schedules disagree the denser one wins.
 */
export function inFlightPollDelay(
  atSubmit: Estimate | undefined,
  live: Estimate,
  input: Omit<ScheduleInput, keyof Estimate>,
): number {
  const followed = inFlightEstimate(atSubmit, live);
  let delay = nextPollDelay({ ...followed, ...input });
  if (!atSubmit) return delay;
  if (followed !== atSubmit) delay = Math.min(delay, nextPollDelay({ ...atSubmit, ...input }));
  const t = input.sinceSubmitMs;
  if (followed !== live && live.expectedMs > atSubmit.expectedMs && t > lateAfter(atSubmit) && t <= lateAfter(live)) {
    delay = Math.min(delay, nextPollDelay({ ...live, ...input }));
  }
  // The wait until another schedule's first poll may be shorter than the minimum spacing, which
  // the caller (the BullMQ engine has no last-poll guard) must still keep after a poll.
  return Math.max(delay, input.minIntervalMs);
}
