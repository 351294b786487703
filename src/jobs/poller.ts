import { PpinfraError } from '../ppinfra/errors.ts';
import type { PpinfraClient } from '../ppinfra/client.ts';
import type { TaskResult } from '../ppinfra/parse.ts';
import { sleep as defaultSleep } from '../ppinfra/retry.ts';
import type { RateLimiter } from './limiter.ts';
import { inFlightPollDelay, type Estimate } from './schedule.ts';

export interface PollOptions {
  client: Pick<PpinfraClient, 'getResult'>;
  /** When the task was submitted (ms, same clock as `now`). */
  submittedAt: number;
  /** Absolute time after which the poll gives up with a typed timeout. */
  deadline: number;
  /**
   * The task's expected duration, or how to read it before each poll: read live, a job in flight
   * follows what the tasks finishing around it teach the estimator (a busy hour, a quiet one).
   */
  estimate: Estimate | (() => Estimate);
  /**
   * The estimate the task was submitted with (`Job.estimate`), if any: `estimate` is then the
   * live one, and the polls follow `inFlightPollDelay`, which never leaves the task unpolled
   * across the region this one expected it to finish in.
   */
  atSubmit?: Estimate;
  minIntervalMs: number;
  maxIntervalMs: number;
  signal?: AbortSignal;
  limiter?: RateLimiter;
  /** Each non-terminal result, for progress display. */
  onUpdate?: (result: TaskResult) => void;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** A task the API cannot find right after submit may be replication lag, not a lost task. */
const NOT_FOUND_GRACE_MS = 10_000;

/** `e` says the task is unknown, but so soon after the submit that it may only be lagging. */
export const mayBeLagging = (e: unknown, sinceSubmitMs: number) =>
  e instanceof PpinfraError && e.kind === 'task_not_found' && sinceSubmitMs < NOT_FOUND_GRACE_MS;

/** What every scheduler reports when the API says the task failed, and when the deadline passes. */
export const taskFailed = (taskId: string, reason: string) =>
  new PpinfraError('task_failed', `The task failed: ${reason || 'no reason given'}`, {
    taskId,
    reason: reason || undefined,
  });
export const pastDeadline = (taskId: string) =>
  new PpinfraError('timeout', 'The image took longer than the job deadline', { taskId, reason: 'JOB_DEADLINE' });

/**
 * Polls one task until it succeeds (resolves with the result) or fails for good (throws a
 * PpinfraError: task_failed with the API's reason, timeout at the deadline, aborted on
 * shutdown). Terminal states are checked before every sleep, and the one sleep per turn is
 * abortable, so no timer outlives the call.
 */
export async function pollTask(
  taskId: string,
  o: PollOptions,
): Promise<TaskResult & { polls: number; pendingAt?: number }> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? defaultSleep;
  const random = o.random ?? Math.random;
  let polls = 0;
  let lastPollAt = -Infinity;
  let pendingAt: number | undefined;
  // The deadline also bounds a request in flight (a stalling API), not just the waits between polls.
  const deadlineSignal = AbortSignal.timeout(Math.max(0, o.deadline - now()));
  const signal = o.signal ? AbortSignal.any([o.signal, deadlineSignal]) : deadlineSignal;
  const timedOut = () => pastDeadline(taskId);
  /** What to report for `e`: the caller's cancel, then the deadline, win over what the abort broke. */
  const stoppedBy = (e: unknown) =>
    o.signal?.aborted
      ? new PpinfraError('aborted', 'Polling was cancelled', { taskId, cause: e })
      : deadlineSignal.aborted
        ? timedOut()
        : e;
  const guard = async (wait: () => Promise<void>) => {
    try {
      await wait();
    } catch (e) {
      throw stoppedBy(e);
    }
  };
  for (;;) {
    const t = now();
    const estimate = typeof o.estimate === 'function' ? o.estimate() : o.estimate;
    const scheduled = inFlightPollDelay(o.atSubmit, estimate, {
      sinceSubmitMs: t - o.submittedAt,
      polls,
      minIntervalMs: o.minIntervalMs,
      maxIntervalMs: o.maxIntervalMs,
      random,
    });
    const delay = Math.max(scheduled, lastPollAt + o.minIntervalMs - t, 0);
    // A job resumed after downtime may be past its deadline while its task finished long ago:
    // it gets one look at the task (bounded by the client's own timeouts) before timing out.
    const lastLook = polls === 0 && t + delay >= o.deadline;
    if (!lastLook && t + delay >= o.deadline) throw timedOut();
    if (!lastLook) await guard(() => sleep(delay, signal));
    await guard(() => o.limiter?.acquire(lastLook ? o.signal : signal) ?? Promise.resolve());
    lastPollAt = now();
    polls++;
    let result: TaskResult;
    try {
      result = await o.client.getResult(taskId, { signal: lastLook ? o.signal : signal });
    } catch (e) {
      if (mayBeLagging(e, now() - o.submittedAt)) continue;
      throw stoppedBy(e);
    }
    if (result.status === 'succeed') return { ...result, polls, pendingAt };
    if (result.status === 'failed') {
      throw taskFailed(taskId, result.reason);
    }
    if (lastLook) throw timedOut();
    pendingAt = lastPollAt;
    o.onUpdate?.(result);
  }
}
