import type { Verdict } from '../jobs/types.ts';
import type { NsfwPolicy } from './settings.ts';

/**
 * Where a finished image may go: the API's NSFW flag against the channel's age restriction and
 * the guild's choice for age-restricted channels. A pure table, safe by default: unknown channel
 * state counts as not age-restricted, so a flagged image there is always reviewed first.
 */
const TABLE: Record<'clean' | 'flagged-public' | 'flagged-nsfw', Record<NsfwPolicy, Verdict>> = {
  clean: { spoiler: 'deliver', review: 'deliver' },
  'flagged-public': { spoiler: 'review', review: 'review' },
  'flagged-nsfw': { spoiler: 'spoiler', review: 'review' },
};

export function decide(input: { flagged: boolean; channelNsfw: boolean; nsfwChannels: NsfwPolicy }): Verdict {
  const row = !input.flagged ? 'clean' : input.channelNsfw ? 'flagged-nsfw' : 'flagged-public';
  return TABLE[row][input.nsfwChannels];
}

/** An approved image is shown as it is only where the channel is age-restricted. */
export const approvedAsSpoiler = (channelNsfw: boolean) => !channelNsfw;
