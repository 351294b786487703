import { budgetKey } from '../../domain/place.ts';
import type { Queue, Job as QueueJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../../logger.ts';
import type { Metrics } from '../../ops/metrics.ts';
import type { PpinfraClient } from '../../ppinfra/client.ts';
import { isPpinfraError } from '../../ppinfra/errors.ts';
import type { SharedState } from '../../storage/shared-state.ts';
import type { UsageRecorder } from '../../usage/ledger.ts';
import type { DurationEstimator } from '../estimator.ts';
import type { Finisher } from '../finish.ts';
import type { SharedLimits, SharedPacer } from './limits.ts';
import { inFlightEstimate, inFlightPollDelay } from '../schedule.ts';
import { updateJob, type JobStore } from '../store.ts';
import {
  TERMINAL_STATES,
  type Delivery,
  type Job,
  type JobStep,
  type Moderation,
  type ProgressView,
} from '../../domain/job.ts';
import { durationKey } from '../../domain/tools.ts';
import type { FailureKind } from '../../domain/failure.ts';
import type { JobSettings } from '../service.ts';
import { UNHEALTHY } from '../failures.ts';

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

export type Step = {
  jobId: string /** When a run of this step first found the job `submitting` (ms). */;
  foundSubmittingAt?: number;
};
export type StepRun = QueueJob<Step>;

/** What the steps and the reconciler share: the service's dependencies, its queues, and how a step reads, plans and ends a job. */
export interface StepContextInit {
  deps: BullmqJobServiceDeps;
  now: () => number;
  metrics: Metrics;
  finisher: Finisher;
  queues: Record<JobStep['kind'], Queue<Step>>;
  stepRetries: ReturnType<typeof stepRetries>;
  submitWindowMs: number;
}

/** A step that fails for a passing reason (storage or Discord briefly away) is tried again: 5 attempts over about 15 s by default. */
export const stepRetries = (backoffMs = 1_000) =>
  ({
    attempts: 5,
    backoff: { type: 'exponential', delay: backoffMs },
    removeOnComplete: true,
    removeOnFail: 1_000,
  }) as const;

export type StepContext = ReturnType<typeof createStepContext>;

export function createStepContext(init: StepContextInit) {
  const { deps, now, finisher, queues } = init;
  const STEP_RETRIES = init.stepRetries;
  const { store, delivery, limits, settings } = deps;
  const logFor = (job: Job) =>
    deps.logger.child({
      jobId: job.id,
      taskId: job.taskId,
      guildId: job.guildId,
      channelId: job.channelId,
      userId: job.userId,
    });

  /** Names the job's next step on the record (saved with it); its id is unique: the version this save creates. */
  const plan = (job: Job, kind: JobStep['kind'], delayMs: number, parent?: string) => {
    job.step = {
      id: `${job.id}-${kind}-${(job.version ?? 0) + 1}`,
      kind,
      dueAt: now() + Math.max(0, Math.round(delayMs)),
      ...(parent ? { parent } : {}),
    };
  };
  /** Queues the step the saved record names; queuing one that exists already does nothing. */
  const enqueue = (job: Job) => {
    const step = job.step!;
    return queues[step.kind].add(
      step.kind,
      { jobId: job.id },
      { ...STEP_RETRIES, jobId: step.id, delay: Math.max(0, step.dueAt - now()) },
    );
  };
  /** A record from before steps were recorded lets any of its steps move it. */
  const owns = (job: Job, run: StepRun) => !job.step || job.step.id === run.id;
  /** Applies `change` for the step `run`, re-reading on a conflict, as long as the job is unfinished and the step still owns it. */
  const update = (run: StepRun, job: Job, change: (job: Job) => boolean) =>
    updateJob(
      store,
      job.id,
      (current) => !TERMINAL_STATES.has(current.state) && owns(current, run) && change(current),
      job,
    );

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
        if (saved?.version === (job.version ?? 0) + 1)
          Object.assign(job, { messageId, version: saved.version, updatedAt: saved.updatedAt });
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
  async function fail(
    job: Job,
    e: unknown,
    kind: FailureKind = isPpinfraError(e) ? e.kind : 'internal',
    refund = false,
  ): Promise<boolean> {
    if (UNHEALTHY.has(kind)) await limits.apiResult(false);
    if (!(await finisher.fail(job, e, logFor(job), kind, { ifUnchanged: true }))) return false;
    await limits.release({ jobId: job.id, userId: job.userId, guildId: budgetKey(job), refund });
    return true;
  }

  const estimateFor = (job: Job) => inFlightEstimate(job.estimate, deps.estimator.estimate(durationKey(job)));
  const delayFor = (job: Job) =>
    inFlightPollDelay(job.estimate, deps.estimator.estimate(durationKey(job)), {
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
      await limits.release({ jobId: job.id, userId: job.userId, guildId: budgetKey(job), refund: false });
      return undefined;
    }
    if (job.step?.parent === run.id) {
      await enqueue(job);
      return undefined;
    }
    return owns(job, run) ? job : undefined;
  }

  return { ...init, logFor, plan, enqueue, owns, update, markShown, show, fail, estimateFor, delayFor, load };
}
