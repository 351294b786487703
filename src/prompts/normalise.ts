/**
 * The form prompts and blocked terms are compared in. A member who wants a blocked word through
 * hides it from a plain `includes`: a zero-width space or a soft hyphen inside it, full-width or
 * styled letters, capitals, spaces between its letters. Both sides pass through the same fold, so
 * what the operator wrote and what the member typed meet in one form.
 */

/**
 * Code points that render as nothing: zero-width space, joiners, word joiner, soft hyphen, BOM,
 * variation selectors, the Mongolian vowel separator, the combining grapheme joiner, Hangul
 * fillers, tag characters. Unicode lists them all under one property.
 */
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/gu;

/** Any run of white space, the no-break and ideographic spaces included (`\s` is Unicode-aware). */
const SPACES = /\s+/gu;

/**
 * Three or more single characters each standing alone between spaces (`b a d`, `猫 在 月`):
 * a word spelled out to slip past a filter. Two are left alone, so `plan a b` stays as typed.
 */
const SPELLED_OUT = /(?<=^| )\S(?: \S){2,}(?= |$)/gu;

/**
 * Three or more single letters or digits each standing alone between punctuation or symbols
 * (`b.a.d`, `b-a-d`, `b_a_d`, `b·a·d`, or the blank Braille pattern, which is a symbol that
 * shows as a space): the same spelling out, which the model still reads as the word.
 */
const SPELLED_WITH_MARKS = /(?<![\p{L}\p{N}])[\p{L}\p{N}](?:[\s\p{P}\p{S}]+[\p{L}\p{N}]){2,}(?![\p{L}\p{N}])/gu;
const NOT_LETTER = /[^\p{L}\p{N}]/gu;

/**
 * Accents put on a word to break it (`b\u0301ad`, `ḅad`, a strike-through overlay): the combining
 * diacritics of the Latin, Greek and Cyrillic letters, and the symbol overlays. Only these
 * blocks: other scripts' combining marks (a Japanese voicing mark, an Indic vowel sign) make a
 * different word, and dropping them would block words the operator never listed.
 */
const DIACRITICS = /[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]/gu;

/** Folds that lower-casing leaves out but a reader sees as the same letters. */
const FOLDS: readonly [RegExp, string][] = [[/ß/gu, 'ss']];

/**
 * The comparison form: NFKC (full-width and styled letters to plain ones), invisible code points
 * and diacritics dropped, lower case, white space runs to one space, spelled-out words joined. Only for matching:
 * the prompt sent to the API is the one the member typed.
 */
export function normaliseForMatch(text: string): string {
  // NFKC first, since it can turn a visible character into an ignorable one (a half-width Hangul
  // filler); again after the drop, since an ignorable between a letter and its accent kept them apart.
  // Decomposed to take the diacritics off (`ḅ` is one code point until then), composed again after.
  let folded = text
    .normalize('NFKC')
    .replace(INVISIBLE, '')
    .normalize('NFKD')
    .replace(DIACRITICS, '')
    .normalize('NFKC')
    .toLowerCase();
  for (const [from, to] of FOLDS) folded = folded.replace(from, to);
  return folded
    .replace(SPACES, ' ')
    .trim()
    .replace(SPELLED_OUT, (run) => run.replaceAll(' ', ''))
    .replace(SPELLED_WITH_MARKS, (run) => run.replace(NOT_LETTER, ''));
}

/** BLOCKED_TERMS as the operator wrote it (comma-separated), in the comparison form; terms that fold to nothing are dropped. */
export function parseBlockedTerms(list: string): string[] {
  return [...new Set(list.split(',').map(normaliseForMatch).filter(Boolean))];
}

/** The first blocked term the text contains, both compared in the same folded form. */
export function findBlockedTerm(text: string, terms: readonly string[]): string | undefined {
  const folded = normaliseForMatch(text);
  return terms.find((term) => {
    const t = normaliseForMatch(term);
    return t !== '' && folded.includes(t);
  });
}
