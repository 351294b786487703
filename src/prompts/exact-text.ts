/**
 * Exact text in the picture, Qwen-Image's particular strength. The model renders words most
 * faithfully when they appear quoted, verbatim, in the prompt, with where they go said in plain
 * words; so the member types the words apart from the scene, and the bot writes the sentence.
 */
import type { PromptRules } from './check.ts';
import { findBlockedTerm } from './normalise.ts';

/** Longest text accepted, in code points: a sign, a title, a slogan; longer text renders poorly. */
export const TEXT_MAX_LENGTH = 120;

export const PLACEMENTS = ['top', 'center', 'bottom'] as const;
export type Placement = (typeof PLACEMENTS)[number];

export type TextResult =
  | { ok: true; text: string }
  | { ok: false; problem: 'empty' | 'mention' | 'blocked' }
  | { ok: false; problem: 'too_long'; length: number; limit: number };

/** Discord's mention syntax (`<@id>`, `<@&id>`, `<#id>`): it would be drawn as a number, not a name. */
const MENTION_SYNTAX = /<(@[!&]?|#)\d+>/;

/** Checked like a prompt, plus mention syntax; `@everyone` is plain text here and pings nobody. */
export function checkText(input: string, rules: Pick<PromptRules, 'blockedTerms'>): TextResult {
  // Inner spacing is part of the design; only the ends and line breaks are tidied.
  const text = input
    .normalize('NFC')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  if (!text) return { ok: false, problem: 'empty' };
  const length = [...text].length;
  if (length > TEXT_MAX_LENGTH) return { ok: false, problem: 'too_long', length, limit: TEXT_MAX_LENGTH };
  if (MENTION_SYNTAX.test(text)) return { ok: false, problem: 'mention' };
  if (findBlockedTerm(text, rules.blockedTerms) !== undefined) return { ok: false, problem: 'blocked' };
  return { ok: true, text };
}

/** Quote marks that do not occur in the text, so the model sees where the words begin and end. */
const QUOTES: readonly [string, string][] = [
  ['"', '"'],
  ['“', '”'],
  ['「', '」'],
  ['«', '»'],
];

const WHERE: Record<Placement, string> = {
  top: 'across the top of the image',
  center: 'in the center of the image',
  bottom: 'along the bottom of the image',
};

/**
 * The prompt sent to the API: the scene, then one sentence with the words quoted exactly and
 * where they go. The member is shown this final prompt with the result.
 */
export function composePrompt(scene: string, text?: string, placement?: Placement): string {
  if (!text) return scene;
  const [open, close] = QUOTES.find(([o, c]) => !text.includes(o) && !text.includes(c)) ?? QUOTES[0]!;
  const base = scene.replace(/[\s.。!！]+$/u, '');
  const where = placement ? ` ${WHERE[placement]}` : '';
  return `${base}. The image shows the text ${open}${text}${close}${where}, written exactly as given, every character legible.`;
}
