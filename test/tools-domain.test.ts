import { describe, expect, it } from 'vitest';
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
