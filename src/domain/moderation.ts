import type { HoldReason } from './job.ts';

/** Where the local classifier stands, for `/healthz` and the policy. */
export type ClassifierStatus = 'off' | 'loading' | 'ready' | 'failed';

/**
 * Why a classification was not made: the model is not loaded or could not be (`unavailable`), no
 * answer within NSFW_CLASSIFIER_TIMEOUT_MS (`timeout`), the bytes are not an image libvips reads
 * (`decode`), or the model's thread died or the model threw on the image (`crashed`).
 */
export type ClassifierFailure = 'unavailable' | 'timeout' | 'decode' | 'crashed';
export const CLASSIFIER_FAILURES: readonly ClassifierFailure[] = ['unavailable', 'timeout', 'decode', 'crashed'];

/** Why an image is withheld or spoilered: what a moderator is told and what the metric counts. */
export const HOLD_REASONS: readonly HoldReason[] = [
  'provider',
  'classifier',
  'classifier_failed',
  'input',
  'review_all',
];

/** The operator's thresholds (NSFW_THRESHOLD_PORN, NSFW_THRESHOLD_SEXY), for the standard sensitivity. */
export interface NsfwThresholds {
  /** `porn + hentai` at or above this flags an image. */
  porn: number;
  /** `sexy` at or above this flags an image. */
  sexy: number;
}

export const DEFAULT_THRESHOLDS: NsfwThresholds = { porn: 0.6, sexy: 0.8 };
