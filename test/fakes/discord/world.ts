// The fake's model of Discord's world: users, guilds, roles, channels, members.
// Built once from FakeGuildSpec[]; messages and interactions live elsewhere.
import {
  computeChannelPermissions,
  DEFAULT_BOT_PERMISSIONS,
  DEFAULT_EVERYONE_PERMISSIONS,
  PermissionBits,
  permissionsOf,
  type OverwriteInput,
} from './permissions.ts';
import { discordTimestamp, snowflake } from './snowflake.ts';
import type { FakeChannelSpec, FakeGuildSpec, FakeMemberSpec, FakeUserSpec } from './types.ts';

export interface UserRec {
  /** Name used by tests: discord.user('alice'). */
  key: string;
  id: string;
  username: string;
  globalName: string | null;
  bot: boolean;
  locale: string;
}

export interface RoleRec {
  id: string;
  name: string;
  permissions: bigint;
  color: number;
  hoist: boolean;
  position: number;
  managed: boolean;
  mentionable: boolean;
  /** Set on the bot's managed integration role. */
  botId?: string;
}

export interface ChannelRec {
  id: string;
  /** null for DM channels. */
  guildId: string | null;
  name: string;
  /**
   * 0 GUILD_TEXT, 1 DM, 2 GUILD_VOICE, 3 GROUP_DM, 4 GUILD_CATEGORY, 5 GUILD_ANNOUNCEMENT, 10/11/12
   * ANNOUNCEMENT/PUBLIC/PRIVATE_THREAD.
   */
  type: number;
  /** A thread has no age restriction of its own (its parent's applies): always false, never sent. */
  nsfw: boolean;
  topic: string | null;
  position: number;
  parentId: string | null;
  overwrites: OverwriteInput[];
  rateLimitPerUser: number;
  recipientIds: string[];
  lastMessageId: string | null;
  /**
   * A DM or group DM between users that does not include the bot (interaction context 2): the
   * bot can answer interactions there but cannot see or post in the channel.
   */
  withoutBot?: boolean;
  /** A thread's creator. */
  ownerId?: string;
  /** When a thread was created (ISO), for its thread_metadata. */
  createdAt?: string;
}

/** Discord's thread channel types: their parent (`parentId`) is a text or announcement channel. */
export const THREAD_TYPES: ReadonlySet<number> = new Set([10, 11, 12]);

export interface MemberRec {
  userId: string;
  roleIds: string[];
  nick: string | null;
  joinedAt: string;
}

export interface GuildRec {
  id: string;
  name: string;
  ownerId: string;
  roles: RoleRec[];
  channelIds: string[];
  members: Map<string, MemberRec>;
  preferredLocale: string;
  /** When the bot joined (GUILD_CREATE joined_at). */
  joinedAt: string;
  /** False for a server that never installed the app: the bot is not a member and the gateway never mentions it. */
  botInstalled: boolean;
}

const DEFAULT_GUILD: FakeGuildSpec = { name: 'Test Guild' };

export class World {
  readonly users = new Map<string, UserRec>();
  readonly guilds: GuildRec[] = [];
  readonly channels = new Map<string, ChannelRec>();
  readonly botUser: UserRec;
  /** Users who turned off "Allow DMs" from apps: the bot's messages in their DM answer 50007. */
  readonly refusingDms = new Set<string>();

  constructor(specs: FakeGuildSpec[] | undefined, bot: { id: string; name: string }) {
    this.botUser = {
      key: 'bot',
      id: bot.id,
      username: bot.name,
      globalName: null,
      bot: true,
      locale: 'en-US',
    };
    this.users.set(this.botUser.id, this.botUser);
    for (const spec of specs && specs.length > 0 ? specs : [DEFAULT_GUILD]) this.addGuild(spec);
  }

  // ---- lookups -------------------------------------------------------------------------------

  /** By test name ('alice') or id. Throws when unknown: a typo in a test should fail loudly. */
  user(nameOrId: string): UserRec {
    const found = this.findUser(nameOrId);
    if (!found)
      throw new Error(
        `Fake Discord: no user '${nameOrId}' (known: ${[...this.users.values()].map((u) => u.key).join(', ')})`,
      );
    return found;
  }

  findUser(nameOrId: string): UserRec | undefined {
    const byId = this.users.get(nameOrId);
    if (byId) return byId;
    for (const u of this.users.values()) if (u.key === nameOrId || u.username === nameOrId) return u;
    return undefined;
  }

  guild(nameOrId?: string): GuildRec {
    const first = this.guilds[0];
    if (nameOrId === undefined) {
      if (!first) throw new Error('Fake Discord: no guild configured');
      return first;
    }
    const found = this.guilds.find((g) => g.id === nameOrId || g.name === nameOrId);
    if (!found) throw new Error(`Fake Discord: no guild '${nameOrId}'`);
    return found;
  }

  findGuild(id: string): GuildRec | undefined {
    return this.guilds.find((g) => g.id === id);
  }

  /** The guilds the bot is in (READY, GUILD_CREATE, the guild routes); not those where only members installed the app. */
  installedGuilds(): GuildRec[] {
    return this.guilds.filter((g) => g.botInstalled);
  }

  /** By name (searched in `guild` first, then everywhere) or id. */
  channel(nameOrId: string, guild?: GuildRec): ChannelRec {
    const byId = this.channels.get(nameOrId);
    if (byId) return byId;
    const name = nameOrId.replace(/^#/, '');
    const candidates = [...this.channels.values()].filter((c) => c.name === name);
    const found = candidates.find((c) => guild && c.guildId === guild.id) ?? candidates[0];
    if (!found) throw new Error(`Fake Discord: no channel '${nameOrId}'`);
    return found;
  }

  member(guild: GuildRec, userId: string): MemberRec | undefined {
    return guild.members.get(userId);
  }

  everyoneRole(guild: GuildRec): RoleRec {
    const role = guild.roles.find((r) => r.id === guild.id);
    if (!role) throw new Error('Fake Discord: guild without @everyone role');
    return role;
  }

  /** The permissions `userId` has in `channel`, computed like Discord does. */
  permissionsIn(channel: ChannelRec, userId: string): bigint {
    if (channel.guildId === null) return 0n;
    const guild = this.guild(channel.guildId);
    const member = guild.members.get(userId);
    if (!member) return 0n;
    // Category overwrites are synced into children when the children are created, so only the
    // channel's own overwrites matter here; a thread has none, its parent's apply.
    const own =
      THREAD_TYPES.has(channel.type) && channel.parentId ? (this.channels.get(channel.parentId) ?? channel) : channel;
    return computeChannelPermissions({
      guildId: guild.id,
      isOwner: guild.ownerId === userId,
      everyone: this.everyoneRole(guild).permissions,
      memberRoles: guild.roles.filter((r) => member.roleIds.includes(r.id)),
      memberId: userId,
      overwrites: own.overwrites,
    });
  }

  /** POST /users/@me/channels: one DM channel per recipient, created on first use. */
  dmChannel(recipientId: string): ChannelRec {
    for (const c of this.channels.values()) {
      if (c.type === 1 && !c.withoutBot && c.recipientIds[0] === recipientId) return c;
    }
    const recipient = this.user(recipientId);
    const channel: ChannelRec = {
      id: snowflake(),
      guildId: null,
      name: recipient.username,
      type: 1,
      nsfw: false,
      topic: null,
      position: 0,
      parentId: null,
      overwrites: [],
      rateLimitPerUser: 0,
      recipientIds: [recipient.id],
      lastMessageId: null,
    };
    this.channels.set(channel.id, channel);
    return channel;
  }

  /**
   * A conversation between users without the bot (interaction context 2): a DM (type 1) for two
   * users, a group DM (type 3) for more; the same users get the same channel.
   */
  privateChannel(userIds: string[]): ChannelRec {
    const ids = [...new Set(userIds.map((u) => this.user(u).id))];
    if (ids.length < 2) throw new Error('Fake Discord: a private channel needs at least two different users');
    if (ids.includes(this.botUser.id))
      throw new Error("Fake Discord: a channel with the bot is the bot's DM, not a private channel");
    const key = [...ids].sort().join(',');
    for (const c of this.channels.values()) {
      if (c.withoutBot && [...c.recipientIds].sort().join(',') === key) return c;
    }
    const type = ids.length === 2 ? 1 : 3;
    const channel: ChannelRec = {
      id: snowflake(),
      guildId: null,
      name: type === 3 ? ids.map((id) => this.user(id).username).join(', ') : '',
      type,
      nsfw: false,
      topic: null,
      position: 0,
      parentId: null,
      overwrites: [],
      rateLimitPerUser: 0,
      recipientIds: ids,
      lastMessageId: null,
      withoutBot: true,
    };
    this.channels.set(channel.id, channel);
    return channel;
  }

  // ---- construction --------------------------------------------------------------------------

  private ensureUser(spec: string | FakeUserSpec): UserRec {
    const s: FakeUserSpec = typeof spec === 'string' ? { name: spec } : spec;
    const existing = this.findUser(s.name);
    if (existing) return existing;
    const user: UserRec = {
      key: s.name,
      id: s.id ?? snowflake(),
      username: s.username ?? s.name.toLowerCase(),
      globalName: s.globalName === undefined ? capitalize(s.name) : s.globalName,
      bot: s.bot ?? false,
      locale: s.locale ?? 'en-US',
    };
    this.users.set(user.id, user);
    return user;
  }

  private addGuild(spec: FakeGuildSpec): void {
    const id = spec.id ?? snowflake();
    const owner = this.ensureUser(spec.owner ?? 'owner');
    const guild: GuildRec = {
      id,
      name: spec.name,
      ownerId: owner.id,
      roles: [],
      channelIds: [],
      members: new Map(),
      preferredLocale: spec.preferredLocale ?? 'en-US',
      joinedAt: discordTimestamp(),
      botInstalled: spec.botInstalled !== false,
    };
    this.guilds.push(guild);

    // @everyone's id is the guild id, like on Discord.
    const everyone = permissionsOf(spec.everyonePermissions ?? DEFAULT_EVERYONE_PERMISSIONS);
    guild.roles.push(
      makeRole(
        id,
        '@everyone',
        spec.externalApps === 'ephemeral' ? everyone & ~PermissionBits.UseExternalApps : everyone,
        0,
      ),
    );
    const roleSpecs = spec.roles ?? [
      { name: 'Moderator', permissions: ['ManageMessages'], color: 0x3498db, hoist: true },
    ];
    roleSpecs.forEach((r, i) => {
      const role = makeRole(r.id ?? snowflake(), r.name, permissionsOf(r.permissions ?? 0n), i + 1);
      role.color = r.color ?? 0;
      role.hoist = r.hoist ?? false;
      guild.roles.push(role);
    });
    const botRole = makeRole(
      snowflake(),
      this.botUser.username,
      permissionsOf(spec.botPermissions ?? DEFAULT_BOT_PERMISSIONS),
      roleSpecs.length + 1,
    );
    botRole.managed = true;
    botRole.botId = this.botUser.id;
    guild.roles.push(botRole);

    const memberSpecs: FakeMemberSpec[] = spec.members ?? [
      { user: 'alice' },
      { user: 'bob' },
      ...(guild.roles.some((r) => r.name === 'Moderator')
        ? [{ user: 'mod', roles: ['Moderator'] }]
        : [{ user: 'mod' }]),
    ];
    const addMember = (user: UserRec, roleIds: string[], nick: string | null): void => {
      guild.members.set(user.id, {
        userId: user.id,
        roleIds,
        nick,
        joinedAt: discordTimestamp(Date.now() - 86_400_000),
      });
    };
    addMember(owner, [], null);
    for (const m of memberSpecs) {
      const user = this.ensureUser(m.user);
      const roleIds = (m.roles ?? []).map((name) => {
        const role = guild.roles.find((r) => r.name === name || r.id === name);
        if (!role) throw new Error(`Fake Discord: member '${user.key}' has unknown role '${name}'`);
        return role.id;
      });
      addMember(user, roleIds, m.nick ?? null);
    }
    if (guild.botInstalled)
      guild.members.set(this.botUser.id, {
        userId: this.botUser.id,
        roleIds: [botRole.id],
        nick: null,
        joinedAt: guild.joinedAt,
      });
    else guild.roles.pop(); // no integration, no managed role

    const channelSpecs: FakeChannelSpec[] = spec.channels ?? [{ name: 'general' }, { name: 'nsfw', nsfw: true }];
    // Categories first so children can reference them by name, threads last so their channel exists.
    const rank = (c: FakeChannelSpec) => (c.type === 4 ? 0 : THREAD_TYPES.has(c.type ?? 0) ? 2 : 1);
    const ordered = [...channelSpecs].sort((a, b) => rank(a) - rank(b));
    for (const c of ordered) this.addChannel(guild, c, channelSpecs.indexOf(c));
  }

  private addChannel(guild: GuildRec, spec: FakeChannelSpec, position: number): void {
    const overwrites: OverwriteInput[] = (spec.overwrites ?? []).map((o) => {
      if (o.role !== undefined) {
        const role = o.role === '@everyone' ? this.everyoneRole(guild) : guild.roles.find((r) => r.name === o.role);
        if (!role) throw new Error(`Fake Discord: overwrite for unknown role '${o.role}'`);
        return { id: role.id, type: 0, allow: permissionsOf(o.allow ?? 0n), deny: permissionsOf(o.deny ?? 0n) };
      }
      if (o.user !== undefined) {
        return {
          id: this.user(o.user).id,
          type: 1,
          allow: permissionsOf(o.allow ?? 0n),
          deny: permissionsOf(o.deny ?? 0n),
        };
      }
      throw new Error('Fake Discord: an overwrite needs a role or a user');
    });
    let parentId: string | null = null;
    if (spec.parent !== undefined) {
      const parent = this.channel(spec.parent, guild);
      parentId = parent.id;
    }
    const thread = THREAD_TYPES.has(spec.type ?? 0);
    if (thread && (parentId === null || overwrites.length > 0 || spec.nsfw !== undefined)) {
      throw new Error(
        `Fake Discord: thread '${spec.name}' needs a parent channel, and takes its overwrites and age restriction from it`,
      );
    }
    const channel: ChannelRec = {
      id: spec.id ?? snowflake(),
      guildId: guild.id,
      name: spec.name,
      type: spec.type ?? 0,
      nsfw: spec.nsfw ?? false,
      topic: spec.topic ?? null,
      position,
      parentId,
      overwrites,
      rateLimitPerUser: spec.rateLimitPerUser ?? 0,
      recipientIds: [],
      lastMessageId: null,
      ...(thread ? { ownerId: guild.ownerId, createdAt: discordTimestamp() } : {}),
    };
    this.channels.set(channel.id, channel);
    guild.channelIds.push(channel.id);
  }
}

function makeRole(id: string, name: string, permissions: bigint, position: number): RoleRec {
  return { id, name, permissions, color: 0, hoist: false, position, managed: false, mentionable: false };
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
