import { describe, expect, it } from 'vitest';
import type { Job, NsfwFlags } from '../src/domain/job.ts';
import { sourceFlagged, usableSource } from '../src/domain/source.ts';
import { durationKey, upscaledSize } from '../src/domain/tools.ts';

describe('what the image tools are estimated and shown by', () => {
  it('learns a generation by its size, an edit by its source, an upscale by its target', () => {
    expect(durationKey({ size: '1024*1024' })).toBe('1024*1024');
    expect(durationKey({ size: '800*600', tool: 'edit' })).toBe('edit:800*600');
    expect(durationKey({ size: '800*600', tool: 'upscale', resolution: '4k' })).toBe('upscale:4k');
    expect(durationKey({ size: '800*600', tool: 'upscale' })).toBe('upscale:2k');
  });

  it('an upscale takes the long side to its target and keeps the ratio', () => {
    expect(upscaledSize({ width: 1024, height: 1024 }, '2k')).toEqual({ width: 2048, height: 2048 });
    expect(upscaledSize({ width: 1536, height: 864 }, '4k')).toEqual({ width: 4096, height: 2304 });
    expect(upscaledSize({ width: 600, height: 800 }, '2k')).toEqual({ width: 1536, height: 2048 });
  });
});

describe('what a result’s record says about working on it again', () => {
  const decided = (decision: 'approve' | 'reject' | 'remove' | 'keep') => ({
    status: 'decided' as const,
    createdAt: 0,
    decision: {
      jobId: 'j',
      guildId: 'g',
      review: 'flag' as const,
      decision,
      moderatorId: 'm',
      moderatorName: 'mod',
      at: 0,
    },
  });
  const job = (over: Partial<Job>) => ({ state: 'delivered', ...over }) as Job;

  it('a job that ended without its image, or that a moderator rejected or took down, is no source', () => {
    expect(usableSource(job({}))).toBe(true);
    expect(usableSource(job({ state: 'failed' }))).toBe(false);
    expect(usableSource(job({ state: 'held', review: decided('reject') }))).toBe(false);
    expect(usableSource(job({ report: decided('remove') }))).toBe(false);
    expect(usableSource(job({ report: decided('keep'), review: decided('approve') }))).toBe(true);
  });

  it('a source something flagged, or shown behind a spoiler, flags what is made of it; review-all alone does not', () => {
    const nsfw = (reasons: NsfwFlags['reasons']) => ({
      flagged: false,
      hasNsfwContents: null,
      detectionResult: null,
      reasons,
    });
    expect(sourceFlagged(job({}))).toBe(false);
    expect(sourceFlagged(job({ nsfw: nsfw(['review_all']) }))).toBe(false);
    expect(sourceFlagged(job({ nsfw: nsfw(['review_all', 'classifier']) }))).toBe(true);
    expect(sourceFlagged(job({ nsfw: nsfw(['input']) }))).toBe(true);
    expect(sourceFlagged(job({ published: { channelId: 'c', messageId: 'm', spoiler: true } }))).toBe(true);
  });
});
