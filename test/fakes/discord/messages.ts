// Messages and attachments the bot created: stored in Discord's response shape, with every
// create/edit/delete announced on an EventEmitter so tests can wait without polling.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { APIAttachment, APIEmbed, APIMessage, APIUser, MessageFlags } from 'discord-api-types/v10';
import { contentTypeOf, imageSize } from './media.ts';
import { userPayload } from './payloads.ts';
import { checkNotEmpty, FormErrors } from './rules.ts';
import { discordTimestamp, snowflake } from './snowflake.ts';
import type { Json, JsonObject, RecordedFile } from './types.ts';
import type { ChannelRec, World } from './world.ts';

export type MessageKind = 'channel' | 'original' | 'followup';
export type MessageChange = 'create' | 'update' | 'delete';

export interface StoredMessage {
  /** Current state, exactly what the fake answers on GET. */
  data: APIMessage;
  kind: MessageKind;
  interactionId: string | null;
  deleted: boolean;
  /** Every state the message went through, oldest first (creation included). */
  history: APIMessage[];
  /** The embeds the sender gave, kept while SUPPRESS_EMBEDS hides them (see `shownEmbeds`). */
  sentEmbeds: APIEmbed[];
}

export interface StoredAttachment {
  id: string;
  channelId: string;
  messageId: string;
  filename: string;
  contentType: string;
  bytes: Buffer;
  url: string;
}

/** Interaction information embedded in messages sent in response to an interaction. */
export interface InteractionStamp {
  id: string;
  type: number;
  name?: string;
  user: APIUser;
  authorizingIntegrationOwners: Record<string, string>;
  originalResponseMessageId?: string;
  /** For component interactions: the message whose component was used. */
  interactedMessageId?: string;
}

export const FLAG = {
  SUPPRESS_EMBEDS: 1 << 2,
  EPHEMERAL: 1 << 6,
  LOADING: 1 << 7,
  SUPPRESS_NOTIFICATIONS: 1 << 12,
  IS_COMPONENTS_V2: 1 << 15,
} as const;

/**
 * How long a nonce is remembered for `enforce_nonce`: Discord says "the past few minutes" and
 * publishes no number.
 */
export const NONCE_WINDOW_MS = 5 * 60_000;

/** Flags a sender may set; Discord ignores the others. */
const SETTABLE_FLAGS = FLAG.SUPPRESS_EMBEDS | FLAG.SUPPRESS_NOTIFICATIONS | FLAG.IS_COMPONENTS_V2;

export interface MessageEvents {
  message: [StoredMessage, MessageChange];
}

export class MessageStore extends EventEmitter<MessageEvents> {
  readonly messages = new Map<string, StoredMessage>();
  readonly attachments = new Map<string, StoredAttachment>();
  /** The last message created with each nonce, keyed by author and nonce. */
  private readonly nonces = new Map<string, { stored: StoredMessage; at: number }>();
  private readonly world: World;
  private readonly baseUrl: () => string;
  private readonly applicationId: string;

  constructor(world: World, baseUrl: () => string, applicationId: string) {
    super();
    // Many tests may wait on messages at once.
    this.setMaxListeners(0);
    this.world = world;
    this.baseUrl = baseUrl;
    this.applicationId = applicationId;
  }

  get(id: string): StoredMessage | undefined {
    return this.messages.get(id);
  }

  list(channelId?: string): APIMessage[] {
    return [...this.messages.values()]
      .filter((m) => !m.deleted && (channelId === undefined || m.data.channel_id === channelId))
      .map((m) => m.data);
  }

  /**
   * The message `authorId` created with `nonce` within the nonce window, for `enforce_nonce`.
   * Discord documents the check as per author, not per channel, so the fake takes it that way.
   * A deleted message no longer counts (Discord does not say).
   */
  byNonce(authorId: string, nonce: Json | undefined): StoredMessage | undefined {
    if (typeof nonce !== 'string' && typeof nonce !== 'number') return undefined;
    const seen = this.nonces.get(nonceKey(authorId, nonce));
    if (!seen || seen.stored.deleted || Date.now() - seen.at >= NONCE_WINDOW_MS) return undefined;
    return seen.stored;
  }

  /** Creates a message from a request body (already validated). */
  create(args: {
    channel: ChannelRec;
    body: JsonObject;
    files: RecordedFile[];
    kind: MessageKind;
    /** 0 DEFAULT, 19 REPLY, 20 CHAT_INPUT_COMMAND, 23 CONTEXT_MENU_COMMAND. */
    type: number;
    interaction?: InteractionStamp;
    /** Extra flags the fake sets (EPHEMERAL, LOADING). */
    forcedFlags?: number;
    /** A deferred response may be empty (it shows "thinking..."). */
    allowEmpty?: boolean;
    /** Runs before the 'create' event, so listeners see the message already linked (e.g. as @original). */
    link?: (stored: StoredMessage) => void;
    /** A member's own message (the fake posts it for a test); the bot's otherwise. */
    author?: APIUser;
  }): StoredMessage {
    const id = snowflake();
    const { body, channel } = args;
    const requestedFlags = typeof body.flags === 'number' ? body.flags : 0;
    const ephemeral = args.kind !== 'channel' && (requestedFlags & FLAG.EPHEMERAL) !== 0;
    const flags = (requestedFlags & SETTABLE_FLAGS) | (ephemeral ? FLAG.EPHEMERAL : 0) | (args.forcedFlags ?? 0);
    const attachments = this.resolveAttachments([], body.attachments, args.files, channel.id, id, false);
    const content = typeof body.content === 'string' ? body.content : '';
    const sentEmbeds = normalizeEmbeds(body.embeds, attachments);
    const data: APIMessage = {
      id,
      type: args.type,
      content,
      channel_id: channel.id,
      author: args.author ?? userPayload(this.world.botUser),
      attachments,
      embeds: shownEmbeds(sentEmbeds, content, flags),
      mentions: [],
      mention_roles: [],
      pinned: false,
      mention_everyone: false,
      tts: body.tts === true,
      timestamp: discordTimestamp(),
      edited_timestamp: null,
      flags: flags as MessageFlags,
      components: withComponentIds(body.components) as unknown as APIMessage['components'],
    };
    this.applyMentions(data);
    if (typeof body.nonce === 'string' || typeof body.nonce === 'number') data.nonce = body.nonce;
    const reference = body.message_reference;
    if (
      reference &&
      typeof reference === 'object' &&
      !Array.isArray(reference) &&
      typeof reference.message_id === 'string'
    ) {
      data.message_reference = {
        type: 0,
        message_id: reference.message_id,
        channel_id: channel.id,
        ...(channel.guildId ? { guild_id: channel.guildId } : {}),
      };
    }
    if (args.interaction) {
      const it = args.interaction;
      data.webhook_id = this.applicationId;
      data.application_id = this.applicationId;
      data.interaction_metadata = {
        id: it.id,
        type: it.type,
        user: it.user,
        authorizing_integration_owners: it.authorizingIntegrationOwners,
        ...(it.originalResponseMessageId ? { original_response_message_id: it.originalResponseMessageId } : {}),
        ...(it.interactedMessageId ? { interacted_message_id: it.interactedMessageId } : {}),
      } as APIMessage['interaction_metadata'];
      // Deprecated but still sent by Discord (and read by older bots).
      if (it.name !== undefined) data.interaction = { id: it.id, type: it.type, name: it.name, user: it.user };
    }
    // A hidden embed is still something sent: only what the sender gave counts.
    if (!args.allowEmpty) checkNotEmpty({ ...data, embeds: sentEmbeds });
    const stored: StoredMessage = {
      data,
      kind: args.kind,
      interactionId: args.interaction?.id ?? null,
      deleted: false,
      history: [structuredClone(data)],
      sentEmbeds,
    };
    this.messages.set(id, stored);
    if (data.nonce !== undefined) this.nonces.set(nonceKey(data.author.id, data.nonce), { stored, at: Date.now() });
    channel.lastMessageId = id;
    args.link?.(stored);
    this.emit('message', stored, 'create');
    return stored;
  }

  /** PATCH semantics: fields present in the body replace the current ones; `null` clears them. */
  edit(stored: StoredMessage, body: JsonObject, files: RecordedFile[]): StoredMessage {
    const current = stored.data;
    const next: APIMessage = structuredClone(current);
    const wasLoading = ((current.flags ?? 0) & FLAG.LOADING) !== 0;
    if ('content' in body) next.content = typeof body.content === 'string' ? body.content : '';
    if ('attachments' in body || files.length > 0) {
      next.attachments = this.resolveAttachments(
        current.attachments,
        'attachments' in body ? body.attachments : undefined,
        files,
        current.channel_id,
        current.id,
        true,
      );
    }
    const sentEmbeds = 'embeds' in body ? normalizeEmbeds(body.embeds, next.attachments) : stored.sentEmbeds;
    if ('components' in body)
      next.components = withComponentIds(body.components) as unknown as APIMessage['components'];
    if ('flags' in body && typeof body.flags === 'number') {
      // Only SUPPRESS_EMBEDS / IS_COMPONENTS_V2 can change on edit; EPHEMERAL stays as created.
      next.flags = (((current.flags ?? 0) & ~SETTABLE_FLAGS) | (body.flags & SETTABLE_FLAGS)) as MessageFlags;
    }
    // The first edit of a deferred response is its actual content: it stops "thinking".
    next.flags = ((next.flags ?? 0) & ~FLAG.LOADING) as MessageFlags;
    // Discord unfurls the edited content again, and a flag set or cleared hides or shows every embed.
    next.embeds = shownEmbeds(sentEmbeds, next.content, next.flags);
    next.edited_timestamp = wasLoading ? null : discordTimestamp();
    next.mentions = [];
    next.mention_roles = [];
    this.applyMentions(next);
    checkNotEmpty({ ...next, embeds: sentEmbeds });
    stored.data = next;
    stored.sentEmbeds = sentEmbeds;
    stored.history.push(structuredClone(next));
    this.emit('message', stored, 'update');
    return stored;
  }

  delete(stored: StoredMessage): void {
    stored.deleted = true;
    this.emit('message', stored, 'delete');
  }

  /** A member's upload for an attachment option: on the CDN, in no message (Discord keeps it ephemeral). */
  upload(file: { name: string; bytes: Buffer; contentType?: string }, channelId: string): APIAttachment {
    const recorded = {
      field: 'files[0]',
      filename: file.name,
      contentType: file.contentType ?? '',
      size: file.bytes.length,
      bytes: file.bytes,
    };
    return this.storeAttachment(recorded, undefined, channelId, '0');
  }

  attachmentByUrl(url: string): StoredAttachment | undefined {
    const match = /\/attachments\/\d+\/(\d+)\//.exec(url);
    return match?.[1] ? this.attachments.get(match[1]) : undefined;
  }

  /** `<@id>` and `<@&id>` in content become `mentions` / `mention_roles`, like Discord parses them. */
  private applyMentions(message: APIMessage): void {
    for (const match of message.content.matchAll(/<@!?(\d+)>/g)) {
      const user = match[1] ? this.world.findUser(match[1]) : undefined;
      if (user && !message.mentions.some((m) => m.id === user.id)) message.mentions.push(userPayload(user));
    }
    for (const match of message.content.matchAll(/<@&(\d+)>/g)) {
      if (match[1] && !message.mention_roles.includes(match[1])) message.mention_roles.push(match[1]);
    }
    message.mention_everyone = /@everyone|@here/.test(message.content);
  }

  /**
   * Attachments after a create/edit. `attachments[].id` is either the id of an attachment the
   * message already has (kept) or the index n of an uploaded `files[n]` part (new upload).
   * Without an `attachments` array, every uploaded file is added (and existing ones kept on edit).
   */
  private resolveAttachments(
    existing: APIAttachment[],
    requested: Json | undefined,
    files: RecordedFile[],
    channelId: string,
    messageId: string,
    isEdit: boolean,
  ): APIAttachment[] {
    const byIndex = new Map<string, RecordedFile>();
    files.forEach((f, i) => {
      const m = /^files\[(\d+)\]$/.exec(f.field);
      byIndex.set(m?.[1] ?? String(i), f);
    });
    if (!Array.isArray(requested)) {
      return [
        ...(isEdit ? existing : []),
        ...files.map((f) => this.storeAttachment(f, undefined, channelId, messageId)),
      ];
    }
    const errors = new FormErrors();
    const result: APIAttachment[] = [];
    requested.forEach((entry, i) => {
      if (!entry || typeof entry !== 'object' || Array.isArray(entry)) return;
      const id = entry.id === undefined || entry.id === null ? '' : String(entry.id);
      const kept = existing.find((a) => a.id === id);
      if (kept) {
        result.push(kept);
        return;
      }
      const file = byIndex.get(id);
      if (!file) {
        errors.add(
          ['attachments', i],
          'ATTACHMENT_NOT_FOUND',
          `Attachment ${id} not found in files or existing attachments.`,
        );
        return;
      }
      result.push(this.storeAttachment(file, entry, channelId, messageId));
    });
    errors.throwIfAny();
    return result;
  }

  private storeAttachment(
    file: RecordedFile,
    meta: JsonObject | undefined,
    channelId: string,
    messageId: string,
  ): APIAttachment {
    const id = snowflake();
    // Discord replaces whitespace and most punctuation in file names with underscores.
    const requestedName = typeof meta?.filename === 'string' ? meta.filename : file.filename;
    const filename = (requestedName || 'unknown').replace(/[^\w.-]/g, '_');
    const contentType = contentTypeOf(filename, file.contentType);
    const issued = Math.floor(Date.now() / 1000);
    const query = `ex=${(issued + 86400).toString(16)}&is=${issued.toString(16)}&hm=${randomBytes(32).toString('hex')}&`;
    const url = `${this.baseUrl()}/attachments/${channelId}/${id}/${encodeURIComponent(filename)}?${query}`;
    this.attachments.set(id, { id, channelId, messageId, filename, contentType, bytes: file.bytes, url });
    const size = contentType.startsWith('image/') ? imageSize(file.bytes) : null;
    const attachment: APIAttachment = {
      id,
      filename,
      size: file.bytes.length,
      url,
      proxy_url: url.replace('/attachments/', '/media-proxy/attachments/'),
      content_type: contentType,
      ...(size ? { width: size.width, height: size.height, placeholder_version: 1 } : {}),
      ...(filename.startsWith('SPOILER_') ? { flags: 1 << 3 } : {}),
    };
    if (typeof meta?.description === 'string') attachment.description = meta.description;
    if (typeof meta?.title === 'string') attachment.title = meta.title;
    return attachment;
  }
}

/**
 * The embeds a message is serialised with. Discord unfurls the links in `content` into embeds of
 * its own (a page's card, the picture or GIF itself), after the sender's; SUPPRESS_EMBEDS means
 * "do not include any embeds when serializing this message", the sender's included. The fake
 * unfurls at once (Discord does it moments later, in a MESSAGE_UPDATE) and without fetching
 * anything: the embed says what a member would see, a preview of that address.
 */
function shownEmbeds(sent: APIEmbed[], content: string, flags: number): APIEmbed[] {
  if ((flags & FLAG.SUPPRESS_EMBEDS) !== 0) return [];
  return [...sent, ...unfurl(content)];
}

/**
 * The previews Discord adds for the links in `content`. Not previewed: a link in angle brackets
 * (`<https://…>`, Discord's own way to opt out, also inside a masked link) and a jump link to a
 * message (Discord shows none). Links inside code are not told apart: the bot sends none.
 */
export function unfurl(content: string): APIEmbed[] {
  const urls = new Set<string>();
  for (const match of content.matchAll(/(?<!<)\bhttps?:\/\/[^\s<>|()[\]]+/g)) {
    const url = match[0].replace(/[.,:;!?'"*_~]+$/, '');
    if (!URL.canParse(url) || /^https?:\/\/(?:\w+\.)?discord\.com\/channels\//.test(url)) continue;
    urls.add(url);
  }
  return [...urls].map((url) => {
    const path = new URL(url).pathname.toLowerCase();
    const media = {
      url,
      proxy_url: url.replace(/^https?:\/\//, 'https://images-ext-1.discordapp.net/external/'),
      width: 480,
      height: 270,
    };
    if (/\.(?:png|jpe?g|webp|gif|avif)$/.test(path)) return { type: 'image', url, thumbnail: media } as APIEmbed;
    if (/(?:^|\.)(?:tenor|giphy)\.com$/.test(new URL(url).hostname) || /\.gifv$/.test(path))
      return { type: 'gifv', url, thumbnail: media, video: media } as APIEmbed;
    if (/\.(?:mp4|webm|mov)$/.test(path)) return { type: 'video', url, video: media } as APIEmbed;
    return { type: 'link', url, title: new URL(url).hostname, thumbnail: media } as APIEmbed;
  });
}

/** 42 and "42" count as one nonce here; Discord does not say. */
const nonceKey = (authorId: string, nonce: string | number) => `${authorId}:${String(nonce)}`;

/** Discord stores embeds with `type: 'rich'` and resolves `attachment://name` to the uploaded file. */
function normalizeEmbeds(embeds: Json | undefined, attachments: APIAttachment[]): APIEmbed[] {
  if (!Array.isArray(embeds)) return [];
  const resolve = (url: Json | undefined): Json | undefined => {
    if (typeof url !== 'string' || !url.startsWith('attachment://')) return url;
    const name = url.slice('attachment://'.length);
    return attachments.find((a) => a.filename === name)?.url ?? url;
  };
  return embeds.map((raw) => {
    const embed = structuredClone(raw) as JsonObject;
    embed.type ??= 'rich';
    for (const key of ['image', 'thumbnail'] as const) {
      const media = embed[key];
      if (media && typeof media === 'object' && !Array.isArray(media)) {
        const url = resolve(media.url);
        const att = attachments.find((a) => a.url === url);
        embed[key] = {
          ...media,
          url: url ?? null,
          proxy_url: typeof url === 'string' ? url : null,
          ...(att?.width ? { width: att.width, height: att.height ?? 0, content_type: att.content_type ?? null } : {}),
        };
      }
    }
    for (const key of ['author', 'footer'] as const) {
      const part = embed[key];
      if (part && typeof part === 'object' && !Array.isArray(part) && typeof part.icon_url === 'string') {
        part.icon_url = resolve(part.icon_url) ?? null;
      }
    }
    // Discord drops empty/null keys from the stored embed.
    for (const [k, v] of Object.entries(embed)) if (v === null) delete embed[k];
    return embed as unknown as APIEmbed;
  });
}

/** Discord numbers every component of a message (the `id` field of components v2). */
function withComponentIds(components: Json | undefined): Json[] {
  if (!Array.isArray(components)) return [];
  let next = 1;
  const visit = (node: Json): Json => {
    if (!node || typeof node !== 'object' || Array.isArray(node)) return node;
    const copy: JsonObject = { ...node, id: typeof node.id === 'number' ? node.id : next };
    next = Math.max(next, typeof copy.id === 'number' ? copy.id : next) + 1;
    if (Array.isArray(node.components)) copy.components = node.components.map(visit);
    if (node.accessory !== undefined) copy.accessory = visit(node.accessory);
    if (node.component !== undefined) copy.component = visit(node.component);
    for (const [k, v] of Object.entries(copy)) if (v === null) delete copy[k];
    return copy;
  };
  return components.map(visit);
}
