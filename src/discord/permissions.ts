import { PermissionFlagsBits, type PermissionsBitField } from 'discord.js';

/** What the bot needs in a channel to post a result: the image, its embed and the buttons. */
export const REQUIRED_PERMISSIONS = {
  'View Channel': PermissionFlagsBits.ViewChannel,
  'Send Messages': PermissionFlagsBits.SendMessages,
  'Attach Files': PermissionFlagsBits.AttachFiles,
  'Embed Links': PermissionFlagsBits.EmbedLinks,
} as const;

/** What the bot needs in a review channel: what a result needs, and the history to find its review messages again. */
export const REVIEW_CHANNEL_PERMISSIONS = {
  ...REQUIRED_PERMISSIONS,
  'Read Message History': PermissionFlagsBits.ReadMessageHistory,
} as const;

/** The bot's missing permissions in the channel of an interaction (or of `required`), by their names in Discord's UI. */
export function missingPermissions(
  appPermissions: Readonly<PermissionsBitField> | null,
  required: Record<string, bigint> = REQUIRED_PERMISSIONS,
): string[] {
  if (!appPermissions) return [];
  return Object.entries(required)
    .filter(([, bit]) => !appPermissions.has(bit, false))
    .map(([name]) => name);
}

/** The OAuth2 permissions integer to invite the bot with. */
export const INVITE_PERMISSIONS =
  Object.values(REQUIRED_PERMISSIONS).reduce((a, b) => a | b, 0n) | PermissionFlagsBits.ReadMessageHistory;
