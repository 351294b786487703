import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createDurationEstimator } from '../../src/jobs/estimator.ts';
import { createRateLimiter } from '../../src/jobs/limiter.ts';
import { createLimits } from '../../src/jobs/limits.ts';
import { createSubmitPacer } from '../../src/jobs/pacer.ts';
import { createJobService } from '../../src/jobs/in-process/service.ts';
import { createJobStore } from '../../src/jobs/store.ts';
import type { Delivery, Job, JobRequest, ProgressView } from '../../src/domain/job.ts';
import { silentLogger } from '../../src/logger.ts';
import { createPpinfraClient, type PpinfraClient } from '../../src/ppinfra/client.ts';
import { startFakePpinfra, type FakePpinfra } from '../fakes/ppinfra.ts';
import { createMemoryKeyValue } from '../../src/storage/key-value.ts';
import type { JobService } from '../../src/jobs/service.ts';

let api: FakePpinfra;
let client: PpinfraClient;
let service: JobService;
const views = new Map<string, ProgressView[]>();
const shown = new EventEmitter();

/** A Delivery that remembers what each job's message showed. */
const delivery: Delivery = {
  async progress(job: Job, view: ProgressView) {
    views.set(job.id, [...(views.get(job.id) ?? []), view]);
    shown.emit('progress');
    return undefined;
  },
  async deliver() {
    return 'delivered' as const;
  },
  async notice() {},
  async fail() {},
};

const request = (userId: string): JobRequest => ({
  prompt: `from ${userId}`,
  size: '1024*1024',
  userId,
  userName: userId,
  guildId: 'g',
  channelId: 'c',
  channelNsfw: false,
  locale: 'en-US',
});
/** Resolves once a job's message shows `view` (progress edits are throttled, so it may come late). */
function showing(jobId: string, view: ProgressView): Promise<void> {
  const matches = () => JSON.stringify(views.get(jobId)?.at(-1)) === JSON.stringify(view);
  if (matches()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (!matches()) return;
      shown.off('progress', check);
      resolve();
    };
    shown.on('progress', check);
  });
}

const reply = { applicationId: 'app', token: 'tok', createdAt: Date.now() };

beforeEach(async () => {
  api = await startFakePpinfra({ script: () => ({ processingMs: 60_000 }) });
  client = createPpinfraClient({ baseUrl: api.url, apiKey: api.apiKey });
  service = createJobService({
    client,
    store: createJobStore(createMemoryKeyValue()),
    delivery,
    moderation: { verdict: async () => 'deliver', hold: async () => 'held' as const },
    estimator: createDurationEstimator(),
    limits: createLimits({
      userMaxConcurrent: 5,
      userHourlyQuota: 50,
      guildDailyBudget: 50,
      maxJobsInFlight: 1,
      queueMax: 10,
      breakerThreshold: 3,
      breakerCooldownMs: 60_000,
    }),
    pollLimiter: createRateLimiter({ perSecond: 50 }),
    pacer: createSubmitPacer({ perMinute: 1_000 }),
    settings: {
      queueTimeoutMs: 600_000,
      timeoutMs: 120_000,
      pollMinIntervalMs: 200,
      pollMaxIntervalMs: 1_000,
      progressEditIntervalMs: 200,
      imageMaxBytes: 1_000_000,
      maxJobsInFlight: 1,
      reconcileIntervalMs: 60_000,
    },
    logger: silentLogger,
  });
});
afterEach(async () => {
  await service.shutdown();
  await client.close();
  await api.close();
  views.clear();
});

it('queues in the order people asked, even when their starts finish out of order', async () => {
  const first = await service.reserve(request('a'));
  if (!first.ok) throw new Error('refused');
  await service.start(first.ticket, reply);
  await api.waitFor('task-created');
  const b = await service.reserve(request('b'));
  const c = await service.reserve(request('c'));
  if (!b.ok || !c.ok) throw new Error('refused');
  // c's start completes before b's, as when b's deferred reply took longer.
  const jobC = await service.start(c.ticket, reply);
  const jobB = await service.start(b.ticket, reply);
  await showing(jobC.id, { phase: 'queued', position: 2 });
  expect(views.get(jobB.id)?.at(-1)).toEqual({ phase: 'queued', position: 1 });
});
