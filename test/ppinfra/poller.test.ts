/**
 * pollTask with the real client against the fake server: real time, short scripts. Client-side
 * retry delays go through a recording double so injected faults cost no wall time; the poller's
 * own schedule runs on the real clock, because that is what is under test. The tests mostly
 * wait, so they run concurrently, each with its own fake and client.
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

interface Setup {
  fake: FakePpinfra;
  client: PpinfraClient;
  /** Every client-side retry delay asked for (the double resolves at once). */
  retrySleeps: number[];
  submit(script: FakeTaskScript): Promise<{ id: string; submittedAt: number }>;
  /** pollTask with test defaults: a 100 ms task expected, minInterval 100, deadline 5 s. */
  poll(id: string, submittedAt: number, o?: Partial<PollOptions>): ReturnType<typeof pollTask>;
  resultRequests(id?: string): RecordedRequest[];
}

/** A fake and a client for one test, closed after it (hook from the test's own context). */
async function setup({ onTestFinished }: TestContext): Promise<Setup> {
  const retrySleeps: number[] = [];
  const fake = await startFakePpinfra();
  const client = createPpinfraClient({
    baseUrl: fake.url,
    apiKey: fake.apiKey,
    headersTimeoutMs: 2000,
    retry: {
      sleep: async (ms, signal) => {
        retrySleeps.push(ms);
        if (signal?.aborted) throw signal.reason;
      },
      random: () => 0.5,
    },
  });
  onTestFinished(async () => {
    await client.close();
    await fake.close();
  });
  return {
    fake,
    client,
    retrySleeps,
    async submit(script) {
      fake.setScript(() => script);
      const submittedAt = Date.now();
      const id = await client.submit(REQ);
      return { id, submittedAt };
    },
    poll: (id, submittedAt, o = {}) =>
      pollTask(id, {
        client,
        submittedAt,
        deadline: submittedAt + 5000,
        estimate: { expectedMs: 100, spreadMs: 0 },
        minIntervalMs: 100,
        maxIntervalMs: 1000,
        random: () => 0.5,
        ...o,
      }),
    resultRequests: (id) => fake.requests.filter((r) => r.route === 'result' && (id === undefined || r.query.task_id === id)),
  };
}


describe.concurrent('pollTask', () => {
  it('delivers after QUEUED -> PROCESSING -> SUCCEED, skipping the polls that cannot succeed', async (ctx) => {
    const { expect } = ctx;
    const { fake, client, submit, poll, resultRequests } = await setup(ctx);
    const estimate = { expectedMs: 400, spreadMs: 50 };
    // What the schedule says about a task polled at once: wait until about expected - spreads.
    const firstDelay = nextPollDelay({ ...estimate, sinceSubmitMs: 0, polls: 0, minIntervalMs: 100, maxIntervalMs: 1000, random: () => 0.5 });
    expect(firstDelay).toBeGreaterThanOrEqual(300);
    expect(firstDelay).toBeLessThan(400);
    const { id, submittedAt } = await submit({ queuedMs: 150, processingMs: 250 });
    const updates: TaskResult[] = [];

    const result = await poll(id, submittedAt, { estimate, minIntervalMs: 100, onUpdate: (r) => updates.push(r) });

    const elapsed = Date.now() - submittedAt;
    const task = fake.tasks.get(id)!;
    const polls = resultRequests(id);
    expect(result).toMatchObject({ status: 'succeed', taskId: id });
    expect(polls).toHaveLength(result.polls);
    // No poll before the schedule's first delay (timers never fire early; allow 1 ms of rounding).
    expect(polls[0]!.at - submittedAt).toBeGreaterThanOrEqual(firstDelay - 1);
    expect(polls[0]!.at - task.createdAt).toBeGreaterThanOrEqual(firstDelay - 25);
    // Fixed polling at minInterval would have sent elapsed / 100 requests.
    expect(result.polls).toBeLessThan(elapsed / 100);
    expect(result.polls).toBeLessThanOrEqual(3);
    expect(updates.every((u) => u.status === 'processing')).toBe(true);
    expect(updates).toHaveLength(result.polls - 1);
    // Polls are never closer together than minInterval.
    for (let i = 1; i < polls.length; i++) expect(polls[i]!.at - polls[i - 1]!.at).toBeGreaterThanOrEqual(99);

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
    const { fake, submit, poll, resultRequests } = await setup(ctx);
    const { id, submittedAt } = await submit({ processingMs: 60_000 });
    const deadline = submittedAt + 400;

    const error = await caught(poll(id, submittedAt, { deadline }));

    const thrownAt = Date.now();
    expect(error).toMatchObject({ kind: 'timeout', reason: 'JOB_DEADLINE', taskId: id });
    // It does not sleep past the deadline to find out (slack for a busy machine).
    expect(thrownAt).toBeLessThanOrEqual(deadline + 100);
    const sent = resultRequests(id).length;
    expect(sent).toBeGreaterThanOrEqual(1);
    expect(resultRequests(id).every((r) => r.at < deadline)).toBe(true);
    await expect(fake.waitFor('request', (r: RecordedRequest) => r.at > thrownAt, 300)).rejects.toThrow(/no matching/);
    expect(resultRequests(id)).toHaveLength(sent);
  });

  // GAP (src/jobs/poller.ts): the deadline is checked only between polls, and getResult gets no
  // deadline-bound signal, so a stalling API holds pollTask past its deadline for as long as the
  // client's own retries last (up to readDeadlineMs, 60 s by default, plus one headers timeout).
  it('gives up at the deadline even while the API stalls', async (ctx) => {
    const { expect } = ctx;
    const { fake, submit } = await setup(ctx);
    const { id, submittedAt } = await submit({ processingMs: 60_000 });
    fake.inject('result', { delayHeadersMs: 5000 });
    const client = createPpinfraClient({ baseUrl: fake.url, apiKey: fake.apiKey, headersTimeoutMs: 300, retry: { sleep: async () => {} } });
    ctx.onTestFinished(() => client.close());
    const deadline = submittedAt + 300;

    const error = await caught(pollTask(id, { client, submittedAt, deadline, estimate: { expectedMs: 100, spreadMs: 0 }, minIntervalMs: 100, maxIntervalMs: 1000 }));

    expect(error.kind).toBe('timeout');
    expect(Date.now()).toBeLessThanOrEqual(deadline + 150);
  });

  it('is aborted while waiting between polls, and stops polling', async (ctx) => {
    const { expect } = ctx;
    const { submit, poll, resultRequests } = await setup(ctx);
    const { id, submittedAt } = await submit({ processingMs: 60_000 });
    const controller = new AbortController();
    let abortedAt = 0;
    // onUpdate runs just before the poller goes to sleep for the next turn.
    const onUpdate = () => {
      abortedAt = Date.now();
      controller.abort();
    };

    const error = await caught(poll(id, submittedAt, { signal: controller.signal, onUpdate }));

    expect(error).toMatchObject({ kind: 'aborted', taskId: id });
    expect(Date.now() - abortedAt).toBeLessThan(200);
    expect(resultRequests(id)).toHaveLength(1);
  });

  it('is aborted during an in-flight poll', async (ctx) => {
    const { expect } = ctx;
    const { fake, submit, poll, resultRequests } = await setup(ctx);
    const { id, submittedAt } = await submit({ processingMs: 60_000 });
    fake.inject('result', { delayHeadersMs: 10_000 });
    const controller = new AbortController();
    const polling = caught(poll(id, submittedAt, { signal: controller.signal }));
    await fake.waitFor('request', (r: RecordedRequest) => r.route === 'result');
    controller.abort();

    const error = await polling;
    expect(error).toMatchObject({ kind: 'aborted' });
    expect(resultRequests(id)).toHaveLength(1);
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
    const { fake, submit, poll, resultRequests } = await setup(ctx);
    const { id } = await submit({ processingMs: 60_000 });
    fake.inject('result', { status: 404, reason: 'TASK_NOT_FOUND' });
    const submittedAt = Date.now() - 11_000;

    const error = await caught(poll(id, submittedAt, { deadline: Date.now() + 5000, maxIntervalMs: 100 }));

    expect(error).toMatchObject({ kind: 'task_not_found', taskId: id });
    expect(resultRequests(id)).toHaveLength(1);
  });

  it('keeps several concurrent polls under a shared rate limit', async (ctx) => {
    const { expect } = ctx;
    const { fake, client, poll, resultRequests } = await setup(ctx);
    const perSecond = 10;
    const limiter = createRateLimiter({ perSecond });
    fake.setScript(() => ({ processingMs: 800 }));
    const submittedAt = Date.now();
    const ids = await Promise.all([1, 2, 3, 4, 5, 6].map(() => client.submit(REQ)));

    // A wide estimate: polls start early and come every one or two minIntervals, so six tasks
    // ask for far more than perSecond requests a second and the limiter has to hold them back.
    const estimate = { expectedMs: 800, spreadMs: 700 };
    const results = await Promise.all(ids.map((id) => poll(id, submittedAt, { limiter, estimate })));

    expect(results.map((r) => r.status)).toEqual(ids.map(() => 'succeed'));
    const times = resultRequests().map((r) => r.at);
    expect(times.length).toBe(results.reduce((n, r) => n + r.polls, 0));
    const busiest = Math.max(...times.map((t) => times.filter((u) => u >= t && u < t + 1000).length));
    expect(busiest).toBeLessThanOrEqual(perSecond + 1);
    // The limiter, not the schedule, was the bottleneck (a margin for a loaded CI machine).
    expect(busiest).toBeGreaterThanOrEqual(perSecond / 2);
  });
});
