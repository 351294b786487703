import type { HoldReason, NsfwScores, Verdict } from '../domain/job.ts';
import type { NsfwPolicy, Sensitivity } from './settings.ts';
import { HOLD_REASONS, type NsfwThresholds } from '../domain/moderation.ts';

/**
 * Where a finished image may go, from two signals (the provider's flag and the local classifier's
 * scores), the channel's age restriction and the guild's choices. Pure tables, safe by default:
 * unknown channel state counts as not age-restricted, and an image the classifier could not look
 * at is held, never shown unchecked.
 */

export type { HoldReason };

/**
 * How a guild's sensitivity moves the operator's thresholds. Strict lowers each by a quarter
 * (0.6 -> 0.45, 0.8 -> 0.6); relaxed moves each halfway to certainty (0.6 -> 0.8, 0.8 -> 0.9), so
 * even relaxed never stops flagging what the classifier is sure of.
 */
const SENSITIVITY: Record<Sensitivity, (threshold: number) => number> = {
  strict: (t) => t * 0.75,
  standard: (t) => t,
  relaxed: (t) => t + (1 - t) / 2,
};

/** The thresholds in force for a guild. */
export function thresholdsFor(operator: NsfwThresholds, sensitivity: Sensitivity): NsfwThresholds {
  const scale = SENSITIVITY[sensitivity];
  return { porn: scale(operator.porn), sexy: scale(operator.sexy) };
}

const CLASSES: readonly (keyof NsfwScores)[] = ['drawing', 'hentai', 'neutral', 'porn', 'sexy'];

/**
 * Whether scores are what the model gives: a probability for each class, together about 1.
 * Anything else (a class the thread did not recognise left at 0, a NaN, which compares false
 * with every threshold) would pass as a clean image: such an answer counts as no classification.
 */
export function plausibleScores(scores: unknown): scores is NsfwScores {
  if (!scores || typeof scores !== 'object') return false;
  const values = CLASSES.map((name) => (scores as Record<string, unknown>)[name]);
  if (!values.every((v): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1)) return false;
  return Math.abs(values.reduce((a, b) => a + b, 0) - 1) <= 0.02;
}

/** The classifier's scores flag an image: explicit (`porn + hentai`) or suggestive (`sexy`) enough. */
export const scoresFlag = (scores: NsfwScores, thresholds: NsfwThresholds) =>
  scores.porn + scores.hentai >= thresholds.porn || scores.sexy >= thresholds.sexy;

type Channel = 'public' | 'age-restricted';

/**
 * What each reason alone does to an image, by channel and the guild's choice for age-restricted
 * channels. A flag (the provider's or the classifier's) may be spoilered where the guild allows
 * it; an image nobody could check, or one the guild wants to see first, is always held.
 */
const TABLE: Record<HoldReason, Record<Channel, Record<NsfwPolicy, Verdict>>> = {
  provider: {
    public: { spoiler: 'review', review: 'review' },
    'age-restricted': { spoiler: 'spoiler', review: 'review' },
  },
  classifier: {
    public: { spoiler: 'review', review: 'review' },
    'age-restricted': { spoiler: 'spoiler', review: 'review' },
  },
  classifier_failed: {
    public: { spoiler: 'review', review: 'review' },
    'age-restricted': { spoiler: 'review', review: 'review' },
  },
  // The member's own picture: what the edit made of it is a moderator's call, wherever it goes.
  input: {
    public: { spoiler: 'review', review: 'review' },
    'age-restricted': { spoiler: 'review', review: 'review' },
  },
  review_all: {
    public: { spoiler: 'review', review: 'review' },
    'age-restricted': { spoiler: 'review', review: 'review' },
  },
};

/** Of several reasons, the strictest verdict wins. */
const STRICTNESS: Record<Verdict, number> = { deliver: 0, spoiler: 1, review: 2, withhold: 3 };

/** What the classifier made of the image: its scores, or that it failed, or that it is off. */
export type Classification =
  | { classifier: 'ok'; scores: NsfwScores }
  | { classifier: 'failed' }
  | { classifier: 'off' };

export interface PolicyInput {
  /** The provider flagged the image (its signals read generously, `src/ppinfra/parse.ts`). */
  providerFlagged: boolean;
  classification: Classification;
  /** The operator's thresholds; the guild's sensitivity moves them. */
  thresholds: NsfwThresholds;
  sensitivity: Sensitivity;
  reviewAll: boolean;
  /** The classifier flagged the member's own picture an edit started from, or could not check it. */
  inputFlagged?: boolean;
  channelNsfw: boolean;
  nsfwChannels: NsfwPolicy;
}

export interface PolicyDecision {
  verdict: Verdict;
  /** Every reason that applies, those that decided the verdict first; empty for a clean image. */
  reasons: HoldReason[];
}

export function decide(input: PolicyInput): PolicyDecision {
  const { classification } = input;
  const applies: Record<HoldReason, boolean> = {
    provider: input.providerFlagged,
    classifier:
      classification.classifier === 'ok' &&
      scoresFlag(classification.scores, thresholdsFor(input.thresholds, input.sensitivity)),
    classifier_failed: classification.classifier === 'failed',
    review_all: input.reviewAll,
    input: input.inputFlagged === true,
  };
  const channel: Channel = input.channelNsfw ? 'age-restricted' : 'public';
  const alone = (reason: HoldReason) => TABLE[reason][channel][input.nsfwChannels];
  const reasons = HOLD_REASONS.filter((reason) => applies[reason]);
  const verdict = reasons.map(alone).reduce<Verdict>((a, b) => (STRICTNESS[b] > STRICTNESS[a] ? b : a), 'deliver');
  // Stable: among the reasons, the ones that alone give this verdict come first.
  const decisive = (reason: HoldReason) => (alone(reason) === verdict ? 0 : 1);
  return { verdict, reasons: [...reasons].sort((a, b) => decisive(a) - decisive(b)) };
}

/**
 * An approved image is shown as it is where the channel is age-restricted. Elsewhere it goes out
 * behind a spoiler, unless the only reason it was held is that the guild reviews every image: a
 * moderator approved an image nothing flagged. Records from before the reasons were kept were
 * held for a flag.
 */
export const approvedAsSpoiler = (channelNsfw: boolean, reasons?: readonly HoldReason[]) =>
  !channelNsfw && (reasons === undefined || reasons.some((reason) => reason !== 'review_all'));
