import type { Logger } from '../logger.ts';
import { noopMetrics, type Metrics } from '../ops/metrics.ts';
import { noUsageRecorder, type UsageRecorder } from '../usage/ledger.ts';
import type { PpinfraClient } from '../ppinfra/client.ts';
import { isPpinfraError } from '../ppinfra/errors.ts';
import type { DurationEstimator } from './estimator.ts';
import type { SharedState } from '../storage/shared-state.ts';
import { JobConflictError, updateJob, type JobStore } from './store.ts';
import { randomUUID } from 'node:crypto';
import {
  TERMINAL_STATES,
  type Delivery,
  type DeliveryOutcome,
  type Job,
  type JobState,
  type Moderation,
} from '../domain/job.ts';
import { durationKey } from '../domain/tools.ts';
import type { FailureKind } from '../domain/failure.ts';
import {
  DELIVERY_CLAIM_TTL_MS,
  DELIVERY_LEASE_MS,
  DeliveredNotRecorded,
  deliveryClaim,
  deliveryLease,
  type DeliveryRecord,
} from './delivery-claims.ts';
import { observedDuration, type PolledResult } from './observed.ts';

export { DeliveredNotRecorded };
import { withhold } from './withhold.ts';

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
  /** The usage ledger (`src/usage/ledger.ts`): told once per job, at its end. Nothing by default. */
  usage?: UsageRecorder;
  /**
   * Where a delivery is recorded the moment Discord took it, first writer wins: a step that runs
   * again (a crash between publishing and saving, a stalled step taken over) finds the record and
   * only finishes the bookkeeping, instead of publishing the image a second time.
   */
  claims?: Pick<SharedState, 'claim' | 'read'>;
  /**
   * How long a run that publishes an image keeps others from publishing it too: about as long
   * as another run could take the job over (the step lock on BullMQ, a reconcile pass in one process).
   */
  deliveryLeaseMs?: number;
}

export interface Finisher {
  /** Sets the state and saves (compare-and-set: throws `JobConflictError` when another writer moved the job). */
  save(job: Job, state: JobState): Promise<void>;
  /**
   * A finished task: learn its duration (once per job, by whoever moves it to `delivering`), fetch
   * the image, then publish it (once per image, see `claims`) or hold it for review. A job already
   * `delivering` (a step run again) is finished without learning its duration twice.
   */
  complete(job: Job, result: PolledResult, log: Logger, signal?: AbortSignal): Promise<void>;
  /**
   * Ends the job as failed and tells the member in one sentence; the operator gets the detail.
   * False, and nothing said, when the job had already ended (another process, a step run twice),
   * or, with `ifUnchanged`, when anyone saved it since `job` was read: a stalled run whose step
   * was taken over must not fail a job the other run is finishing. Throws when the failure cannot
   * be saved: the member is told once it is, by a retry or the reconciler, never twice.
   */
  fail(job: Job, e: unknown, log: Logger, kind?: FailureKind, options?: { ifUnchanged?: boolean }): Promise<boolean>;
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
      if (job.state !== 'delivering') {
        // Only a run that still finds the task generating moves the job on; another run of the
        // same step found it first (a stalled step taken over), or a concurrent write is re-read.
        const seenAt = now();
        const moved = await updateJob(
          store,
          job.id,
          (current) => {
            if (current.state !== 'polling' || current.taskId !== job.taskId) return false;
            Object.assign(current, { completedAt: seenAt, polls: result.polls, state: 'delivering' });
            return true;
          },
          job,
        );
        if (!moved) throw new JobConflictError(job.id);
        Object.assign(job, moved);
        metrics.pollsPerJob(result.polls);
        await deps.estimator.record(
          durationKey(job),
          observedDuration(submittedAt, seenAt, result.pendingAt),
          submittedAt,
        );
      }
      const completedAt = job.completedAt ?? now();
      const madeBefore = () => deps.claims?.read<DeliveryRecord>(deliveryClaim(job.id));
      let made = await madeBefore();
      let outcome: DeliveryOutcome | undefined;
      let bytes = 0;
      if (!made) {
        const image = result.images[0]!;
        const downloaded = await deps.client.download(image.url, { maxBytes: deps.imageMaxBytes, signal });
        bytes = downloaded.bytes.length;
        const delivered = {
          bytes: downloaded.bytes,
          contentType: downloaded.contentType,
          extension: image.type || 'jpeg',
        };
        job.nsfw = { flagged: image.nsfw, ...image.nsfwSignals };
        // Every image, flagged or not: the guild's policy weighs the provider's flag with the local
        // classifier's look at the bytes (and may review every image), and adds both to `job.nsfw`.
        const verdict = await deps.moderation.verdict(job, delivered);
        if (deps.claims) {
          // Another run is publishing this image right now: it finishes the job.
          if (
            !(await deps.claims.claim(deliveryLease(job.id), randomUUID(), deps.deliveryLeaseMs ?? DELIVERY_LEASE_MS))
              .won
          )
            throw new JobConflictError(job.id);
          // A run that held the lease before may have finished meanwhile: what it did stands.
          const current = await store.get(job.id);
          if (!current || TERMINAL_STATES.has(current.state)) throw new JobConflictError(job.id);
          made = await madeBefore();
        }
        if (!made && verdict === 'review') {
          job.finishedAt = now();
          if ((await deps.moderation.hold(job, delivered)) === 'held') {
            metrics.jobFinished('held', 'none');
            log.warn({ taskId: job.taskId, nsfw: job.nsfw }, 'flagged image held for review');
            await counted(job, log);
            return;
          }
        }
        if (!made && verdict === 'withhold') {
          // Nobody there can review it: it is never shown, and the member is told why.
          if (await withhold(job, { store, delivery, now, log, metrics })) await counted(job, log);
          return;
        }
        if (!made) {
          // A flagged image the hold refused (over the upload limit) is never delivered: the hold told the member.
          outcome =
            verdict === 'review'
              ? 'over_upload_limit'
              : await delivery.deliver(job, delivered, { spoiler: verdict === 'spoiler' });
          const record: DeliveryRecord = {
            outcome,
            ...(job.fileName ? { fileName: job.fileName } : {}),
            ...(job.published ? { published: job.published } : {}),
            ...(job.nsfw ? { nsfw: job.nsfw } : {}),
            ...(job.unseen ? { unseen: job.unseen } : {}),
          };
          // Claimed before the job's final save: a run that finds the claim only finishes the record.
          try {
            await deps.claims?.claim(deliveryClaim(job.id), record, DELIVERY_CLAIM_TTL_MS);
          } catch (e) {
            throw new DeliveredNotRecorded(e);
          }
        }
      }
      if (made) {
        log.info({ taskId: job.taskId }, 'the image was already delivered; finishing the record');
        outcome = made.outcome;
        // The run that published it classified it: its verdict stays on the record (a report's reviewer reads it).
        Object.assign(
          job,
          made.fileName ? { fileName: made.fileName } : {},
          made.published ? { published: made.published } : {},
          made.nsfw ? { nsfw: made.nsfw } : {},
          made.unseen ? { unseen: made.unseen } : {},
        );
      }
      const finishedAt = now();
      let ended: Job | undefined;
      try {
        const finish = (current: Job) => {
          if (TERMINAL_STATES.has(current.state)) return false;
          Object.assign(current, {
            fileName: job.fileName,
            published: job.published,
            nsfw: job.nsfw,
            ...(job.unseen ? { unseen: job.unseen } : {}),
            finishedAt,
            completedAt,
          });
          if (job.messageId) current.messageId ??= job.messageId;
          if (outcome === 'over_upload_limit') current.error = { kind: 'upload_limit' };
          current.state = outcome === 'over_upload_limit' ? 'failed' : 'delivered';
          return true;
        };
        ended = await updateJob(store, job.id, finish, job);
      } catch (e) {
        throw new DeliveredNotRecorded(e);
      }
      if (!ended) return;
      Object.assign(job, ended);
      if (outcome === 'over_upload_limit') {
        // The member was told; the job is recorded as what it is, not as delivered.
        metrics.jobFinished('failed', 'upload_limit');
        log.warn({ taskId: job.taskId, bytes }, 'image over the server’s upload limit');
        await counted(job, log);
        return;
      }
      metrics.jobFinished('delivered', 'none');
      metrics.requestToDelivery((finishedAt - job.createdAt) / 1000);
      metrics.completionToDelivery((finishedAt - completedAt) / 1000);
      log.info(
        {
          taskId: job.taskId,
          polls: job.polls,
          generationMs: completedAt - submittedAt,
          totalMs: finishedAt - job.createdAt,
        },
        'job delivered',
      );
      await counted(job, log);
    },

    async fail(job, e, log, kind = isPpinfraError(e) ? e.kind : 'internal', options = {}) {
      const reason = isPpinfraError(e) ? e.reason : undefined;
      const error = { kind, ...(reason ? { reason } : {}) };
      const finishedAt = now();
      const readAt = job.version;
      const end = (current: Job) => {
        if (TERMINAL_STATES.has(current.state)) return false;
        if (options.ifUnchanged && current.version !== readAt) return false;
        Object.assign(current, { error, finishedAt, state: 'failed' });
        return true;
      };
      let ended: Job | undefined;
      try {
        ended = await updateJob(store, job.id, end, { ...job });
      } catch (err) {
        log.error(
          { err, error: isPpinfraError(e) ? e.toLog() : e },
          'could not save a failed job; it is ended when the storage answers',
        );
        throw err;
      }
      if (!ended) return false;
      Object.assign(job, ended);
      // The operator needs the detail (e.g. a rejected key); the user gets one friendly sentence.
      const logAt = kind === 'internal' || kind === 'auth' || kind === 'quota' ? 'error' : 'warn';
      log[logAt]({ taskId: job.taskId, error: isPpinfraError(e) ? e.toLog() : e }, 'job failed');
      metrics.jobFinished('failed', kind);
      await delivery
        .fail(job, error)
        .catch((err: unknown) => log.error({ err }, 'could not tell the user about a failure'));
      await counted(job, log);
      return true;
    },
  };
}
