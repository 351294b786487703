// Interactions the fake dispatches on demand (slash commands, autocomplete, button clicks, select
// menus, modal submits): realistic v10 INTERACTION_CREATE payloads, and the FakeInteraction
// handle a test uses to observe how the bot answered.
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { APIMessage, APIUser } from 'discord-api-types/v10';
import type { CommandOption, CommandStore, RegisteredCommand } from './commands.ts';
import { waitUntil } from './http.ts';
import type { MessageStore } from './messages.ts';
import { FLAG } from './messages.ts';
import { DEFAULT_BOT_PERMISSIONS, EXTERNAL_APP_PERMISSIONS, PermissionBits, permissionsOf } from './permissions.ts';
import { interactionChannelPayload, interactionMemberPayload, rolePayload, userPayload } from './payloads.ts';
import { snowflake } from './snowflake.ts';
import type {
  DiscordErrorBody,
  InteractionContext,
  InteractionWhere,
  Json,
  JsonObject,
  RecordedFile,
  WaitOptions,
} from './types.ts';
import type { ChannelRec, GuildRec, World } from './world.ts';

export const InteractionType = { ApplicationCommand: 2, MessageComponent: 3, Autocomplete: 4, ModalSubmit: 5 } as const;
export const CallbackType = {
  ChannelMessageWithSource: 4,
  DeferredChannelMessageWithSource: 5,
  DeferredUpdateMessage: 6,
  UpdateMessage: 7,
  AutocompleteResult: 8,
  Modal: 9,
} as const;

export interface CallbackRecord {
  /** Interaction callback type (4 reply, 5 defer, 6 deferUpdate, 7 update, 8 autocomplete, 9 modal). */
  type: number;
  data: Json | undefined;
  files: RecordedFile[];
  /** HTTP status the fake answered. */
  status: number;
  /** False when the fake refused it (late, second callback, invalid body...). */
  accepted: boolean;
  error?: DiscordErrorBody;
  withResponse: boolean;
  /** ms after dispatch. */
  afterMs: number;
  at: number;
}

export interface AutocompleteChoice {
  name: string;
  value: string | number;
  name_localizations?: Record<string, string> | null;
}

/** What an interaction needs from the fake that created it. */
export interface InteractionHost {
  readonly store: MessageStore;
  readonly events: EventEmitter;
  readonly interactionTokenTtlMs: number;
  submitModal(from: FakeInteraction, values: Record<string, string>, ctx?: InteractionContext): FakeInteraction;
}

export class FakeInteraction {
  readonly id: string;
  readonly token: string;
  /** 2 APPLICATION_COMMAND, 3 MESSAGE_COMPONENT, 4 AUTOCOMPLETE, 5 MODAL_SUBMIT. */
  readonly type: number;
  /** The `d` of the INTERACTION_CREATE dispatch, exactly as sent. */
  readonly payload: JsonObject;
  private dispatched: number;
  readonly user: APIUser;
  readonly channelId: string;
  readonly guildId: string | null;
  /** Where it happened, seen from the bot ('guild', 'guild_user_install', 'bot_dm', 'private'). */
  readonly where: InteractionWhere;
  /**
   * Discord makes every response ephemeral: the app is only user-installed in this server and
   * the member lacks USE_EXTERNAL_APPS there.
   */
  readonly forcedEphemeral: boolean;
  /** For component / modal-from-component interactions: the message the component is on. */
  readonly sourceMessageId: string | null;
  /** Every callback attempt, accepted or not, in order. */
  readonly callbacks: CallbackRecord[] = [];
  /** Id of the @original message once there is one. */
  originalMessageId: string | null = null;
  readonly followupIds: string[] = [];
  /** Accepted POSTs to the follow-up endpoint (the first may fill a deferred @original). */
  followupPosts = 0;
  private tokenExpired = false;
  private readonly host: InteractionHost;

  constructor(
    host: InteractionHost,
    args: {
      id: string;
      token: string;
      type: number;
      payload: JsonObject;
      user: APIUser;
      channelId: string;
      guildId: string | null;
      sourceMessageId: string | null;
      where?: InteractionWhere;
      forcedEphemeral?: boolean;
    },
  ) {
    this.host = host;
    this.id = args.id;
    this.token = args.token;
    this.type = args.type;
    this.payload = args.payload;
    this.user = args.user;
    this.channelId = args.channelId;
    this.guildId = args.guildId;
    this.where = args.where ?? (args.guildId ? 'guild' : 'bot_dm');
    this.forcedEphemeral = args.forcedEphemeral ?? false;
    this.sourceMessageId = args.sourceMessageId;
    this.dispatched = Date.now();
  }

  /** Time (Date.now()) of the INTERACTION_CREATE dispatch; deadlines are measured from it. */
  get dispatchedAt(): number {
    return this.dispatched;
  }

  /**
   * Pretends `ms` milliseconds have passed since the dispatch (moves dispatchedAt back), so a
   * test can make the 3 s callback deadline or the token lifetime run out without sleeping.
   */
  elapse(ms: number): void {
    this.dispatched -= ms;
  }

  /** The accepted (first successful) callback, if any. */
  get response(): CallbackRecord | undefined {
    return this.callbacks.find((c) => c.accepted);
  }

  get acknowledged(): boolean {
    return this.response !== undefined;
  }

  /** True when the bot deferred (type 5 or 6). */
  get deferred(): boolean {
    const t = this.response?.type;
    return t === CallbackType.DeferredChannelMessageWithSource || t === CallbackType.DeferredUpdateMessage;
  }

  /** Whether the response (reply or deferral) is ephemeral; undefined before any response. */
  get isEphemeral(): boolean | undefined {
    const r = this.response;
    if (!r) return undefined;
    const original = this.original();
    if (original) return ((original.flags ?? 0) & FLAG.EPHEMERAL) !== 0;
    const data = r.data;
    const flags =
      data && typeof data === 'object' && !Array.isArray(data) && typeof data.flags === 'number' ? data.flags : 0;
    return (flags & FLAG.EPHEMERAL) !== 0;
  }

  /** The current state of @original (undefined before a response, after a deletion, or for a modal). */
  original(): APIMessage | undefined {
    if (!this.originalMessageId) return undefined;
    const stored = this.host.store.get(this.originalMessageId);
    return stored && !stored.deleted ? stored.data : undefined;
  }

  followups(): APIMessage[] {
    return this.followupIds
      .map((id) => this.host.store.get(id))
      .filter((m) => m !== undefined && !m.deleted)
      .map((m) => m!.data);
  }

  /** Original then follow-ups. */
  messages(): APIMessage[] {
    const original = this.original();
    return [...(original ? [original] : []), ...this.followups()];
  }

  /** Makes the token invalid now: webhook routes answer 401 Invalid Webhook Token (50027). */
  expireToken(): void {
    this.tokenExpired = true;
  }

  tokenValid(now: number = Date.now()): boolean {
    return !this.tokenExpired && now - this.dispatchedAt <= this.host.interactionTokenTtlMs;
  }

  /** Resolves with the accepted callback (rejects after timeoutMs, default 5 s). */
  waitForCallback(opts: WaitOptions = {}): Promise<CallbackRecord> {
    return waitUntil(
      [this.host.events, 'callback'],
      () => this.response,
      opts.timeoutMs ?? 5000,
      () =>
        `a callback on interaction ${this.describe()} (attempts: ${JSON.stringify(this.callbacks.map((c) => ({ type: c.type, status: c.status, error: c.error })))})`,
    );
  }

  /** Resolves once @original exists and satisfies `predicate` (default: not loading any more). */
  waitForOriginal(
    predicate: (m: APIMessage) => boolean = (m) => ((m.flags ?? 0) & FLAG.LOADING) === 0,
    opts: WaitOptions = {},
  ): Promise<APIMessage> {
    return waitUntil(
      [
        [this.host.store, 'message'],
        [this.host.events, 'callback'],
      ],
      () => {
        const m = this.original();
        return m && predicate(m) ? m : undefined;
      },
      opts.timeoutMs ?? 5000,
      () => `@original of ${this.describe()} to match (current: ${JSON.stringify(this.original() ?? null)})`,
    );
  }

  waitForFollowup(predicate: (m: APIMessage) => boolean = () => true, opts: WaitOptions = {}): Promise<APIMessage> {
    return waitUntil(
      [this.host.store, 'message'],
      () => this.followups().find(predicate),
      opts.timeoutMs ?? 5000,
      () => `a follow-up of ${this.describe()} to match (current: ${JSON.stringify(this.followups())})`,
    );
  }

  /** The choices of the autocomplete result (callback type 8). */
  async autocompleteChoices(opts: WaitOptions = {}): Promise<AutocompleteChoice[]> {
    const cb = await this.waitForCallback(opts);
    if (cb.type !== CallbackType.AutocompleteResult)
      throw new Error(`Fake Discord: expected an autocomplete result (8), got callback type ${cb.type}`);
    const data = cb.data as { choices?: AutocompleteChoice[] } | undefined;
    return data?.choices ?? [];
  }

  /** The modal the bot showed (callback type 9). */
  async modal(opts: WaitOptions = {}): Promise<JsonObject> {
    const cb = await this.waitForCallback(opts);
    if (cb.type !== CallbackType.Modal)
      throw new Error(`Fake Discord: expected a modal (9), got callback type ${cb.type}`);
    return cb.data as JsonObject;
  }

  /** Submits the modal this interaction showed, with text input values by custom_id. */
  submitModal(values: Record<string, string>, ctx?: InteractionContext): FakeInteraction {
    return this.host.submitModal(this, values, ctx);
  }

  private describe(): string {
    const data = this.payload.data as JsonObject | undefined;
    const what = data?.name ?? data?.custom_id ?? '';
    return `${this.id} (type ${this.type} ${String(what)})`;
  }
}

// ---- payload construction -------------------------------------------------------------------

export interface ResolvedContext {
  user: ReturnType<World['user']>;
  channel: ChannelRec;
  guild: GuildRec | null;
  locale: string;
  permissions: bigint;
  appPermissions: bigint;
  where: InteractionWhere;
  /** The user installed the app to their account ("1" among the authorizing integration owners). */
  userInstall: boolean;
}

/** Discord's `context` field for each place. */
export const CONTEXT_OF: Record<InteractionWhere, number> = { guild: 0, guild_user_install: 0, bot_dm: 1, private: 2 };

/** Where a channel is, seen from the bot. */
export function whereOf(world: World, channel: ChannelRec): InteractionWhere {
  if (channel.withoutBot) return 'private';
  if (channel.guildId === null) return 'bot_dm';
  return world.guild(channel.guildId).botInstalled ? 'guild' : 'guild_user_install';
}

/** Discord forces a user-installed app's responses ephemeral where the member may not use external apps publicly. */
export function mustForceEphemeral(rc: ResolvedContext): boolean {
  return rc.where === 'guild_user_install' && (rc.permissions & PermissionBits.UseExternalApps) === 0n;
}

export function resolveContext(
  world: World,
  ctx: InteractionContext = {},
  channelOverride?: ChannelRec,
): ResolvedContext {
  const user = world.user(ctx.user ?? 'alice');
  let channel: ChannelRec;
  if (channelOverride) {
    channel = channelOverride;
  } else if (ctx.context === 'private') {
    channel = world.privateChannel([user.id, ...(ctx.with ?? ['bob'])]);
  } else if (ctx.dm || ctx.context === 'bot_dm') {
    channel = world.dmChannel(user.id);
  } else {
    let hintGuild = ctx.guild !== undefined ? world.guild(ctx.guild) : undefined;
    if (!hintGuild && ctx.context === 'guild_user_install') {
      hintGuild = world.guilds.find((g) => !g.botInstalled);
      if (!hintGuild)
        throw new Error("Fake Discord: context 'guild_user_install' needs a guild with botInstalled: false");
    }
    if (ctx.channel !== undefined) {
      channel = world.channel(ctx.channel, hintGuild ?? world.guild());
    } else {
      const g = hintGuild ?? world.guild();
      const first = g.channelIds.map((id) => world.channels.get(id)).find((c) => c?.type === 0);
      if (!first) throw new Error(`Fake Discord: guild '${g.name}' has no text channel`);
      channel = first;
    }
  }
  const guild = channel.guildId ? world.guild(channel.guildId) : null;
  const where = whereOf(world, channel);
  if (ctx.context !== undefined && ctx.context !== where) {
    throw new Error(
      `Fake Discord: context '${ctx.context}' asked, but channel '${channel.name || channel.id}' is '${where}'`,
    );
  }
  if (guild && !guild.members.has(user.id))
    throw new Error(`Fake Discord: user '${user.key}' is not a member of '${guild.name}'`);
  if (where === 'private' && !channel.recipientIds.includes(user.id))
    throw new Error(`Fake Discord: user '${user.key}' is not in that conversation`);
  const userInstall =
    ctx.userInstall ?? (where === 'private' || where === 'guild_user_install' || ctx.context === 'bot_dm');
  if (!userInstall && (where === 'private' || where === 'guild_user_install')) {
    throw new Error(`Fake Discord: in '${where}' only a user install can reach the bot (userInstall cannot be false)`);
  }
  const implicitApp =
    where === 'guild'
      ? world.permissionsIn(channel, world.botUser.id)
      : where === 'bot_dm'
        ? DEFAULT_BOT_PERMISSIONS
        : EXTERNAL_APP_PERMISSIONS;
  return {
    user,
    channel,
    guild,
    locale: ctx.locale ?? user.locale,
    permissions:
      ctx.permissions !== undefined
        ? permissionsOf(ctx.permissions)
        : guild
          ? world.permissionsIn(channel, user.id)
          : 0n,
    appPermissions: ctx.appPermissions !== undefined ? permissionsOf(ctx.appPermissions) : implicitApp,
    where,
    userInstall,
  };
}

/**
 * `authorizing_integration_owners`: "0" (guild install) maps to the guild id, or "0" in the bot's
 * DM; "1" (user install) to the user id. With `integrationTypes` (a registered command's), only
 * the installations the command supports are listed.
 */
export function integrationOwners(rc: ResolvedContext, integrationTypes?: readonly number[]): Record<string, string> {
  const owners: Record<string, string> = {};
  if (rc.where === 'guild' && rc.guild) owners['0'] = rc.guild.id;
  if (rc.where === 'bot_dm' && !rc.userInstall) owners['0'] = '0';
  if (rc.userInstall) owners['1'] = rc.user.id;
  if (!integrationTypes) return owners;
  const kept = Object.fromEntries(Object.entries(owners).filter(([k]) => integrationTypes.includes(Number(k))));
  return Object.keys(kept).length > 0 ? kept : owners;
}

/**
 * What Discord's client offers: a registered command appears only in the contexts it lists and
 * through an installation it supports; anything else is a test bug, so it throws.
 */
export function checkCommandAvailable(rc: ResolvedContext, command: RegisteredCommand): void {
  const context = CONTEXT_OF[rc.where];
  if (command.contexts && !command.contexts.includes(context)) {
    throw new Error(
      `Fake Discord: '${command.name}' is registered for contexts ${JSON.stringify(command.contexts)}, not ${context} (${rc.where}); Discord's client does not offer it there`,
    );
  }
  const installs = Object.keys(integrationOwners(rc)).map(Number);
  if (!command.integration_types.some((t) => installs.includes(t))) {
    throw new Error(
      `Fake Discord: '${command.name}' is registered for integration types ${JSON.stringify(command.integration_types)}; here the app is installed as ${JSON.stringify(installs)}`,
    );
  }
}

export function buildInteractionPayload(
  world: World,
  applicationId: string,
  args: {
    type: number;
    data: JsonObject;
    rc: ResolvedContext;
    message?: APIMessage;
    integrationTypes?: readonly number[];
    /** When the interaction was created (its id's timestamp); now by default. */
    createdAt?: number;
  },
): { id: string; token: string; payload: JsonObject } {
  const { rc } = args;
  const id = snowflake(args.createdAt);
  // Real tokens are ~200 url-safe characters starting with 'aW50ZXJhY3Rpb246' ("interaction:").
  const token = `aW50ZXJhY3Rpb246${Buffer.from(`${id}:`).toString('base64url')}${randomBytes(96).toString('base64url')}`;
  const payload: Record<string, unknown> = {
    app_permissions: rc.appPermissions.toString(),
    application_id: applicationId,
    attachment_size_limit: 10 * 1024 * 1024,
    authorizing_integration_owners: integrationOwners(rc, args.integrationTypes),
    channel: interactionChannelPayload(world, rc.channel),
    channel_id: rc.channel.id,
    context: CONTEXT_OF[rc.where],
    data: args.data,
    entitlement_sku_ids: [],
    entitlements: [],
    id,
    locale: rc.locale,
    token,
    type: args.type,
    version: 1,
  };
  if (rc.guild) {
    const member = rc.guild.members.get(rc.user.id);
    if (!member) throw new Error('unreachable: member checked in resolveContext');
    payload.guild = { id: rc.guild.id, locale: rc.guild.preferredLocale, features: [] };
    payload.guild_id = rc.guild.id;
    payload.guild_locale = rc.guild.preferredLocale;
    payload.member = interactionMemberPayload(world, member, rc.permissions);
  } else {
    payload.user = userPayload(rc.user);
  }
  if (args.message) payload.message = structuredClone(args.message);
  return { id, token, payload: payload as JsonObject };
}

export type OptionValue = string | number | boolean | FakeUpload;

/** A file the member attaches to an attachment option (type 11): uploaded to the fake's CDN first, as Discord does. */
export interface FakeUpload {
  file: { name: string; bytes: Buffer; contentType?: string };
}

const isUpload = (value: OptionValue): value is FakeUpload => typeof value === 'object' && value !== null;

/**
 * data of an APPLICATION_COMMAND / AUTOCOMPLETE interaction. `name` may contain a subcommand path
 * ('settings show'). When the command is registered, its option definitions give the types and
 * are enforced the way Discord's client does (unknown option, missing required option, value not
 * among choices throw: a user cannot send that).
 */
export function buildCommandData(
  world: World,
  commands: CommandStore,
  rc: ResolvedContext,
  name: string,
  options: Record<string, OptionValue>,
  focused?: string,
  upload?: (file: FakeUpload['file'], channelId: string) => JsonObject,
): JsonObject {
  const [commandName, ...subPath] = name.trim().split(/\s+/);
  if (!commandName) throw new Error('Fake Discord: empty command name');
  const registered: RegisteredCommand | undefined = commands.find(commandName, rc.guild?.id ?? null);
  if (registered) checkCommandAvailable(rc, registered);
  let defs: CommandOption[] | undefined = registered?.options;
  for (const sub of subPath) {
    if (!registered) break;
    const next: CommandOption | undefined = defs?.find((o) => o.name === sub && (o.type === 1 || o.type === 2));
    if (!next) throw new Error(`Fake Discord: command '${commandName}' has no subcommand '${sub}'`);
    defs = next.options;
  }
  const resolved: {
    users: JsonObject;
    members: JsonObject;
    roles: JsonObject;
    channels: JsonObject;
    attachments: JsonObject;
  } = {
    users: {},
    members: {},
    roles: {},
    channels: {},
    attachments: {},
  };
  const leaf: JsonObject[] = [];
  for (const [key, value] of Object.entries(options)) {
    const def = defs?.find((o) => o.name === key);
    if (registered && !def)
      throw new Error(
        `Fake Discord: command '${name}' has no option '${key}' (options: ${(defs ?? []).map((o) => o.name).join(', ')})`,
      );
    const type = def?.type ?? inferType(value);
    const isFocused = key === focused;
    if (isUpload(value)) {
      if (type !== 11) throw new Error(`Fake Discord: option '${key}' is not an attachment option`);
      if (!upload) throw new Error('Fake Discord: attachments need the message store');
      const attachment = upload(value.file, rc.channel.id);
      resolved.attachments[String(attachment.id)] = attachment;
      leaf.push({ name: key, type, value: String(attachment.id) });
      continue;
    }
    const option: JsonObject = {
      name: key,
      type,
      value: isFocused ? String(value) : convertValue(world, rc, type, value, resolved, key),
    };
    if (isFocused) option.focused = true;
    else if (def?.choices && !def.choices.some((c) => c.value === option.value)) {
      throw new Error(
        `Fake Discord: option '${key}' must be one of ${JSON.stringify(def.choices.map((c) => c.value))}`,
      );
    }
    leaf.push(option);
  }
  if (focused !== undefined && !(focused in options))
    throw new Error(`Fake Discord: focused option '${focused}' is not among the options`);
  if (focused === undefined) {
    for (const def of defs ?? []) {
      if (def.required && !(def.name in options))
        throw new Error(`Fake Discord: required option '${def.name}' of '${name}' is missing`);
    }
  }
  let top: JsonObject[] = leaf;
  for (const [i, sub] of [...subPath].reverse().entries()) {
    // Innermost is the subcommand (type 1); with two levels the outer one is the group (type 2).
    const node: JsonObject = { name: sub, type: i === 1 ? 2 : 1 };
    if (top.length > 0) node.options = top;
    top = [node];
  }
  const data: JsonObject = { id: registered?.id ?? snowflake(), name: commandName, type: registered?.type ?? 1 };
  if (registered?.guild_id) data.guild_id = registered.guild_id;
  if (top.length > 0) data.options = top;
  const nonEmpty = Object.entries(resolved).filter(([, v]) => Object.keys(v).length > 0);
  if (nonEmpty.length > 0) data.resolved = Object.fromEntries(nonEmpty) as JsonObject;
  return data;
}

function inferType(value: OptionValue): number {
  if (isUpload(value)) return 11;
  if (typeof value === 'boolean') return 5;
  if (typeof value === 'number') return Number.isInteger(value) ? 4 : 10;
  return 3;
}

function convertValue(
  world: World,
  rc: ResolvedContext,
  type: number,
  value: OptionValue,
  resolved: { users: JsonObject; members: JsonObject; roles: JsonObject; channels: JsonObject },
  key: string,
): Json {
  const bad = (expected: string): Error =>
    new Error(`Fake Discord: option '${key}' expects ${expected}, got ${JSON.stringify(value)}`);
  switch (type) {
    case 3:
      return String(value);
    case 4: {
      const n = typeof value === 'string' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw bad('an integer');
      return n;
    }
    case 10: {
      const n = typeof value === 'string' ? Number(value) : value;
      if (typeof n !== 'number' || Number.isNaN(n)) throw bad('a number');
      return n;
    }
    case 5:
      if (typeof value !== 'boolean') throw bad('a boolean');
      return value;
    case 6:
    case 9: {
      const user = world.findUser(String(value));
      if (user) {
        resolved.users[user.id] = userPayload(user) as unknown as Json;
        const member = rc.guild?.members.get(user.id);
        if (member && rc.guild) {
          const { user: _omit, ...rest } = interactionMemberPayload(
            world,
            member,
            world.permissionsIn(rc.channel, user.id),
          );
          resolved.members[user.id] = rest as unknown as Json;
        }
        return user.id;
      }
      const role = type === 9 ? rc.guild?.roles.find((r) => r.name === value || r.id === value) : undefined;
      if (role) {
        resolved.roles[role.id] = rolePayload(role) as unknown as Json;
        return role.id;
      }
      throw bad('a known user');
    }
    case 7: {
      const channel = world.channel(String(value), rc.guild ?? undefined);
      resolved.channels[channel.id] = {
        id: channel.id,
        name: channel.name,
        type: channel.type,
        nsfw: channel.nsfw,
        parent_id: channel.parentId,
        permissions: world.permissionsIn(channel, rc.user.id).toString(),
        flags: 0,
      };
      return channel.id;
    }
    case 8: {
      const role = rc.guild?.roles.find((r) => r.name === value || r.id === value);
      if (!role) throw bad('a known role');
      resolved.roles[role.id] = rolePayload(role) as unknown as Json;
      return role.id;
    }
    default:
      throw new Error(`Fake Discord: option type ${type} (option '${key}') is not supported by the fake`);
  }
}

/** Finds a component by button label or custom_id anywhere in a message's component tree. */
export function findComponent(message: APIMessage, labelOrCustomId: string): JsonObject | undefined {
  let found: JsonObject | undefined;
  const visit = (node: unknown): void => {
    if (found || !node || typeof node !== 'object') return;
    const n = node as JsonObject;
    if (n.custom_id === labelOrCustomId || (n.type === 2 && n.label === labelOrCustomId)) {
      found = n;
      return;
    }
    if (Array.isArray(n.components)) n.components.forEach(visit);
    if (n.accessory) visit(n.accessory);
    if (n.component) visit(n.component);
  };
  (message.components ?? []).forEach(visit);
  return found;
}

/** Modal submit data mirroring the modal's layout (action rows or labels around text inputs). */
export function buildModalSubmitData(modal: JsonObject, values: Record<string, string>): JsonObject {
  const used = new Set<string>();
  let nextId = 1;
  const visit = (node: Json): Json | undefined => {
    if (!node || typeof node !== 'object' || Array.isArray(node)) return undefined;
    const id = typeof node.id === 'number' ? node.id : nextId++;
    if (node.type === 4 && typeof node.custom_id === 'string') {
      used.add(node.custom_id);
      const value = values[node.custom_id] ?? (typeof node.value === 'string' ? node.value : '');
      if (node.required !== false && value === '')
        throw new Error(`Fake Discord: modal text input '${node.custom_id}' is required`);
      return { type: 4, id, custom_id: node.custom_id, value };
    }
    if (node.type === 1 && Array.isArray(node.components)) {
      return { type: 1, id, components: node.components.map(visit).filter((c): c is Json => c !== undefined) };
    }
    if (node.type === 18 && node.component) {
      const inner = visit(node.component);
      return inner === undefined ? undefined : { type: 18, id, component: inner };
    }
    return undefined;
  };
  const components = Array.isArray(modal.components)
    ? modal.components.map(visit).filter((c): c is Json => c !== undefined)
    : [];
  for (const key of Object.keys(values))
    if (!used.has(key)) throw new Error(`Fake Discord: the modal has no text input '${key}'`);
  return { custom_id: modal.custom_id ?? '', components };
}
