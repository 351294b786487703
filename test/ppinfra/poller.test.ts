/**
 * pollTask with the real client against the fake server, on a clock the test owns: the fake's
 * task progression, the poller's schedule and the client's retry delays all read one injected
 * clock, and every sleep moves it forward at once. The schedule is then exact (a poll at 350 ms
 * is recorded at 350 ms, however loaded the machine) and costs no wall time. Only the deadline
 * that cuts a stalled request short is a real timer (AbortSignal.timeout inside pollTask), and
 * one test is about it. The tests run concurrently, each with its own fake, client and clock.
 */
import { describe, it, type TestContext } from 'vitest';
import { createRateLimiter } from '../../src/jobs/limiter.ts';
import { pollTask, type PollOptions } from '../../src/jobs/poller.ts';
import { nextPollDelay } from '../../src/jobs/schedule.ts';
import { createPpinfraClient, type PpinfraClient } from '../../src/ppinfra/client.ts';
import type { TaskResult } from '../../src/ppinfra/parse.ts';
import { startFakePpinfra, type FakePpinfra, type FakeTaskScript, type RecordedRequest } from '../fakes/ppinfra.ts';
import { caught } from './caught.ts';

const REQ = { prompt: 'a lighthouse at dusk', size: '1024*1024' };
/** Longer than any test runs: a request stalled this long is answered only after the test. */
const STALL_MS = 60_000;

type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/**
 * Virtual time. `sleep` parks the caller until `run` moves the clock to its wake-up, which `run`
 * does only when nothing else can happen: no request in flight (see `track`) and nothing left to
 * run. With one caller this is simply "a sleep moves the clock forward"; with several polls at
 * once, they wake in time order, as on a real clock. `advance` is a sleep that moves the clock
 * at once, for the client's retry delays (inside a tracked request, where parking would stall).
 */
function virtualTime(start = Date.UTC(2030, 0, 1)) {
  let t = start;
  let seq = 0;
  const inFlight = new Set<Promise<unknown>>();
  const timers: { at: number; seq: number; wake: () => void }[] = [];
  const sleep: Sleep = (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = {
        at: t + ms,
        seq: seq++,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        timers.splice(timers.indexOf(timer), 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      timers.push(timer);
    });
  const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
  return {
    now: () => t,
    sleep,
    advance: async (ms: number, signal?: AbortSignal) => {
      if (signal?.aborted) throw signal.reason;
      t += ms;
    },
    /** Marks a request as in flight until it settles: the clock stands still meanwhile. */
    track<T>(promise: Promise<T>): Promise<T> {
      const settled = promise.then(
        () => undefined,
        () => undefined,
      );
      inFlight.add(settled);
      void settled.then(() => inFlight.delete(settled));
      return promise;
    },
    /** Drives the clock until `work` settles. */
    async run<T>(work: Promise<T>): Promise<T> {
      let settled = false;
      const done = work.finally(() => (settled = true));
      const over = done.then(
        () => undefined,
        () => undefined,
      );
      while (!settled) {
        // Everything runnable runs before a macrotask turn; a response arrives as I/O.
        await nextTurn();
        if (settled) break;
        if (inFlight.size > 0) await Promise.race([over, ...inFlight]);
        else if (timers.length > 0) {
          timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
          const next = timers.shift()!;
          t = Math.max(t, next.at);
          next.wake();
        }
      }
      return done;
    },
  };
}

interface Setup {
  fake: FakePpinfra;
  client: PpinfraClient;
  time: ReturnType<typeof virtualTime>;
  /** Every client-side retry delay asked for (each moves the clock at once). */
  retrySleeps: number[];
  submit(script: FakeTaskScript): Promise<{ id: string; submittedAt: number }>;
  /**
   * pollTask on the virtual clock with test defaults: a 100 ms task expected, minInterval 100,
   * a deadline one minute away (it also arms a real timer, which must not fire during a test).
   */
  poll(id: string, submittedAt: number, o?: Partial<PollOptions>): ReturnType<typeof pollTask>;
  resultRequests(id?: string): RecordedRequest[];
}

/** A fake, a client and a clock for one test, closed after it (hook from the test's own context). */
async function setup({ onTestFinished }: TestContext): Promise<Setup> {
  const time = virtualTime();
  const retrySleeps: number[] = [];
  const fake = await startFakePpinfra({ now: time.now });
  const client = createPpinfraClient({
    baseUrl: fake.url,
    apiKey: fake.apiKey,
    retry: {
      now: time.now,
      sleep: (ms, signal) => {
        retrySleeps.push(ms);
        return time.advance(ms, signal);
      },
      random: () => 0.5,
    },
  });
  onTestFinished(async () => {
    await client.close();
    await fake.close();
  });
  const tracked: Pick<PpinfraClient, 'getResult'> = { getResult: (id, o) => time.track(client.getResult(id, o)) };
  return {
    fake,
    client,
    time,
    retrySleeps,
    async submit(script) {
      fake.setScript(() => script);
      const submittedAt = time.now();
      const id = await client.submit(REQ);
      return { id, submittedAt };
    },
    poll: (id, submittedAt, o = {}) =>
      time.run(
        pollTask(id, {
          client: tracked,
          submittedAt,
          deadline: submittedAt + 60_000,
          estimate: { expectedMs: 100, spreadMs: 0 },
          minIntervalMs: 100,
          maxIntervalMs: 1000,
          random: () => 0.5,
          now: time.now,
          sleep: time.sleep,
          ...o,
        }),
      ),
    resultRequests: (id) =>
      fake.requests.filter((r) => r.route === 'result' && (id === undefined || r.query.task_id === id)),
  };
}

describe.concurrent('pollTask', () => {
  it('delivers after QUEUED -> PROCESSING -> SUCCEED, skipping the polls that cannot succeed', async (ctx) => {
    const { expect } = ctx;
    const { fake, client, time, submit, poll, resultRequests } = await setup(ctx);
    const estimate = { expectedMs: 400, spreadMs: 50 };
    // What the schedule says about a task polled at once: wait until such a task may be done
    // (not before 60 % of the expected time, even hedging a faster API), not past its expected finish.
    const firstDelay = nextPollDelay({
      ...estimate,
      sinceSubmitMs: 0,
      polls: 0,
      minIntervalMs: 100,
      maxIntervalMs: 1000,
      random: () => 0.5,
    });
    expect(firstDelay).toBeGreaterThan(0.6 * estimate.expectedMs);
    expect(firstDelay).toBeLessThan(estimate.expectedMs);
    const { id, submittedAt } = await submit({ queuedMs: 150, processingMs: 250 });
    const updates: TaskResult[] = [];

    const result = await poll(id, submittedAt, { estimate, minIntervalMs: 100, onUpdate: (r) => updates.push(r) });

    const elapsed = time.now() - submittedAt;
    const task = fake.tasks.get(id)!;
    const polls = resultRequests(id);
    expect(result).toMatchObject({ status: 'succeed', taskId: id });
    expect(polls).toHaveLength(result.polls);
    // The first poll comes exactly when the schedule says, not before.
    expect(polls[0]!.at - submittedAt).toBe(firstDelay);
    expect(task.createdAt).toBe(submittedAt);
    // Fixed polling at minInterval would have sent elapsed / 100 requests.
    expect(result.polls).toBeLessThan(elapsed / 100);
    expect(result.polls).toBeLessThanOrEqual(3);
    expect(updates.every((u) => u.status === 'processing')).toBe(true);
    expect(updates).toHaveLength(result.polls - 1);
    // Polls are never closer together than minInterval.
    for (let i = 1; i < polls.length; i++) expect(polls[i]!.at - polls[i - 1]!.at).toBeGreaterThanOrEqual(100);
    // And the image was there at the last one: no poll was wasted after it was done.
    expect(polls.at(-1)!.at).toBeGreaterThanOrEqual(task.completedAt);
    expect(polls.at(-2)!.at).toBeLessThan(task.completedAt);

    const image = await client.download(result.images[0]!.url, { maxBytes: 1 << 20 });
    expect(Buffer.from(image.bytes).equals(Buffer.from(task.image!))).toBe(true);
  });

  it('rides out three 503s and a 429 with Retry-After', async (ctx) => {
    const { expect } = ctx;
    const { fake, retrySleeps, submit, poll, resultRequests } = await setup(ctx);
    const { id, submittedAt } = await submit({ processingMs: 200 });
    fake.inject('result', { status: 503 }, 3);
    fake.inject('result', { status: 429, retryAfterSec: 1 });

    const result = await poll(id, submittedAt);

    expect(result.status).toBe('succeed');
    expect(result.images).toHaveLength(1);
    expect(resultRequests(id)).toHaveLength(result.polls + 4);
    expect(retrySleeps).toEqual([250, 500, 1000, 1000]);
  });

  it.for<[string, FakeTaskScript, string]>([
    ['TASK_STATUS_FAILED', { outcome: 'fail', reason: 'content moderation' }, 'content moderation'],
    ['HTTP 500 TASK_FAILED', { outcome: 'fail-http-500', reason: 'GPU fell over' }, 'TASK_FAILED'],
  ])('throws task_failed with the reason for %s', async ([, script, reason], ctx) => {
    const { expect } = ctx;
    const { fake, submit, poll, resultRequests } = await setup(ctx);
    const { id, submittedAt } = await submit({ processingMs: 150, ...script });
    const error = await caught(poll(id, submittedAt));
    expect(error).toMatchObject({ kind: 'task_failed', reason, taskId: id });
    expect(resultRequests(id).at(-1)!.at).toBeGreaterThanOrEqual(fake.tasks.get(id)!.completedAt);
  });

  it('gives up with a typed timeout at the deadline and sends nothing afterwards', async (ctx) => {
    const { expect } = ctx;
    const { client, time, submit, poll, resultRequests } = await setup(ctx);
    const { id, submittedAt } = await submit({ processingMs: 10 * 60_000 });
    const deadline = submittedAt + 30_000;

    const error = await caught(poll(id, submittedAt, { deadline, maxIntervalMs: 5_000 }));

    const thrownAt = time.now();
    expect(error).toMatchObject({ kind: 'timeout', reason: 'JOB_DEADLINE', taskId: id });
    // It does not sleep past the deadline to find out: it gives up when the next poll would be late.
    expect(thrownAt).toBeLessThan(deadline);
    const sent = resultRequests(id);
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(sent.every((r) => r.at < deadline)).toBe(true);
    // Nothing more once it gave up: a request of our own goes round, and is the only new one.
    await client.getResult(id);
    expect(resultRequests(id)).toHaveLength(sent.length + 1);
  });

  it('gives up at the deadline even while the API stalls', async (ctx) => {
    const { expect } = ctx;
    const { fake, submit, poll, resultRequests } = await setup(ctx);
    const { id, submittedAt } = await submit({ processingMs: 10 * 60_000 });
    // Stalls longer than the test runs, and the client's own timeouts (30 s) are longer too:
    // only the deadline can end the poll. The deadline is the one real timer here (2 s).
    fake.inject('result', { delayHeadersMs: STALL_MS });

    const error = await caught(poll(id, submittedAt, { deadline: submittedAt + 2_000 }));

    expect(error).toMatchObject({ kind: 'timeout', reason: 'JOB_DEADLINE', taskId: id });
    // It gave up on the stalled request itself, which was never answered.
    expect(resultRequests(id).map((r) => r.status)).toEqual([0]);
  });

  it('is aborted while waiting between polls, and stops polling', async (ctx) => {
    const { expect } = ctx;
    const { client, time, submit, resultRequests } = await setup(ctx);
    const { id, submittedAt } = await submit({ processingMs: 10 * 60_000 });
    const controller = new AbortController();
    // The first wait passes at once; the second lasts until something aborts it.
    let waits = 0;
    let waiting!: () => void;
    const secondWait = new Promise<void>((resolve) => (waiting = resolve));
    const sleep: Sleep = (_ms, signal) => {
      if (waits++ === 0) return Promise.resolve();
      waiting();
      return new Promise<void>((_resolve, reject) =>
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true }),
      );
    };
    const polling = caught(
      pollTask(id, {
        client,
        now: time.now,
        submittedAt,
        deadline: submittedAt + 60_000,
        estimate: { expectedMs: 100, spreadMs: 0 },
        minIntervalMs: 100,
        maxIntervalMs: 1000,
        sleep,
        signal: controller.signal,
      }),
    );
    await secondWait;
    controller.abort();

    const error = await polling;
    expect(error).toMatchObject({ kind: 'aborted', taskId: id });
    expect(waits).toBe(2);
    expect(resultRequests(id)).toHaveLength(1);
  });

  it('is aborted during an in-flight poll', async (ctx) => {
    const { expect } = ctx;
    const { fake, submit, poll, resultRequests } = await setup(ctx);
    const { id, submittedAt } = await submit({ processingMs: 10 * 60_000 });
    fake.inject('result', { delayHeadersMs: STALL_MS });
    const controller = new AbortController();
    const polling = caught(poll(id, submittedAt, { signal: controller.signal }));
    await fake.waitFor('request', (r: RecordedRequest) => r.route === 'result');
    controller.abort();

    const error = await polling;
    expect(error).toMatchObject({ kind: 'aborted' });
    expect(resultRequests(id).map((r) => r.status)).toEqual([0]);
  });

  it('tolerates TASK_NOT_FOUND right after submit', async (ctx) => {
    const { expect } = ctx;
    const { fake, retrySleeps, submit, poll, resultRequests } = await setup(ctx);
    const { id, submittedAt } = await submit({ processingMs: 250 });
    fake.inject('result', { status: 404, reason: 'TASK_NOT_FOUND' });

    const result = await poll(id, submittedAt);

    expect(result.status).toBe('succeed');
    const polls = resultRequests(id);
    expect(polls[0]!.status).toBe(404);
    expect(polls).toHaveLength(result.polls);
    // The not-found poll was not retried inside the client.
    expect(retrySleeps).toEqual([]);
  });

  it('does not tolerate TASK_NOT_FOUND once the grace has passed', async (ctx) => {
    const { expect } = ctx;
    const { fake, time, submit, poll, resultRequests } = await setup(ctx);
    const { id } = await submit({ processingMs: 10 * 60_000 });
    fake.inject('result', { status: 404, reason: 'TASK_NOT_FOUND' });
    const submittedAt = time.now() - 11_000;

    const error = await caught(poll(id, submittedAt, { deadline: time.now() + 60_000, maxIntervalMs: 100 }));

    expect(error).toMatchObject({ kind: 'task_not_found', taskId: id });
    expect(resultRequests(id)).toHaveLength(1);
  });

  it('keeps several concurrent polls under a shared rate limit', async (ctx) => {
    const { expect } = ctx;
    const { fake, client, time, poll, resultRequests } = await setup(ctx);
    const perSecond = 10;
    const limiter = createRateLimiter({ perSecond, now: time.now, sleep: time.sleep });
    fake.setScript(() => ({ processingMs: 800 }));
    const submittedAt = time.now();
    const ids = await Promise.all([1, 2, 3, 4, 5, 6].map(() => client.submit(REQ)));

    // A wide estimate: polls start early and come every two minIntervals, so six tasks ask for
    // 30 requests a second and the limiter has to hold them back to 10.
    const estimate = { expectedMs: 800, spreadMs: 700 };
    const results = await time.run(Promise.all(ids.map((id) => poll(id, submittedAt, { limiter, estimate }))));

    expect(results.map((r) => r.status)).toEqual(ids.map(() => 'succeed'));
    const times = resultRequests().map((r) => r.at);
    expect(times.length).toBe(results.reduce((n, r) => n + r.polls, 0));
    // Never two requests closer than 1 / perSecond, and the limiter, not the schedule, set the
    // pace: some second held exactly perSecond requests.
    const sorted = [...times].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++)
      expect(sorted[i]! - sorted[i - 1]!).toBeGreaterThanOrEqual(1000 / perSecond);
    const busiest = Math.max(...sorted.map((t) => sorted.filter((u) => u >= t && u < t + 1000).length));
    expect(busiest).toBe(perSecond);
  });
});
