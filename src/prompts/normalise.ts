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

/** Folds that lower-casing leaves out but a reader sees as the same letters. */
const FOLDS: readonly [RegExp, string][] = [[/ß/gu, 'ss']];

/**
 * The comparison form: NFKC (full-width and styled letters to plain ones), invisible code points
 * dropped, lower case, white space runs to one space, spelled-out words joined. Only for matching:
 * the prompt sent to the API is the one the member typed.
 */
export function normaliseForMatch(text: string): string {
  // NFKC first, since it can turn a visible character into an ignorable one (a half-width Hangul
  // filler); again after the drop, since an ignorable between a letter and its accent kept them apart.
  let folded = text.normalize('NFKC').replace(INVISIBLE, '').normalize('NFKC').toLowerCase();
  for (const [from, to] of FOLDS) folded = folded.replace(from, to);
  return folded
    .replace(SPACES, ' ')
    .trim()
    .replace(SPELLED_OUT, (run) => run.replaceAll(' ', ''));
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
