import { budgetKey } from '../../domain/place.ts';
import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { noopMetrics } from '../../ops/metrics.ts';
import { createFinisher } from '../finish.ts';
import type { JobStep } from '../../domain/job.ts';
import { queuedJob, type JobService, type Ticket } from '../service.ts';

import { createStepContext, stepRetries, type BullmqJobServiceDeps, type Step } from './context.ts';
import { createSteps } from './steps.ts';
import { createReconciler } from './reconcile.ts';

const SUBMIT_CONCURRENCY = 8;
const CHECK_CONCURRENCY = 64;
const DEFAULT_SUBMIT_WINDOW_MS = 45_000;

/**
 * Jobs on BullMQ, for several processes sharing one Redis. A job is a chain of BullMQ steps: one
 * `submit`, then `check`s, each delayed by the polling schedule and each one look at the task.
 * BullMQ brings the worker lock, the recovery of a dead process's steps, and a global rate
 * limiter for task-result polls. The job record (shared, compare-and-set) stays the truth:
 * - Only the step the record names may move the job on. Each step saves the record, naming the
 *   next step by an id made from the record's version, before it queues that step: ids are never
 *   reused, and a step that runs again (stall recovery, a crash after its save) finds it no longer
 *   owns the job, or loses the compare-and-set, and does nothing twice.
 * - A delivery is claimed once made (`Finisher`); durations are learned by whoever moves the job
 *   to `delivering`, once.
 * - A step's last failed attempt ends the job (member told, slot freed, refund when nothing was
 *   billed), and a reconciler, one process at a time on a BullMQ job scheduler, re-queues or ends
 *   any unfinished job whose step is gone or failed: the net for causes nobody foresaw.
 */
export function createBullmqJobService(deps: BullmqJobServiceDeps): JobService {
  const { store, delivery, limits, pacer, settings, client } = deps;
  const now = deps.now ?? Date.now;
  const newId = deps.newId ?? (() => randomUUID().replace(/-/g, '').slice(0, 12));
  const prefix = deps.prefix ?? 'qi';
  const metrics = deps.metrics ?? noopMetrics;
  const submitWindowMs = settings.submitWindowMs ?? DEFAULT_SUBMIT_WINDOW_MS;
  const STEP_RETRIES = stepRetries(settings.stepBackoffMs);
  const finisher = createFinisher({
    client,
    store,
    delivery,
    moderation: deps.moderation,
    estimator: deps.estimator,
    imageMaxBytes: settings.imageMaxBytes,
    now,
    metrics,
    usage: deps.usage,
    claims: deps.claims,
    // A step whose process died is taken over after its lock: so is its delivery.
    deliveryLeaseMs: settings.lockMs,
  });
  const connection = deps.redis;
  const queues: Record<JobStep['kind'], Queue<Step>> = {
    submit: new Queue<Step>(`${prefix}-submit`, { connection }),
    check: new Queue<Step>(`${prefix}-check`, { connection }),
  };
  const maintenance = new Queue(`${prefix}-maintenance`, { connection });
  // Connection errors are the scheduler's to report once; unhandled, BullMQ prints each with a stack.
  for (const queue of [queues.submit, queues.check, maintenance])
    queue.on('error', (err) => deps.logger.debug({ err: { message: err.message } }, 'queue error'));
  const workers: Worker[] = [];
  let scheduling: NodeJS.Timeout | undefined;
  const ctx = createStepContext({ deps, now, metrics, finisher, queues, stepRetries: STEP_RETRIES, submitWindowMs });
  const { submitStep, checkStep, lastAttemptEnds } = createSteps(ctx);
  const { reconcile } = createReconciler(ctx);
  const { enqueue, plan, show, logFor } = ctx;

  async function startWorkers() {
    if (workers.length) return;
    const common = { lockDuration: settings.lockMs, stalledInterval: Math.max(500, settings.lockMs / 2) };
    const submitWorker: Worker<Step> = new Worker<Step>(
      `${prefix}-submit`,
      lastAttemptEnds((run, token?: string) => submitStep(run, submitWorker, token)),
      { ...common, connection: connection.duplicate(), concurrency: SUBMIT_CONCURRENCY },
    );
    const checkWorker = new Worker<Step>(`${prefix}-check`, lastAttemptEnds(checkStep), {
      ...common,
      connection: connection.duplicate(),
      concurrency: CHECK_CONCURRENCY,
      // BullMQ's global limiter: task-result polls per second across every process.
      limiter: { max: settings.pollMaxPerSecond, duration: 1000 },
    });
    // One reconcile at a time across processes: each run of the scheduler goes to one worker.
    const reconciler = new Worker(
      `${prefix}-maintenance`,
      async () => {
        const recovered = await reconcile();
        if (recovered) deps.logger.info({ recovered }, 'reconciler: jobs re-queued or ended');
      },
      { ...common, connection: connection.duplicate(), concurrency: 1 },
    );
    for (const worker of [submitWorker, checkWorker, reconciler]) {
      worker.on('failed', (run, err) =>
        deps.logger.warn(
          { err, jobId: run?.data.jobId, step: run?.name, attempt: run?.attemptsMade },
          'job step attempt failed',
        ),
      );
      worker.on('error', (err) => deps.logger.debug({ err: { message: err.message } }, 'queue worker error'));
      workers.push(worker);
    }
    // The scheduler makes each run when the previous one starts: made again now and then (an
    // upsert), so a run it failed to make cannot stop the reconciler for good.
    const schedule = () =>
      maintenance
        .upsertJobScheduler(
          'reconcile',
          { every: settings.reconcileIntervalMs },
          { name: 'reconcile', opts: { removeOnComplete: true, removeOnFail: 100 } },
        )
        .catch((err: unknown) => deps.logger.warn({ err }, 'could not schedule the reconciler; trying again'));
    await schedule();
    scheduling = setInterval(schedule, Math.max(settings.reconcileIntervalMs, 60_000));
    scheduling.unref();
  }

  return {
    async reserve(request, options = {}) {
      const id = newId();
      const queued = await queues.submit.getWaitingCount();
      const follower = Boolean(options.follower);
      const refusal = await limits.reserve({
        jobId: id,
        userId: request.userId,
        guildId: budgetKey(request),
        queued,
        caps: request.caps,
        concurrent: !follower,
      });
      if (refusal) return { ok: false, refusal };
      return { ok: true, ticket: { id, request, seq: 0, follower } };
    },

    async start(ticket: Ticket, reply, batch) {
      const job = queuedJob(ticket, reply, now(), batch);
      plan(job, 'submit', 0);
      try {
        await store.save(job);
      } catch (e) {
        await limits.release({ jobId: job.id, userId: job.userId, guildId: budgetKey(job), refund: true });
        throw e;
      }
      // Saved with its step: should queuing fail now, the reconciler queues it.
      await enqueue(job).catch((err: unknown) =>
        logFor(job).warn({ err }, 'could not queue the submit step; the reconciler will'),
      );
      const position = (await queues.submit.getWaitingCount()) + (await queues.submit.getDelayedCount());
      const startsAt = await pacer.startsAt(Math.max(1, position));
      if (startsAt > now() + 2_000) await show(job, { phase: 'queued', position: Math.max(1, position), startsAt });
      return job;
    },

    async release(ticket) {
      await limits.release({
        jobId: ticket.id,
        userId: ticket.request.userId,
        guildId: budgetKey(ticket.request),
        refund: true,
      });
    },

    get: (id) => store.get(id),

    dailyBudgetUsed: (guildId) => limits.guildUsed(guildId),

    /** The queue lives in Redis: nothing to reload, only workers to start (after login, so steps can report). */
    async resume() {
      await startWorkers();
      return (
        (await queues.submit.getJobCountByTypes('waiting', 'delayed', 'active')) +
        (await queues.check.getJobCountByTypes('waiting', 'delayed', 'active'))
      );
    },

    reconcile,

    /** The queues' counts, for every process together: a check step per job submitted and not finished. */
    async counts() {
      const [queued, submitting, checking] = await Promise.all([
        queues.submit.getJobCountByTypes('waiting', 'delayed', 'prioritized', 'waiting-children'),
        queues.submit.getJobCountByTypes('active'),
        queues.check.getJobCountByTypes('waiting', 'delayed', 'prioritized', 'active'),
      ]);
      return { queued, inFlight: submitting + checking };
    },

    /** Finishes the steps in hand (each is short), then leaves the rest in Redis for any process. */
    async shutdown() {
      clearInterval(scheduling);
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all([queues.submit.close(), queues.check.close(), maintenance.close()]);
      await Promise.all(workers.map((w) => (w.opts.connection as Redis).quit?.().catch(() => undefined)));
    },
  };
}
