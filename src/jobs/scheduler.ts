import type { Config } from '../config.ts';
import { isRedisUrl } from '../storage.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { PpinfraClient } from '../ppinfra/client.ts';
import type { DurationEstimator } from './estimator.ts';
import { createRateLimiter } from './limiter.ts';
import { createLimits } from './limits.ts';
import { createSubmitPacer } from './pacer.ts';
import { createJobService, type JobService } from './service.ts';
import type { JobStore, KeyValue } from './store.ts';
import type { Delivery, Moderation } from './types.ts';
import type { UsageRecorder } from '../usage.ts';

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
  /** The usage ledger the finisher tells at each job's end (`src/usage.ts`). */
  usage?: UsageRecorder;
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
 * One interface, two engines: on SQLite or memory (one process) today's in-process queue; on
 * Redis (`STORAGE_URL=redis://…`, several processes) BullMQ, with the limits, the cool-down and
 * the images-per-minute budget shared atomically through the same Redis.
 */
export async function createScheduler(deps: SchedulerDeps): Promise<Scheduler> {
  const { config } = deps;
  const settings = { ...config.jobs, imageMaxBytes: config.generation.imageMaxBytes, maxJobsInFlight: config.limits.maxJobsInFlight };
  const logger = deps.logger.child({ component: 'jobs' });
  if (!usesQueueEngine(config.storageUrl)) {
    // Quota windows survive restarts (the operator pays per image); writes are chained so the
    // last snapshot always wins.
    let quotaWrites: Promise<unknown> = Promise.resolve();
    const limits = createLimits(config.limits, Date.now, (snapshot) => {
      quotaWrites = quotaWrites.then(() => deps.stats.set('quota', snapshot)).catch((err: unknown) => logger.error({ err }, 'could not save quotas'));
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
  // Loaded only on Redis: a one-process bot does not carry BullMQ and ioredis (about 20 MB).
  const [{ Redis }, { createBullmqJobService }, { createRedisLimits, createRedisPacer }] = await Promise.all([
    import('ioredis'),
    import('./bullmq-service.ts'),
    import('./redis-limits.ts'),
  ]);
  // BullMQ's blocking commands need `maxRetriesPerRequest: null`; a lost Redis is retried, not fatal.
  const redis = new Redis(config.storageUrl, { maxRetriesPerRequest: null });
  // One warning per outage, not one per reconnect attempt; the storage health reports the rest.
  let down = false;
  redis.on('error', (err) => {
    if (!down) logger.warn({ err: { message: err.message } }, 'the job queue lost its Redis connection; retrying');
    down = true;
  });
  redis.on('ready', () => {
    if (down) logger.info('the job queue is connected to Redis again');
    down = false;
  });
  const pacer = createRedisPacer(redis, { perMinute: config.jobs.imagesPerMinute });
  const jobs = createBullmqJobService({
    ...deps,
    redis,
    limits: createRedisLimits(redis, config.limits),
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
