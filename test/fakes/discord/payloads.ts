// Builders of realistic API v10 objects (the shapes Discord sends), from the fake's world model.
// Typed with discord-api-types so that a missing required field is a compile error.
import type {
  GuildMemberFlags,
  GuildSystemChannelFlags,
  RoleFlags,
  UserFlags,
  APIApplication,
  APIGuildMember,
  APIInteractionGuildMember,
  APIOverwrite,
  APIRole,
  APIUser,
  GatewayGuildCreateDispatchData,
  GatewayReadyDispatchData,
} from 'discord-api-types/v10';
import { discordTimestamp } from './snowflake.ts';
import {
  THREAD_TYPES,
  type ChannelRec,
  type GuildRec,
  type MemberRec,
  type RoleRec,
  type UserRec,
  type World,
} from './world.ts';

/** Application flags of a verified-enough bot: GATEWAY_GUILD_MEMBERS_LIMITED | GATEWAY_MESSAGE_CONTENT_LIMITED. */
const APPLICATION_FLAGS = (1 << 15) | (1 << 19);

export function userPayload(u: UserRec): APIUser {
  return {
    id: u.id,
    username: u.username,
    discriminator: u.bot ? '0000' : '0',
    global_name: u.globalName,
    avatar: null,
    ...(u.bot ? { bot: true } : {}),
    public_flags: 0 as UserFlags,
    flags: 0 as UserFlags,
    banner: null,
    accent_color: null,
    avatar_decoration_data: null,
    collectibles: null,
    primary_guild: null,
  };
}

/** GET /users/@me for the bot: the private fields a bot gets about itself. */
export function selfUserPayload(u: UserRec): APIUser {
  return {
    ...userPayload(u),
    verified: true,
    mfa_enabled: false,
    locale: 'en-US',
    email: null,
    flags: 0 as UserFlags,
    bot: true,
  };
}

export function rolePayload(r: RoleRec): APIRole {
  return {
    id: r.id,
    name: r.name,
    color: r.color,
    colors: { primary_color: r.color, secondary_color: null, tertiary_color: null },
    hoist: r.hoist,
    icon: null,
    unicode_emoji: null,
    position: r.position,
    permissions: r.permissions.toString(),
    managed: r.managed,
    mentionable: r.mentionable,
    flags: 0 as RoleFlags,
    ...(r.botId ? { tags: { bot_id: r.botId } } : {}),
  };
}

export function memberPayload(world: World, m: MemberRec): APIGuildMember {
  return {
    user: userPayload(world.user(m.userId)),
    nick: m.nick,
    avatar: null,
    banner: null,
    roles: [...m.roleIds],
    joined_at: m.joinedAt,
    premium_since: null,
    deaf: false,
    mute: false,
    flags: 0 as GuildMemberFlags,
    pending: false,
    communication_disabled_until: null,
  };
}

/** The member object inside an interaction: a guild member plus its permissions in the channel. */
export function interactionMemberPayload(world: World, m: MemberRec, permissions: bigint): APIInteractionGuildMember {
  return {
    ...memberPayload(world, m),
    user: userPayload(world.user(m.userId)),
    permissions: permissionsString(permissions),
  };
}

export function permissionsString(p: bigint): string {
  return p.toString();
}

function overwritePayload(o: ChannelRec['overwrites'][number]): APIOverwrite {
  return { id: o.id, type: o.type, allow: o.allow.toString(), deny: o.deny.toString() };
}

/**
 * A channel object. `withGuildId` is false inside GUILD_CREATE (Discord omits guild_id there,
 * discord.js fills it in), true everywhere else.
 */
export function channelPayload(world: World, c: ChannelRec, withGuildId = true): Record<string, unknown> {
  if (c.type === 1) {
    return {
      id: c.id,
      type: 1,
      last_message_id: c.lastMessageId,
      flags: 0,
      name: null,
      recipients: c.recipientIds.map((id) => userPayload(world.user(id))),
    };
  }
  if (c.type === 3) {
    return {
      id: c.id,
      type: 3,
      last_message_id: c.lastMessageId,
      flags: 0,
      name: c.name || null,
      icon: null,
      owner_id: c.recipientIds[0] ?? null,
      recipients: c.recipientIds.map((id) => userPayload(world.user(id))),
    };
  }
  if (THREAD_TYPES.has(c.type)) {
    // ThreadResponse: no nsfw, position or overwrites of its own (its parent's apply).
    const created = c.createdAt ?? discordTimestamp();
    return {
      id: c.id,
      type: c.type,
      ...(withGuildId && c.guildId ? { guild_id: c.guildId } : {}),
      name: c.name,
      parent_id: c.parentId,
      owner_id: c.ownerId ?? null,
      flags: 0,
      last_message_id: c.lastMessageId,
      rate_limit_per_user: c.rateLimitPerUser,
      message_count: 0,
      member_count: 1,
      total_message_sent: 0,
      thread_metadata: {
        archived: false,
        archive_timestamp: created,
        auto_archive_duration: 1440,
        locked: false,
        create_timestamp: created,
      },
    };
  }
  const base: Record<string, unknown> = {
    id: c.id,
    type: c.type,
    ...(withGuildId && c.guildId ? { guild_id: c.guildId } : {}),
    name: c.name,
    position: c.position,
    flags: 0,
    parent_id: c.parentId,
    permission_overwrites: c.overwrites.map(overwritePayload),
    nsfw: c.nsfw,
  };
  if (c.type === 4) return base;
  if (c.type === 2) {
    return {
      ...base,
      last_message_id: c.lastMessageId,
      bitrate: 64000,
      user_limit: 0,
      rtc_region: null,
      rate_limit_per_user: 0,
    };
  }
  return {
    ...base,
    topic: c.topic,
    last_message_id: c.lastMessageId,
    rate_limit_per_user: c.rateLimitPerUser,
    icon_emoji: null,
    theme_color: null,
  };
}

/** The `channel` partial inside an interaction payload. */
export function interactionChannelPayload(world: World, c: ChannelRec): Record<string, unknown> {
  return channelPayload(world, c, true);
}

function guildBase(
  g: GuildRec,
): Omit<
  GatewayGuildCreateDispatchData,
  | 'joined_at'
  | 'large'
  | 'member_count'
  | 'voice_states'
  | 'members'
  | 'channels'
  | 'threads'
  | 'presences'
  | 'stage_instances'
  | 'guild_scheduled_events'
  | 'soundboard_sounds'
> {
  return {
    id: g.id,
    name: g.name,
    icon: null,
    icon_hash: null,
    splash: null,
    discovery_splash: null,
    owner_id: g.ownerId,
    afk_channel_id: null,
    afk_timeout: 300,
    widget_enabled: false,
    widget_channel_id: null,
    verification_level: 1,
    default_message_notifications: 1,
    explicit_content_filter: 2,
    roles: g.roles.map(rolePayload),
    emojis: [],
    stickers: [],
    features: [],
    mfa_level: 0,
    application_id: null,
    system_channel_id: g.channelIds[0] ?? null,
    system_channel_flags: 0 as GuildSystemChannelFlags,
    rules_channel_id: null,
    max_presences: null,
    max_members: 500000,
    vanity_url_code: null,
    description: null,
    banner: null,
    premium_tier: 0,
    premium_subscription_count: 0,
    preferred_locale: g.preferredLocale as GatewayGuildCreateDispatchData['preferred_locale'],
    public_updates_channel_id: null,
    max_video_channel_users: 25,
    max_stage_video_channel_users: 50,
    nsfw_level: 0,
    premium_progress_bar_enabled: false,
    hub_type: null,
    safety_alerts_channel_id: null,
    incidents_data: null,
  };
}

/** GET /guilds/{id} */
export function guildPayload(g: GuildRec): Record<string, unknown> {
  return { ...guildBase(g), region: 'deprecated', home_header: null, version: Date.now() };
}

/** Intents that make GUILD_CREATE carry the whole member list (otherwise only the bot itself). */
const GUILD_MEMBERS_INTENT = 1 << 1;
const GUILD_PRESENCES_INTENT = 1 << 8;

function guildChannels(world: World, g: GuildRec): ChannelRec[] {
  return g.channelIds.map((id) => {
    const c = world.channels.get(id);
    if (!c) throw new Error(`dangling channel ${id}`);
    return c;
  });
}

export function guildCreatePayload(world: World, g: GuildRec, intents: number): GatewayGuildCreateDispatchData {
  const allMembers = (intents & (GUILD_MEMBERS_INTENT | GUILD_PRESENCES_INTENT)) !== 0;
  const members = [...g.members.values()].filter((m) => allMembers || m.userId === world.botUser.id);
  return {
    ...guildBase(g),
    joined_at: g.joinedAt,
    large: false,
    unavailable: false,
    lazy: true,
    member_count: g.members.size,
    voice_states: [],
    members: members.map((m) => memberPayload(world, m)),
    channels: guildChannels(world, g)
      .filter((c) => !THREAD_TYPES.has(c.type))
      .map((c) => channelPayload(world, c, false)) as unknown as GatewayGuildCreateDispatchData['channels'],
    // Active threads come apart from the channels, each with its guild id, as on Discord.
    threads: guildChannels(world, g)
      .filter((c) => THREAD_TYPES.has(c.type))
      .map((c) => channelPayload(world, c, true)) as unknown as GatewayGuildCreateDispatchData['threads'],
    presences: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
    embedded_activities: [],
    activity_instances: [],
    application_command_counts: {},
  } as GatewayGuildCreateDispatchData;
}

export function readyPayload(
  world: World,
  args: { sessionId: string; resumeUrl: string; shard: [number, number]; applicationId: string },
): GatewayReadyDispatchData {
  return {
    v: 10,
    user: { ...selfUserPayload(world.botUser), mfa_enabled: false },
    guilds: world.installedGuilds().map((g) => ({ id: g.id, unavailable: true })),
    session_id: args.sessionId,
    resume_gateway_url: args.resumeUrl,
    shard: args.shard,
    application: { id: args.applicationId, flags: APPLICATION_FLAGS, flags_new: String(APPLICATION_FLAGS) },
    // Fields Discord also sends to bots; discord.js ignores them.
    ...({
      session_type: 'normal',
      user_settings: {},
      relationships: [],
      private_channels: [],
      presences: [],
      guild_join_requests: [],
      geo_ordered_rtc_regions: ['rotterdam', 'frankfurt', 'madrid', 'milan', 'stockholm'],
      auth: {},
      _trace: ['["gateway-prd-fake",{"micros":0}]'],
    } as object),
  };
}

export function applicationPayload(world: World, applicationId: string): APIApplication {
  const bot = world.botUser;
  return {
    id: applicationId,
    name: bot.username,
    icon: null,
    description: '',
    summary: '',
    type: null,
    bot: userPayload(bot),
    is_monetized: false,
    is_verified: false,
    is_discoverable: false,
    bot_public: true,
    bot_require_code_grant: false,
    verify_key: '0'.repeat(64),
    flags: APPLICATION_FLAGS,
    hook: true,
    storefront_available: false,
    redirect_uris: [],
    interactions_endpoint_url: null,
    role_connections_verification_url: null,
    explicit_content_filter: 0,
    integration_types_config: { 0: { oauth2_install_params: undefined }, 1: {} },
    approximate_guild_count: world.installedGuilds().length,
    approximate_user_install_count: 0,
    owner: userPayload(world.user(world.guild().ownerId)),
    team: null,
    tags: [],
  } as unknown as APIApplication;
}
