// What a moderator reads on a review message: both signals, and why the image waits there.
import { describe, expect, it } from 'vitest';
import type { Job, NsfwFlags } from '../../src/domain/job.ts';
import { reviewBody, reviewEmbed } from '../../src/discord/review-messages.ts';

const job = (nsfw?: NsfwFlags): Job => ({
  id: 'j1',
  prompt: 'a lighthouse',
  size: '1024*1024',
  userId: '10000000000000001',
  userName: 'alice',
  guildId: '10000000000000002',
  channelId: '10000000000000003',
  channelNsfw: false,
  locale: 'en-US',
  state: 'held',
  reply: { applicationId: '4', token: 'tok', createdAt: 1 },
  createdAt: 1,
  polls: 3,
  ...(nsfw ? { nsfw } : {}),
});

const fields = (j: Job, kind: 'flag' | 'report' = 'flag', locale = 'en-US') =>
  Object.fromEntries((reviewEmbed(j, kind, [], locale).fields ?? []).map((f) => [f.name, f.value]));
const PROVIDER_CLEAN = { flagged: false, hasNsfwContents: null, detectionResult: null };

describe('the review message', () => {
  it('shows the classifier’s scores beside the provider’s raw flags, and that the classifier held it', () => {
    const shown = fields(
      job({
        ...PROVIDER_CLEAN,
        classifier: 'ok',
        scores: { drawing: 0.004, hentai: 0.021, neutral: 0.012, porn: 0.913, sexy: 0.05 },
        reasons: ['classifier'],
      }),
    );
    expect(shown['Why it was held']).toBe('The bot’s own check flagged it');
    expect(shown['The bot’s own NSFW check']).toBe('Porn 0.91 · Hentai 0.02 · Sexy 0.05 · Drawing 0.00 · Neutral 0.01');
    expect(shown['Flags from the image service']).toBe('`{"has_nsfw_contents":null,"nsfw_detection_result":null}`');
  });

  it('keeps the provider’s raw flags inside one code span, even when they hold a backtick', () => {
    const shown = fields(
      job({
        flagged: true,
        hasNsfwContents: '`[a link](https://example.com)` @everyone',
        detectionResult: null,
        reasons: ['provider'],
      }),
    );
    expect(shown['Flags from the image service']).toBe(
      '`{"has_nsfw_contents":"\'[a link](https://example.com)\' @everyone","nsfw_detection_result":null}`',
    );
  });

  it('says plainly when the classifier failed and the image was held unchecked', () => {
    const shown = fields(job({ ...PROVIDER_CLEAN, classifier: 'failed', reasons: ['classifier_failed'] }));
    expect(shown['Why it was held']).toBe('The bot’s own check failed: held unchecked');
    expect(shown['The bot’s own NSFW check']).toBe('⚠️ The check failed: held unchecked');
  });

  it('says when the classifier is off, and names every reason, the deciding one first', () => {
    const shown = fields(
      job({
        flagged: true,
        hasNsfwContents: true,
        detectionResult: { valid: true },
        classifier: 'off',
        reasons: ['review_all', 'provider'],
      }),
    );
    expect(shown['Why it was held']).toBe('This server reviews every image · The image service flagged it');
    expect(shown['The bot’s own NSFW check']).toBe(
      'Off (the bot operator turned it off): only the image service’s flags count',
    );
    expect(shown['Flags from the image service']).toBe(
      '`{"has_nsfw_contents":true,"nsfw_detection_result":{"valid":true}}`',
    );
  });

  it('reads a record from before the classifier as held for the provider’s flag, with no classifier line', () => {
    const shown = fields(job({ flagged: true, hasNsfwContents: true, detectionResult: null }));
    expect(shown['Why it was held']).toBe('The image service flagged it');
    expect(shown['The bot’s own NSFW check']).toBeUndefined();
  });

  it('gives a report both signals but no reason for a hold it never had', () => {
    const shown = fields(
      job({
        ...PROVIDER_CLEAN,
        classifier: 'ok',
        scores: { drawing: 0, hentai: 0, neutral: 1, porn: 0, sexy: 0 },
        reasons: [],
      }),
      'report',
    );
    expect(shown['Why it was held']).toBeUndefined();
    expect(shown['The bot’s own NSFW check']).toBe('Porn 0.00 · Hentai 0.00 · Sexy 0.00 · Drawing 0.00 · Neutral 1.00');
  });

  it('speaks the review channel’s language and pings nobody', () => {
    const j = job({
      ...PROVIDER_CLEAN,
      classifier: 'ok',
      scores: { drawing: 0, hentai: 0.3, neutral: 0, porn: 0.6, sexy: 0.1 },
      reasons: ['classifier'],
    });
    const shown = fields(j, 'flag', 'zh-CN');
    expect(shown.暂扣原因).toBe('机器人自身的检查标记了它');
    expect(shown['机器人自身的 NSFW 检查']).toBe('色情 0.60 · 色情动漫 0.30 · 性感 0.10 · 绘画 0.00 · 中性 0.00');
    expect(reviewBody(j, 'flag', [], 'en-US', 'SPOILER_x.jpeg').allowed_mentions).toEqual({ parse: [] });
  });
});
