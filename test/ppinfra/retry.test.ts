import { describe, expect, it } from 'vitest';
import { PpinfraError } from '../../src/ppinfra/errors.ts';
import { READ_POLICY, SUBMIT_POLICY, computeDelay, withRetry, type RetryPolicy } from '../../src/ppinfra/retry.ts';

const err = (
  kind: ConstructorParameters<typeof PpinfraError>[0],
  init: ConstructorParameters<typeof PpinfraError>[2] = {},
) => new PpinfraError(kind, kind, init);

describe('computeDelay', () => {
  const policy: RetryPolicy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000, retryable: () => true };
  it('draws full jitter below an exponential ceiling', () => {
    expect([0, 1, 2, 3, 4, 5].map((a) => computeDelay(a, policy, undefined, () => 0.999999))).toEqual([
      99, 199, 399, 799, 999, 999,
    ]);
    expect(computeDelay(3, policy, undefined, () => 0)).toBe(0);
    expect(computeDelay(2, policy, undefined, () => 0.5)).toBe(200);
  });
  it('honours Retry-After over backoff, within a cap', () => {
    expect(computeDelay(0, policy, 2500, () => 0.5)).toBe(2500);
    expect(computeDelay(0, policy, 60_000, () => 0.5)).toBe(4000);
  });
});

describe('retry rules', () => {
  it.each([
    [err('rate_limited', { status: 429 }), true],
    [err('server', { status: 503 }), true],
    [err('server', { status: 500, reason: 'GET_RESULT_FAILED' }), true],
    [err('network'), true],
    [err('timeout'), true],
    [err('task_failed', { status: 500, reason: 'TASK_FAILED' }), false],
    [err('auth', { status: 403 }), false],
    [err('quota', { status: 400 }), false],
    [err('invalid_request', { status: 400 }), false],
    [err('task_not_found', { status: 404 }), false],
    [err('server', { status: 404, reason: 'API_NOT_FOUND' }), false],
  ])('reads retry %s: %s', (error, expected) => {
    expect(READ_POLICY.retryable(error)).toBe(expected);
  });

  it.each([
    [err('rate_limited', { status: 429 }), true],
    [err('server', { status: 500, reason: 'CREATE_TASK_FAILED' }), true],
    [err('network', { notSent: true }), true],
    [err('timeout', { notSent: true }), true],
    // Ambiguous: the request went out, a task may exist and be billed.
    [err('timeout'), false],
    [err('network'), false],
    [err('server', { status: 503 }), false],
    [err('server', { status: 500 }), false],
    [err('auth', { status: 403 }), false],
  ])('submit retries %s: %s', (error, expected) => {
    expect(SUBMIT_POLICY.retryable(error)).toBe(expected);
  });
});

describe('withRetry', () => {
  function harness(start = 0) {
    let clock = start;
    const sleeps: number[] = [];
    return {
      sleeps,
      deps: {
        now: () => clock,
        random: () => 0.5,
        sleep: async (ms: number) => {
          sleeps.push(ms);
          clock += ms;
        },
      },
    };
  }
  const policy: RetryPolicy = {
    maxAttempts: 4,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    retryable: (e) => e.kind !== 'auth',
  };

  it('retries until success and reports each retry', async () => {
    const h = harness();
    const failures = [err('server', { status: 503 }), err('rate_limited', { retryAfterMs: 700 })];
    const retries: number[] = [];
    const result = await withRetry(
      async () => {
        const next = failures.shift();
        if (next) throw next;
        return 'ok';
      },
      { policy, onRetry: (i) => retries.push(i.delayMs) },
      h.deps,
    );
    expect(result).toBe('ok');
    expect(h.sleeps).toEqual([50, 700]);
    expect(retries).toEqual([50, 700]);
  });

  it('stops at maxAttempts and rethrows the last error', async () => {
    const h = harness();
    let calls = 0;
    const failing = withRetry(
      async () => {
        calls++;
        throw err('server', { status: 500 });
      },
      { policy },
      h.deps,
    );
    await expect(failing).rejects.toMatchObject({ kind: 'server' });
    expect(calls).toBe(4);
  });

  it('does not retry what the policy forbids', async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw err('auth');
        },
        { policy },
        harness().deps,
      ),
    ).rejects.toMatchObject({ kind: 'auth' });
    expect(calls).toBe(1);
  });

  it('gives up when the next try would pass the deadline', async () => {
    const h = harness(1000);
    let calls = 0;
    const failing = withRetry(
      async () => {
        calls++;
        throw err('rate_limited', { retryAfterMs: 5000 });
      },
      { policy, deadline: 3000 },
      h.deps,
    );
    await expect(failing).rejects.toMatchObject({ kind: 'rate_limited', retryAfterMs: 5000 });
    expect(calls).toBe(1);
    expect(h.sleeps).toEqual([]);
  });

  it('stops at once when aborted', async () => {
    const controller = new AbortController();
    let calls = 0;
    const failing = withRetry(
      async () => {
        calls++;
        controller.abort();
        throw err('network');
      },
      { policy, signal: controller.signal },
      harness().deps,
    );
    await expect(failing).rejects.toMatchObject({ kind: 'network' });
    expect(calls).toBe(1);
  });
});
