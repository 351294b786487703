/**
 * The bot's job path as `src/app.ts` wires it for one process (`createScheduler` with a
 * `memory://` store: the in-process `createJobService`, its images-per-minute pacer and its
 * global poll cap), minus Discord: a recording Delivery stands in for the reply edits and
 * timestamps each delivery.
 *
 * Settings are the bot's own configuration (`loadConfig` on the environment, so
 * `POLL_MAX_PER_SECOND=10 npm run bench` measures that setting), with times multiplied by
 * `scale` (BENCH_SCALE) and the rate cap divided by it, so a faster run keeps the same shape.
 */
import { loadConfig, type Config } from '../src/config.ts';
import { createDurationEstimator, type DurationEstimator } from '../src/jobs/estimator.ts';
import { createScheduler } from '../src/jobs/scheduler.ts';
import { createJobStore } from '../src/jobs/store.ts';
import type { Delivery, Job, JobRequest } from '../src/domain/job.ts';
import { silentLogger } from '../src/logger.ts';
import { createPpinfraClient, type PpinfraClient } from '../src/ppinfra/client.ts';
import type { FailureKind } from '../src/domain/failure.ts';
import { createMemoryKeyValue } from '../src/storage/key-value.ts';
import type { JobService } from '../src/jobs/service.ts';

/** What a member would have seen, with the time each job ended. */
export class RecordingDelivery implements Delivery {
  readonly delivered = new Map<string, { at: number; taskId: string | undefined }>();
  readonly failed = new Map<string, { at: number; kind: FailureKind }>();
  progressEdits = 0;
  private waiters: (() => void)[] = [];

  async progress() {
    this.progressEdits++;
    return undefined;
  }
  async deliver(job: Job) {
    this.delivered.set(job.id, { at: Date.now(), taskId: job.taskId });
    this.wake();
    return 'delivered' as const;
  }
  async notice() {}
  async fail(job: Job, error: { kind: FailureKind }) {
    this.failed.set(job.id, { at: Date.now(), kind: error.kind });
    this.wake();
  }
  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves once every job in `ids` has been delivered or has failed. */
  async ended(ids: readonly string[]) {
    while (!ids.every((id) => this.delivered.has(id) || this.failed.has(id)))
      await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

export interface BenchBotOptions {
  baseUrl: string;
  apiKey: string;
  /** BENCH_SCALE: every interval multiplied, the poll cap divided. */
  scale: number;
  /** The pacer's images-per-minute budget (set high so it is not what is measured). */
  imagesPerMinute: number;
  /** Overrides MAX_JOBS_IN_FLIGHT (the 1,000-jobs run needs more than the default 500). */
  maxJobsInFlight?: number;
}

export interface BenchBot {
  jobs: JobService;
  delivery: RecordingDelivery;
  estimator: DurationEstimator;
  config: Config;
  /** reserve + start, as the /imagine handler does before and after deferring the reply. */
  request(req: JobRequest): Promise<Job>;
  close(): Promise<void>;
}

/** The configuration the bot would run with here, from the environment (no secrets needed). */
export function benchConfig(): Config {
  const loaded = loadConfig({ ...process.env, STORAGE_URL: 'memory://' }, { discord: false, ppinfra: false });
  if (!loaded.ok)
    throw new Error(`bench: the environment's bot configuration is invalid: ${loaded.problems.join('; ')}`);
  return loaded.config;
}

export async function createBenchBot(o: BenchBotOptions): Promise<BenchBot> {
  const base = benchConfig();
  const maxJobsInFlight = o.maxJobsInFlight ?? base.limits.maxJobsInFlight;
  const config: Config = {
    ...base,
    storageUrl: 'memory://',
    jobs: {
      ...base.jobs,
      imagesPerMinute: o.imagesPerMinute,
      pollMinIntervalMs: base.jobs.pollMinIntervalMs * o.scale,
      pollMaxIntervalMs: base.jobs.pollMaxIntervalMs * o.scale,
      pollMaxPerSecond: base.jobs.pollMaxPerSecond / o.scale,
      progressEditIntervalMs: base.jobs.progressEditIntervalMs * o.scale,
    },
    // Every member is someone else and the bench's guild has room: limits refuse nobody here.
    limits: {
      ...base.limits,
      maxJobsInFlight,
      queueMax: Math.max(base.limits.queueMax, maxJobsInFlight),
      guildDailyBudget: Math.max(base.limits.guildDailyBudget, 10 * maxJobsInFlight),
    },
  };
  const client: PpinfraClient = createPpinfraClient({ ...config.ppinfra, baseUrl: o.baseUrl, apiKey: o.apiKey });
  const delivery = new RecordingDelivery();
  const estimator = atScale(createDurationEstimator(), o.scale);
  const scheduler = await createScheduler({
    config,
    client,
    store: createJobStore(createMemoryKeyValue()),
    delivery,
    moderation: { verdict: async () => 'deliver', hold: async () => 'held' as const },
    estimator,
    stats: createMemoryKeyValue(),
    logger: silentLogger,
  });
  const { jobs } = scheduler;
  return {
    jobs,
    delivery,
    estimator,
    config,
    async request(req) {
      const reservation = await jobs.reserve(req);
      if (!reservation.ok) throw new Error(`bench: the bot refused a request (${reservation.refusal.kind})`);
      return jobs.start(reservation.ticket, { applicationId: 'bench', token: 'bench', createdAt: Date.now() });
    },
    async close() {
      await jobs.shutdown();
      await scheduler.close();
      await client.close();
    },
  };
}

/**
 * The estimator seen through BENCH_SCALE: it records and reasons in full-scale milliseconds, so
 * its constants (the fresh-install guess of 8 s, the 250 ms spread floor) keep their meaning
 * in a faster run. The identity at scale 1.
 */
export function atScale(inner: DurationEstimator, scale: number): DurationEstimator {
  if (scale === 1) return inner;
  return {
    estimate(size) {
      const e = inner.estimate(size);
      return {
        ...e,
        expectedMs: e.expectedMs * scale,
        spreadMs: e.spreadMs * scale,
        ...(e.durations && { durations: e.durations.map((x) => x * scale) }),
      };
    },
    record: (size, durationMs, startedAt) => inner.record(size, durationMs / scale, startedAt),
    load: () => inner.load(),
  };
}

/** One member's request, as the /imagine handler builds it. */
export const memberRequest = (member: string, prompt: string, size: string): JobRequest => ({
  prompt,
  size,
  userId: member,
  userName: member,
  guildId: 'bench-guild',
  channelId: 'bench-channel',
  channelNsfw: false,
  locale: 'en-US',
});
