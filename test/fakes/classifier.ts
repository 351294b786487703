/**
 * A stand-in for the local NSFW classifier (the real one runs a model in a worker thread): it
 * answers each image with the scores a test gives, or fails the way a broken classifier does,
 * and remembers the bytes it was shown.
 */
import type { NsfwScores } from '../../src/domain/job.ts';
import type { ImageClassifier } from '../../src/moderation/classifier.ts';
import type { ClassifierStatus } from '../../src/domain/moderation.ts';

/** A photo of nothing in particular: every sensitivity shows it. */
export const CLEAN_SCORES: NsfwScores = { drawing: 0.02, hentai: 0.01, neutral: 0.95, porn: 0.01, sexy: 0.01 };
/** What nsfwjs says of an explicit photo. */
export const PORN_SCORES: NsfwScores = { drawing: 0.01, hentai: 0.02, neutral: 0.02, porn: 0.9, sexy: 0.05 };

/** Scores for every image, an error to reject with, or `'hang'` for a classifier that never answers. */
export type FakeAnswer = NsfwScores | Error | 'hang';

export interface FakeClassifier extends ImageClassifier {
  /** The images it was asked about, in order. */
  seen: Uint8Array[];
  /** Changes what it answers from now on. */
  answer(next: FakeAnswer | ((image: Uint8Array) => FakeAnswer)): void;
}

export function fakeClassifier(
  first: FakeAnswer | ((image: Uint8Array) => FakeAnswer),
  status: ClassifierStatus = 'ready',
): FakeClassifier {
  let answer = typeof first === 'function' ? first : () => first;
  const seen: Uint8Array[] = [];
  return {
    seen,
    answer(next) {
      answer = typeof next === 'function' ? next : () => next;
    },
    classify(image) {
      seen.push(image);
      const given = answer(image);
      if (given === 'hang') return new Promise<NsfwScores>(() => undefined);
      return given instanceof Error ? Promise.reject(given) : Promise.resolve(given);
    },
    status: () => status,
    close: () => Promise.resolve(),
  };
}
