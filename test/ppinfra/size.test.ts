import { describe, expect, it } from 'vitest';
import { SIZE_PRESETS, parseSize, MAX_SIDE, MIN_SIDE } from '../../src/ppinfra/size.ts';
import { checkPrompt } from '../../src/prompts/check.ts';

describe('parseSize', () => {
  it.each([
    ['1024*1024', '1024*1024'],
    ['1024x768', '1024*768'],
    ['1024X768', '1024*768'],
    ['1024×768', '1024*768'],
    [' 1024 * 768 ', '1024*768'],
    ['1024 x 768', '1024*768'],
    ['１０２４＊７６８', '1024*768'],
    ['256*1536', '256*1536'],
    ['square', '1024*1024'],
    ['Wide', '1536*864'],
    ['16:9', '1536*864'],
    ['portrait', '1104*1472'],
  ])('accepts %j as %s', (input, size) => {
    expect(parseSize(input)).toMatchObject({ ok: true, size });
  });

  it.each(['', 'big', '1024', '1024*', '*1024', '1024/1024', '1024*1024*3', '-512*512', '10.5*512', 'huge-square'])(
    'rejects %j as a format problem',
    (input) => {
      expect(parseSize(input)).toEqual({ ok: false, problem: 'format' });
    },
  );

  it.each([
    ['255*1024', 255, 1024],
    ['1024*1537', 1024, 1537],
    ['2048x2048', 2048, 2048],
    ['0*0', 0, 0],
  ])('rejects %j as out of range', (input, width, height) => {
    expect(parseSize(input)).toEqual({ ok: false, problem: 'range', width, height });
  });

  it('keeps every preset inside the API limits', () => {
    for (const preset of SIZE_PRESETS) {
      const parsed = parseSize(preset.name);
      expect(parsed.ok, preset.name).toBe(true);
      if (parsed.ok) {
        expect(Math.min(parsed.width, parsed.height)).toBeGreaterThanOrEqual(MIN_SIDE);
        expect(Math.max(parsed.width, parsed.height)).toBeLessThanOrEqual(MAX_SIDE);
      }
    }
  });
});

describe('checkPrompt', () => {
  const rules = { maxLength: 10, blockedTerms: ['forbidden'] };
  it.each([
    ['  a cat  ', { ok: true, prompt: 'a cat' }],
    ['', { ok: false, problem: 'empty' }],
    ['   \n\t ', { ok: false, problem: 'empty' }],
    ['0123456789', { ok: true, prompt: '0123456789' }],
    ['01234567890', { ok: false, problem: 'too_long', length: 11, limit: 10 }],
    ['一只猫在月亮上', { ok: true, prompt: '一只猫在月亮上' }],
    ['🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱', { ok: true, prompt: '🐱🐱🐱🐱🐱🐱🐱🐱🐱🐱' }],
    ['FORBIDDEN', { ok: false, problem: 'blocked', term: 'forbidden' }],
    ['ＦＯＲＢＩＤＤＥＮ', { ok: false, problem: 'blocked', term: 'forbidden' }],
  ])('%j -> %o', (input, expected) => {
    expect(checkPrompt(input, rules)).toEqual(expected);
  });
});
