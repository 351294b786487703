/**
 * Whether an image may be shown where it was asked for. A pure table: the API's NSFW flag
 * against the channel's age restriction. Unknown channel state counts as not age-restricted.
 */
export type Decision = 'deliver' | 'hold';

export function decide(input: { flagged: boolean; channelNsfw: boolean }): Decision {
  if (!input.flagged) return 'deliver';
  return input.channelNsfw ? 'deliver' : 'hold';
}
