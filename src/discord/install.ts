/**
 * Where the bot is when an interaction arrives, and what follows from it. A member may install
 * the bot to their own account (a user install) and use it in the bot's DM, in DMs and group DMs
 * between other people, and in servers that never installed it. There the bot is no member: it
 * can only answer through the interaction's token, nobody can review a flagged image, and the
 * server may force every answer to be private. Pure functions of an interaction's raw fields, so
 * the jobs and delivery code can decide before anything is spent, and tests can list the cases.
 */
import type { BaseInteraction, RESTPostAPIApplicationCommandsJSONBody } from 'discord.js';
import type { Place } from '../domain/place.ts';

export type { Place } from '../domain/place.ts';
export { canPostInChannel, usesUserInstallBudget, nsfwPolicy, type FlagPolicy as NsfwPolicy } from '../domain/place.ts';

/** Discord's values, spelled out so this file needs no enum from discord.js at run time. */
export const IntegrationType = { GuildInstall: 0, UserInstall: 1 } as const;
export const InteractionContext = { Guild: 0, BotDM: 1, PrivateChannel: 2 } as const;

/** Permission bits this file reads (API v10). */
export const Permission = {
  EmbedLinks: 1n << 14n,
  AttachFiles: 1n << 15n,
  UseExternalApps: 1n << 50n,
} as const;

/** The raw fields of an interaction that say where it happened (as in the INTERACTION_CREATE payload). */
export interface InteractionFacts {
  /** `context`: 0 guild, 1 the bot's DM, 2 other DMs and group DMs; absent in payloads from before user installs. */
  context?: number | null;
  guildId?: string | null;
  /**
   * `authorizing_integration_owners`: "0" (guild install) maps to the guild's id, or "0" in the
   * bot's DM; "1" (user install) to the member's id.
   */
  owners?: Readonly<Record<string, string | undefined>> | null;
  /** `app_permissions` (decimal string or bits); for a user install, what Discord lets an external app do there. */
  appPermissions?: bigint | string | null;
  /** `member.permissions`: the member's permissions in the channel; absent outside servers. */
  memberPermissions?: bigint | string | null;
  /** `channel.type`: 1 DM, 3 GROUP_DM; only a fallback for payloads without `context`. */
  channelType?: number | null;
}

/** The facts of a discord.js interaction (reads its fields; no request to Discord). */
export function factsOf(interaction: BaseInteraction): InteractionFacts {
  return {
    context: interaction.context,
    guildId: interaction.guildId,
    owners: interaction.authorizingIntegrationOwners?.toJSON() ?? null,
    appPermissions: interaction.appPermissions?.bitfield ?? null,
    memberPermissions: interaction.memberPermissions?.bitfield ?? null,
    channelType: interaction.channel?.type ?? null,
  };
}

export function placeOf(facts: InteractionFacts): Place {
  if (facts.context === InteractionContext.PrivateChannel) return 'private';
  if (facts.context === InteractionContext.BotDM) return 'bot_dm';
  const guildId = facts.guildId ?? null;
  if (guildId === null) {
    // Only payloads without `context` get here; a group DM can only be someone else's.
    return facts.channelType === 3 ? 'private' : 'bot_dm';
  }
  // Without the owners (payloads from before user installs) the bot was always installed there.
  if (!facts.owners) return 'guild';
  return facts.owners[String(IntegrationType.GuildInstall)] === guildId ? 'guild' : 'guild_user_install';
}

/** A server that installed the bot can have a review desk; elsewhere nobody can review a flagged image. */
export function hasReviewDesk(place: Place): boolean {
  return place === 'guild';
}

/**
 * Discord forces every response ephemeral when the app is only user-installed in a server and
 * the member lacks USE_EXTERNAL_APPS there; asking for it up front keeps the member's view and
 * the bot's bookkeeping (what is public, what can be reported) the same. Unknown member
 * permissions in such a server count as lacking it: a private answer is never wrong there.
 */
export function mustBeEphemeral(place: Place, memberPermissions: bigint | string | null | undefined): boolean {
  if (place !== 'guild_user_install') return false;
  const bits = toBits(memberPermissions);
  return bits === null || (bits & Permission.UseExternalApps) === 0n;
}

export type NeededPermission = 'AttachFiles' | 'EmbedLinks';

/**
 * What the bot cannot do in this interaction's channel among what delivering an image needs (the
 * file and its embed), from `app_permissions`, so the member is told before anything is spent.
 * Payloads without `app_permissions` (before Discord sent it) are not refused.
 */
export function missingPermissions(appPermissions: bigint | string | null | undefined): NeededPermission[] {
  const bits = toBits(appPermissions);
  if (bits === null) return [];
  return (['AttachFiles', 'EmbedLinks'] as const).filter((name) => (bits & Permission[name]) === 0n);
}

type CommandJson = RESTPostAPIApplicationCommandsJSONBody;

/**
 * The commands as `npm run deploy-commands` registers them. With USER_INSTALL on, each keeps the
 * installation types and contexts its builder declares; off, every command is for servers that
 * installed the bot only, so the operator's choice lives in one place and not in each builder.
 */
export function forInstall<T extends CommandJson>(commands: readonly T[], options: { userInstall: boolean }): T[] {
  if (options.userInstall) return commands.map((c) => ({ ...c }));
  return commands.map((c) => ({
    ...c,
    integration_types: [IntegrationType.GuildInstall],
    contexts: [InteractionContext.Guild],
  }));
}

function toBits(value: bigint | string | null | undefined): bigint | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return value;
  return /^\d+$/.test(value) ? BigInt(value) : null;
}
