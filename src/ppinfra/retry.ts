import { PpinfraError, fromTransportError } from './errors.ts';

/** Per-operation retry rules are data; `computeDelay` is pure so tests assert exact delays. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Whether this error may be retried by this operation. */
  retryable: (error: PpinfraError) => boolean;
}

const transient = (e: PpinfraError) =>
  e.kind === 'rate_limited' ||
  e.kind === 'network' ||
  e.kind === 'timeout' ||
  (e.kind === 'server' && (e.status === undefined || e.status >= 500));

/** Reads are idempotent: retry anything transient. A terminal TASK_FAILED is kind task_failed, never retried. */
export const READ_POLICY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 8_000, retryable: transient };

/**
 * A submit bills. Retry it only when no task can exist: a 429, the API's own CREATE_TASK_FAILED,
 * or a connection that failed before the request was sent. A timeout or reset after sending
 * is ambiguous and surfaces to the caller instead (docs/ppinfra-api.md section 10).
 */
export const SUBMIT_POLICY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 1_000,
  maxDelayMs: 10_000,
  retryable: (e) => e.kind === 'rate_limited' || e.reason === 'CREATE_TASK_FAILED' || e.notSent,
};

/**
 * Exponential backoff with full jitter (a uniform draw in [0, base * 2^attempt], capped), or the
 * server's Retry-After when it gave one, also capped. `attempt` counts from 0 for the first retry.
 */
export function computeDelay(
  attempt: number,
  policy: RetryPolicy,
  retryAfterMs: number | undefined,
  random: () => number,
): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxDelayMs * 4);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

export interface RetryDeps {
  now: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  random: () => number;
}

export interface RetryOptions {
  policy: RetryPolicy;
  signal?: AbortSignal;
  /** Absolute time (ms, deps.now clock) after which no new attempt starts. */
  deadline?: number;
  onRetry?: (info: { attempt: number; delayMs: number; error: PpinfraError }) => void;
}

/**
 * Runs `op` until it succeeds, fails for good, or the deadline would pass before the next try.
 * The last error is rethrown as it is, so the caller sees the real cause (e.g. rate_limited with
 * its Retry-After) rather than a generic "gave up".
 */
export async function withRetry<T>(
  op: (attempt: number) => Promise<T>,
  options: RetryOptions,
  deps: RetryDeps,
): Promise<T> {
  const { policy, signal, deadline } = options;
  for (let attempt = 0; ; attempt++) {
    try {
      return await op(attempt);
    } catch (e) {
      if (!(e instanceof PpinfraError)) throw e;
      const last = attempt + 1 >= policy.maxAttempts;
      if (last || signal?.aborted || !policy.retryable(e)) throw e;
      const delayMs = computeDelay(attempt, policy, e.retryAfterMs, deps.random);
      if (deadline !== undefined && deps.now() + delayMs >= deadline) throw e;
      options.onRetry?.({ attempt: attempt + 1, delayMs, error: e });
      try {
        await deps.sleep(delayMs, signal);
      } catch (err) {
        // An abort while waiting is the caller's cancel or deadline: report it in the family.
        throw fromTransportError(err, signal, 'Waiting to retry');
      }
    }
  }
}

/** A sleep that an AbortSignal interrupts; the rejection carries the signal's reason. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
