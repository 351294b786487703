import { afterEach, describe, expect, it } from 'vitest';
import { createDurationEstimator } from '../../src/jobs/estimator.ts';
import { createRateLimiter } from '../../src/jobs/limiter.ts';
import { createLimits } from '../../src/jobs/limits.ts';
import { createSubmitPacer } from '../../src/jobs/pacer.ts';
import { createJobService } from '../../src/jobs/in-process/service.ts';
import { createJobStore } from '../../src/jobs/store.ts';
import type { Delivery, Job, ProgressView } from '../../src/domain/job.ts';
import { silentLogger } from '../../src/logger.ts';
import { createPpinfraClient, type PpinfraClient } from '../../src/ppinfra/client.ts';
import { startFakePpinfra, type FakePpinfra } from '../fakes/ppinfra.ts';
import { busiestWindow, soonerThanBudget } from './windows.ts';
import { createMemoryKeyValue } from '../../src/storage/key-value.ts';
import type { JobService } from '../../src/jobs/service.ts';

describe('the submit pacer (images per minute, injected clock)', () => {
  it('lets a burst of the whole budget through, and never more than IPM in any sliding minute', () => {
    let clock = 0;
    const pacer = createSubmitPacer({ perMinute: 5, now: () => clock });
    const taken: number[] = [];
    // 12 jobs trying every 100 ms for three minutes.
    for (; clock < 180_000 && taken.length < 12; clock += 100)
      while (taken.length < 12 && pacer.tryTake()) taken.push(clock);
    expect(taken.slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(taken.slice(5, 10)).toEqual([60_000, 60_000, 60_000, 60_000, 60_000]);
    expect(taken).toHaveLength(12);
    expect(busiestWindow(taken, 60_000)).toBeLessThanOrEqual(5);
  });

  it('tells a queued job when it can start', () => {
    let clock = 0;
    const pacer = createSubmitPacer({ perMinute: 20, now: () => clock });
    for (let i = 0; i < 20; i++) pacer.tryTake();
    expect(pacer.startsAt(1)).toBe(60_000);
    expect(pacer.startsAt(20)).toBe(60_000);
    expect(pacer.startsAt(21)).toBe(120_000);
    clock = 59_999;
    expect(pacer.tryTake()).toBe(false);
    clock = 60_000;
    expect(pacer.tryTake()).toBe(true);
  });

  it('halves the pace on a 429 and wins it back as submissions are accepted', () => {
    let clock = 0;
    const pacer = createSubmitPacer({ perMinute: 20, now: () => clock });
    pacer.throttled();
    expect(pacer.tryTake()).toBe(false);
    expect(pacer.perMinute()).toBe(10);
    expect(pacer.startsAt(1)).toBe(6_000);
    pacer.throttled();
    pacer.throttled();
    expect(pacer.perMinute()).toBe(2);
    for (let i = 0; i < 20; i++) pacer.accepted();
    expect(pacer.perMinute()).toBe(20);
    clock = 60_000;
    expect(pacer.tryTake()).toBe(true);
  });
});

describe('jobs paced by the images-per-minute budget, end to end on the fake API', () => {
  let api: FakePpinfra;
  let client: PpinfraClient;
  let service: JobService;
  const views = new Map<string, ProgressView[]>();
  const delivered: string[] = [];
  const failed: string[] = [];
  let settle: () => void = () => undefined;
  /** When the pacer gave each submission its slot, read from the pacer's own clock. */
  const taken: number[] = [];

  const delivery: Delivery = {
    async progress(job: Job, view: ProgressView) {
      views.set(job.id, [...(views.get(job.id) ?? []), view]);
      return undefined;
    },
    async deliver(job) {
      delivered.push(job.id);
      settle();
      return 'delivered';
    },
    async notice() {},
    async fail(job) {
      failed.push(job.id);
      settle();
    },
  };

  /** A budget of `perMinute` images per `windowMs` (a minute shrunk so the test runs in seconds). */
  async function setup(perMinute: number, windowMs: number) {
    api = await startFakePpinfra({ script: () => ({ processingMs: 50 }) });
    // The pacer reads its clock as it decides, so the last reading is when a slot it grants was taken.
    let clockRead = 0;
    const pacer = createSubmitPacer({ perMinute, windowMs, now: () => (clockRead = Date.now()) });
    client = createPpinfraClient({ baseUrl: api.url, apiKey: api.apiKey });
    service = createJobService({
      client,
      store: createJobStore(createMemoryKeyValue()),
      delivery,
      moderation: { verdict: async () => 'deliver', hold: async () => 'held' as const },
      estimator: createDurationEstimator(),
      limits: createLimits({
        userMaxConcurrent: 50,
        userHourlyQuota: 50,
        guildDailyBudget: 50,
        maxJobsInFlight: 100,
        queueMax: 50,
        breakerThreshold: 3,
        breakerCooldownMs: 60_000,
      }),
      pollLimiter: createRateLimiter({ perSecond: 100 }),
      pacer: {
        ...pacer,
        tryTake() {
          const ok = pacer.tryTake();
          if (ok) taken.push(clockRead);
          return ok;
        },
      },
      settings: {
        queueTimeoutMs: 600_000,
        timeoutMs: 60_000,
        pollMinIntervalMs: 200,
        pollMaxIntervalMs: 1_000,
        progressEditIntervalMs: 50,
        imageMaxBytes: 1_000_000,
        maxJobsInFlight: 100,
        reconcileIntervalMs: 60_000,
      },
      logger: silentLogger,
    });
  }

  async function ask(count: number): Promise<Job[]> {
    const jobs: Job[] = [];
    for (let i = 0; i < count; i++) {
      const reservation = await service.reserve({
        prompt: `p${i}`,
        size: '1024*1024',
        userId: `u${i}`,
        userName: `u${i}`,
        guildId: 'g',
        channelId: 'c',
        channelNsfw: false,
        locale: 'en-US',
      });
      if (!reservation.ok) throw new Error(`refused: ${reservation.refusal.kind}`);
      jobs.push(await service.start(reservation.ticket, { applicationId: 'a', token: 't', createdAt: Date.now() }));
    }
    return jobs;
  }

  const allFinished = (count: number) =>
    new Promise<void>((resolve) => {
      settle = () => delivered.length + failed.length >= count && resolve();
      settle();
    });

  afterEach(async () => {
    await service.shutdown();
    await client.close();
    await api.close();
    views.clear();
    delivered.length = 0;
    failed.length = 0;
    taken.length = 0;
  });

  it('submits 12 requests with a budget of 5, never more than 5 in a window, showing places and starts, and delivers all', async () => {
    await setup(5, 3_000);
    const since = Date.now();
    const jobs = await ask(12);
    await allFinished(12);
    expect(delivered).toHaveLength(12);
    const submits = api.requests.filter((r) => r.route === 'submit').map((r) => r.at);
    expect(submits).toHaveLength(12);
    // The pacer's decisions, on its own clock, keep the window exactly; each submission reached
    // the API only after a slot was taken for it; and, seen from the API, none came too soon.
    expect(taken).toHaveLength(12);
    expect(busiestWindow(taken, 3_000)).toBeLessThanOrEqual(5);
    const arrived = [...submits].sort((a, b) => a - b);
    expect([...taken].sort((a, b) => a - b).filter((at, k) => arrived[k]! < at)).toEqual([]);
    expect(soonerThanBudget(submits, since, 5, 3_000)).toEqual([]);
    const last = views.get(jobs[11]!.id) ?? [];
    const queued = last.filter((v): v is Extract<ProgressView, { phase: 'queued' }> => v.phase === 'queued');
    expect(queued[0]?.position).toBe(7);
    expect(queued.some((v) => v.startsAt !== undefined && v.startsAt > Date.now() - 10_000)).toBe(true);
  });

  it('slows down on a 429 at submit and still delivers the job, submitting it once', async () => {
    await setup(60, 600);
    // More 429s than the client retries by itself: the job goes back to the queue, not to a failure.
    api.inject('submit', { status: 429, retryAfterSec: 0 }, 4);
    await ask(1);
    await allFinished(1);
    expect(failed).toEqual([]);
    expect(delivered).toHaveLength(1);
    expect(api.tasks.size).toBe(1);
    expect(api.requests.filter((r) => r.route === 'submit' && r.status === 429)).toHaveLength(4);
  });
});
