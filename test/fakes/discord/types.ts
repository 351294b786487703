// Shared types of the fake Discord. Kept free of runtime code so every module can import them.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Discord's nested form-error tree: `{ content: { _errors: [{ code, message }] } }`. */
export interface ErrorTree {
  _errors?: { code: string; message: string }[];
  [key: string]: ErrorTree | { code: string; message: string }[] | undefined;
}

/** The JSON body of every error the fake answers with, shaped like Discord's. */
export interface DiscordErrorBody {
  message: string;
  code: number;
  errors?: ErrorTree;
  retry_after?: number;
  global?: boolean;
}

/** Thrown by route handlers; the server turns it into an HTTP response. */
export class DiscordHttpError extends Error {
  readonly status: number;
  readonly body: DiscordErrorBody;
  constructor(status: number, body: DiscordErrorBody) {
    super(`${status} ${body.message} (${body.code})`);
    this.status = status;
    this.body = body;
  }
}

/** A permission set, given as a bitfield (bigint / decimal string) or as discord.js flag names. */
export type PermissionsInput = bigint | string | number | readonly string[];

export interface FakeUserSpec {
  /** Key used by `discord.user(name)`; also the default username. */
  name: string;
  id?: string;
  username?: string;
  globalName?: string | null;
  bot?: boolean;
  locale?: string;
}

export interface FakeOverwriteSpec {
  /** Role name ('@everyone' for the everyone role) or user name; exactly one of them. */
  role?: string;
  user?: string;
  allow?: PermissionsInput;
  deny?: PermissionsInput;
}

export interface FakeChannelSpec {
  name: string;
  id?: string;
  /**
   * 0 GUILD_TEXT (default), 2 GUILD_VOICE, 4 GUILD_CATEGORY, 5 GUILD_ANNOUNCEMENT, 10/11/12
   * ANNOUNCEMENT/PUBLIC/PRIVATE_THREAD (a thread needs `parent`, and has no `nsfw` or overwrites of its own).
   */
  type?: 0 | 2 | 4 | 5 | 10 | 11 | 12;
  nsfw?: boolean;
  topic?: string | null;
  /** Name of a category channel of the same guild; for a thread, of its text or announcement channel. */
  parent?: string;
  overwrites?: FakeOverwriteSpec[];
  rateLimitPerUser?: number;
}

export interface FakeRoleSpec {
  name: string;
  id?: string;
  permissions?: PermissionsInput;
  color?: number;
  hoist?: boolean;
}

export interface FakeMemberSpec {
  /** User name; the user is created if no user of that name exists yet. */
  user: string | FakeUserSpec;
  /** Role names. */
  roles?: string[];
  nick?: string | null;
}

export interface FakeGuildSpec {
  name: string;
  id?: string;
  /** Permissions of the @everyone role. Default: what a new Discord server gives everyone. */
  everyonePermissions?: PermissionsInput;
  roles?: FakeRoleSpec[];
  channels?: FakeChannelSpec[];
  members?: FakeMemberSpec[];
  /** User name of the owner (the owner has every permission). Default: a user 'owner'. */
  owner?: string;
  preferredLocale?: string;
  /** Permissions of the bot's managed role. Default: what a bot invited with the usual scopes gets. */
  botPermissions?: PermissionsInput;
  /**
   * False: a server whose admins never installed the app. The bot is not a member, the gateway
   * never mentions the guild, its channel and guild routes answer 403 50001; members reach the
   * bot only through their own (user) install. Default true.
   */
  botInstalled?: boolean;
  /**
   * 'ephemeral': @everyone lacks USE_EXTERNAL_APPS, so responses of apps the member installed
   * for themselves (and the server did not) are forced ephemeral, as Discord does. Default 'public'.
   */
  externalApps?: 'public' | 'ephemeral';
}

export interface FakeDiscordOptions {
  /** Bot token accepted on REST (`Authorization: Bot <token>`) and in IDENTIFY. */
  token?: string;
  guilds?: FakeGuildSpec[];
  /** Validate JSON bodies against Discord's OpenAPI spec. Default true: a missing spec file then makes the fake throw, never skip. */
  validateAgainstOpenApi?: boolean;
  /** Path to openapi.json; default `test/fakes/discord/openapi/openapi.json` (carried by the repository, MIT) or $DISCORD_OPENAPI_SPEC. */
  openApiSpecPath?: string;
  interactionTokenTtlMs?: number;
  callbackDeadlineMs?: number;
  /** HELLO heartbeat_interval (Discord: 41250). */
  heartbeatIntervalMs?: number;
  /** Total upload size accepted per message (Discord's default: 10 MiB). */
  uploadLimitBytes?: number;
  /** Privileged intents enabled for the app in the developer portal (GUILD_MEMBERS 1<<1, GUILD_PRESENCES 1<<8, MESSAGE_CONTENT 1<<15). Default none: identifying with one closes 4014. */
  privilegedIntents?: number;
  botName?: string;
  applicationId?: string;
  /**
   * Shards the bot must use: GET /gateway/bot returns it as `shards`, IDENTIFY must send
   * `shard: [i, shards]` (another count closes 4011). Each session gets the guilds with
   * `(guild_id >> 22) % shards === i` and their events; DMs go to shard 0. With more than one,
   * guilds without an `id` are spread over the shards in order (guild k on shard k % shards).
   * Default 1.
   */
  shards?: number;
  /**
   * `session_start_limit.max_concurrency` of GET /gateway/bot (Discord: 1, more for large bots).
   * discord.js identifies shards with the same `shard_id % max_concurrency` 5 s apart; raise it
   * so one client running several shards connects them at once. Not enforced. Default 1.
   */
  maxConcurrency?: number;
}

/** One HTTP request the fake received, in arrival order. */
export interface RecordedRequest {
  method: string;
  /** Path below /api/v10 (e.g. '/channels/123/messages'), or the full path for non-API routes. */
  path: string;
  /** The OpenAPI-style route template that matched, e.g. '/channels/{channel_id}/messages'; null when none did. */
  route: string | null;
  query: Record<string, string>;
  /** Lower-cased header names; authorization redacted to 'Bot [redacted]'. */
  headers: Record<string, string>;
  /** Parsed JSON body (or `payload_json` of a multipart body); undefined when there was none. */
  body: Json | undefined;
  files: RecordedFile[];
  status: number;
  /** The response body as sent (JSON), for inspection. */
  response: Json | undefined;
  /** Set when the fake answered with an injected fault (failNext). */
  injected: boolean;
  at: number;
}

export interface RecordedFile {
  /** Form field name, e.g. 'files[0]'. */
  field: string;
  filename: string;
  contentType: string;
  size: number;
  bytes: Buffer;
}

/** An error the fake answered with (status >= 400), unless injected or expected by the test. */
export interface RecordedError {
  method: string;
  path: string;
  route: string | null;
  status: number;
  code: number;
  message: string;
  body: DiscordErrorBody;
  at: number;
}

export interface ErrorExpectation {
  code?: number;
  status?: number;
  route?: string;
  method?: string;
}

export type RouteMatcher = string | RegExp | { method?: string; path?: string | RegExp };

export type Fault = { status: 429; retryAfterSec?: number; global?: boolean } | { status: 500 | 502 | 503 | 504 };

/** Context of a simulated user action (slash command, click, ...). */
export interface InteractionContext {
  /** User name (default 'alice'). */
  user?: string;
  /** Channel name or id (default: the guild's first text channel, i.e. 'general'). */
  channel?: string;
  /** Guild name or id (default: the first guild). */
  guild?: string;
  /** Overrides member.permissions (the invoking member's permissions in the channel). */
  permissions?: PermissionsInput;
  /** Overrides app_permissions (the bot's permissions in the channel). */
  appPermissions?: PermissionsInput;
  locale?: string;
  /** Dispatch as a DM interaction (context 1) instead of a guild one. */
  dm?: boolean;
  /**
   * Where the interaction happens, seen from the bot: 'guild' (a server that installed the app),
   * 'guild_user_install' (context 0 in a server that did not: the first guild with `botInstalled:
   * false` unless `guild` says), 'bot_dm' (context 1, the user's DM with the bot), 'private'
   * (context 2: a DM or group DM between the user and `with`). Default: inferred from the channel.
   */
  context?: InteractionWhere;
  /** For 'private': the other people in the conversation (default ['bob']); two or more make a group DM (type 3). */
  with?: string[];
  /**
   * The user installed the app to their account: `authorizing_integration_owners` has "1": user id.
   * Default true for 'guild_user_install', 'private' and an explicit 'bot_dm'; false in a guild and for `dm: true`.
   */
  userInstall?: boolean;
  /**
   * For `slash`: the interaction's id says it was created this long ago, so the bot, which reads
   * a token's age from it, nears the end of the 15 minutes without the test waiting for them.
   * The fake's own deadlines (the 3 s callback) still count from the dispatch; `expireToken()` ends the token.
   */
  ageMs?: number;
}

/** Where an interaction happens, seen from the bot (see InteractionContext.context). */
export type InteractionWhere = 'guild' | 'guild_user_install' | 'bot_dm' | 'private';

export interface WaitOptions {
  timeoutMs?: number;
}
