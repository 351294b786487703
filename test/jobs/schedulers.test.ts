// One contract, both schedulers: the in-process queue (SQLite, memory) and BullMQ on a real
// redis-server (STORAGE_URL=redis://...), driven through the JobService interface against the
// fake PPInfra API.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBullmqJobService } from '../../src/jobs/bullmq/service.ts';
import { createDurationEstimator } from '../../src/jobs/estimator.ts';
import { createRateLimiter } from '../../src/jobs/limiter.ts';
import { createLimits, type LimitSettings } from '../../src/jobs/limits.ts';
import { createSubmitPacer } from '../../src/jobs/pacer.ts';
import { createRedisLimits, createRedisPacer } from '../../src/jobs/bullmq/limits.ts';
import { createJobService } from '../../src/jobs/in-process/service.ts';
import { createJobStore } from '../../src/jobs/store.ts';
import { createRedisJobStore } from '../../src/jobs/bullmq/store.ts';
import type { Delivery, Job, JobRequest, ProgressView } from '../../src/domain/job.ts';
import { silentLogger } from '../../src/logger.ts';
import { createPpinfraClient, type PpinfraClient } from '../../src/ppinfra/client.ts';
import { startFakePpinfra, type FakePpinfra, type FakeTaskScript } from '../fakes/ppinfra.ts';
import { skipWithoutRedis, startRedis } from '../fakes/redis.ts';
import { soonerThanBudget } from './windows.ts';
import { createMemoryKeyValue } from '../../src/storage/key-value.ts';
import type { JobService } from '../../src/jobs/service.ts';

interface Options {
  limits?: Partial<LimitSettings>;
  /** Job settings over the defaults below. */
  jobs?: Partial<typeof jobSettings>;
  /** Durations already learned (ms) for 1024*1024, so polls and "late" come at a test's pace. */
  learned?: number;
  perMinute?: number;
  windowMs?: number;
  /** The job id generator (default: 12 random hex digits). */
  newId?: () => string;
}

/** What the member would see, recorded per job. */
class Recorder implements Delivery {
  readonly views = new Map<string, ProgressView[]>();
  readonly delivered: string[] = [];
  readonly failed = new Map<string, string>();
  /** Deliveries still to refuse, as Discord answering 5xx after every retry would. */
  refuseDeliveries = 0;
  private waiters: (() => void)[] = [];
  async progress(job: Job, view: ProgressView) {
    this.views.set(job.id, [...(this.views.get(job.id) ?? []), view]);
    return undefined;
  }
  async deliver(job: Job) {
    if (this.refuseDeliveries-- > 0) throw new Error('Discord answered 503');
    this.delivered.push(job.id);
    this.wake();
    return 'delivered' as const;
  }
  async notice() {}
  async fail(job: Job, error: { kind: string }) {
    this.failed.set(job.id, error.kind);
    this.wake();
  }
  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves once `count` jobs have ended, delivered or failed. */
  async ended(count: number) {
    while (this.delivered.length + this.failed.size < count)
      await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

const SETTINGS: LimitSettings = {
  userMaxConcurrent: 50,
  userHourlyQuota: 50,
  guildDailyBudget: 500,
  maxJobsInFlight: 500,
  queueMax: 100,
  breakerThreshold: 50,
  breakerCooldownMs: 60_000,
};
const jobSettings = {
  queueTimeoutMs: 600_000,
  timeoutMs: 60_000,
  pollMinIntervalMs: 200,
  pollMaxIntervalMs: 1_000,
  progressEditIntervalMs: 50,
  imageMaxBytes: 1_000_000,
  maxJobsInFlight: 500,
  reconcileIntervalMs: 60_000,
};

async function learned(options: Options) {
  const estimator = createDurationEstimator();
  if (options.learned) for (let i = 0; i < 8; i++) await estimator.record('1024*1024', options.learned);
  return estimator;
}

interface Harness {
  service: JobService;
  delivery: Recorder;
  close(): Promise<void>;
}

type Factory = (api: FakePpinfra, client: PpinfraClient, options: Options) => Promise<Harness>;

const inProcess: Factory = async (_api, client, options) => {
  const delivery = new Recorder();
  const service = createJobService({
    client,
    store: createJobStore(createMemoryKeyValue()),
    delivery,
    moderation: { verdict: async () => 'deliver', hold: async () => 'held' as const },
    estimator: await learned(options),
    limits: createLimits({ ...SETTINGS, ...options.limits }),
    pollLimiter: createRateLimiter({ perSecond: 100 }),
    pacer: createSubmitPacer({ perMinute: options.perMinute ?? 1_000, windowMs: options.windowMs }),
    settings: { ...jobSettings, ...options.jobs },
    logger: silentLogger,
    newId: options.newId,
  });
  await service.resume();
  return { service, delivery, close: () => service.shutdown() };
};

let redisUrl = '';
let runs = 0;
const bullmq: Factory = async (_api, client, options) => {
  const delivery = new Recorder();
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const prefix = `t${++runs}`;
  const service = createBullmqJobService({
    redis,
    client,
    store: createRedisJobStore(redis, { prefix: `${prefix}:` }),
    delivery,
    moderation: { verdict: async () => 'deliver', hold: async () => 'held' as const },
    estimator: await learned(options),
    limits: createRedisLimits(redis, { ...SETTINGS, ...options.limits }, { prefix: `${prefix}:limits:` }),
    pacer: createRedisPacer(redis, {
      perMinute: options.perMinute ?? 1_000,
      windowMs: options.windowMs,
      prefix: `${prefix}:pace:`,
    }),
    settings: { ...jobSettings, ...options.jobs, pollMaxPerSecond: 100, lockMs: 5_000 },
    logger: silentLogger,
    prefix,
    newId: options.newId,
  });
  await service.resume();
  return {
    service,
    delivery,
    async close() {
      await service.shutdown();
      await redis.quit();
    },
  };
};

const request = (i: number, over: Partial<JobRequest> = {}): JobRequest => ({
  prompt: `p${i}`,
  size: '1024*1024',
  userId: `u${i}`,
  userName: `u${i}`,
  guildId: 'g',
  channelId: 'c',
  channelNsfw: false,
  locale: 'en-US',
  ...over,
});
const reply = () => ({ applicationId: 'a', token: 't', createdAt: Date.now() });

function schedulerContract(name: string, factory: () => Factory) {
  describe(`scheduler contract: ${name}`, () => {
    let api: FakePpinfra;
    let client: PpinfraClient;
    let h: Harness | undefined;
    const start = async (script: () => FakeTaskScript, options: Options = {}) => {
      api = await startFakePpinfra({ script });
      client = createPpinfraClient({ baseUrl: api.url, apiKey: api.apiKey });
      h = await factory()(api, client, options);
      return h;
    };
    const ask = async (service: JobService, req: JobRequest) => {
      const reservation = await service.reserve(req);
      if (!reservation.ok) return reservation.refusal;
      return service.start(reservation.ticket, reply());
    };
    afterEach(async () => {
      await h?.close();
      h = undefined;
      await client?.close();
      await api?.close();
    });

    it('delivers a job with exactly one submission', async () => {
      const { service, delivery } = await start(() => ({ processingMs: 100 }));
      const job = (await ask(service, request(1))) as Job;
      await delivery.ended(1);
      expect(delivery.delivered).toEqual([job.id]);
      expect(api.requests.filter((r) => r.route === 'submit')).toHaveLength(1);
      // The record is saved just after Discord took the image.
      await expect.poll(async () => (await service.get(job.id))?.state).toBe('delivered');
    });

    // The default ids are 12 random hex digits: about 1 in 325 has digits only, which BullMQ
    // refuses as a custom step id ("Custom Id cannot be integers"), so /imagine failed after its defer.
    it('starts and delivers a job whose id has only digits', async () => {
      const ids = ['123456789012', '000000000042'];
      const { service, delivery } = await start(() => ({ processingMs: 50 }), { newId: () => ids.shift()! });
      const first = (await ask(service, request(1))) as Job;
      const second = (await ask(service, request(2))) as Job;
      expect([first.id, second.id]).toEqual(['123456789012', '000000000042']);
      await delivery.ended(2);
      expect(delivery.delivered.sort()).toEqual(['000000000042', '123456789012']);
      expect(api.requests.filter((r) => r.route === 'submit')).toHaveLength(2);
    });

    it('refuses past the hourly quota, refunds what was never billed, and keeps what may have been', async () => {
      const { service, delivery } = await start(() => ({ processingMs: 100, outcome: 'fail', reason: 'boom' }), {
        limits: { userHourlyQuota: 1 },
      });
      api.inject('submit', { status: 400, reason: 'INVALID_REQUEST_BODY' });
      await ask(service, request(1, { userId: 'same' }));
      await delivery.ended(1);
      // Refunded: the request never created a task, so the member may ask again.
      const second = await ask(service, request(2, { userId: 'same' }));
      expect('id' in second).toBe(true);
      await delivery.ended(2);
      // The second created a (failed) task: billed, so the quota stays used.
      expect(await ask(service, request(3, { userId: 'same' }))).toMatchObject({ kind: 'user_hourly', limit: 1 });
      expect([...delivery.failed.values()]).toEqual(['invalid_request', 'task_failed']);
    });

    it('paces 12 requests by a budget of 5 per window, showing estimated starts, and delivers all', async () => {
      const { service, delivery } = await start(() => ({ processingMs: 50 }), { perMinute: 5, windowMs: 3_000 });
      const since = Date.now();
      const jobs: Job[] = [];
      for (let i = 0; i < 12; i++) jobs.push((await ask(service, request(i))) as Job);
      await delivery.ended(12);
      expect(delivery.delivered).toHaveLength(12);
      const submits = api.requests.filter((r) => r.route === 'submit').map((r) => r.at);
      expect(submits).toHaveLength(12);
      expect(soonerThanBudget(submits, since, 5, 3_000)).toEqual([]);
      const starts = (delivery.views.get(jobs[11]!.id) ?? []).flatMap((v) =>
        v.phase === 'queued' && v.startsAt ? [v.startsAt] : [],
      );
      expect(starts.length).toBeGreaterThan(0);
    });

    it('tells the member when the finished image cannot be delivered, instead of leaving the job unfinished', async () => {
      const { service, delivery } = await start(() => ({ processingMs: 50 }), { limits: { userMaxConcurrent: 1 } });
      delivery.refuseDeliveries = 1;
      const job = (await ask(service, request(1))) as Job;
      await delivery.ended(1);
      expect(delivery.failed.get(job.id)).toBe('internal');
      await expect.poll(async () => (await service.get(job.id))?.state).toBe('failed');
      // The member's only slot is free again: a second request goes through, not refused as concurrent.
      delivery.refuseDeliveries = 0;
      expect(await ask(service, request(2, { userId: job.userId }))).toMatchObject({
        userId: job.userId,
        prompt: 'p2',
      });
      await delivery.ended(2);
      expect(delivery.delivered).toHaveLength(1);
    });

    it('tells a member once that their image is late, however many looks it takes', async () => {
      // Learned: about 100 ms; this one takes 3 s, so it is late for most of its polls.
      const { service, delivery } = await start(() => ({ processingMs: 3_000 }), { learned: 100 });
      const job = (await ask(service, request(1))) as Job;
      await delivery.ended(1);
      expect(api.requests.filter((r) => r.route === 'result').length).toBeGreaterThan(3);
      const views = delivery.views.get(job.id) ?? [];
      expect(views.filter((v) => v.phase === 'late')).toHaveLength(1);
      // No view is ever sent twice in a row.
      expect(views.filter((v, i) => i > 0 && JSON.stringify(v) === JSON.stringify(views[i - 1]))).toEqual([]);
    });

    it('keeps no more than MAX_JOBS_IN_FLIGHT jobs between submission and delivery', async () => {
      const { service, delivery } = await start(() => ({ processingMs: 300 }), {
        learned: 300,
        jobs: { maxJobsInFlight: 1 },
      });
      for (let i = 0; i < 3; i++) await ask(service, request(i));
      await delivery.ended(3);
      expect(delivery.delivered).toHaveLength(3);
      // Each task was submitted only once the one before it had finished.
      const tasks = [...api.tasks.values()].sort((a, b) => a.createdAt - b.createdAt);
      expect(tasks).toHaveLength(3);
      for (let i = 1; i < tasks.length; i++)
        expect(tasks[i]!.createdAt).toBeGreaterThanOrEqual(tasks[i - 1]!.completedAt);
    });

    it('slows down on a 429 at submit and still delivers, submitting once', async () => {
      const { service, delivery } = await start(() => ({ processingMs: 50 }), { perMinute: 60, windowMs: 600 });
      api.inject('submit', { status: 429, retryAfterSec: 0 }, 4);
      await ask(service, request(1));
      await delivery.ended(1);
      expect(delivery.delivered).toHaveLength(1);
      expect(api.tasks.size).toBe(1);
    });
  });
}

schedulerContract('in-process', () => inProcess);

describe.skipIf(skipWithoutRedis)('on Redis', () => {
  let stop: () => Promise<void>;
  beforeAll(async () => {
    const redis = await startRedis();
    redisUrl = redis.url;
    stop = redis.stop;
  });
  afterAll(() => stop());
  schedulerContract('BullMQ', () => bullmq);
});
