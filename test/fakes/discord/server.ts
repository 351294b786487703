// Entry point of the fake Discord: one HTTP server on 127.0.0.1 serving the REST API under
// /api/v10, the Gateway (WebSocket upgrade on /gateway and /gateway-resume) and attachment
// bytes under /attachments, plus the observation / control API tests use.
//
//   const discord = await startFakeDiscord();
//   const client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: discord.apiUrl } });
//   await client.login(discord.token);
//   const it = discord.slash('imagine', { prompt: 'a cat' });
//   await it.waitForOriginal();
//   ...; await client.destroy(); await discord.stop();
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { APIAttachment, APIMessage, APIUser } from 'discord-api-types/v10';
import { CommandStore } from './commands.ts';
import { FakeGateway, shardOfGuild, snowflakeOnShard } from './gateway.ts';
import { FaultInjector, RateLimitTracker, waitUntil } from './http.ts';
import {
  buildCommandData,
  buildInteractionPayload,
  buildModalSubmitData,
  checkCommandAvailable,
  FakeInteraction,
  findComponent,
  InteractionType,
  mustForceEphemeral,
  resolveContext,
  type InteractionHost,
  type OptionValue,
} from './interactions.ts';
import { MessageStore, type StoredAttachment } from './messages.ts';
import { channelPayload, guildPayload, memberPayload, userPayload } from './payloads.ts';
import { createRequestHandler } from './pipeline.ts';
import { buildRoutes, type CompiledRoute } from './rest.ts';
import { DEFAULT_UPLOAD_LIMIT_BYTES } from './rules.ts';
import { snowflake } from './snowflake.ts';
import type {
  ErrorExpectation,
  Fault,
  FakeDiscordOptions,
  FakeGuildSpec,
  InteractionContext,
  JsonObject,
  RecordedError,
  RecordedRequest,
  RouteMatcher,
  WaitOptions,
} from './types.ts';
import { DEFAULT_SPEC_PATH, specExists } from './validate.ts';
import { THREAD_TYPES, World } from './world.ts';

export { FakeInteraction } from './interactions.ts';
export { shardOfGuild, snowflakeOnShard } from './gateway.ts';
export type { CallbackRecord, AutocompleteChoice } from './interactions.ts';
export type * from './types.ts';
export { PermissionBits } from './permissions.ts';

/** A channel as Discord returns it from GET /channels/{id}. */
export interface FakeChannel {
  id: string;
  type: number;
  name: string;
  nsfw: boolean;
  guild_id?: string;
  parent_id?: string | null;
  topic?: string | null;
  [key: string]: unknown;
}

export interface FakeGuild {
  id: string;
  name: string;
  owner_id: string;
  [key: string]: unknown;
}

export async function startFakeDiscord(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
  const discord = new FakeDiscord(options);
  await discord.listen();
  return discord;
}

export class FakeDiscord {
  readonly token: string;
  readonly applicationId: string;
  /** Every HTTP request received, in order. */
  readonly requests: RecordedRequest[] = [];
  /** Every error answered (HTTP >= 400 and gateway error closes), except injected and expected ones. */
  readonly errors: RecordedError[] = [];
  /** Errors that matched an expectError() and so are not in `errors`. */
  readonly expectedErrors: RecordedError[] = [];
  /** Every interaction dispatched, in order. */
  readonly interactions: FakeInteraction[] = [];
  /** Emits 'request' (RecordedRequest, once answered) and 'callback' (FakeInteraction). */
  readonly events = new EventEmitter();
  readonly world: World;
  readonly store: MessageStore;
  readonly commands: CommandStore;
  readonly gateway: FakeGateway;
  readonly validateAgainstOpenApi: boolean;
  readonly callbackDeadlineMs: number;
  readonly interactionTokenTtlMs: number;
  readonly uploadLimitBytes: number;
  /** The shard count announced by GET /gateway/bot and required in IDENTIFY. */
  readonly shards: number;

  private readonly specPath: string;
  private readonly server: Server;
  private readonly routeTable: CompiledRoute[];
  private readonly faults = new FaultInjector();
  private readonly rateLimits = new RateLimitTracker();
  private readonly byId = new Map<string, FakeInteraction>();
  private readonly byToken = new Map<string, FakeInteraction>();
  private readonly expectations: { match: ErrorExpectation; remaining: number }[] = [];
  private readonly host: InteractionHost;
  private readonly sockets = new Set<Socket>();
  private sessionStartRemaining = 1000;
  private port = 0;
  private listening: AddressInfo = { address: '127.0.0.1', family: 'IPv4', port: 0 };
  private stopped: Promise<void> | null = null;

  constructor(options: FakeDiscordOptions = {}) {
    this.token = options.token ?? 'fake-bot-token';
    this.applicationId = options.applicationId ?? snowflake();
    this.specPath = options.openApiSpecPath ?? DEFAULT_SPEC_PATH;
    this.validateAgainstOpenApi = options.validateAgainstOpenApi ?? true;
    if (this.validateAgainstOpenApi && !specExists(this.specPath))
      throw new Error(`Fake Discord: OpenAPI spec not found at ${this.specPath}`);
    this.callbackDeadlineMs = options.callbackDeadlineMs ?? 3000;
    this.interactionTokenTtlMs = options.interactionTokenTtlMs ?? 15 * 60_000;
    this.uploadLimitBytes = options.uploadLimitBytes ?? DEFAULT_UPLOAD_LIMIT_BYTES;
    this.events.setMaxListeners(0);
    this.shards = options.shards ?? 1;
    if (!Number.isInteger(this.shards) || this.shards < 1)
      throw new Error(`Fake Discord: shards must be a positive integer (got ${String(options.shards)})`);

    // The bot user's id is the application id, as for every bot created in the developer portal.
    this.world = new World(spreadOverShards(options.guilds, this.shards), {
      id: this.applicationId,
      name: options.botName ?? 'Qwen Imagine',
    });
    this.store = new MessageStore(this.world, () => this.baseUrl, this.applicationId);
    this.commands = new CommandStore(this.applicationId);
    this.host = {
      store: this.store,
      events: this.events,
      interactionTokenTtlMs: this.interactionTokenTtlMs,
      submitModal: (from, values, ctx) => this.submitModal(from, values, ctx),
    };
    this.routeTable = buildRoutes({
      world: this.world,
      store: this.store,
      commands: this.commands,
      events: this.events,
      applicationId: this.applicationId,
      callbackDeadlineMs: this.callbackDeadlineMs,
      interaction: (id) => this.byId.get(id),
      interactionByToken: (token) => this.byToken.get(token),
      gatewayBot: () => ({
        url: this.gatewayUrl,
        shards: this.shards,
        session_start_limit: {
          total: 1000,
          remaining: this.sessionStartRemaining,
          reset_after: 86_400_000,
          max_concurrency: options.maxConcurrency ?? 1,
        },
      }),
      gatewayUrl: () => this.gatewayUrl,
    });
    this.gateway = new FakeGateway({
      token: this.token,
      world: this.world,
      applicationId: this.applicationId,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 41_250,
      privilegedIntents: options.privilegedIntents ?? 0,
      shards: this.shards,
      resumeUrl: () => `ws://127.0.0.1:${this.port}/gateway-resume`,
      onIdentify: () => {
        this.sessionStartRemaining = Math.max(0, this.sessionStartRemaining - 1);
      },
      onCloseError: (code, message, detail) => {
        this.recordError({
          method: 'GATEWAY',
          path: `/gateway (${detail})`,
          route: null,
          status: code,
          code,
          message,
          body: { message, code },
          at: Date.now(),
        });
      },
    });
    const handle = createRequestHandler({
      token: this.token,
      routes: this.routeTable,
      faults: this.faults,
      rateLimits: this.rateLimits,
      store: this.store,
      events: this.events,
      requests: this.requests,
      uploadLimitBytes: this.uploadLimitBytes,
      openApiSpec: this.validateAgainstOpenApi ? this.specPath : null,
      baseUrl: () => this.baseUrl,
      recordError: (error) => this.recordError(error),
    });
    this.server = createServer((req, res) => {
      void handle(req, res);
    });
    // Tracked so stop() can close keep-alive and upgraded sockets and wait until they are gone.
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
      const path = new URL(req.url ?? '/', 'http://fake.invalid').pathname;
      if (path === '/gateway' || path === '/gateway-resume') this.gateway.handleUpgrade(req, socket, head);
      else socket.destroy();
    });
  }

  /** @internal used by startFakeDiscord */
  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      // Loopback only: nothing outside this machine can reach the fake.
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.listening = this.server.address() as AddressInfo;
    this.port = this.listening.port;
  }

  // ---- addresses ----------------------------------------------------------------------------

  /** Where the server listens (kept after stop()). */
  get address(): AddressInfo {
    return this.listening;
  }

  /** 'http://127.0.0.1:<port>' */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** What discord.js takes as `rest.api` (it appends /v10 itself). */
  get apiUrl(): string {
    return `${this.baseUrl}/api`;
  }

  get gatewayUrl(): string {
    return `ws://127.0.0.1:${this.port}/gateway`;
  }

  /** The REST routes the fake serves (OpenAPI path templates). */
  get routes(): { method: string; route: string; auth: boolean }[] {
    return this.routeTable.map(({ method, route, auth }) => ({ method, route, auth }));
  }

  // ---- the world ----------------------------------------------------------------------------

  get botUser(): APIUser {
    return userPayload(this.world.botUser);
  }

  /** The first configured guild. */
  get guild(): FakeGuild {
    return guildPayload(this.world.guild()) as unknown as FakeGuild;
  }

  get guilds(): FakeGuild[] {
    return this.world.guilds.map((g) => guildPayload(g) as unknown as FakeGuild);
  }

  /** A channel by name ('general', '#nsfw') or id; `guild` (name or id) disambiguates names. */
  channel(nameOrId: string, guild?: string): FakeChannel {
    const g = guild !== undefined ? this.world.guild(guild) : undefined;
    return channelPayload(this.world, this.world.channel(nameOrId, g ?? this.world.guild())) as unknown as FakeChannel;
  }

  /**
   * A moderator changes a channel's age restriction (Edit Channel -> Age-Restricted): later
   * reads see it, and the gateway sends CHANNEL_UPDATE as Discord does. A thread has none of its
   * own: change its parent.
   */
  setAgeRestricted(nameOrId: string, nsfw: boolean, guild?: string): FakeChannel {
    const channel = this.world.channel(nameOrId, guild !== undefined ? this.world.guild(guild) : this.world.guild());
    if (THREAD_TYPES.has(channel.type))
      throw new Error(`Fake Discord: '${channel.name}' is a thread; its parent's age restriction applies`);
    channel.nsfw = nsfw;
    const payload = channelPayload(this.world, channel);
    this.gateway.dispatch('CHANNEL_UPDATE', payload);
    return payload as unknown as FakeChannel;
  }

  /** The shard that holds a guild (name or id; default the first guild): `(id >> 22) % shards`. */
  shardOf(guild?: string): number {
    return shardOfGuild(this.world.guild(guild).id, this.shards);
  }

  /** A user by name ('alice') or id. */
  user(nameOrId: string): APIUser {
    return userPayload(this.world.user(nameOrId));
  }

  /**
   * The user turns "Allow direct messages" off (or back on): the bot can still open the DM channel
   * (POST /users/@me/channels), but its messages there answer 403 50007, as on Discord.
   */
  refuseDms(user: string, refuse = true): void {
    const id = this.world.user(user).id;
    if (refuse) this.world.refusingDms.add(id);
    else this.world.refusingDms.delete(id);
  }

  /** The bot's DM channel with a user (created like POST /users/@me/channels would). */
  dmChannel(user: string): FakeChannel {
    return channelPayload(this.world, this.world.dmChannel(this.world.user(user).id)) as unknown as FakeChannel;
  }

  /** A guild member as GET /guilds/{id}/members/{user} returns it. */
  member(user: string, guild?: string): JsonObject {
    const g = this.world.guild(guild);
    const m = g.members.get(this.world.user(user).id);
    if (!m) throw new Error(`Fake Discord: '${user}' is not a member of '${g.name}'`);
    return memberPayload(this.world, m) as unknown as JsonObject;
  }

  // ---- interactions -------------------------------------------------------------------------

  /** A user runs `/name` (name may include a subcommand: 'settings show'). */
  slash(name: string, options: Record<string, OptionValue> = {}, ctx: InteractionContext = {}): FakeInteraction {
    this.requireSession();
    const rc = resolveContext(this.world, ctx);
    this.requireShardSession(rc.guild?.id ?? null);
    const data = buildCommandData(
      this.world,
      this.commands,
      rc,
      name,
      options,
      undefined,
      (file, channelId) => this.store.upload(file, channelId) as unknown as JsonObject,
    );
    return this.dispatchInteraction(
      InteractionType.ApplicationCommand,
      data,
      rc,
      undefined,
      this.integrationTypesOf(name, rc),
      ctx.ageMs,
    );
  }

  /** A user types in option `focused` of `/name`; read the answer with `autocompleteChoices()`. */
  autocomplete(
    name: string,
    options: Record<string, OptionValue>,
    focused: string,
    ctx: InteractionContext = {},
  ): FakeInteraction {
    this.requireSession();
    const rc = resolveContext(this.world, ctx);
    this.requireShardSession(rc.guild?.id ?? null);
    const data = buildCommandData(this.world, this.commands, rc, name, options, focused);
    return this.dispatchInteraction(
      InteractionType.Autocomplete,
      data,
      rc,
      undefined,
      this.integrationTypesOf(name, rc),
    );
  }

  /** A user clicks the button labelled (or with custom_id) `button` on `message`. */
  click(
    message: string | { id: string },
    button: string,
    ctx: Omit<InteractionContext, 'channel' | 'guild' | 'dm'> = {},
  ): FakeInteraction {
    this.requireSession();
    const stored = this.requireMessage(message);
    const component = findComponent(stored.data, button);
    if (!component)
      throw new Error(
        `Fake Discord: no component '${button}' on message ${stored.data.id} (components: ${describeComponents(stored.data)})`,
      );
    if (component.type !== 2)
      throw new Error(`Fake Discord: '${button}' is not a button (type ${String(component.type)}); use select()`);
    if (component.disabled === true)
      throw new Error(`Fake Discord: button '${button}' is disabled; a user cannot click it`);
    if (typeof component.custom_id !== 'string')
      throw new Error(`Fake Discord: button '${button}' is a link/premium button; clicking it sends no interaction`);
    const rc = resolveContext(this.world, ctx, this.world.channel(stored.data.channel_id));
    this.requireShardSession(rc.guild?.id ?? null);
    const data: JsonObject = {
      custom_id: component.custom_id,
      component_type: 2,
      ...(typeof component.id === 'number' ? { id: component.id } : {}),
    };
    return this.dispatchInteraction(InteractionType.MessageComponent, data, rc, stored.data);
  }

  /** A member posts `content` in a channel (as a person would, not through the bot). */
  post(
    content: string,
    ctx: Omit<InteractionContext, 'permissions' | 'appPermissions' | 'locale' | 'dm'> = {},
  ): APIMessage {
    const rc = resolveContext(this.world, ctx);
    return this.store.create({
      channel: rc.channel,
      body: { content },
      files: [],
      kind: 'channel',
      type: 0,
      author: userPayload(rc.user),
    }).data;
  }

  /**
   * A user picks the message command `name` ("Apps → name") on `message`. Discord only offers
   * commands that are registered, so an unregistered name is an error here too.
   */
  messageCommand(
    name: string,
    message: string | { id: string },
    ctx: Omit<InteractionContext, 'channel' | 'guild' | 'dm'> = {},
  ): FakeInteraction {
    this.requireSession();
    const stored = this.requireMessage(message);
    const rc = resolveContext(this.world, ctx, this.world.channel(stored.data.channel_id));
    this.requireShardSession(rc.guild?.id ?? null);
    const registered = this.commands.find(name, rc.guild?.id ?? null, 3);
    if (!registered) throw new Error(`Fake Discord: no message command '${name}' is registered here`);
    checkCommandAvailable(rc, registered);
    const data: JsonObject = {
      id: registered.id,
      name,
      type: 3,
      target_id: stored.data.id,
      resolved: { messages: { [stored.data.id]: stored.data as unknown as JsonObject } },
      ...(registered.guild_id ? { guild_id: registered.guild_id } : {}),
    };
    return this.dispatchInteraction(
      InteractionType.ApplicationCommand,
      data,
      rc,
      undefined,
      registered.integration_types,
    );
  }

  /** A user picks `values` in the select menu `customId` on `message`. */
  select(
    message: string | { id: string },
    customId: string,
    values: string[],
    ctx: Omit<InteractionContext, 'channel' | 'guild' | 'dm'> = {},
  ): FakeInteraction {
    this.requireSession();
    const stored = this.requireMessage(message);
    const component = findComponent(stored.data, customId);
    if (!component || typeof component.type !== 'number' || ![3, 5, 6, 7, 8].includes(component.type)) {
      throw new Error(
        `Fake Discord: no select menu '${customId}' on message ${stored.data.id} (components: ${describeComponents(stored.data)})`,
      );
    }
    if (component.disabled === true) throw new Error(`Fake Discord: select menu '${customId}' is disabled`);
    const min = typeof component.min_values === 'number' ? component.min_values : 1;
    const max = typeof component.max_values === 'number' ? component.max_values : 1;
    if (values.length < min || values.length > max)
      throw new Error(`Fake Discord: select '${customId}' takes ${min}..${max} values`);
    if (component.type === 3 && Array.isArray(component.options)) {
      const allowed = component.options.map((o) =>
        o && typeof o === 'object' && !Array.isArray(o) ? o.value : undefined,
      );
      for (const v of values)
        if (!allowed.includes(v)) throw new Error(`Fake Discord: '${v}' is not an option of select '${customId}'`);
    }
    const rc = resolveContext(this.world, ctx, this.world.channel(stored.data.channel_id));
    this.requireShardSession(rc.guild?.id ?? null);
    const data: JsonObject = {
      custom_id: customId,
      component_type: component.type,
      values,
      ...(typeof component.id === 'number' ? { id: component.id } : {}),
    };
    return this.dispatchInteraction(InteractionType.MessageComponent, data, rc, stored.data);
  }

  private submitModal(
    from: FakeInteraction,
    values: Record<string, string>,
    ctx: InteractionContext = {},
  ): FakeInteraction {
    this.requireSession();
    const modalCallback = from.response;
    if (modalCallback?.type !== 9) throw new Error('Fake Discord: this interaction did not show a modal');
    const data = buildModalSubmitData(modalCallback.data as JsonObject, values);
    const source = from.sourceMessageId ? this.store.get(from.sourceMessageId) : undefined;
    const owners = (from.payload.authorizing_integration_owners ?? {}) as Record<string, string>;
    const rc = resolveContext(
      this.world,
      { user: from.user.id, userInstall: '1' in owners, ...ctx },
      this.world.channel(from.channelId),
    );
    this.requireShardSession(rc.guild?.id ?? null);
    return this.dispatchInteraction(
      InteractionType.ModalSubmit,
      data,
      rc,
      source && !source.deleted ? source.data : undefined,
    );
  }

  /** The integration types of the registered command a slash()/autocomplete() name invokes, if registered. */
  private integrationTypesOf(name: string, rc: ReturnType<typeof resolveContext>): number[] | undefined {
    return this.commands.find(name.trim().split(/\s+/)[0] ?? '', rc.guild?.id ?? null)?.integration_types;
  }

  private dispatchInteraction(
    type: number,
    data: JsonObject,
    rc: ReturnType<typeof resolveContext>,
    message?: APIMessage,
    integrationTypes?: readonly number[],
    ageMs = 0,
  ): FakeInteraction {
    const { id, token, payload } = buildInteractionPayload(this.world, this.applicationId, {
      type,
      data,
      rc,
      createdAt: Date.now() - ageMs,
      ...(message ? { message } : {}),
      ...(integrationTypes ? { integrationTypes } : {}),
    });
    const it = new FakeInteraction(this.host, {
      id,
      token,
      type,
      payload,
      user: userPayload(rc.user),
      channelId: rc.channel.id,
      guildId: rc.guild?.id ?? null,
      sourceMessageId: message?.id ?? null,
      where: rc.where,
      forcedEphemeral: mustForceEphemeral(rc),
    });
    this.byId.set(id, it);
    this.byToken.set(token, it);
    this.interactions.push(it);
    this.gateway.dispatch('INTERACTION_CREATE', payload);
    return it;
  }

  private requireSession(): void {
    if (!this.gateway.hasSession)
      throw new Error("Fake Discord: no bot session on the gateway (await the client's 'ready' event first)");
  }

  /** With several shards, the interaction's shard (its guild's; shard 0 for DMs) must have a session. */
  private requireShardSession(guildId: string | null): void {
    const shard = this.gateway.shardOf(guildId);
    if (!this.gateway.hasSessionFor(shard)) {
      const where = guildId === null ? 'DMs' : `guild ${guildId}`;
      throw new Error(
        `Fake Discord: no bot session on shard ${shard} of ${this.shards}, which receives the interactions of ${where} (is a client identified with shard [${shard}, ${this.shards}]?)`,
      );
    }
  }

  private requireMessage(message: string | { id: string }): { data: APIMessage } {
    const id = typeof message === 'string' ? message : message.id;
    const stored = this.store.get(id);
    if (!stored || stored.deleted) throw new Error(`Fake Discord: no message ${id}`);
    return stored;
  }

  // ---- observation --------------------------------------------------------------------------

  /** Current (not deleted) messages, optionally of one channel (name or id), oldest first. */
  messages(channel?: string): APIMessage[] {
    return this.store.list(channel === undefined ? undefined : this.world.channel(channel).id);
  }

  message(id: string): APIMessage | undefined {
    const stored = this.store.get(id);
    return stored && !stored.deleted ? stored.data : undefined;
  }

  /** Every state a message went through (creation, each edit). */
  messageHistory(id: string): APIMessage[] {
    return this.store.get(id)?.history ?? [];
  }

  /** Resolves with the first message (channel message, @original or follow-up) matching, now or after a create/edit. */
  waitForMessage(predicate: (m: APIMessage) => boolean, opts: WaitOptions = {}): Promise<APIMessage> {
    return waitUntil(
      [this.store, 'message'],
      () => this.store.list().find(predicate),
      opts.timeoutMs ?? 5000,
      () =>
        `a message to match (messages: ${JSON.stringify(this.store.list().map((m) => ({ id: m.id, content: m.content, flags: m.flags })))})`,
    );
  }

  /** Resolves with the first recorded request matching, now or later. */
  waitForRequest(predicate: (r: RecordedRequest) => boolean, opts: WaitOptions = {}): Promise<RecordedRequest> {
    return waitUntil(
      [this.events, 'request'],
      () => this.requests.find((r) => r.status !== 0 && predicate(r)),
      opts.timeoutMs ?? 5000,
      () => 'a request to match',
    );
  }

  /** The bytes of an uploaded attachment (object from a message, its URL, or its id). */
  attachmentBytes(attachment: APIAttachment | string): Buffer {
    return this.requireAttachment(attachment).bytes;
  }

  /** The files of a message: filename, content type and bytes, in attachment order. */
  files(message: string | { id: string }): { filename: string; contentType: string; bytes: Buffer }[] {
    const stored = this.requireMessage(message);
    return stored.data.attachments.map((a) => {
      const s = this.requireAttachment(a);
      return { filename: s.filename, contentType: s.contentType, bytes: s.bytes };
    });
  }

  private requireAttachment(attachment: APIAttachment | string): StoredAttachment {
    const key = typeof attachment === 'string' ? attachment : attachment.id;
    const found = this.store.attachments.get(key) ?? this.store.attachmentByUrl(key);
    if (!found) throw new Error(`Fake Discord: no attachment ${key}`);
    return found;
  }

  // ---- errors and faults --------------------------------------------------------------------

  /** The next `times` errors matching (a Discord code, or {code,status,route,method}) are expected: not put in `errors`. */
  expectError(match: number | ErrorExpectation, times = 1): void {
    this.expectations.push({ match: typeof match === 'number' ? { code: match } : match, remaining: times });
  }

  /** Returns the recorded errors and clears the list. */
  takeErrors(): RecordedError[] {
    return this.errors.splice(0, this.errors.length);
  }

  /** The next `times` requests matching get the fault (429 or 5xx) instead of being processed. */
  failNext(matcher: RouteMatcher, fault: Fault, times = 1): void {
    this.faults.add(matcher, fault, times);
  }

  private recordError(error: RecordedError): void {
    const exp = this.expectations.find(
      (e) =>
        e.remaining > 0 &&
        (e.match.code === undefined || e.match.code === error.code) &&
        (e.match.status === undefined || e.match.status === error.status) &&
        (e.match.route === undefined || e.match.route === error.route) &&
        (e.match.method === undefined || e.match.method.toUpperCase() === error.method),
    );
    if (exp) {
      exp.remaining--;
      this.expectedErrors.push(error);
    } else {
      this.errors.push(error);
    }
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /**
   * Closes every gateway socket, every HTTP connection (keep-alive included) and the server.
   * Destroy the discord.js Client first, or it will try to reconnect.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await this.gateway.close();
      const closing = [...this.sockets].map(
        (socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())),
      );
      for (const socket of this.sockets) socket.destroy();
      const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      await Promise.all([...closing, serverClosed]);
    })();
    return this.stopped;
  }
}

/**
 * With several shards, guilds given without an id get one on shard `index % shards` (the first
 * guild on shard 0, the second on shard 1, ...), so multi-shard tests need not pick snowflakes.
 */
function spreadOverShards(guilds: FakeGuildSpec[] | undefined, shards: number): FakeGuildSpec[] | undefined {
  if (shards === 1) return guilds;
  // World's default guild, placed on shard 0.
  const specs = guilds && guilds.length > 0 ? guilds : [{ name: 'Test Guild' }];
  return specs.map((spec, index) =>
    spec.id === undefined ? { ...spec, id: snowflakeOnShard(index % shards, shards) } : spec,
  );
}

function describeComponents(message: APIMessage): string {
  const names: string[] = [];
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    if (typeof n.custom_id === 'string' || typeof n.label === 'string')
      names.push(`${String(n.label ?? '')}[${String(n.custom_id ?? n.url ?? '')}]`);
    if (Array.isArray(n.components)) n.components.forEach(visit);
    if (n.accessory) visit(n.accessory);
  };
  (message.components ?? []).forEach(visit);
  return names.join(', ') || 'none';
}
