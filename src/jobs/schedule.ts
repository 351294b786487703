/**
 * When to poll next, as a pure function so tests and the benchmark can reason about it.
 *
 * Fixed 1-second polling spends most requests on tasks that cannot be done yet. Qwen-Image's
 * duration depends mostly on the size, so with an estimate of the expected duration we skip
 * the early polls, poll densely around the expected finish (where one second of spacing keeps
 * delivery as prompt as fixed polling), and back off exponentially once a task runs late.
 */
export interface Estimate {
  /** Expected time from submit to completion. */
  expectedMs: number;
  /** How far real durations stray from it (robust spread; larger when little is known). */
  spreadMs: number;
  /**
   * Nothing has been observed yet: `expectedMs` is what the model usually takes, not a
   * measurement, and there is no expected finish to poll densely around (see `GUESS_GROWTH`).
   */
  guess?: boolean;
}

export interface ScheduleInput extends Estimate {
  sinceSubmitMs: number;
  polls: number;
  minIntervalMs: number;
  maxIntervalMs: number;
  random: () => number;
}

/** How many spreads before the expected finish the first poll may come. */
const EARLY_SPREADS = 1;
/** Past expected + this many spreads, the task is late and polls back off. */
const LATE_SPREADS = 2;
/** An estimate this tight (spread / expected) earns the densest polling around the finish. */
const CONFIDENT_RATIO = 0.2;
/**
 * For a guess, the spacing as a fraction of the time since the first poll. Without history a
 * task's duration is only known to lie in a wide range (3-15 s for Qwen-Image, spread about
 * evenly on a log scale), so the chance that it finishes within the next d falls like d / t as
 * it runs. Spacing in proportion to the elapsed time gives every poll about the same chance of
 * finding the image done: every `minIntervalMs` while the small sizes may finish, then backing
 * off. Each image is seen done within about a quarter of its own time, and a 15 s task costs
 * fewer polls than fixed one-second polling would.
 */
const GUESS_GROWTH = 0.25;

/**
 * Milliseconds to wait before the next task-result request. Near the expected finish the
 * spacing is `minIntervalMs` when the estimate is confident, twice that otherwise; a late task
 * backs off exponentially up to `maxIntervalMs`. A guess (no history) polls from `expectedMs -
 * spreadMs` on, at a spacing that grows with the time elapsed since. Jitter (+-10 %) keeps many
 * jobs from polling in lockstep.
 */
export function nextPollDelay(input: ScheduleInput): number {
  const { sinceSubmitMs, expectedMs, spreadMs, minIntervalMs, maxIntervalMs, random } = input;
  const jitter = (ms: number) => ms * (0.9 + 0.2 * random());
  const earliest = Math.max(minIntervalMs, expectedMs - EARLY_SPREADS * spreadMs);
  if (sinceSubmitMs < earliest) return earliest - sinceSubmitMs;
  if (input.guess) return Math.max(minIntervalMs, Math.min(maxIntervalMs, jitter(GUESS_GROWTH * (sinceSubmitMs - earliest))));
  const normal = Math.min(maxIntervalMs, 2 * minIntervalMs);
  const around = spreadMs <= CONFIDENT_RATIO * expectedMs ? minIntervalMs : normal;
  const lateBy = sinceSubmitMs - (expectedMs + LATE_SPREADS * spreadMs);
  if (lateBy <= 0) return Math.max(minIntervalMs, jitter(around));
  const backoff = normal * 2 ** (lateBy / Math.max(expectedMs, minIntervalMs));
  return Math.max(minIntervalMs, Math.min(maxIntervalMs, jitter(backoff)));
}
