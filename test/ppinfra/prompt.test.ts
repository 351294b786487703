// Blocked terms match whatever disguise the member puts on them: both the operator's terms and
// the prompt are folded the same way before they are compared.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { checkPrompt } from '../../src/prompts/check.ts';
import { checkText } from '../../src/prompts/exact-text.ts';
import { normaliseForMatch, parseBlockedTerms } from '../../src/prompts/normalise.ts';

const rules = { maxLength: 100, blockedTerms: parseBlockedTerms('bad') };

/** Each carries the word `bad` in a disguise a plain `includes` misses. */
const DISGUISED: [string, string][] = [
  ['zero-width space', 'a b\u200bad dog'],
  ['zero-width joiner and non-joiner', 'a b\u200da\u200cd dog'],
  ['word joiner', 'b\u2060ad'],
  ['soft hyphen', 'a b\u00ada\u00add idea'],
  ['byte order mark', '\ufeffbad'],
  ['variation selector', 'ba\ufe0fd'],
  ['Mongolian vowel separator', 'b\u180ead'],
  ['combining grapheme joiner', 'ba\u034fd'],
  ['tag characters', 'b\u{e0041}ad'],
  ['Hangul filler', 'b\u3164ad'],
  ['half-width Hangul filler', 'b\uffa0ad'],
  ['spelled out, single spaces', 'B A D'],
  ['spelled out, double spaces', 'B  A  D'],
  ['spelled out, no-break spaces', 'b\u00a0a\u00a0d'],
  ['spelled out, ideographic spaces', 'b\u3000a\u3000d'],
  ['spelled out inside a sentence', 'a very b  a  d dog'],
  ['full-width letters', 'ＢＡＤ'],
  ['mathematical letters', '𝐛𝐚𝐝'],
  ['circled letters', 'ⓑⓐⓓ'],
  ['mixed case', 'a BaD dog'],
  ['spelled out with dots', 'a b.a.d dog'],
  ['spelled out with hyphens', 'b-a-d'],
  ['spelled out with underscores', 'b_a_d'],
  ['spelled out with asterisks', 'b*a*d'],
  ['spelled out with middle dots', 'b·a·d'],
  ['spelled out with blank Braille patterns', 'b\u2800a\u2800d'],
  ['combining accent', 'b\u0301ad'],
  ['precomposed accented letter', '\u1e05ad'],
  ['strike-through overlay', 'ba\u0335d'],
];

const INNOCENT = ['a cat', 'a b c', 'plan a b', 'ba d', 'a bath day', 'b\u00a0ad', 'b.ad', 'a-b-c', 'A.B. Bodger'];

describe('blocked terms after normalising', () => {
  it.each(DISGUISED)('%s matches the term `bad` in a prompt', (_, prompt) => {
    expect(checkPrompt(prompt, rules)).toEqual({ ok: false, problem: 'blocked', term: 'bad' });
  });

  it.each(DISGUISED)('%s matches the term `bad` in exact text', (_, text) => {
    expect(checkText(text, rules)).toEqual({ ok: false, problem: 'blocked' });
  });

  it.each(INNOCENT)('%j is not blocked', (prompt) => {
    expect(checkPrompt(prompt, rules)).toEqual({ ok: true, prompt });
  });

  it('whatever the operator typed, the terms are kept in the same form', () => {
    expect(parseBlockedTerms(' BAD , Ｆｏｏ\u200b, ,\u200b, very  BAD, Straße, bad')).toEqual([
      'bad',
      'foo',
      'very bad',
      'strasse',
    ]);
    const loaded = loadConfig({
      DISCORD_TOKEN: 'token-value',
      PPINFRA_API_KEY: 'key-value',
      BLOCKED_TERMS: 'B\u00adAD, ＵＧＬＹ',
    });
    expect(loaded.ok && loaded.config.generation.blockedTerms).toEqual(['bad', 'ugly']);
  });

  it.each([
    ['a very bad idea', 'very bad'],
    ['a VERY\u00a0\u00a0bad idea', 'very bad'],
    ['eine STRASSE', 'straße'],
    ['eine Straße', 'strasse'],
  ])('multi-word and folded terms: %j matches %j', (prompt, term) => {
    expect(checkPrompt(prompt, { maxLength: 100, blockedTerms: parseBlockedTerms(term) })).toMatchObject({
      ok: false,
      problem: 'blocked',
    });
  });

  it('keeps the marks that make another word in other scripts: a Japanese voicing mark is not an accent', () => {
    // ばか folded to はか would block はかせ (a doctor).
    expect(checkPrompt('はかせ', { maxLength: 100, blockedTerms: parseBlockedTerms('ばか') })).toEqual({
      ok: true,
      prompt: 'はかせ',
    });
    expect(checkPrompt('ばか', { maxLength: 100, blockedTerms: parseBlockedTerms('ばか') })).toMatchObject({
      ok: false,
      problem: 'blocked',
    });
  });

  it('an invisible-only term matches nothing rather than everything', () => {
    expect(checkPrompt('a cat', { maxLength: 100, blockedTerms: ['\u200b'] })).toEqual({ ok: true, prompt: 'a cat' });
  });

  it('the prompt sent on is the one the member typed, not the folded form', () => {
    expect(checkPrompt('Ｈｅｌｌｏ  World', rules)).toEqual({ ok: true, prompt: 'Ｈｅｌｌｏ  World' });
  });

  it('folding twice changes nothing', () => {
    for (const [, prompt] of DISGUISED)
      expect(normaliseForMatch(normaliseForMatch(prompt))).toBe(normaliseForMatch(prompt));
  });
});
