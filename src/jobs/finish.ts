import type { Logger } from '../logger.ts';
import { noopMetrics, type Metrics } from '../ops/metrics.ts';
import { noUsageRecorder, type UsageRecorder } from '../usage.ts';
import type { PpinfraClient } from '../ppinfra/client.ts';
import { isPpinfraError } from '../ppinfra/errors.ts';
import type { TaskResult } from '../ppinfra/parse.ts';
import type { DurationEstimator } from './estimator.ts';
import type { JobStore } from './store.ts';
import type { Delivery, FailureKind, Job, JobState, Moderation } from './types.ts';

const REFUSED_BEFORE_CREATING: ReadonlySet<FailureKind> = new Set(['auth', 'quota', 'invalid_request', 'illegal_prompt', 'rate_limited']);

/**
 * Refund the member's quota only when no task can exist: a timeout, a reset or a gateway error
 * after sending may have created a billed task.
 */
export const certainlyNotCreated = (e: unknown) =>
  isPpinfraError(e) && (e.notSent || e.reason === 'CREATE_TASK_FAILED' || REFUSED_BEFORE_CREATING.has(e.kind));

/** Failures that say the API itself is unwell, and count towards the cool-down. */
export const UNHEALTHY: ReadonlySet<FailureKind> = new Set(['server', 'timeout', 'network']);

export interface FinisherDeps {
  client: Pick<PpinfraClient, 'download'>;
  store: JobStore;
  delivery: Delivery;
  moderation: Moderation;
  estimator: DurationEstimator;
  imageMaxBytes: number;
  now: () => number;
  /** Outcomes and timings of finished jobs (none recorded when absent). */
  metrics?: Pick<Metrics, 'jobFinished' | 'pollsPerJob' | 'requestToDelivery' | 'completionToDelivery'>;
  /** The usage ledger (`src/usage.ts`): told once per job, at its end. Nothing by default. */
  usage?: UsageRecorder;
}

/**
 * A finished task as the poller saw it. `pendingAt`: when the last poll before it found the task
 * unfinished (absent when the first poll found it done).
 */
export type PolledResult = TaskResult & { polls: number; pendingAt?: number };

const MAX_CORRECTION_MS = 500;

/**
 * How long a task took, for the estimator. It finished somewhere between the poll that found it
 * pending and the one that found it done. Where polls were dense, the midpoint is unbiased,
 * while the time it was seen would add half the spacing to every duration the estimator learns
 * and so delay every later first poll by as much. A wide gap (a task far off its estimate) says
 * little about where in it the task finished, so the correction is at most `MAX_CORRECTION_MS`.
 */
export const observedDuration = (submittedAt: number, completedAt: number, pendingAt?: number) => {
  const gap = pendingAt !== undefined && pendingAt >= submittedAt ? completedAt - pendingAt : 0;
  return completedAt - submittedAt - Math.min(gap / 2, MAX_CORRECTION_MS);
};

export interface Finisher {
  save(job: Job, state: JobState): Promise<void>;
  /** A finished task: learn its duration, fetch the image, then publish it or hold it for review. */
  complete(job: Job, result: PolledResult, log: Logger, signal?: AbortSignal): Promise<void>;
  /** Records the failure and tells the member in one sentence; the operator gets the detail. */
  fail(job: Job, e: unknown, log: Logger, kind?: FailureKind): Promise<void>;
}

/**
 * The end of a job, the same whichever scheduler ran it (in-process or BullMQ): what the member
 * sees and what the job record says.
 */
export function createFinisher(deps: FinisherDeps): Finisher {
  const { store, delivery, now } = deps;
  const metrics = deps.metrics ?? noopMetrics;
  const usage = deps.usage ?? noUsageRecorder;
  const save = async (job: Job, state: JobState) => {
    job.state = state;
    await store.save(job);
  };
  /** The job reached its end: the ledger counts it (once). A ledger failure never fails the job. */
  const counted = (job: Job, log: Logger) =>
    usage.record(job).then(
      (first) => log.debug({ state: job.state, counted: first }, 'usage recorded'),
      (err: unknown) => log.error({ err }, 'could not record usage'),
    );

  return {
    save,

    async complete(job, result, log, signal) {
      const submittedAt = job.submittedAt ?? now();
      job.completedAt = now();
      job.polls = result.polls;
      metrics.pollsPerJob(result.polls);
      await deps.estimator.record(job.size, observedDuration(submittedAt, job.completedAt, result.pendingAt), submittedAt);
      await save(job, 'delivering');
      const image = result.images[0]!;
      const { bytes, contentType } = await deps.client.download(image.url, { maxBytes: deps.imageMaxBytes, signal });
      const delivered = { bytes, contentType, extension: image.type || 'jpeg' };
      job.nsfw = { flagged: image.nsfw, ...image.nsfwSignals };
      const verdict = image.nsfw ? await deps.moderation.verdict(job) : 'deliver';
      if (verdict === 'review') {
        job.finishedAt = now();
        await deps.moderation.hold(job, delivered);
        metrics.jobFinished('held', 'none');
        log.warn({ taskId: job.taskId, nsfw: job.nsfw }, 'flagged image held for review');
        await counted(job, log);
        return;
      }
      const outcome = await delivery.deliver(job, delivered, { spoiler: verdict === 'spoiler' });
      job.finishedAt = now();
      if (outcome === 'over_upload_limit') {
        // The member was told; the job is recorded as what it is, not as delivered.
        job.error = { kind: 'upload_limit' };
        await save(job, 'failed');
        metrics.jobFinished('failed', 'upload_limit');
        log.warn({ taskId: job.taskId, bytes: bytes.length }, 'image over the server’s upload limit');
        await counted(job, log);
        return;
      }
      await save(job, 'delivered');
      metrics.jobFinished('delivered', 'none');
      metrics.requestToDelivery((job.finishedAt - job.createdAt) / 1000);
      metrics.completionToDelivery((job.finishedAt - job.completedAt) / 1000);
      log.info({ taskId: job.taskId, polls: job.polls, generationMs: job.completedAt - submittedAt, totalMs: job.finishedAt - job.createdAt }, 'job delivered');
      await counted(job, log);
    },

    async fail(job, e, log, kind = isPpinfraError(e) ? e.kind : 'internal') {
      const reason = isPpinfraError(e) ? e.reason : undefined;
      // The operator needs the detail (e.g. a rejected key); the user gets one friendly sentence.
      const logAt = kind === 'internal' || kind === 'auth' || kind === 'quota' ? 'error' : 'warn';
      log[logAt]({ taskId: job.taskId, error: isPpinfraError(e) ? e.toLog() : e }, 'job failed');
      job.error = { kind, ...(reason ? { reason } : {}) };
      job.finishedAt = now();
      metrics.jobFinished('failed', kind);
      await save(job, 'failed').catch((err: unknown) => log.error({ err }, 'could not save failed job'));
      await delivery.fail(job, job.error).catch((err: unknown) => log.error({ err }, 'could not tell the user about a failure'));
      await counted(job, log);
    },
  };
}
