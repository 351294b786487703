// Permission bits of API v10 (names as in discord.js PermissionFlagsBits) and Discord's
// permission computation (base permissions from roles, then channel overwrites).
import type { PermissionsInput } from './types.ts';

export const PermissionBits = {
  CreateInstantInvite: 1n << 0n,
  KickMembers: 1n << 1n,
  BanMembers: 1n << 2n,
  Administrator: 1n << 3n,
  ManageChannels: 1n << 4n,
  ManageGuild: 1n << 5n,
  AddReactions: 1n << 6n,
  ViewAuditLog: 1n << 7n,
  PrioritySpeaker: 1n << 8n,
  Stream: 1n << 9n,
  ViewChannel: 1n << 10n,
  SendMessages: 1n << 11n,
  SendTTSMessages: 1n << 12n,
  ManageMessages: 1n << 13n,
  EmbedLinks: 1n << 14n,
  AttachFiles: 1n << 15n,
  ReadMessageHistory: 1n << 16n,
  MentionEveryone: 1n << 17n,
  UseExternalEmojis: 1n << 18n,
  ViewGuildInsights: 1n << 19n,
  Connect: 1n << 20n,
  Speak: 1n << 21n,
  MuteMembers: 1n << 22n,
  DeafenMembers: 1n << 23n,
  MoveMembers: 1n << 24n,
  UseVAD: 1n << 25n,
  ChangeNickname: 1n << 26n,
  ManageNicknames: 1n << 27n,
  ManageRoles: 1n << 28n,
  ManageWebhooks: 1n << 29n,
  ManageGuildExpressions: 1n << 30n,
  UseApplicationCommands: 1n << 31n,
  RequestToSpeak: 1n << 32n,
  ManageEvents: 1n << 33n,
  ManageThreads: 1n << 34n,
  CreatePublicThreads: 1n << 35n,
  CreatePrivateThreads: 1n << 36n,
  UseExternalStickers: 1n << 37n,
  SendMessagesInThreads: 1n << 38n,
  UseEmbeddedActivities: 1n << 39n,
  ModerateMembers: 1n << 40n,
  ViewCreatorMonetizationAnalytics: 1n << 41n,
  UseSoundboard: 1n << 42n,
  CreateGuildExpressions: 1n << 43n,
  CreateEvents: 1n << 44n,
  UseExternalSounds: 1n << 45n,
  SendVoiceMessages: 1n << 46n,
  SendPolls: 1n << 49n,
  UseExternalApps: 1n << 50n,
  PinMessages: 1n << 51n,
  BypassSlowmode: 1n << 52n,
} as const;

export type PermissionName = keyof typeof PermissionBits;

export const ALL_PERMISSIONS: bigint = Object.values(PermissionBits).reduce((a, b) => a | b, 0n);

/** What a brand-new Discord server grants @everyone. */
export const DEFAULT_EVERYONE_PERMISSIONS: bigint = permissionsOf([
  'CreateInstantInvite',
  'ChangeNickname',
  'ViewChannel',
  'SendMessages',
  'SendMessagesInThreads',
  'CreatePublicThreads',
  'CreatePrivateThreads',
  'EmbedLinks',
  'AttachFiles',
  'AddReactions',
  'UseExternalEmojis',
  'UseExternalStickers',
  'MentionEveryone',
  'ReadMessageHistory',
  'SendTTSMessages',
  'UseApplicationCommands',
  'SendVoiceMessages',
  'SendPolls',
  'UseExternalApps',
  'Connect',
  'Speak',
  'Stream',
  'UseVAD',
  'UseEmbeddedActivities',
  'UseSoundboard',
  'UseExternalSounds',
  'RequestToSpeak',
  'CreateEvents',
  'CreateGuildExpressions',
  'PinMessages',
]);

/** What a bot invited with the usual "send messages" permission set gets on its managed role. */
export const DEFAULT_BOT_PERMISSIONS: bigint = permissionsOf([
  'ViewChannel',
  'SendMessages',
  'SendMessagesInThreads',
  'EmbedLinks',
  'AttachFiles',
  'ReadMessageHistory',
  'AddReactions',
  'UseExternalEmojis',
  'UseApplicationCommands',
]);

/**
 * `app_permissions` of an app that is only user-installed where the interaction happens (a server
 * that did not install it, a DM between others): Discord lets it send messages with attachments
 * and embeds, nothing else.
 */
export const EXTERNAL_APP_PERMISSIONS: bigint = permissionsOf([
  'EmbedLinks',
  'AttachFiles',
  'MentionEveryone',
  'UseExternalEmojis',
]);

export function permissionsOf(input: PermissionsInput): bigint {
  if (typeof input === 'bigint') return input;
  if (typeof input === 'number') return BigInt(input);
  if (typeof input === 'string') {
    if (/^\d+$/.test(input)) return BigInt(input);
    return bitOf(input);
  }
  return input.reduce((acc, name) => acc | bitOf(name), 0n);
}

function bitOf(name: string): bigint {
  const bit = (PermissionBits as Record<string, bigint>)[name];
  if (bit === undefined)
    throw new Error(`Unknown permission name '${name}' (use discord.js PermissionFlagsBits names)`);
  return bit;
}

export interface OverwriteInput {
  id: string;
  /** 0 role, 1 member */
  type: 0 | 1;
  allow: bigint;
  deny: bigint;
}

/**
 * Discord's documented algorithm: base = @everyone | member roles; ADMINISTRATOR (or owner)
 * grants everything; then @everyone overwrite, role overwrites (deny then allow), member overwrite.
 */
export function computeChannelPermissions(args: {
  guildId: string;
  isOwner: boolean;
  everyone: bigint;
  memberRoles: { id: string; permissions: bigint }[];
  memberId: string;
  overwrites: OverwriteInput[];
}): bigint {
  if (args.isOwner) return ALL_PERMISSIONS;
  let base = args.everyone;
  for (const role of args.memberRoles) base |= role.permissions;
  if ((base & PermissionBits.Administrator) !== 0n) return ALL_PERMISSIONS;

  let perms = base;
  const everyoneOw = args.overwrites.find((o) => o.type === 0 && o.id === args.guildId);
  if (everyoneOw) perms = (perms & ~everyoneOw.deny) | everyoneOw.allow;
  let allow = 0n;
  let deny = 0n;
  const roleIds = new Set(args.memberRoles.map((r) => r.id));
  for (const o of args.overwrites) {
    if (o.type === 0 && roleIds.has(o.id)) {
      allow |= o.allow;
      deny |= o.deny;
    }
  }
  perms = (perms & ~deny) | allow;
  const memberOw = args.overwrites.find((o) => o.type === 1 && o.id === args.memberId);
  if (memberOw) perms = (perms & ~memberOw.deny) | memberOw.allow;
  // Without VIEW_CHANNEL a member has no permission in the channel at all.
  if ((perms & PermissionBits.ViewChannel) === 0n) return 0n;
  return perms;
}
