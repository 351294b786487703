import type { Config } from '../config.ts';
import { isRedisUrl } from '../storage/open.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { PpinfraClient } from '../ppinfra/client.ts';
import type { DurationEstimator } from './estimator.ts';
import { createRateLimiter } from './limiter.ts';
import { createLimits } from './limits.ts';
import { createSubmitPacer } from './pacer.ts';
import { createJobService } from './in-process/service.ts';
import { createJobStore, type JobStore } from './store.ts';
import type { Redis } from 'ioredis';
import type { SharedState } from '../storage/shared-state.ts';
import type { Delivery, Moderation } from '../domain/job.ts';
import type { UsageRecorder } from '../usage/ledger.ts';
import type { KeyValue } from '../storage/key-value.ts';
import type { JobService } from './service.ts';

export interface SchedulerDeps {
  config: Config;
  client: PpinfraClient;
  store: JobStore;
  delivery: Delivery;
  moderation: Moderation;
  estimator: DurationEstimator;
  /** Where the in-process engine keeps its quota windows across restarts (on Redis they live in Redis). */
  stats: KeyValue;
  logger: Logger;
  /** Submissions and finished jobs; the engines record into it (none recorded when absent). */
  metrics?: Metrics;
  /** The usage ledger the finisher tells at each job's end (`src/usage/ledger.ts`). */
  usage?: UsageRecorder;
  /** Where deliveries are claimed, so a job finished twice publishes once. */
  claims?: Pick<SharedState, 'claim' | 'read'>;
  /** On Redis: the connection `openJobStore` opened, which the queues share. */
  redis?: Redis;
}

export interface Scheduler {
  jobs: JobService;
  /** Submissions still possible in the current images-per-minute window (shared on Redis), for metrics. */
  budgetRemaining(): Promise<number>;
  close(): Promise<void>;
}

/** On Redis the jobs run on BullMQ; SQLite and memory serve one process. */
export const usesQueueEngine = isRedisUrl;

/**
 * The job records. On Redis, shared by every process: a hash per job and compare-and-set in Lua
 * (`bullmq/store.ts`), over an ioredis connection the queues share (`redis`), records from before
 * still read from the Keyv namespace `jobsKv`. Else the Keyv namespace itself, with its index of
 * active jobs, for one process.
 */
export async function openJobStore(
  storageUrl: string,
  jobsKv: KeyValue,
  logger: Logger,
): Promise<{ store: JobStore; redis?: Redis }> {
  if (!usesQueueEngine(storageUrl)) return { store: createJobStore(jobsKv) };
  // Loaded only on Redis: a one-process bot does not carry BullMQ and ioredis (about 20 MB).
  const [{ Redis }, { createRedisJobStore }] = await Promise.all([import('ioredis'), import('./bullmq/store.ts')]);
  // BullMQ's blocking commands need `maxRetriesPerRequest: null`: while Redis is away, commands
  // (job saves included) wait for it rather than fail, and a lost Redis is retried, not fatal.
  const redis = new Redis(storageUrl, { maxRetriesPerRequest: null });
  const log = logger.child({ component: 'jobs' });
  // One warning per outage, not one per reconnect attempt; the storage health reports the rest.
  let down = false;
  redis.on('error', (err) => {
    if (!down) log.warn({ err: { message: err.message } }, 'the job queue lost its Redis connection; retrying');
    down = true;
  });
  redis.on('ready', () => {
    if (down) log.info('the job queue is connected to Redis again');
    down = false;
  });
  return { store: createRedisJobStore(redis, { legacy: jobsKv }), redis };
}

/**
 * One interface, two engines: on SQLite or memory (one process) today's in-process queue; on
 * Redis (`STORAGE_URL=redis://…`, several processes) BullMQ, with the limits, the cool-down and
 * the images-per-minute budget shared atomically through the same Redis.
 */
export async function createScheduler(deps: SchedulerDeps): Promise<Scheduler> {
  const { config } = deps;
  const limitSettings = { ...config.limits, userInstallDailyBudget: config.userInstall.dailyBudget };
  const settings = {
    ...config.jobs,
    imageMaxBytes: config.generation.imageMaxBytes,
    maxJobsInFlight: config.limits.maxJobsInFlight,
    editImageInput: config.tools.editImageInput,
    // A submit's answer can come no later than its connection and response timeouts allow; and a
    // member is told their job's fate within its deadline, whatever it waits for.
    submitWindowMs: Math.min(
      config.ppinfra.connectTimeoutMs + config.ppinfra.headersTimeoutMs + config.ppinfra.bodyTimeoutMs,
      config.jobs.timeoutMs,
    ),
  };
  const logger = deps.logger.child({ component: 'jobs' });
  if (!usesQueueEngine(config.storageUrl)) {
    // Quota windows survive restarts (the operator pays per image); writes are chained so the
    // last snapshot always wins.
    let quotaWrites: Promise<unknown> = Promise.resolve();
    const limits = createLimits(limitSettings, Date.now, (snapshot) => {
      quotaWrites = quotaWrites
        .then(() => deps.stats.set('quota', snapshot))
        .catch((err: unknown) => logger.error({ err }, 'could not save quotas'));
    });
    limits.restore(await deps.stats.get('quota'));
    const pacer = createSubmitPacer({ perMinute: config.jobs.imagesPerMinute });
    const jobs = createJobService({
      ...deps,
      limits,
      pollLimiter: createRateLimiter({ perSecond: config.jobs.pollMaxPerSecond }),
      pacer,
      settings,
      logger,
    });
    return { jobs, budgetRemaining: async () => pacer.remaining(), close: () => quotaWrites.then(() => undefined) };
  }
  const redis = deps.redis;
  if (!redis) throw new Error('the queue engine needs the Redis connection of openJobStore');
  const [{ createBullmqJobService }, { createRedisLimits, createRedisPacer }] = await Promise.all([
    import('./bullmq/service.ts'),
    import('./bullmq/limits.ts'),
  ]);
  const pacer = createRedisPacer(redis, { perMinute: config.jobs.imagesPerMinute });
  const jobs = createBullmqJobService({
    ...deps,
    redis,
    limits: createRedisLimits(redis, limitSettings),
    pacer,
    settings,
    logger,
  });
  return {
    jobs,
    budgetRemaining: () => pacer.remaining(),
    async close() {
      await redis.quit().catch(() => undefined);
    },
  };
}
