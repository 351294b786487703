import type { TaskResult } from '../ppinfra/parse.ts';

/**
 * A finished task as the poller saw it. `pendingAt`: when the last poll before it found the task
 * unfinished (absent when the first poll found it done).
 */
export type PolledResult = TaskResult & { polls: number; pendingAt?: number };

const MAX_CORRECTION_MS = 500;

/**
 * How long a task took, for the estimator. It finished somewhere between the poll that found it
 * pending and the one that found it done. Where polls were dense, the midpoint is unbiased,
 * while the time it was seen would add half the spacing to every duration the estimator learns
 * and so delay every later first poll by as much. A wide gap (a task far off its estimate) says
 * little about where in it the task finished, so the correction is at most `MAX_CORRECTION_MS`.
 */
export const observedDuration = (submittedAt: number, completedAt: number, pendingAt?: number) => {
  const gap = pendingAt !== undefined && pendingAt >= submittedAt ? completedAt - pendingAt : 0;
  return completedAt - submittedAt - Math.min(gap / 2, MAX_CORRECTION_MS);
};
