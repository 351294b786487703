/**
 * Prompt checks done before anything is billed. Lengths count code points, not UTF-16 units,
 * so a Chinese or emoji prompt gets the same limit a person would count.
 */
import { findBlockedTerm } from './normalise.ts';

export type PromptResult =
  | { ok: true; prompt: string }
  | { ok: false; problem: 'empty' }
  | { ok: false; problem: 'too_long'; length: number; limit: number }
  | { ok: false; problem: 'blocked'; term: string };

export interface PromptRules {
  maxLength: number;
  /** Operator terms (see `parseBlockedTerms`); a prompt containing one, once both are folded alike, is refused. */
  blockedTerms: readonly string[];
}

export function checkPrompt(input: string, rules: PromptRules): PromptResult {
  const prompt = input.normalize('NFC').trim();
  if (!prompt) return { ok: false, problem: 'empty' };
  const length = [...prompt].length;
  if (length > rules.maxLength) return { ok: false, problem: 'too_long', length, limit: rules.maxLength };
  const term = findBlockedTerm(prompt, rules.blockedTerms);
  if (term) return { ok: false, problem: 'blocked', term };
  return { ok: true, prompt };
}
