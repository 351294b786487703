import { budgetKey } from '../../domain/place.ts';
import type { RecoveryReason } from '../../ops/metrics.ts';
import { updateJob } from '../store.ts';
import { TERMINAL_STATES, type Job, type JobStep } from '../../domain/job.ts';

import type { StepContext } from './context.ts';

/** BullMQ states in which a step will still run. */
const LIVE: ReadonlySet<string> = new Set(['waiting', 'wait', 'delayed', 'active', 'prioritized', 'waiting-children']);
/** Beyond its lock, how long a job may stay quiet past its step's due time before the reconciler looks at its step. */
const RECONCILE_MARGIN_MS = 1_000;

/** The safety net: every unfinished job whose step is gone or failed is re-queued or ended. */
export function createReconciler(ctx: StepContext) {
  const { deps, now, metrics, queues, submitWindowMs, logFor, plan, enqueue, fail } = ctx;
  const { store, limits, settings } = deps;

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
      logFor(job).warn(
        { state: job.state, step: job.step?.id, reason },
        'reconciler: an unfinished job had nothing moving it on',
      );
    }
    return recovered;
  }

  async function reconcile(): Promise<number> {
    let recovered = 0;
    // Jobs counted in flight that ended (a process died between the end and the release).
    for (const id of await limits.flightIds()) {
      const job = await store.get(id);
      if (!job || TERMINAL_STATES.has(job.state))
        await limits.release({
          jobId: id,
          userId: job?.userId ?? '',
          guildId: job ? budgetKey(job) : null,
          refund: false,
        });
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

  return { reconcile };
}
