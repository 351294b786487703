import { describe, expect, it } from 'vitest';
import type { NsfwScores } from '../../src/domain/job.ts';
import {
  approvedAsSpoiler,
  decide,
  thresholdsFor,
  type Classification,
  type PolicyInput,
} from '../../src/moderation/policy.ts';
import { DEFAULT_THRESHOLDS } from '../../src/domain/moderation.ts';

const scores = (over: Partial<NsfwScores> = {}): NsfwScores => ({
  drawing: 0.02,
  hentai: 0.01,
  neutral: 0.95,
  porn: 0.01,
  sexy: 0.01,
  ...over,
});
const CLEAN: Classification = { classifier: 'ok', scores: scores() };
const PORN: Classification = { classifier: 'ok', scores: scores({ porn: 0.9, neutral: 0.07 }) };
const FAILED: Classification = { classifier: 'failed' };
const OFF: Classification = { classifier: 'off' };

const input = (over: Partial<PolicyInput> = {}): PolicyInput => ({
  providerFlagged: false,
  classification: CLEAN,
  thresholds: DEFAULT_THRESHOLDS,
  sensitivity: 'standard',
  reviewAll: false,
  channelNsfw: false,
  nsfwChannels: 'spoiler',
  ...over,
});

describe('the moderation policy', () => {
  it.each([
    // provider, classifier, age-restricted, guild's choice there -> verdict
    [false, CLEAN, false, 'spoiler', 'deliver'],
    [false, CLEAN, true, 'review', 'deliver'],
    [true, CLEAN, false, 'spoiler', 'review'],
    [true, CLEAN, false, 'review', 'review'],
    [true, CLEAN, true, 'spoiler', 'spoiler'],
    [true, CLEAN, true, 'review', 'review'],
    [false, PORN, false, 'spoiler', 'review'],
    [false, PORN, false, 'review', 'review'],
    [false, PORN, true, 'spoiler', 'spoiler'],
    [false, PORN, true, 'review', 'review'],
    [true, PORN, true, 'spoiler', 'spoiler'],
    [false, FAILED, false, 'spoiler', 'review'],
    [false, FAILED, true, 'spoiler', 'review'],
    [true, FAILED, true, 'spoiler', 'review'],
    [false, OFF, false, 'spoiler', 'deliver'],
    [false, OFF, true, 'review', 'deliver'],
    [true, OFF, false, 'spoiler', 'review'],
    [true, OFF, true, 'spoiler', 'spoiler'],
  ] as const)(
    'provider flag %s, classifier %o, age-restricted %s, policy %s -> %s',
    (providerFlagged, classification, channelNsfw, nsfwChannels, verdict) => {
      expect(decide(input({ providerFlagged, classification, channelNsfw, nsfwChannels })).verdict).toBe(verdict);
    },
  );

  it('holds every image when the guild reviews them all, even a clean one in an age-restricted channel', () => {
    expect(decide(input({ reviewAll: true }))).toEqual({ verdict: 'review', reasons: ['review_all'] });
    expect(decide(input({ reviewAll: true, channelNsfw: true }))).toEqual({
      verdict: 'review',
      reasons: ['review_all'],
    });
    expect(decide(input({ reviewAll: true, classification: OFF }))).toEqual({
      verdict: 'review',
      reasons: ['review_all'],
    });
  });

  it('names every reason, the ones that decided the verdict first', () => {
    expect(decide(input())).toEqual({ verdict: 'deliver', reasons: [] });
    expect(decide(input({ providerFlagged: true, classification: PORN }))).toEqual({
      verdict: 'review',
      reasons: ['provider', 'classifier'],
    });
    // A flag alone would be spoilered here: the guild's review of every image is what holds it.
    expect(decide(input({ classification: PORN, channelNsfw: true, reviewAll: true }))).toEqual({
      verdict: 'review',
      reasons: ['review_all', 'classifier'],
    });
    // The provider's flag alone would be spoilered here: the image nobody could check is held.
    expect(decide(input({ providerFlagged: true, classification: FAILED, channelNsfw: true }))).toEqual({
      verdict: 'review',
      reasons: ['classifier_failed', 'provider'],
    });
  });

  it.each([
    ['explicit: porn + hentai at the threshold', { porn: 0.3, hentai: 0.3 }, true],
    ['explicit: porn + hentai just under it', { porn: 0.3, hentai: 0.29 }, false],
    ['suggestive: sexy at its threshold', { sexy: 0.8 }, true],
    ['suggestive: sexy just under it', { sexy: 0.79 }, false],
    ['a drawing', { drawing: 0.99, neutral: 0 }, false],
  ])('flags on the standard thresholds (0.6, 0.8): %s', (_name, over, flagged) => {
    const { reasons } = decide(input({ classification: { classifier: 'ok', scores: scores(over) } }));
    expect(reasons.includes('classifier')).toBe(flagged);
  });

  it.each([
    // A borderline image: flagged where the guild is strict, shown where it is relaxed.
    ['strict', { porn: 0.5 }, 'review'],
    ['standard', { porn: 0.5 }, 'deliver'],
    ['relaxed', { porn: 0.5 }, 'deliver'],
    ['strict', { sexy: 0.65 }, 'review'],
    ['standard', { sexy: 0.65 }, 'deliver'],
    // What standard flags, relaxed may show; what relaxed flags, every sensitivity flags.
    ['standard', { porn: 0.7 }, 'review'],
    ['relaxed', { porn: 0.7 }, 'deliver'],
    ['relaxed', { sexy: 0.85 }, 'deliver'],
    ['relaxed', { porn: 0.85 }, 'review'],
    ['relaxed', { sexy: 0.95 }, 'review'],
  ] as const)('on %s sensitivity, %o -> %s', (sensitivity, over, verdict) => {
    expect(decide(input({ sensitivity, classification: { classifier: 'ok', scores: scores(over) } })).verdict).toBe(
      verdict,
    );
  });

  it('moves the operator’s thresholds by the guild’s sensitivity: strict a quarter lower, relaxed halfway to certainty', () => {
    const near = (t: { porn: number; sexy: number }) => ({
      porn: Number(t.porn.toFixed(4)),
      sexy: Number(t.sexy.toFixed(4)),
    });
    expect(near(thresholdsFor({ porn: 0.6, sexy: 0.8 }, 'strict'))).toEqual({ porn: 0.45, sexy: 0.6 });
    expect(thresholdsFor({ porn: 0.6, sexy: 0.8 }, 'standard')).toEqual({ porn: 0.6, sexy: 0.8 });
    expect(near(thresholdsFor({ porn: 0.6, sexy: 0.8 }, 'relaxed'))).toEqual({ porn: 0.8, sexy: 0.9 });
    // The operator's own thresholds are what the guilds start from.
    expect(decide(input({ thresholds: { porn: 0.95, sexy: 0.99 }, classification: PORN })).verdict).toBe('deliver');
  });

  it('publishes an approved image behind a spoiler outside age-restricted channels, unless only the review of every image held it', () => {
    expect(approvedAsSpoiler(false, ['classifier'])).toBe(true);
    expect(approvedAsSpoiler(false, ['classifier_failed'])).toBe(true);
    expect(approvedAsSpoiler(false, ['review_all', 'provider'])).toBe(true);
    expect(approvedAsSpoiler(false, ['review_all'])).toBe(false);
    expect(approvedAsSpoiler(true, ['provider'])).toBe(false);
    // Held before reasons were recorded: held for a flag.
    expect(approvedAsSpoiler(false, undefined)).toBe(true);
  });
});
