import { budgetKey, tokenNoticeAt } from '../../domain/place.ts';
import { DelayedError, RateLimitError, Worker } from 'bullmq';
import type { PpinfraClient } from '../../ppinfra/client.ts';
import { isPpinfraError } from '../../ppinfra/errors.ts';
import { estimateAtSubmit } from '../estimator.ts';
import { DeliveredNotRecorded } from '../finish.ts';
import { mayBeLagging, pastDeadline, taskFailed } from '../poller.ts';
import { JobConflictError } from '../store.ts';
import { TERMINAL_STATES, type Job, type ProgressView } from '../../domain/job.ts';
import { durationKey } from '../../domain/tools.ts';
import { submitFor } from '../submit.ts';
import { certainlyNotCreated } from '../failures.ts';

import type { StepContext, Step, StepRun } from './context.ts';

const CHECKABLE: ReadonlySet<Job['state']> = new Set(['polling', 'delivering']);
/** While `MAX_JOBS_IN_FLIGHT` jobs are in flight, submissions pause this long before looking again. */
const FLIGHT_FULL_PAUSE_MS = 1_000;

/** The two steps of a job: `submit` sends the task, each `check` looks at it once and plans the next. */
export function createSteps(ctx: StepContext) {
  const {
    deps,
    now,
    metrics,
    finisher,
    submitWindowMs,
    logFor,
    plan,
    enqueue,
    owns,
    update,
    markShown,
    show,
    fail,
    estimateFor,
    delayFor,
    load,
  } = ctx;
  const { store, limits, pacer, settings, client } = deps;

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
    if (now() - job.createdAt >= settings.queueTimeoutMs)
      return void (await fail(job, new Error('waited too long in the queue'), 'queue_timeout', true));
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
      taskId = await submitFor(submitting, { client, editImageInput: settings.editImageInput });
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
      const estimate = estimateAtSubmit(deps.estimator, durationKey(j));
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
      return limits.release({ jobId: job.id, userId: job.userId, guildId: budgetKey(job), refund: false });
    }
    if (result.status === 'failed') return void (await fail(job, taskFailed(job.taskId, result.reason)));
    // Checked at least once, so a task that finished while every process was down is delivered.
    if (now() >= submittedAt + settings.timeoutMs) return void (await fail(job, pastDeadline(job.taskId)));
    return scheduleNext(run, job, polledAt, true);
  }

  /**
   * Counts the look on the record and plans the next, in one save; shows "taking longer" once,
   * and where only the token answers, that the image will come by DM: a check is planned for the
   * moment to say it, and once said nothing replaces it.
   */
  async function scheduleNext(run: StepRun, job: Job, polledAt: number, pending: boolean) {
    let view: ProgressView | undefined;
    const saved = await update(run, job, (j) => {
      if (!CHECKABLE.has(j.state)) return false;
      j.polls += 1;
      if (pending) j.pendingAt = polledAt;
      const estimate = estimateFor(j);
      const overdue =
        pending && j.polls > 1 && now() > (j.submittedAt ?? j.createdAt) + estimate.expectedMs + 2 * estimate.spreadMs;
      const noticeAt = tokenNoticeAt(j);
      const noticed = j.shown !== undefined && (JSON.parse(j.shown.view) as ProgressView).phase === 'expiring';
      view = undefined;
      if (noticeAt !== undefined && !noticed && now() >= noticeAt && markShown(j, { phase: 'expiring' }))
        view = { phase: 'expiring' };
      else if (overdue && !noticed && markShown(j, { phase: 'late' })) view = { phase: 'late' };
      const untilNotice = noticeAt !== undefined && !noticed && now() < noticeAt ? noticeAt - now() : Infinity;
      plan(j, 'check', Math.min(delayFor(j), untilNotice), run.id);
      return true;
    });
    if (!saved) return;
    if (view) await show(saved, view);
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
          deps.logger.error(
            { err: e, jobId: run.data.jobId },
            'a delivered image could not be recorded at any attempt; the reconciler will',
          );
          return;
        }
        const job = await store.get(run.data.jobId);
        if (!job || TERMINAL_STATES.has(job.state) || !owns(job, run)) return;
        logFor(job).error(
          { err: e, step: run.name, attempts: run.attemptsMade + 1 },
          'a job step failed at every attempt; ending the job',
        );
        await fail(job, e, isPpinfraError(e) ? e.kind : 'internal', job.state === 'queued');
      }
    };

  return { submitStep, checkStep, lastAttemptEnds };
}
