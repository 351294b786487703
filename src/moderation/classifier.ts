import type { NsfwScores } from '../domain/job.ts';
import type { ClassifierFailure, ClassifierStatus } from '../domain/moderation.ts';

/**
 * The local NSFW classifier: a second signal beside the provider's flags. It never decides on
 * its own what is shown; the policy (`policy.ts`) weighs its scores against the guild's
 * sensitivity. A classification that cannot be made rejects, and the caller holds the image.
 */
export interface ImageClassifier {
  /** Scores for an encoded image (JPEG, PNG, WebP). Rejects when it cannot classify it. */
  classify(image: Uint8Array): Promise<NsfwScores>;
  status(): ClassifierStatus;
  close(): Promise<void>;
}

/** The operator turned the classifier off (`NSFW_CLASSIFIER=off`): only the provider's flags count. */
export const classifierOff: ImageClassifier = {
  classify: () =>
    Promise.reject(new ClassifierError('unavailable', 'the NSFW classifier is off (NSFW_CLASSIFIER=off)')),
  status: () => 'off',
  close: () => Promise.resolve(),
};

/** A classification that could not be made: the caller holds the image (fail closed). */
export class ClassifierError extends Error {
  override readonly name = 'ClassifierError';
  readonly reason: ClassifierFailure;
  constructor(reason: ClassifierFailure, message: string) {
    super(message);
    this.reason = reason;
  }
}
