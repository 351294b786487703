/**
 * Button (and modal) custom ids carry everything a click needs, with a version prefix, so buttons on old
 * messages keep working after a restart or an upgrade: `qi1:<action>:<jobId>`.
 */
const PREFIX = 'qi1';
// Only ever added to: a message posted months ago still carries the old ones.
export const ACTIONS = [
  'regen',
  'del',
  'report',
  'approve',
  'reject',
  'remove',
  'keep',
  'edit',
  'history',
  'change',
  'upscale',
  'upscale2k',
  'fetch',
] as const;
export type ButtonAction = (typeof ACTIONS)[number];

export const encodeCustomId = (action: ButtonAction, jobId: string) => `${PREFIX}:${action}:${jobId}`;

export function parseCustomId(customId: string): { action: ButtonAction; jobId: string } | null {
  const [prefix, action, jobId, ...rest] = customId.split(':');
  if (prefix !== PREFIX || rest.length || !jobId || !/^[\w-]{1,64}$/.test(jobId)) return null;
  return (ACTIONS as readonly string[]).includes(action ?? '') ? { action: action as ButtonAction, jobId } : null;
}
