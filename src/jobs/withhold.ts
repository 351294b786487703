import type { Logger } from '../logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import { TERMINAL_STATES, type Delivery, type Job } from '../domain/job.ts';
import { updateJob, type JobStore } from './store.ts';

/**
 * A flagged image where nobody can review it (a server that did not install the bot, a
 * conversation between others, the bot's DM with DM_NSFW=hold): it ends `held` for good, with
 * nothing stashed and no review, and the member is told. False when another run ended the job.
 */
export async function withhold(
  job: Job,
  deps: { store: JobStore; delivery: Delivery; now: () => number; log: Logger; metrics: Pick<Metrics, 'jobFinished'> },
): Promise<boolean> {
  const finishedAt = deps.now();
  const ended = await updateJob(
    deps.store,
    job.id,
    (current) => {
      if (TERMINAL_STATES.has(current.state)) return false;
      Object.assign(current, { nsfw: job.nsfw, finishedAt, state: 'held', unseen: 'withheld' });
      return true;
    },
    job,
  );
  if (!ended) return false;
  Object.assign(job, ended);
  deps.metrics.jobFinished('held', 'none');
  deps.log.warn(
    { taskId: job.taskId, nsfw: job.nsfw, place: job.place },
    'flagged image withheld: nobody can review it there',
  );
  // The image is withheld either way: a member who can't be told is no reason to fail the job.
  await deps.delivery
    .notice(job, 'withheld')
    .catch((err: unknown) => deps.log.warn({ err }, 'could not tell the member their image was withheld'));
  return true;
}
