/**
 * What the bot expects of a task's duration: kept on the job record at submission
 * (`Job.estimate`) and read by the poll schedule (src/jobs/schedule.ts), which turns it into polls.
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
   * The durations tasks like this one are expected to take (ms): a size's own observations
   * scaled by the current load, or the centre of a guess. Each is the centre of a log-normal
   * kernel `logWidth` wide, and polls are spaced by the mixture (`nextPollDelay`). Without it,
   * one kernel at `expectedMs` as wide as `spreadMs` says.
   */
  durations?: number[];
  /**
   * The kernels' width in log space (0.1: about +-10 %): the spread of the durations themselves,
   * widened for how little a few of them say and for how far the API's speed may have moved
   * since (estimator.ts). Without it, the durations' own spread.
   */
  logWidth?: number;
  /**
   * A few durations are not the whole story (three tasks of a size whose time varies 3-15 s
   * look alike by chance): this share of the weight goes to one wider kernel, `logWidth` wide,
   * at the durations' median, what sizes usually vary by.
   */
  prior?: { share: number; logWidth: number };
}
