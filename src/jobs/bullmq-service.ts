import { randomUUID } from 'node:crypto';
import { Queue, Worker, type Job as QueueJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { noopMetrics, type Metrics } from '../ops/metrics.ts';
import type { PpinfraClient } from '../ppinfra/client.ts';
import { isPpinfraError } from '../ppinfra/errors.ts';
import { estimateAtSubmit, type DurationEstimator } from './estimator.ts';
import { certainlyNotCreated, createFinisher, UNHEALTHY } from './finish.ts';
import type { SharedLimits, SharedPacer } from './redis-limits.ts';
import { mayBeLagging, pastDeadline, taskFailed } from './poller.ts';
import { inFlightEstimate, nextPollDelay } from './schedule.ts';
import type { JobSettings, JobService, Ticket } from './service.ts';
import type { JobStore } from './store.ts';
import type { UsageRecorder } from '../usage.ts';
import { TERMINAL_STATES, type Delivery, type FailureKind, type Job, type Moderation, type ProgressView } from './types.ts';

export interface BullmqJobServiceDeps {
  /** An ioredis connection (`maxRetriesPerRequest: null`, as BullMQ requires); workers duplicate it. */
  redis: Redis;
  client: PpinfraClient;
  store: JobStore;
  delivery: Delivery;
  moderation: Moderation;
  estimator: DurationEstimator;
  limits: SharedLimits;
  pacer: SharedPacer;
  settings: JobSettings & { pollMaxPerSecond: number; lockMs: number };
  logger: Logger;
  /** Submissions and finished jobs (none recorded when absent). */
  metrics?: Metrics;
  /** Queue names' prefix, so tests can share one Redis. */
  prefix?: string;
  now?: () => number;
  newId?: () => string;
  /** Told once per job at its end (`src/usage.ts`). */
  usage?: UsageRecorder;
}

type Step = { jobId: string };

const CHECKABLE: ReadonlySet<Job['state']> = new Set(['polling', 'delivering']);

const SUBMIT_CONCURRENCY = 8;
const CHECK_CONCURRENCY = 64;
/**
 * A step's BullMQ id: the job's id and a suffix, never the bare job id. BullMQ refuses a custom id
 * that reads as an integer ("Custom Id cannot be integers"), and a job id of 12 random hex digits
 * has digits only about once in 325 jobs: that job's `/imagine` failed after its reply was deferred.
 */
const stepId = (jobId: string, suffix: string | number) => `${jobId}-${suffix}`;

/** A step that fails for a passing reason (storage or Discord briefly away) is tried again. */
const STEP_RETRIES = { attempts: 5, backoff: { type: 'exponential', delay: 1_000 }, removeOnComplete: true, removeOnFail: 1_000 } as const;

/**
 * Jobs on BullMQ, for several processes sharing one Redis. A job is two kinds of BullMQ steps:
 * one `submit`, then `check`s, each delayed by the polling schedule and each one look at the
 * task. BullMQ gives what hand-made coordination would get wrong: a worker lock so one process
 * handles a step at a time, stalled-step recovery so the jobs of a process that dies are taken
 * over by another, and a global rate limiter (task-result polls per second across processes).
 * The images-per-minute budget is a sliding window on Redis (`SharedPacer`). The job record in
 * the store stays the truth: a step re-reads it, so a step that runs twice does no harm, and a
 * submit found half-done after a crash is reported rather than sent twice.
 */
export function createBullmqJobService(deps: BullmqJobServiceDeps): JobService {
  const { store, delivery, limits, pacer, settings, client } = deps;
  const now = deps.now ?? Date.now;
  const newId = deps.newId ?? (() => randomUUID().replace(/-/g, '').slice(0, 12));
  const prefix = deps.prefix ?? 'qi';
  const metrics = deps.metrics ?? noopMetrics;
  const finisher = createFinisher({ client, store, delivery, moderation: deps.moderation, estimator: deps.estimator, imageMaxBytes: settings.imageMaxBytes, now, metrics, usage: deps.usage });
  const { save } = finisher;
  const connection = deps.redis;
  const submitQueue = new Queue<Step>(`${prefix}-submit`, { connection });
  const checkQueue = new Queue<Step>(`${prefix}-check`, { connection });
  // Connection errors are the scheduler's to report once; unhandled, BullMQ prints each with a stack.
  for (const queue of [submitQueue, checkQueue]) queue.on('error', (err) => deps.logger.debug({ err: { message: err.message } }, 'queue error'));
  const workers: Worker<Step>[] = [];
  const logFor = (job: Job) => deps.logger.child({ jobId: job.id, taskId: job.taskId, guildId: job.guildId, channelId: job.channelId, userId: job.userId });
  const release = (job: Job, refund: boolean) => limits.release({ jobId: job.id, userId: job.userId, guildId: job.guildId, refund });

  async function show(job: Job, view: ProgressView) {
    try {
      const messageId = await delivery.progress(job, view);
      if (messageId && !job.messageId) job.messageId = messageId;
    } catch (err) {
      deps.logger.debug({ err, jobId: job.id }, 'progress edit failed');
    }
  }

  async function fail(job: Job, e: unknown, kind: FailureKind = isPpinfraError(e) ? e.kind : 'internal', refund = false) {
    if (UNHEALTHY.has(kind)) await limits.apiResult(false);
    // The slot (and a refund) first, so a member told of a failure can ask again at once.
    await release(job, refund);
    await finisher.fail(job, e, logFor(job), kind);
  }

  /** One look at the task, `delayMs` from now; the id makes a step that runs twice add it once. */
  const scheduleCheck = (job: Job, delayMs: number) =>
    checkQueue.add('check', { jobId: job.id }, { ...STEP_RETRIES, jobId: stepId(job.id, job.polls), delay: Math.max(0, Math.round(delayMs)) });

  const estimateFor = (job: Job) => inFlightEstimate(job.estimate, deps.estimator.estimate(job.size));
  const delayFor = (job: Job) =>
    nextPollDelay({
      ...estimateFor(job),
      sinceSubmitMs: now() - (job.submittedAt ?? now()),
      polls: job.polls,
      minIntervalMs: settings.pollMinIntervalMs,
      maxIntervalMs: settings.pollMaxIntervalMs,
      random: Math.random,
    });

  async function submitStep(step: QueueJob<Step>, worker: Worker<Step>): Promise<void> {
    const job = await store.get(step.data.jobId);
    if (!job || TERMINAL_STATES.has(job.state)) return;
    const log = logFor(job);
    if (job.taskId) return void (await scheduleCheck(job, delayFor(job)));
    if (job.state === 'submitting') {
      // A process died between sending and saving the task id: a resubmission could bill twice.
      return fail(job, new Error('interrupted while submitting'), 'interrupted');
    }
    if (now() - job.createdAt >= settings.queueTimeoutMs) return fail(job, new Error('waited too long in the queue'), 'queue_timeout', true);
    const wait = await pacer.take(job.id);
    if (wait > 0) {
      await worker.rateLimit(wait);
      throw Worker.RateLimitError();
    }
    await save(job, 'submitting');
    await show(job, { phase: 'submitting' });
    try {
      job.taskId = await client.submit({ prompt: job.prompt, size: job.size });
    } catch (e) {
      metrics.submission(isPpinfraError(e) && e.kind === 'rate_limited' ? 'rate_limited' : 'error');
      if (isPpinfraError(e) && e.kind === 'rate_limited' && now() - job.createdAt < settings.queueTimeoutMs) {
        // The provider's budget is tighter than configured: slow every process down, keep the job.
        const pause = await pacer.throttled();
        await save(job, 'queued');
        log.warn({ pauseMs: pause }, 'the API rate-limited a submission; slowing down and requeueing the job');
        await worker.rateLimit(pause);
        throw Worker.RateLimitError();
      }
      return fail(job, e, undefined, certainlyNotCreated(e));
    }
    metrics.submission('accepted');
    job.submittedAt = now();
    job.estimate = estimateAtSubmit(deps.estimator, job.size);
    // Saved before anything else: from here on the job is billed and must never be sent again.
    await save(job, 'polling');
    await pacer.accepted();
    log.info({ taskId: job.taskId, size: job.size }, 'task submitted');
    const knew = job.messageId;
    await show(job, { phase: 'generating', expectedAt: job.submittedAt + job.estimate.expectedMs });
    if (job.messageId !== knew) await save(job, 'polling');
    await scheduleCheck(job, delayFor(job));
  }

  async function checkStep(step: QueueJob<Step>): Promise<void> {
    const job = await store.get(step.data.jobId);
    // A job found `delivering` lost its process mid-delivery (this step was recovered as stalled):
    // its task is looked at again and the image delivered, rather than the job left unfinished.
    if (!job?.taskId || !CHECKABLE.has(job.state)) return;
    const submittedAt = job.submittedAt ?? job.createdAt;
    job.polls += 1;
    const polledAt = now();
    let result: Awaited<ReturnType<PpinfraClient['getResult']>>;
    try {
      result = await client.getResult(job.taskId);
    } catch (e) {
      if (mayBeLagging(e, now() - submittedAt)) return void (await scheduleCheck(job, delayFor(job)));
      return fail(job, e);
    }
    if (result.status === 'succeed') {
      await limits.apiResult(true);
      try {
        await finisher.complete(job, { ...result, polls: job.polls, pendingAt: job.pendingAt }, logFor(job));
      } catch (e) {
        // As in-process: a download or delivery that failed after its own retries is reported.
        return fail(job, e);
      }
      return release(job, false);
    }
    if (result.status === 'failed') {
      return fail(job, taskFailed(job.taskId, result.reason));
    }
    // Checked at least once, so a task that finished while every process was down is delivered.
    if (now() >= submittedAt + settings.timeoutMs) {
      return fail(job, pastDeadline(job.taskId));
    }
    job.pendingAt = polledAt;
    const estimate = estimateFor(job);
    if (now() > submittedAt + estimate.expectedMs + 2 * estimate.spreadMs && job.polls > 1) await show(job, { phase: 'late' });
    await save(job, 'polling');
    await scheduleCheck(job, delayFor(job));
  }

  function startWorkers() {
    if (workers.length) return;
    const common = { connection: connection.duplicate(), lockDuration: settings.lockMs, stalledInterval: Math.max(500, settings.lockMs / 2) };
    const submitWorker: Worker<Step> = new Worker<Step>(`${prefix}-submit`, (step) => submitStep(step, submitWorker), { ...common, concurrency: SUBMIT_CONCURRENCY });
    const checkWorker = new Worker<Step>(`${prefix}-check`, checkStep, {
      ...common,
      connection: connection.duplicate(),
      concurrency: CHECK_CONCURRENCY,
      // BullMQ's global limiter: task-result polls per second across every process.
      limiter: { max: settings.pollMaxPerSecond, duration: 1000 },
    });
    for (const worker of [submitWorker, checkWorker]) {
      worker.on('failed', (step, err) => deps.logger.error({ err, jobId: step?.data.jobId, step: step?.name }, 'job step failed'));
      worker.on('error', (err) => deps.logger.debug({ err: { message: err.message } }, 'queue worker error'));
      workers.push(worker);
    }
  }

  return {
    async reserve(request, options = {}) {
      const id = newId();
      const queued = await submitQueue.getWaitingCount();
      const follower = Boolean(options.follower);
      const refusal = await limits.reserve({ jobId: id, userId: request.userId, guildId: request.guildId, queued, caps: request.caps, concurrent: !follower });
      if (refusal) return { ok: false, refusal };
      return { ok: true, ticket: { id, request, seq: 0, follower } };
    },

    async start(ticket: Ticket, reply, batch) {
      const job: Job = { ...ticket.request, ...(batch ? { batch } : {}), id: ticket.id, state: 'queued', reply, createdAt: now(), polls: 0 };
      try {
        await store.save(job);
        await submitQueue.add('submit', { jobId: job.id }, { ...STEP_RETRIES, jobId: stepId(job.id, 'submit') });
      } catch (e) {
        await release(job, true);
        throw e;
      }
      const position = (await submitQueue.getWaitingCount()) + (await submitQueue.getDelayedCount());
      const startsAt = await pacer.startsAt(Math.max(1, position));
      if (startsAt > now() + 2_000) await show(job, { phase: 'queued', position: Math.max(1, position), startsAt });
      return job;
    },

    async release(ticket) {
      await limits.release({ jobId: ticket.id, userId: ticket.request.userId, guildId: ticket.request.guildId, refund: true });
    },

    get: (id) => store.get(id),

    dailyBudgetUsed: (guildId) => limits.guildUsed(guildId),

    /** The queue lives in Redis: nothing to reload, only workers to start (after login, so steps can report). */
    async resume() {
      startWorkers();
      return (await submitQueue.getJobCountByTypes('waiting', 'delayed', 'active')) + (await checkQueue.getJobCountByTypes('waiting', 'delayed', 'active'));
    },

    /** The queues' counts, for every process together: a check step per job submitted and not finished. */
    async counts() {
      const [queued, submitting, checking] = await Promise.all([
        submitQueue.getJobCountByTypes('waiting', 'delayed', 'prioritized', 'waiting-children'),
        submitQueue.getJobCountByTypes('active'),
        checkQueue.getJobCountByTypes('waiting', 'delayed', 'prioritized', 'active'),
      ]);
      return { queued, inFlight: submitting + checking };
    },

    /** Finishes the steps in hand (each is short), then leaves the rest in Redis for any process. */
    async shutdown() {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all([submitQueue.close(), checkQueue.close()]);
      await Promise.all(workers.map((w) => (w.opts.connection as Redis).quit?.().catch(() => undefined)));
    },
  };
}
