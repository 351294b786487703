import { randomUUID } from 'node:crypto';
import { DelayedError, Queue, RateLimitError, Worker, type Job as QueueJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../../logger.ts';
import { noopMetrics, type Metrics, type RecoveryReason } from '../../ops/metrics.ts';
import type { PpinfraClient } from '../../ppinfra/client.ts';
import { isPpinfraError } from '../../ppinfra/errors.ts';
import type { SharedState } from '../../storage/shared-state.ts';
import type { UsageRecorder } from '../../usage/ledger.ts';
import { estimateAtSubmit, type DurationEstimator } from '../estimator.ts';
import { createFinisher, DeliveredNotRecorded } from '../finish.ts';
import { mayBeLagging, pastDeadline, taskFailed } from '../poller.ts';
import type { SharedLimits, SharedPacer } from './limits.ts';
import { inFlightEstimate, inFlightPollDelay } from '../schedule.ts';
import { JobConflictError, updateJob, type JobStore } from '../store.ts';
import { TERMINAL_STATES, type Delivery, type Job, type JobStep, type Moderation, type ProgressView } from '../../domain/job.ts';
import type { FailureKind } from '../../domain/failure.ts';
import type { JobSettings, JobService, Ticket } from '../service.ts';
import { certainlyNotCreated, UNHEALTHY } from '../failures.ts';

export interface BullmqJobServiceDeps {
  /** An ioredis connection (`maxRetriesPerRequest: null`, as BullMQ requires); workers duplicate it. */
  redis: Redis;
  client: PpinfraClient;
  /** Shared by every process (`createRedisJobStore`): the truth every step re-reads. */
  store: JobStore;
  delivery: Delivery;
  moderation: Moderation;
  estimator: DurationEstimator;
  limits: SharedLimits;
  pacer: SharedPacer;
  settings: JobSettings & {
    pollMaxPerSecond: number;
    lockMs: number;
    /** How long a submit may still be waiting for its answer: a job found `submitting` is not declared interrupted sooner. */
    submitWindowMs?: number;
    /** The first pause before a failed step is tried again (then doubled at each attempt). */
    stepBackoffMs?: number;
  };
  logger: Logger;
  /** Submissions and finished jobs (none recorded when absent). */
  metrics?: Metrics;
  /** Where deliveries are claimed, so a step that runs twice publishes once (`Finisher`). */
  claims?: Pick<SharedState, 'claim' | 'read'>;
  /** Queue names' prefix, so tests can share one Redis. */
  prefix?: string;
  now?: () => number;
  newId?: () => string;
  /** Told once per job at its end (`src/usage/ledger.ts`). */
  usage?: UsageRecorder;
}

type Step = { jobId: string; /** When a run of this step first found the job `submitting` (ms). */ foundSubmittingAt?: number };
type StepRun = QueueJob<Step>;

const CHECKABLE: ReadonlySet<Job['state']> = new Set(['polling', 'delivering']);
/** BullMQ states in which a step will still run. */
const LIVE: ReadonlySet<string> = new Set(['waiting', 'wait', 'delayed', 'active', 'prioritized', 'waiting-children']);

const SUBMIT_CONCURRENCY = 8;
const CHECK_CONCURRENCY = 64;
/** While `MAX_JOBS_IN_FLIGHT` jobs are in flight, submissions pause this long before looking again. */
const FLIGHT_FULL_PAUSE_MS = 1_000;
/** Beyond its lock, how long a job may stay quiet past its step's due time before the reconciler looks at its step. */
const RECONCILE_MARGIN_MS = 1_000;
const DEFAULT_SUBMIT_WINDOW_MS = 45_000;

/** A step that fails for a passing reason (storage or Discord briefly away) is tried again: 5 attempts over about 15 s by default. */
const stepRetries = (backoffMs = 1_000) => ({ attempts: 5, backoff: { type: 'exponential', delay: backoffMs }, removeOnComplete: true, removeOnFail: 1_000 }) as const;

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
  for (const queue of [queues.submit, queues.check, maintenance]) queue.on('error', (err) => deps.logger.debug({ err: { message: err.message } }, 'queue error'));
  const workers: Worker[] = [];
  let scheduling: NodeJS.Timeout | undefined;
  const logFor = (job: Job) => deps.logger.child({ jobId: job.id, taskId: job.taskId, guildId: job.guildId, channelId: job.channelId, userId: job.userId });

  /** Names the job's next step on the record (saved with it); its id is unique: the version this save creates. */
  const plan = (job: Job, kind: JobStep['kind'], delayMs: number, parent?: string) => {
    job.step = { id: `${job.id}-${kind}-${(job.version ?? 0) + 1}`, kind, dueAt: now() + Math.max(0, Math.round(delayMs)), ...(parent ? { parent } : {}) };
  };
  /** Queues the step the saved record names; queuing one that exists already does nothing. */
  const enqueue = (job: Job) => {
    const step = job.step!;
    return queues[step.kind].add(step.kind, { jobId: job.id }, { ...STEP_RETRIES, jobId: step.id, delay: Math.max(0, step.dueAt - now()) });
  };
  /** A record from before steps were recorded lets any of its steps move it. */
  const owns = (job: Job, run: StepRun) => !job.step || job.step.id === run.id;
  /** Applies `change` for the step `run`, re-reading on a conflict, as long as the job is unfinished and the step still owns it. */
  const update = (run: StepRun, job: Job, change: (job: Job) => boolean) =>
    updateJob(store, job.id, (current) => !TERMINAL_STATES.has(current.state) && owns(current, run) && change(current), job);

  /**
   * Marks `view` as shown on the record (saved with it) and says whether to show it: a phase the
   * member does not see yet always; the same phase again only when it changed and the last edit
   * is `PROGRESS_EDIT_INTERVAL_MS` old.
   */
  function markShown(job: Job, view: ProgressView): boolean {
    const key = JSON.stringify(view);
    const shown = job.shown;
    if (shown?.view === key) return false;
    const samePhase = shown !== undefined && (JSON.parse(shown.view) as ProgressView).phase === view.phase;
    if (samePhase && now() - shown.at < settings.progressEditIntervalMs) return false;
    job.shown = { view: key, at: now() };
    return true;
  }

  async function show(job: Job, view: ProgressView) {
    try {
      const messageId = await delivery.progress(job, view);
      if (messageId && !job.messageId) {
        const saved = await updateJob(store, job.id, (current) => {
          if (current.messageId) return false;
          current.messageId = messageId;
          return true;
        });
        // The copy in hand stays current: this step's own write is no reason for its next save to lose.
        if (saved?.version === (job.version ?? 0) + 1) Object.assign(job, { messageId, version: saved.version, updatedAt: saved.updatedAt });
      }
    } catch (err) {
      deps.logger.debug({ err, jobId: job.id }, 'progress edit failed');
    }
  }

  /**
   * Ends the job as failed, unless anyone saved it since `job` was read: a run whose step was
   * taken over (a stall) leaves the job to the run that took it. Only the call that ended it
   * frees the slot (and gives the quota back when nothing was billed).
   */
  async function fail(job: Job, e: unknown, kind: FailureKind = isPpinfraError(e) ? e.kind : 'internal', refund = false): Promise<boolean> {
    if (UNHEALTHY.has(kind)) await limits.apiResult(false);
    if (!(await finisher.fail(job, e, logFor(job), kind, { ifUnchanged: true }))) return false;
    await limits.release({ jobId: job.id, userId: job.userId, guildId: job.guildId, refund });
    return true;
  }

  const estimateFor = (job: Job) => inFlightEstimate(job.estimate, deps.estimator.estimate(job.size));
  const delayFor = (job: Job) =>
    inFlightPollDelay(job.estimate, deps.estimator.estimate(job.size), {
      sinceSubmitMs: now() - (job.submittedAt ?? now()),
      polls: job.polls,
      minIntervalMs: settings.pollMinIntervalMs,
      maxIntervalMs: settings.pollMaxIntervalMs,
      random: Math.random,
    });

  /** The record, when `run` may act on it; a step whose successor is planned makes sure that one is queued. */
  async function load(run: StepRun): Promise<Job | undefined> {
    const job = await store.get(run.data.jobId);
    if (!job) return undefined;
    if (TERMINAL_STATES.has(job.state)) {
      // Ended by a run that died before it freed the slot: freeing it again is harmless.
      await limits.release({ jobId: job.id, userId: job.userId, guildId: job.guildId, refund: false });
      return undefined;
    }
    if (job.step?.parent === run.id) {
      await enqueue(job);
      return undefined;
    }
    return owns(job, run) ? job : undefined;
  }

  async function submitStep(run: StepRun, worker: Worker<Step>, token?: string): Promise<void> {
    const job = await load(run);
    if (!job) return;
    const log = logFor(job);
    if (job.taskId) {
      // Submitted already (a step from before the upgrade, or one that ran again): the checks take over.
      const next = await update(run, job, (j) => {
        plan(j, 'check', delayFor(j), run.id);
        return true;
      });
      if (next) await enqueue(next);
      return;
    }
    if (job.state === 'submitting') {
      // This step ran before and sent the submit. Its process died, or stalled (a blocked event
      // loop, Redis away) and may still be waiting for the answer: a resubmission could bill
      // twice, so it is reported, but only once that answer can no longer come.
      const foundAt = run.data.foundSubmittingAt ?? now();
      if (now() - foundAt < submitWindowMs) {
        if (run.data.foundSubmittingAt === undefined) await run.updateData({ ...run.data, foundSubmittingAt: foundAt });
        await run.moveToDelayed(foundAt + submitWindowMs, token);
        throw new DelayedError();
      }
      return void (await fail(job, new Error('interrupted while submitting'), 'interrupted'));
    }
    if (now() - job.createdAt >= settings.queueTimeoutMs) return void (await fail(job, new Error('waited too long in the queue'), 'queue_timeout', true));
    if (!(await limits.enterFlight(job.id, settings.maxJobsInFlight))) {
      await worker.rateLimit(FLIGHT_FULL_PAUSE_MS);
      throw Worker.RateLimitError();
    }
    const wait = await pacer.take(job.id);
    if (wait > 0) {
      await worker.rateLimit(wait);
      throw Worker.RateLimitError();
    }
    let showSubmitting = false;
    const submitting = await update(run, job, (j) => {
      if (j.state !== 'queued') return false;
      j.state = 'submitting';
      showSubmitting = markShown(j, { phase: 'submitting' });
      return true;
    });
    if (!submitting) return;
    if (showSubmitting) await show(submitting, { phase: 'submitting' });
    let taskId: string;
    try {
      taskId = await client.submit({ prompt: submitting.prompt, size: submitting.size });
    } catch (e) {
      metrics.submission(isPpinfraError(e) && e.kind === 'rate_limited' ? 'rate_limited' : 'error');
      if (isPpinfraError(e) && e.kind === 'rate_limited' && now() - submitting.createdAt < settings.queueTimeoutMs) {
        // The provider's budget is tighter than configured: slow every process down, keep the job.
        const pause = await pacer.throttled();
        await update(run, submitting, (j) => {
          if (j.state !== 'submitting') return false;
          j.state = 'queued';
          return true;
        });
        log.warn({ pauseMs: pause }, 'the API rate-limited a submission; slowing down and requeueing the job');
        await worker.rateLimit(pause);
        throw Worker.RateLimitError();
      }
      return void (await fail(submitting, e, undefined, certainlyNotCreated(e)));
    }
    metrics.submission('accepted');
    // Saved before anything else: from here on the job is billed and must never be sent again.
    let generating: ProgressView | undefined;
    const polling = await update(run, submitting, (j) => {
      if (j.state !== 'submitting') return false;
      const submittedAt = now();
      const estimate = estimateAtSubmit(deps.estimator, j.size);
      Object.assign(j, { taskId, submittedAt, estimate, state: 'polling' });
      const view: ProgressView = { phase: 'generating', expectedAt: submittedAt + estimate.expectedMs };
      generating = markShown(j, view) ? view : undefined;
      plan(j, 'check', delayFor(j), run.id);
      return true;
    });
    await pacer.accepted();
    if (!polling) {
      log.warn({ taskId }, 'a task was created for a job that had already ended elsewhere; its result is not used');
      return;
    }
    log.info({ taskId, size: polling.size }, 'task submitted');
    // Shown (and the message id saved) before the first check is queued, so that check never
    // finds the record moved by this step's own write.
    if (generating) await show(polling, generating);
    await enqueue(polling);
  }

  async function checkStep(run: StepRun): Promise<void> {
    const job = await load(run);
    // A job found `delivering` lost its process mid-delivery: its task is looked at again and the
    // image delivered (once: see the delivery claim), rather than the job left unfinished.
    if (!job?.taskId || !CHECKABLE.has(job.state)) return;
    const submittedAt = job.submittedAt ?? job.createdAt;
    const polledAt = now();
    let result: Awaited<ReturnType<PpinfraClient['getResult']>>;
    try {
      result = await client.getResult(job.taskId);
    } catch (e) {
      // A task not yet visible right after its submit: the look counts, and the next one is planned on the record.
      if (mayBeLagging(e, now() - submittedAt)) return scheduleNext(run, job, polledAt, false);
      return void (await fail(job, e));
    }
    if (result.status === 'succeed') {
      await limits.apiResult(true);
      try {
        await finisher.complete(job, { ...result, polls: job.polls + 1, pendingAt: job.pendingAt }, logFor(job));
      } catch (e) {
        // Another run of this step moved the job first: it finishes the job, this one stops.
        if (e instanceof JobConflictError) return;
        // The image is out: the step is tried again to finish the record, never failed.
        if (e instanceof DeliveredNotRecorded) throw e;
        // As in-process: a download or delivery that failed after its own retries is reported.
        return void (await fail(job, e));
      }
      return limits.release({ jobId: job.id, userId: job.userId, guildId: job.guildId, refund: false });
    }
    if (result.status === 'failed') return void (await fail(job, taskFailed(job.taskId, result.reason)));
    // Checked at least once, so a task that finished while every process was down is delivered.
    if (now() >= submittedAt + settings.timeoutMs) return void (await fail(job, pastDeadline(job.taskId)));
    return scheduleNext(run, job, polledAt, true);
  }

  /** Counts the look on the record and plans the next, in one save; shows "taking longer" once. */
  async function scheduleNext(run: StepRun, job: Job, polledAt: number, pending: boolean) {
    let late = false;
    const saved = await update(run, job, (j) => {
      if (!CHECKABLE.has(j.state)) return false;
      j.polls += 1;
      if (pending) j.pendingAt = polledAt;
      const estimate = estimateFor(j);
      const overdue = pending && j.polls > 1 && now() > (j.submittedAt ?? j.createdAt) + estimate.expectedMs + 2 * estimate.spreadMs;
      late = overdue && markShown(j, { phase: 'late' });
      plan(j, 'check', delayFor(j), run.id);
      return true;
    });
    if (!saved) return;
    if (late) await show(saved, { phase: 'late' });
    await enqueue(saved);
  }

  /**
   * A step's processor, ended properly on its last attempt: the job ends (member told, slot
   * freed, quota back when nothing was billed) instead of a failed step and a job that never ends.
   */
  const lastAttemptEnds =
    <A extends unknown[]>(process: (run: StepRun, ...rest: A) => Promise<void>) =>
    async (run: StepRun, ...rest: A): Promise<void> => {
      try {
        await process(run, ...rest);
      } catch (e) {
        if (e instanceof RateLimitError || e instanceof DelayedError) throw e;
        if (run.attemptsMade + 1 < (run.opts.attempts ?? 1)) throw e;
        if (e instanceof DeliveredNotRecorded) {
          // Never a failure over a delivered image: the reconciler finishes the record later.
          deps.logger.error({ err: e, jobId: run.data.jobId }, 'a delivered image could not be recorded at any attempt; the reconciler will');
          return;
        }
        const job = await store.get(run.data.jobId);
        if (!job || TERMINAL_STATES.has(job.state) || !owns(job, run)) return;
        logFor(job).error({ err: e, step: run.name, attempts: run.attemptsMade + 1 }, 'a job step failed at every attempt; ending the job');
        await fail(job, e, isPpinfraError(e) ? e.kind : 'internal', job.state === 'queued');
      }
    };

  /** Where the job's step is: still to run, failed for good, or nowhere. */
  async function stepOf(job: Job): Promise<'live' | 'failed' | 'missing'> {
    // Records from before steps were recorded: the ids steps had then.
    const candidates: [JobStep['kind'], string][] = job.step
      ? [[job.step.kind, job.step.id]]
      : job.taskId
        ? [['check', `${job.id}-${job.polls}`]]
        : [['submit', `${job.id}-submit`]];
    let failed = false;
    for (const [kind, id] of candidates) {
      const step = await queues[kind].getJob(id);
      if (!step) continue;
      const state = await step.getState();
      if (LIVE.has(state)) return 'live';
      failed ||= state === 'failed';
    }
    return failed ? 'failed' : 'missing';
  }

  /** Re-queues or ends one unfinished job nothing is moving on; false when another writer moved it meanwhile. */
  async function recover(job: Job, reason: RecoveryReason): Promise<boolean> {
    let recovered: boolean;
    if (job.state === 'submitting' && now() - (job.updatedAt ?? job.createdAt) >= submitWindowMs) {
      recovered = await fail(job, new Error('interrupted while submitting'), 'interrupted');
    } else if (job.state === 'queued' && now() - job.createdAt >= settings.queueTimeoutMs) {
      recovered = await fail(job, new Error('waited too long in the queue'), 'queue_timeout', true);
    } else {
      const kind = job.taskId ? 'check' : 'submit';
      // Only the record as it was found: anyone who moved it since is moving it on.
      const saved = await updateJob(
        store,
        job.id,
        (j) => {
          if (j.version !== job.version) return false;
          plan(j, kind, 0);
          return true;
        },
        job,
      );
      if (saved) await enqueue(saved);
      recovered = Boolean(saved);
    }
    if (recovered) {
      metrics.jobRecovered(reason);
      logFor(job).warn({ state: job.state, step: job.step?.id, reason }, 'reconciler: an unfinished job had nothing moving it on');
    }
    return recovered;
  }

  async function reconcile(): Promise<number> {
    let recovered = 0;
    // Jobs counted in flight that ended (a process died between the end and the release).
    for (const id of await limits.flightIds()) {
      const job = await store.get(id);
      if (!job || TERMINAL_STATES.has(job.state)) await limits.release({ jobId: id, userId: job?.userId ?? '', guildId: job?.guildId ?? null, refund: false });
    }
    for (const job of await store.listActive()) {
      const quietSince = Math.max(job.updatedAt ?? job.createdAt, job.step?.dueAt ?? 0);
      if (now() < quietSince + settings.lockMs + RECONCILE_MARGIN_MS) continue;
      const where = await stepOf(job);
      if (where === 'live') continue;
      if (await recover(job, where === 'failed' ? 'step_failed' : 'step_missing')) recovered++;
    }
    return recovered;
  }

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
      worker.on('failed', (run, err) => deps.logger.warn({ err, jobId: run?.data.jobId, step: run?.name, attempt: run?.attemptsMade }, 'job step attempt failed'));
      worker.on('error', (err) => deps.logger.debug({ err: { message: err.message } }, 'queue worker error'));
      workers.push(worker);
    }
    // The scheduler makes each run when the previous one starts: made again now and then (an
    // upsert), so a run it failed to make cannot stop the reconciler for good.
    const schedule = () =>
      maintenance
        .upsertJobScheduler('reconcile', { every: settings.reconcileIntervalMs }, { name: 'reconcile', opts: { removeOnComplete: true, removeOnFail: 100 } })
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
      const refusal = await limits.reserve({ jobId: id, userId: request.userId, guildId: request.guildId, queued, caps: request.caps, concurrent: !follower });
      if (refusal) return { ok: false, refusal };
      return { ok: true, ticket: { id, request, seq: 0, follower } };
    },

    async start(ticket: Ticket, reply, batch) {
      const job: Job = { ...ticket.request, ...(batch ? { batch } : {}), id: ticket.id, state: 'queued', reply, createdAt: now(), polls: 0 };
      plan(job, 'submit', 0);
      try {
        await store.save(job);
      } catch (e) {
        await limits.release({ jobId: job.id, userId: job.userId, guildId: job.guildId, refund: true });
        throw e;
      }
      // Saved with its step: should queuing fail now, the reconciler queues it.
      await enqueue(job).catch((err: unknown) => logFor(job).warn({ err }, 'could not queue the submit step; the reconciler will'));
      const position = (await queues.submit.getWaitingCount()) + (await queues.submit.getDelayedCount());
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
      await startWorkers();
      return (await queues.submit.getJobCountByTypes('waiting', 'delayed', 'active')) + (await queues.check.getJobCountByTypes('waiting', 'delayed', 'active'));
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
