// What a result's record says about starting a new image from it (Change…, Upscale).
import type { Job } from './job.ts';

/**
 * A result a new image may start from: delivered, and no moderator rejected it or took it down
 * (its message may still be on screen, with its buttons). The message goes out before the record's
 * final save (`delivering`, or `held` while an approval publishes it), so a click on a message
 * that shows the image can come first: only a job that ended without its image is refused.
 */
export function usableSource(job: Job): boolean {
  return (
    job.state !== 'failed' && job.review?.decision?.decision !== 'reject' && job.report?.decision?.decision !== 'remove'
  );
}

/**
 * A source something flagged, or that went out behind a spoiler, flags what is made of it: an
 * approval showed that image, not the next one. Held only because the guild reviews everything
 * is no flag.
 */
export function sourceFlagged(job: Job): boolean {
  return Boolean(job.published?.spoiler) || (job.nsfw?.reasons ?? []).some((reason) => reason !== 'review_all');
}
