/**
 * Prompt checks done before anything is billed. Lengths count code points, not UTF-16 units,
 * so a Chinese or emoji prompt gets the same limit a person would count.
 */
export type PromptResult =
  | { ok: true; prompt: string }
  | { ok: false; problem: 'empty' }
  | { ok: false; problem: 'too_long'; length: number; limit: number }
  | { ok: false; problem: 'blocked'; term: string };

export interface PromptRules {
  maxLength: number;
  /** Lower-cased operator terms; a prompt containing one is refused. */
  blockedTerms: readonly string[];
}

export function checkPrompt(input: string, rules: PromptRules): PromptResult {
  const prompt = input.normalize('NFC').trim();
  if (!prompt) return { ok: false, problem: 'empty' };
  const length = [...prompt].length;
  if (length > rules.maxLength) return { ok: false, problem: 'too_long', length, limit: rules.maxLength };
  const folded = prompt.normalize('NFKC').toLowerCase();
  const term = rules.blockedTerms.find((t) => folded.includes(t));
  if (term) return { ok: false, problem: 'blocked', term };
  return { ok: true, prompt };
}
