// REST routes (API v10) the bot uses, with Discord's answers and errors. Route templates are the
// OpenAPI paths, so the same string selects the operation validated in validate.ts.
import type { EventEmitter } from 'node:events';
import type { APIMessage } from 'discord-api-types/v10';
import type { CommandStore } from './commands.ts';
import { CallbackType, InteractionType, type CallbackRecord, type FakeInteraction } from './interactions.ts';
import { FLAG, type InteractionStamp, type MessageStore, type StoredMessage } from './messages.ts';
import {
  applicationPayload,
  channelPayload,
  guildPayload,
  memberPayload,
  rolePayload,
  selfUserPayload,
  userPayload,
} from './payloads.ts';
import { PermissionBits } from './permissions.ts';
import { checkAutocompleteChoices, checkCommands, checkMessageLimits, FormErrors } from './rules.ts';
import { DiscordHttpError, type Json, type JsonObject, type RecordedFile } from './types.ts';
import type { ChannelRec, World } from './world.ts';

/** Follow-ups Discord allows per interaction when the app is only user-installed there. */
export const USER_INSTALL_MAX_FOLLOWUPS = 5;

/** What the routes need from the fake. */
export interface RestCore {
  readonly world: World;
  readonly store: MessageStore;
  readonly commands: CommandStore;
  readonly events: EventEmitter;
  readonly applicationId: string;
  readonly callbackDeadlineMs: number;
  interaction(id: string): FakeInteraction | undefined;
  interactionByToken(token: string): FakeInteraction | undefined;
  gatewayBot(): JsonObject;
  gatewayUrl(): string;
}

export interface RouteContext {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Json | undefined;
  files: RecordedFile[];
  /** Runs OpenAPI validation of the body (no-op when disabled). Routes call it after their auth/state checks. */
  validate(): void;
}

export interface RouteResult {
  status: number;
  body?: unknown;
}

export interface RouteDef {
  method: string;
  /** OpenAPI path template, e.g. '/channels/{channel_id}/messages'. */
  route: string;
  /** Requires `Authorization: Bot <token>` (interaction callback and webhook routes do not). */
  auth: boolean;
  handler(ctx: RouteContext): RouteResult;
  /** Called when the request failed (validation or handler), e.g. to record a refused callback. */
  onError?(ctx: RouteContext, error: DiscordHttpError): void;
}

export interface CompiledRoute extends RouteDef {
  regex: RegExp;
  keys: string[];
}

export function compileRoutes(defs: RouteDef[]): CompiledRoute[] {
  return defs.map((def) => {
    const keys: string[] = [];
    const pattern = def.route
      .split('/')
      .map((part) => {
        const m = /^\{(\w+)\}$/.exec(part);
        if (m?.[1]) {
          keys.push(m[1]);
          return '([^/]+)';
        }
        return part.replace(/[.*+?^${}()|[\]\\@]/g, '\\$&');
      })
      .join('/');
    return { ...def, keys, regex: new RegExp(`^${pattern}/?$`) };
  });
}

/** Literal segments ('@me', '@original') win over parameters: routes are listed literal-first. */
export function matchRoute(
  routes: CompiledRoute[],
  method: string,
  path: string,
): { route: CompiledRoute; params: Record<string, string> } | { methodNotAllowed: true } | null {
  let pathMatched = false;
  for (const route of routes) {
    const m = route.regex.exec(path);
    if (!m) continue;
    pathMatched = true;
    if (route.method !== method) continue;
    const params: Record<string, string> = {};
    route.keys.forEach((k, i) => {
      params[k] = m[i + 1] ?? '';
    });
    return { route, params };
  }
  return pathMatched ? { methodNotAllowed: true } : null;
}

// ---- Discord's errors -----------------------------------------------------------------------

const err = (status: number, code: number, message: string): DiscordHttpError =>
  new DiscordHttpError(status, { message, code });
export const Errors = {
  unknownChannel: () => err(404, 10003, 'Unknown Channel'),
  unknownGuild: () => err(404, 10004, 'Unknown Guild'),
  unknownMember: () => err(404, 10007, 'Unknown Member'),
  unknownMessage: () => err(404, 10008, 'Unknown Message'),
  unknownUser: () => err(404, 10013, 'Unknown User'),
  unknownWebhook: () => err(404, 10015, 'Unknown Webhook'),
  unknownCommand: () => err(404, 10063, 'Unknown application command'),
  unknownInteraction: () => err(404, 10062, 'Unknown interaction'),
  alreadyAcknowledged: () => err(400, 40060, 'Interaction has already been acknowledged.'),
  invalidWebhookToken: () => err(401, 50027, 'Invalid Webhook Token'),
  missingAccess: () => err(403, 50001, 'Missing Access'),
  missingPermissions: () => err(403, 50013, 'Missing Permissions'),
  cannotDmUser: () => err(403, 50007, 'Cannot send messages to this user'),
  maxFollowups: () => err(400, 40094, 'This interaction has hit the maximum number of follow up messages'),
  cannotEditOthers: () => err(403, 50005, 'Cannot edit a message authored by another user'),
};

function asObject(body: Json | undefined, path: (string | number)[] = []): JsonObject {
  if (body && typeof body === 'object' && !Array.isArray(body)) return body;
  if (body === undefined || body === null) return {};
  const errors = new FormErrors();
  errors.add(path, 'DICT_TYPE_CONVERT', 'Only dictionaries may be used in a DictType');
  throw errors.toError();
}

// ---- routes ---------------------------------------------------------------------------------

export function buildRoutes(core: RestCore): CompiledRoute[] {
  const { world, store, commands } = core;

  const channelOr404 = (id: string): ChannelRec => {
    const channel = world.channels.get(id);
    if (!channel) throw Errors.unknownChannel();
    return channel;
  };
  // A conversation between others is invisible to the bot, and so is a server that did not install
  // it (permissionsIn is 0 for a non-member): both answer Missing Access like Discord.
  const botPerms = (channel: ChannelRec): bigint =>
    channel.withoutBot ? 0n : channel.guildId ? world.permissionsIn(channel, world.botUser.id) : ~0n;
  const requireView = (channel: ChannelRec): void => {
    if ((botPerms(channel) & PermissionBits.ViewChannel) === 0n) throw Errors.missingAccess();
  };
  const requirePerm = (channel: ChannelRec, bit: bigint): void => {
    if ((botPerms(channel) & bit) === 0n) throw Errors.missingPermissions();
  };
  /** A message reachable through the channel routes (ephemeral ones are not). */
  const channelMessageOr404 = (channel: ChannelRec, id: string): StoredMessage => {
    const stored = store.get(id);
    if (
      !stored ||
      stored.deleted ||
      stored.data.channel_id !== channel.id ||
      ((stored.data.flags ?? 0) & FLAG.EPHEMERAL) !== 0
    )
      throw Errors.unknownMessage();
    return stored;
  };
  const requireApp = (id: string): void => {
    if (id !== core.applicationId) throw Errors.missingAccess();
  };
  const guildOr404 = (id: string) => {
    const guild = world.findGuild(id);
    if (!guild) throw Errors.unknownGuild();
    if (!guild.botInstalled) throw Errors.missingAccess();
    return guild;
  };
  const commandGuild = (id: string): string => {
    // A bot can only manage commands of guilds it is in.
    if (!world.findGuild(id)?.botInstalled) throw Errors.missingAccess();
    return id;
  };

  /** Interaction webhook: right application id, a live token, and an acknowledged interaction. */
  const webhookInteraction = (params: Record<string, string>): FakeInteraction => {
    if (params.webhook_id !== core.applicationId) throw Errors.unknownWebhook();
    const it = core.interactionByToken(params.webhook_token ?? '');
    if (!it?.tokenValid()) throw Errors.invalidWebhookToken();
    if (!it.acknowledged) throw Errors.unknownWebhook();
    return it;
  };
  const webhookMessage = (it: FakeInteraction, messageId: string): StoredMessage => {
    const id = messageId === '@original' ? it.originalMessageId : messageId;
    const belongs = id !== null && (id === it.originalMessageId || it.followupIds.includes(id));
    const stored = id && belongs ? store.get(id) : undefined;
    if (!stored || stored.deleted) throw Errors.unknownMessage();
    return stored;
  };
  const stampOf = (it: FakeInteraction, extra: Partial<InteractionStamp> = {}): InteractionStamp => {
    const data = it.payload.data as JsonObject | undefined;
    return {
      id: it.id,
      type: it.type,
      ...(it.type === InteractionType.ApplicationCommand && typeof data?.name === 'string' ? { name: data.name } : {}),
      user: userPayload(world.user(it.user.id)),
      authorizingIntegrationOwners: (it.payload.authorizing_integration_owners ?? {}) as Record<string, string>,
      ...(it.sourceMessageId ? { interactedMessageId: it.sourceMessageId } : {}),
      ...extra,
    };
  };
  const channelOfInteraction = (it: FakeInteraction): ChannelRec => channelOr404(it.channelId);

  const editMessage = (ctx: RouteContext, stored: StoredMessage): RouteResult => {
    const body = asObject(ctx.body);
    checkMessageLimits(body, [], ctx.files.length);
    return { status: 200, body: store.edit(stored, body, ctx.files).data };
  };

  const routes: RouteDef[] = [
    // -- gateway / self ------------------------------------------------------------------------
    {
      method: 'GET',
      route: '/gateway',
      auth: false,
      handler: () => ({ status: 200, body: { url: core.gatewayUrl() } }),
    },
    { method: 'GET', route: '/gateway/bot', auth: true, handler: () => ({ status: 200, body: core.gatewayBot() }) },
    {
      method: 'GET',
      route: '/users/@me',
      auth: true,
      handler: () => ({ status: 200, body: selfUserPayload(world.botUser) }),
    },
    {
      method: 'POST',
      route: '/users/@me/channels',
      auth: true,
      handler: (ctx) => {
        ctx.validate();
        const body = asObject(ctx.body);
        const user = typeof body.recipient_id === 'string' ? world.findUser(body.recipient_id) : undefined;
        if (!user) throw Errors.unknownUser();
        return { status: 200, body: channelPayload(world, world.dmChannel(user.id)) };
      },
    },
    {
      method: 'GET',
      route: '/users/{user_id}',
      auth: true,
      handler: ({ params }) => {
        const user = world.users.get(params.user_id ?? '');
        if (!user) throw Errors.unknownUser();
        return { status: 200, body: userPayload(user) };
      },
    },
    {
      method: 'GET',
      route: '/applications/@me',
      auth: true,
      handler: () => ({ status: 200, body: applicationPayload(world, core.applicationId) }),
    },

    // -- application commands -----------------------------------------------------------------
    ...commandRoutes('/applications/{application_id}/commands', (p) => {
      requireApp(p.application_id ?? '');
      return undefined;
    }),
    ...commandRoutes('/applications/{application_id}/guilds/{guild_id}/commands', (p) => {
      requireApp(p.application_id ?? '');
      return commandGuild(p.guild_id ?? '');
    }),

    // -- interactions ------------------------------------------------------------------------
    {
      method: 'POST',
      route: '/interactions/{interaction_id}/{interaction_token}/callback',
      auth: false,
      handler: (ctx) => interactionCallback(ctx),
      onError: (ctx, error) => {
        const it = core.interaction(ctx.params.interaction_id ?? '');
        if (!it || it.token !== ctx.params.interaction_token) return;
        const body = ctx.body && typeof ctx.body === 'object' && !Array.isArray(ctx.body) ? ctx.body : {};
        it.callbacks.push({
          type: typeof body.type === 'number' ? body.type : -1,
          data: body.data,
          files: ctx.files,
          status: error.status,
          accepted: false,
          error: error.body,
          withResponse: ctx.query.get('with_response') === 'true',
          afterMs: Date.now() - it.dispatchedAt,
          at: Date.now(),
        });
        core.events.emit('callback', it);
      },
    },
    {
      method: 'POST',
      route: '/webhooks/{webhook_id}/{webhook_token}',
      auth: false,
      handler: (ctx) => {
        const it = webhookInteraction(ctx.params);
        // Discord caps an app that only a user installed (no "0" owner) at 5 follow-ups per interaction.
        const owners = (it.payload.authorizing_integration_owners ?? {}) as Record<string, string>;
        if (!('0' in owners) && it.followupPosts >= USER_INSTALL_MAX_FOLLOWUPS) throw Errors.maxFollowups();
        ctx.validate();
        const body = asObject(ctx.body);
        checkMessageLimits(body, [], ctx.files.length);
        const channel = channelOfInteraction(it);
        it.followupPosts++;
        const original = it.originalMessageId ? store.get(it.originalMessageId) : undefined;
        let message: APIMessage;
        if (original && !original.deleted && ((original.data.flags ?? 0) & FLAG.LOADING) !== 0) {
          // Discord: the first follow-up after a deferral fills the "thinking..." message.
          message = store.edit(original, body, ctx.files).data;
        } else {
          const stored = store.create({
            channel,
            body,
            files: ctx.files,
            kind: 'followup',
            type: 0,
            ...(it.forcedEphemeral ? { forcedFlags: FLAG.EPHEMERAL } : {}),
            interaction: stampOf(it, it.originalMessageId ? { originalResponseMessageId: it.originalMessageId } : {}),
            link: (s) => it.followupIds.push(s.data.id),
          });
          message = stored.data;
        }
        return ctx.query.get('wait') === 'true' ? { status: 200, body: message } : { status: 204 };
      },
    },
    ...(['@original', '{message_id}'] as const).flatMap((last): RouteDef[] => {
      const route = `/webhooks/{webhook_id}/{webhook_token}/messages/${last}`;
      const idOf = (p: Record<string, string>): string => (last === '@original' ? '@original' : (p.message_id ?? ''));
      return [
        {
          method: 'GET',
          route,
          auth: false,
          handler: ({ params }) => ({
            status: 200,
            body: webhookMessage(webhookInteraction(params), idOf(params)).data,
          }),
        },
        {
          method: 'PATCH',
          route,
          auth: false,
          handler: (ctx) => {
            const it = webhookInteraction(ctx.params);
            const stored = webhookMessage(it, idOf(ctx.params));
            ctx.validate();
            return editMessage(ctx, stored);
          },
        },
        {
          method: 'DELETE',
          route,
          auth: false,
          handler: ({ params }) => {
            store.delete(webhookMessage(webhookInteraction(params), idOf(params)));
            return { status: 204 };
          },
        },
      ];
    }),

    // -- channels ----------------------------------------------------------------------------
    {
      method: 'GET',
      route: '/channels/{channel_id}',
      auth: true,
      handler: ({ params }) => {
        const channel = channelOr404(params.channel_id ?? '');
        requireView(channel);
        return { status: 200, body: channelPayload(world, channel) };
      },
    },
    {
      method: 'GET',
      route: '/channels/{channel_id}/messages',
      auth: true,
      handler: ({ params, query }) => {
        const channel = channelOr404(params.channel_id ?? '');
        requireView(channel);
        requirePerm(channel, PermissionBits.ReadMessageHistory);
        const limit = Math.min(100, Math.max(1, Number(query.get('limit') ?? 50)));
        const before = query.get('before');
        const after = query.get('after');
        const list = store
          .list(channel.id)
          .filter((m) => ((m.flags ?? 0) & FLAG.EPHEMERAL) === 0)
          .filter(
            (m) => (before ? BigInt(m.id) < BigInt(before) : true) && (after ? BigInt(m.id) > BigInt(after) : true),
          )
          .reverse()
          .slice(0, limit);
        return { status: 200, body: list };
      },
    },
    {
      method: 'POST',
      route: '/channels/{channel_id}/messages',
      auth: true,
      handler: (ctx) => {
        const channel = channelOr404(ctx.params.channel_id ?? '');
        requireView(channel);
        requirePerm(channel, PermissionBits.SendMessages);
        if (ctx.files.length > 0) requirePerm(channel, PermissionBits.AttachFiles);
        if (channel.type === 1 && channel.recipientIds.some((id) => world.refusingDms.has(id)))
          throw Errors.cannotDmUser();
        ctx.validate();
        const body = asObject(ctx.body);
        checkMessageLimits(body, [], ctx.files.length);
        if (body.enforce_nonce === true) {
          const earlier = store.byNonce(world.botUser.id, body.nonce);
          if (earlier) return { status: 200, body: earlier.data };
        }
        const reference = body.message_reference;
        let type = 0;
        if (
          reference &&
          typeof reference === 'object' &&
          !Array.isArray(reference) &&
          typeof reference.message_id === 'string'
        ) {
          const target = store.get(reference.message_id);
          if ((!target || target.deleted) && reference.fail_if_not_exists !== false) {
            const errors = new FormErrors();
            errors.add(['message_reference'], 'MESSAGE_REFERENCE_UNKNOWN_MESSAGE', 'Unknown message');
            throw errors.toError();
          }
          type = 19;
        }
        const stored = store.create({ channel, body, files: ctx.files, kind: 'channel', type });
        return { status: 200, body: stored.data };
      },
    },
    {
      method: 'GET',
      route: '/channels/{channel_id}/messages/{message_id}',
      auth: true,
      handler: ({ params }) => {
        const channel = channelOr404(params.channel_id ?? '');
        requireView(channel);
        requirePerm(channel, PermissionBits.ReadMessageHistory);
        return { status: 200, body: channelMessageOr404(channel, params.message_id ?? '').data };
      },
    },
    {
      method: 'PATCH',
      route: '/channels/{channel_id}/messages/{message_id}',
      auth: true,
      handler: (ctx) => {
        const channel = channelOr404(ctx.params.channel_id ?? '');
        requireView(channel);
        const stored = channelMessageOr404(channel, ctx.params.message_id ?? '');
        if (stored.data.author.id !== world.botUser.id) throw Errors.cannotEditOthers();
        ctx.validate();
        return editMessage(ctx, stored);
      },
    },
    {
      method: 'DELETE',
      route: '/channels/{channel_id}/messages/{message_id}',
      auth: true,
      handler: ({ params }) => {
        const channel = channelOr404(params.channel_id ?? '');
        requireView(channel);
        const stored = channelMessageOr404(channel, params.message_id ?? '');
        if (stored.data.author.id !== world.botUser.id) requirePerm(channel, PermissionBits.ManageMessages);
        store.delete(stored);
        return { status: 204 };
      },
    },

    // -- guilds ------------------------------------------------------------------------------
    {
      method: 'GET',
      route: '/guilds/{guild_id}',
      auth: true,
      handler: ({ params, query }) => {
        const guild = guildOr404(params.guild_id ?? '');
        const body = guildPayload(guild);
        if (query.get('with_counts') === 'true')
          Object.assign(body, { approximate_member_count: guild.members.size, approximate_presence_count: 0 });
        return { status: 200, body };
      },
    },
    {
      method: 'GET',
      route: '/guilds/{guild_id}/channels',
      auth: true,
      handler: ({ params }) => {
        const guild = guildOr404(params.guild_id ?? '');
        return { status: 200, body: guild.channelIds.map((id) => channelPayload(world, channelOr404(id))) };
      },
    },
    {
      method: 'GET',
      route: '/guilds/{guild_id}/roles',
      auth: true,
      handler: ({ params }) => ({ status: 200, body: guildOr404(params.guild_id ?? '').roles.map(rolePayload) }),
    },
    {
      method: 'GET',
      route: '/guilds/{guild_id}/members/{user_id}',
      auth: true,
      handler: ({ params }) => {
        const guild = guildOr404(params.guild_id ?? '');
        const member = guild.members.get(params.user_id ?? '');
        if (!member) throw Errors.unknownMember();
        return { status: 200, body: memberPayload(world, member) };
      },
    },
  ];

  function commandRoutes(base: string, scope: (p: Record<string, string>) => string | undefined): RouteDef[] {
    const item = `${base}/{command_id}`;
    return [
      {
        method: 'GET',
        route: base,
        auth: true,
        handler: ({ params }) => ({ status: 200, body: commands.list(scope(params)) }),
      },
      {
        method: 'PUT',
        route: base,
        auth: true,
        handler: (ctx) => {
          const guildId = scope(ctx.params);
          ctx.validate();
          const bodies = Array.isArray(ctx.body) ? ctx.body.map((b, i) => asObject(b, [i])) : [];
          checkCommands(bodies);
          return { status: 200, body: commands.overwrite(bodies, guildId) };
        },
      },
      {
        method: 'POST',
        route: base,
        auth: true,
        handler: (ctx) => {
          const guildId = scope(ctx.params);
          ctx.validate();
          const body = asObject(ctx.body);
          checkCommands([body]);
          const { command, created } = commands.upsert(body, guildId);
          return { status: created ? 201 : 200, body: command };
        },
      },
      {
        method: 'GET',
        route: item,
        auth: true,
        handler: ({ params }) => {
          const command = commands.get(params.command_id ?? '', scope(params));
          if (!command) throw Errors.unknownCommand();
          return { status: 200, body: command };
        },
      },
      {
        method: 'PATCH',
        route: item,
        auth: true,
        handler: (ctx) => {
          const guildId = scope(ctx.params);
          if (!commands.get(ctx.params.command_id ?? '', guildId)) throw Errors.unknownCommand();
          ctx.validate();
          const command = commands.patch(ctx.params.command_id ?? '', asObject(ctx.body), guildId);
          return { status: 200, body: command };
        },
      },
      {
        method: 'DELETE',
        route: item,
        auth: true,
        handler: ({ params }) => {
          if (!commands.remove(params.command_id ?? '', scope(params))) throw Errors.unknownCommand();
          return { status: 204 };
        },
      },
    ];
  }

  /** POST /interactions/{id}/{token}/callback: the initial response, within the deadline, once. */
  function interactionCallback(ctx: RouteContext): RouteResult {
    const it = core.interaction(ctx.params.interaction_id ?? '');
    if (!it || it.token !== ctx.params.interaction_token || !it.tokenValid()) throw Errors.unknownInteraction();
    if (it.acknowledged) throw Errors.alreadyAcknowledged();
    const afterMs = Date.now() - it.dispatchedAt;
    if (afterMs > core.callbackDeadlineMs) throw Errors.unknownInteraction();
    ctx.validate();
    const body = asObject(ctx.body);
    const type = typeof body.type === 'number' ? body.type : -1;
    const data = body.data === undefined || body.data === null ? {} : asObject(body.data, ['data']);
    checkCallbackType(it, type);
    const channel = channelOfInteraction(it);
    let resourceMessage: APIMessage | undefined;

    switch (type) {
      case CallbackType.ChannelMessageWithSource: {
        checkMessageLimits(data, ['data'], ctx.files.length);
        const stored = store.create({
          channel,
          body: data,
          files: ctx.files,
          kind: 'original',
          type: originalMessageType(it),
          interaction: stampOf(it),
          ...(it.forcedEphemeral ? { forcedFlags: FLAG.EPHEMERAL } : {}),
          link: (s) => {
            it.originalMessageId = s.data.id;
          },
        });
        resourceMessage = stored.data;
        break;
      }
      case CallbackType.DeferredChannelMessageWithSource: {
        const ephemeral = typeof data.flags === 'number' ? data.flags & FLAG.EPHEMERAL : 0;
        const stored = store.create({
          channel,
          body: { flags: ephemeral },
          files: [],
          kind: 'original',
          type: originalMessageType(it),
          interaction: stampOf(it),
          forcedFlags: FLAG.LOADING | (it.forcedEphemeral ? FLAG.EPHEMERAL : 0),
          allowEmpty: true,
          link: (s) => {
            it.originalMessageId = s.data.id;
          },
        });
        resourceMessage = stored.data;
        break;
      }
      case CallbackType.DeferredUpdateMessage:
        it.originalMessageId = it.sourceMessageId;
        break;
      case CallbackType.UpdateMessage: {
        const source = it.sourceMessageId ? store.get(it.sourceMessageId) : undefined;
        if (!source || source.deleted) throw Errors.unknownMessage();
        checkMessageLimits(data, ['data'], ctx.files.length);
        it.originalMessageId = source.data.id;
        resourceMessage = store.edit(source, data, ctx.files).data;
        break;
      }
      case CallbackType.AutocompleteResult:
        checkAutocompleteChoices(body.data);
        break;
      default:
        break; // 9 MODAL: the modal is only kept in the callback record.
    }

    const record: CallbackRecord = {
      type,
      data: body.data,
      files: ctx.files,
      status: 0,
      accepted: true,
      withResponse: ctx.query.get('with_response') === 'true',
      afterMs,
      at: Date.now(),
    };
    const result: RouteResult = record.withResponse
      ? {
          status: 200,
          body: {
            interaction: {
              id: it.id,
              type: it.type,
              ...(it.originalMessageId ? { response_message_id: it.originalMessageId } : {}),
              ...(resourceMessage
                ? {
                    response_message_loading: ((resourceMessage.flags ?? 0) & FLAG.LOADING) !== 0,
                    response_message_ephemeral: ((resourceMessage.flags ?? 0) & FLAG.EPHEMERAL) !== 0,
                  }
                : {}),
            },
            resource: { type, ...(resourceMessage ? { message: resourceMessage } : {}) },
          },
        }
      : { status: 204 };
    record.status = result.status;
    it.callbacks.push(record);
    core.events.emit('callback', it);
    return result;
  }

  return compileRoutes(routes);
}

/** The message type of @original: the command's type for application commands, DEFAULT otherwise. */
function originalMessageType(it: FakeInteraction): number {
  if (it.type !== InteractionType.ApplicationCommand) return 0;
  const data = it.payload.data as JsonObject | undefined;
  return data?.type === 1 || data?.type === undefined ? 20 : 23;
}

/** Which callback types Discord accepts for which interaction types. */
function checkCallbackType(it: FakeInteraction, type: number): void {
  const allowed: Record<number, number[]> = {
    [InteractionType.ApplicationCommand]: [4, 5, 9],
    [InteractionType.MessageComponent]: [4, 5, 6, 7, 9],
    [InteractionType.Autocomplete]: [8],
    [InteractionType.ModalSubmit]: it.sourceMessageId ? [4, 5, 6, 7] : [4, 5],
  };
  if (!(allowed[it.type] ?? []).includes(type)) {
    const errors = new FormErrors();
    errors.add(
      ['type'],
      'INTERACTION_CALLBACK_TYPE_INVALID',
      `Interaction callback type ${type} is not valid for interaction type ${it.type}.`,
    );
    throw errors.toError();
  }
}
