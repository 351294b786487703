import { budgetKey } from '../../domain/place.ts';
import type { Logger } from '../../logger.ts';
import type { Metrics } from '../../ops/metrics.ts';
import type { PpinfraClient } from '../../ppinfra/client.ts';
import { isPpinfraError } from '../../ppinfra/errors.ts';
import { estimateAtSubmit, type DurationEstimator } from '../estimator.ts';
import type { RateLimiter } from '../limiter.ts';
import type { Limits } from '../limits.ts';
import type { SubmitPacer } from '../pacer.ts';
import { DeliveredNotRecorded, type Finisher } from '../finish.ts';
import { pollTask } from '../poller.ts';
import { inFlightEstimate } from '../schedule.ts';
import type { ProgressReporter } from '../progress.ts';
import { JobConflictError } from '../store.ts';
import type { JobSettings } from '../service.ts';
import { holdsSlot, type Job } from '../../domain/job.ts';
import { durationKey } from '../../domain/tools.ts';
import { submitFor } from '../submit.ts';
import type { FailureKind } from '../../domain/failure.ts';
import { certainlyNotCreated, UNHEALTHY } from '../failures.ts';

/** What running one job takes: the API, the estimator, the limits and the pace. */
export interface RunDeps {
  client: PpinfraClient;
  estimator: DurationEstimator;
  limits: Limits;
  pollLimiter: RateLimiter;
  /** Submissions by the provider's images-per-minute budget. */
  pacer: SubmitPacer;
  settings: JobSettings;
  logger: Logger;
}

/** A job waiting in this process's queue, with its progress message and its place (`seq`). */
export type Waiting = { job: Job; progress: ProgressReporter; seq: number };

/** Thrown inside `run` when a 429 on submit sent the job back to the queue. */
class Requeued extends Error {}

/**
 * One job's path in this process, from submit to the finisher, and its failure. The service
 * around it owns the queue (`waiting`, where a rate-limited job goes back to) and the shutdown
 * signal, which pauses a job rather than failing it.
 */
export function createRunner(ctx: {
  deps: RunDeps;
  finisher: Finisher;
  signal: AbortSignal;
  waiting: Waiting[];
  now: () => number;
  metrics: Metrics;
}) {
  const { deps, finisher, signal, waiting, now, metrics } = ctx;
  const { client, estimator, limits, settings } = deps;
  const { save } = finisher;

  async function run(job: Job, progress: ProgressReporter): Promise<void> {
    const log = deps.logger.child({
      jobId: job.id,
      guildId: job.guildId,
      channelId: job.channelId,
      userId: job.userId,
    });
    let billed = Boolean(job.taskId);
    let requeued = false;
    let released = false;
    try {
      if (!job.taskId) {
        await save(job, 'submitting');
        progress.show({ phase: 'submitting' });
        try {
          // Not cut by a shutdown: a submit cut after it left may have billed a task whose id the
          // bot would never learn. Its own timeouts bound it, and the stop waits for it.
          job.taskId = await submitFor(job, { client, editImageInput: settings.editImageInput });
        } catch (e) {
          // Refund the user's quota only when no task can exist; a timeout, a reset or a
          // gateway error after sending may have created a billed task.
          billed = !certainlyNotCreated(e);
          if (!signal.aborted)
            metrics.submission(isPpinfraError(e) && e.kind === 'rate_limited' ? 'rate_limited' : 'error');
          if (isPpinfraError(e) && e.kind === 'rate_limited' && !signal.aborted)
            requeued = await requeue(job, progress, log);
          throw requeued ? new Requeued() : e;
        }
        billed = true;
        metrics.submission('accepted');
        deps.pacer.accepted();
        job.submittedAt = now();
        job.estimate = estimateAtSubmit(estimator, durationKey(job));
        await save(job, 'polling');
        log.info({ taskId: job.taskId, size: job.size }, 'task submitted');
      }
      const submittedAt = job.submittedAt ?? now();
      const estimate = () => inFlightEstimate(job.estimate, estimator.estimate(durationKey(job)));
      progress.show({ phase: 'generating', expectedAt: submittedAt + estimate().expectedMs });
      const result = await pollTask(job.taskId, {
        client,
        submittedAt,
        // From the submission: time spent in the queue is bounded on its own.
        deadline: submittedAt + settings.timeoutMs,
        estimate: () => estimator.estimate(durationKey(job)),
        atSubmit: job.estimate,
        minIntervalMs: settings.pollMinIntervalMs,
        maxIntervalMs: settings.pollMaxIntervalMs,
        signal,
        limiter: deps.pollLimiter,
        now,
        onUpdate: () => {
          const { expectedMs, spreadMs } = estimate();
          if (now() > submittedAt + expectedMs + 2 * spreadMs) progress.show({ phase: 'late' });
        },
      });
      limits.apiResult(true);
      await progress.stop();
      await finisher.complete(job, result, log, signal);
    } catch (e) {
      if (e instanceof Requeued) return;
      await progress.stop();
      if (e instanceof JobConflictError) {
        // Another writer moved the job on first (a second process resumed it): that one finishes it.
        log.warn({ taskId: job.taskId }, 'the job was moved on elsewhere; leaving it to that run');
        return;
      }
      if (e instanceof DeliveredNotRecorded) {
        // Never a failure over a delivered image: the reconciler finishes the record.
        log.error({ err: e.cause }, 'a delivered image could not be recorded; the reconciler will finish it');
        return;
      }
      if (signal.aborted) {
        log.info({ taskId: job.taskId, state: job.state }, 'job paused for shutdown; it resumes on the next start');
        return;
      }
      // The slot (and a refund) first, so a member told of a failure can ask again at once.
      released = true;
      limits.release(job.userId, budgetKey(job), !billed, holdsSlot(job));
      await fail(job, e, log);
    } finally {
      // A requeued job keeps its place in the member's limits; a paused one resumes with them.
      if (!released && !requeued && (!signal.aborted || !job.taskId))
        limits.release(job.userId, budgetKey(job), !billed, holdsSlot(job));
    }
  }

  /**
   * A 429 on submit (after the client's own retries): the provider's budget is tighter than
   * configured. The pace slows, and the job goes back to the head of the queue instead of
   * failing, as long as its queue deadline allows.
   */
  async function requeue(job: Job, progress: ProgressReporter, log: Logger): Promise<boolean> {
    deps.pacer.throttled();
    if (now() - job.createdAt >= settings.queueTimeoutMs) return false;
    log.warn(
      { perMinute: deps.pacer.perMinute() },
      'the API rate-limited a submission; slowing down and requeueing the job',
    );
    await save(job, 'queued');
    waiting.unshift({ job, progress, seq: 0 });
    return true;
  }

  async function fail(job: Job, e: unknown, log: Logger, kind: FailureKind = isPpinfraError(e) ? e.kind : 'internal') {
    if (UNHEALTHY.has(kind)) limits.apiResult(false);
    // A failure that cannot be saved yet is told once it can: the reconciler finds the job again.
    await finisher.fail(job, e, log, kind).catch(() => undefined);
  }

  return { run, fail };
}
