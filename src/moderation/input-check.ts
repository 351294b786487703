import { plausibleScores, scoresFlag, thresholdsFor } from './policy.ts';
import { within, type ReviewState } from './review-state.ts';
import type { ReviewService } from './review-types.ts';

/**
 * A member's own picture, looked at before an edit of it is asked for. Nothing is refused here:
 * a flagged picture only marks the job, so what the edit makes of it waits for a moderator. Fails
 * closed like the look at a result: a classifier that is on but cannot answer flags the picture.
 */
export function createInputCheck(ctx: ReviewState): Pick<ReviewService, 'inputFlagged'> {
  const { classifier, settings, thresholds, log } = ctx;
  return {
    async inputFlagged(guildId, bytes, timeoutMs) {
      if (classifier.status() === 'off') return false;
      try {
        const [scores, guild] = await Promise.all([
          within(classifier.classify(bytes), timeoutMs),
          settings.get(guildId ?? 'dm'),
        ]);
        if (!plausibleScores(scores)) throw new Error('the NSFW classifier answered scores that are not probabilities');
        return scoresFlag(scores, thresholdsFor(thresholds, guild.sensitivity));
      } catch (err) {
        log.warn(
          { err, guildId },
          'the NSFW classifier could not check a member’s picture: its edit is held for review',
        );
        return true;
      }
    },
  };
}
