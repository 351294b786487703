import { updateJob } from '../jobs/store.ts';
import type { AuditRecord, Job, ReviewDecision } from '../domain/job.ts';
import { approvedAsSpoiler } from './policy.ts';
import type { ReviewState } from './review-state.ts';
import type { ReviewService } from './review-types.ts';
import {
  AUDIT_TTL_MS,
  VALID,
  FIELD,
  pendingMember,
  UNROUTED,
  decisionKey,
  heldSets,
  reviewsJob,
  changedFields,
} from './review-state.ts';

/** A moderator's decision on a review: checked, applied once, recorded for audit. */
export function createDecisions(ctx: ReviewState): Pick<ReviewService, 'decide'> {
  const { deps, store, state, stash, desk, delivery, now, log, metrics, removePending, reviewedImage } = ctx;

  const effects: Record<ReviewDecision, (job: Job, imageUrl?: string) => Promise<void>> = {
    async approve(job, imageUrl) {
      const image = await reviewedImage(job, imageUrl);
      // Read now, days after the request perhaps: the channel may have changed since.
      const ageRestricted = await deps.channelAgeRestricted(job.channelId, { fresh: true });
      const outcome = await delivery.deliver(job, image, {
        spoiler: approvedAsSpoiler(ageRestricted, job.nsfw?.reasons),
      });
      if (outcome === 'over_upload_limit') job.error = { kind: 'upload_limit' };
      job.state = outcome === 'delivered' ? 'delivered' : 'failed';
    },
    reject: (job) => delivery.notice(job, 'rejected'),
    remove: (job) => desk.retract(job),
    keep: async () => undefined,
  };

  return {
    async decide({ jobId, kind, decision, moderator, imageUrl, message }) {
      const job = await store.get(jobId);
      const review = job?.[FIELD[kind]];
      if (!job || !review || !VALID[kind].includes(decision)) return { outcome: 'unknown' };
      if (message && !reviewsJob(job, review, message)) {
        log.warn(
          { jobId, guildId: message.guildId, messageId: message.messageId, moderatorId: moderator.id },
          'a decision named a job its message does not review; ignored',
        );
        return { outcome: 'unknown' };
      }
      const record: AuditRecord = {
        jobId,
        guildId: job.guildId,
        review: kind,
        decision,
        moderatorId: moderator.id,
        moderatorName: moderator.name,
        at: now(),
      };
      const key = decisionKey(jobId, kind);
      const claim = await state.claim(key, record, AUDIT_TTL_MS);
      if (!claim.won) return { outcome: 'already', record: claim.holder };
      const before = structuredClone(job);
      try {
        await effects[decision](job, imageUrl);
      } catch (err) {
        // Nothing took effect: give the decision back so a moderator can click again.
        await state.release(key);
        throw err;
      }
      // The effect happened: what it changed, and the decision, go onto the record as it is now,
      // which another writer (the job's last save, a report) may have saved since it was read.
      const changed = changedFields(before, job);
      const decided = (await updateJob(
        store,
        jobId,
        (current) => {
          Object.assign(current, changed);
          current[FIELD[kind]] = { ...(current[FIELD[kind]] ?? review), status: 'decided', decision: record };
          return true;
        },
        job,
      ))!;
      await removePending(job.guildId, pendingMember(jobId, kind));
      metrics.moderationDecision(decision);
      if (kind === 'flag')
        await Promise.all([
          state.remove(UNROUTED, jobId),
          stash.delete(jobId),
          ...heldSets(job).map((set) => state.remove(set, jobId)),
        ]);
      log.info({ audit: record }, 'moderation decision');
      return { outcome: 'done', job: decided, record };
    },
  };
}
