import type { ReviewKind } from '../domain/job.ts';
import { createHolds } from './holds.ts';
import { createDecisions } from './decisions.ts';
import { createReports } from './reports.ts';
import { createInputCheck } from './input-check.ts';
import type { PendingReview, ReviewService, ReviewServiceDeps } from './review-types.ts';
import { FIELD, pendingSet, ALL_PENDING, heldSets, SWEEP_INTERVAL_MS, createReviewState } from './review-state.ts';

/**
 * Moderator review, free of discord.js: holds flagged images, routes them to the guild's review
 * channel, and carries out decisions. A decision is a claim in the shared state (SET NX on
 * Redis), so of two moderators clicking at once, or one double-clicking, exactly one decides;
 * the claim's value is the audit record.
 */
export function createReviewService(deps: ReviewServiceDeps): ReviewService {
  const ctx = createReviewState(deps);
  const { store, state, now, waiting, forget } = ctx;
  const holds = createHolds(ctx);
  const { routePending } = holds;
  let sweptAt = now();

  return {
    ...holds,
    ...createDecisions(ctx),
    ...createReports(ctx),
    ...createInputCheck(ctx),

    async pending(guildId) {
      const members = await state.members(pendingSet(guildId));
      const items = await Promise.all(
        members.map(async (member): Promise<PendingReview | undefined> => {
          const [jobId, kind] = member.split(':') as [string, ReviewKind];
          const job = await store.get(jobId);
          const review = job?.[FIELD[kind]];
          if (!job || !review || !waiting(job, kind)) {
            // Decided, expired or gone: it leaves the list for good.
            await forget(jobId, kind, job, guildId);
            return undefined;
          }
          return { job, kind, createdAt: review.createdAt, channelId: review.channelId, messageId: review.messageId };
        }),
      );
      return items.filter((i): i is PendingReview => Boolean(i)).sort((a, b) => a.createdAt - b.createdAt);
    },

    async resume() {
      await sweep();
      return routePending();
    },

    async pendingCount() {
      if (now() - sweptAt >= SWEEP_INTERVAL_MS) await sweep();
      return (await state.members(ALL_PENDING)).length;
    },

    sweep,
  };

  async function sweep(): Promise<number> {
    sweptAt = now();
    let dropped = 0;
    for (const member of await state.members(ALL_PENDING)) {
      const [jobId, kind] = member.split(':') as [string, ReviewKind];
      const job = await store.get(jobId);
      if (waiting(job, kind)) {
        // Holds from before the caps existed are counted from now on.
        if (kind === 'flag') await Promise.all(heldSets(job!).map((set) => state.add(set, jobId)));
        continue;
      }
      dropped++;
      await forget(jobId, kind, job);
    }
    return dropped;
  }
}
