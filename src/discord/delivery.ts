import { createHash } from 'node:crypto';
import { DiscordAPIError, Routes, type APIMessage, type REST, type RawFile } from 'discord.js';
import type { Logger } from '../logger.ts';
import type { SharedState } from '../storage/shared-state.ts';
import type { DeliveredImage, Delivery, DeliveryOutcome, Job, Notice, ProgressView } from '../domain/job.ts';
import { canPostInChannel } from '../domain/place.ts';
import { createBatchEdits, type BatchEdits } from './batch-edits.ts';
import { createDmFallback } from './dm-fallback.ts';
import { t } from './i18n.ts';
import { failureBody, failureText, progressBody, textBody } from './messages.ts';
import type { FailureKind } from '../domain/failure.ts';
import type { ImageStash } from '../moderation/review-types.ts';
import {
  batchBody,
  imageFileName,
  noticeBody,
  resultBody,
  spoilerName,
  uploadLimitBody,
  type BatchChange,
} from './result-messages.ts';

/** Interaction tokens live 15 minutes; past this age the channel fallback is used at once. */
const TOKEN_LIFETIME_MS = 15 * 60_000;
const TOKEN_SAFETY_MS = 30_000;
/** Discord error codes that mean the interaction token can no longer edit the reply. */
const TOKEN_GONE = new Set([50027, 10015, 10062]);
const MIB = 1024 * 1024;

export interface DeliveryDeps {
  rest: REST;
  /** The largest upload the guild accepts, in bytes (boost tier dependent). */
  uploadLimit: (guildId: string | null) => number;
  logger: Logger;
  now?: () => number;
  /**
   * The jobs of a batch (`/imagine count`), read to show every image of a request in one message.
   * Without it each job of a batch would answer alone.
   */
  jobs?: (ids: readonly string[]) => Promise<(Job | undefined)[]>;
  /** Serialises the edits of one batch message across processes (several processes on Redis). */
  lock?: Pick<SharedState, 'claim' | 'release' | 'read'>;
  /** The batch message edits shared with the review desk (built from `lock` when absent). */
  edits?: BatchEdits;
  /** Keeps the image of a job that reached nobody (DMs closed), for /imagine-history's Get it. */
  stash?: Pick<ImageStash, 'put'>;
}

type Body = Record<string, unknown>;
/** Where a message went: the job's channel, or the member's DM with the bot. */
type Where = { channelId: string; messageId: string };

/** What a message posted in the channel is for: each gets its own nonce, so none hides another. */
type Purpose = 'image' | 'too-large' | 'failure' | 'held' | 'unreviewed' | 'rejected';
const NOTICE_PURPOSE: Record<Notice, Purpose> = {
  awaiting_review: 'held',
  no_reviewer: 'unreviewed',
  rejected: 'rejected',
  withheld: 'unreviewed',
};
const NONCE_MAX = 25;

/**
 * The same for every attempt at one message of one job, so Discord (`enforce_nonce`) answers a
 * second attempt with the first message instead of posting another.
 */
function channelNonce(jobId: string, purpose: Purpose): string {
  const nonce = `${jobId}:${purpose}`;
  // Job ids are 12 characters; a longer one must still give a nonce Discord accepts.
  return nonce.length <= NONCE_MAX ? nonce : createHash('sha256').update(nonce).digest('base64url').slice(0, NONCE_MAX);
}

/**
 * The Delivery port on Discord. Edits the deferred reply through the interaction webhook
 * (no channel permission needed, works after a restart); once the token has expired, posts a
 * new message in the channel that replies to the original one and pings only the requester.
 */
export function createDiscordDelivery(deps: DeliveryDeps): Delivery {
  const now = deps.now ?? Date.now;

  const sendToDm = createDmFallback(deps);
  /** Where the bot is no member, it may not post in the channel: after the token, only the member's DM is left. */
  const noChannel = (job: Job) => job.place !== undefined && !canPostInChannel(job.place);
  const tokenAlive = (job: Job) => now() - job.reply.createdAt < TOKEN_LIFETIME_MS - TOKEN_SAFETY_MS;

  async function editOriginal(job: Job, body: Body, files?: RawFile[]): Promise<string | undefined> {
    const message = (await deps.rest.patch(
      Routes.webhookMessage(job.reply.applicationId, job.reply.token, '@original'),
      {
        body,
        files,
        auth: false,
      },
    )) as { id?: string };
    return message.id;
  }

  /**
   * A job's step may run twice (stall recovery, a crash before the job was saved); the nonce
   * makes Discord return the message the first run posted. It only remembers a nonce for a
   * few minutes.
   */
  async function postInChannel(job: Job, purpose: Purpose, body: Body, files?: RawFile[]): Promise<string | undefined> {
    // "Your image is ready" only when it is; a rejection or a failure gets a neutral header.
    const header = t(job.locale, files?.length ? 'late.fallback' : 'late.update', { user: `<@${job.userId}>` });
    const mention = { ...body, content: [header, body.content].filter(Boolean).join('\n') };
    const replyTo = job.messageId ?? (await batchMessageId(job));
    const message = (await deps.rest.post(Routes.channelMessages(job.channelId), {
      body: {
        ...mention,
        allowed_mentions: { parse: [], users: [job.userId] },
        nonce: channelNonce(job.id, purpose),
        enforce_nonce: true,
        ...(replyTo ? { message_reference: { message_id: replyTo, fail_if_not_exists: false } } : {}),
      },
      files,
    })) as { id?: string };
    return message.id;
  }

  /** Once the token cannot answer: the channel, or where the bot cannot post there, the member's DM. */
  async function fallback(job: Job, purpose: Purpose, body: Body, files?: RawFile[]): Promise<Where | undefined> {
    if (noChannel(job)) {
      const sent = await sendToDm(job, channelNonce(job.id, purpose), body, files);
      if (!sent && files?.length) job.unseen = 'unreachable';
      return sent;
    }
    const messageId = await postInChannel(job, purpose, body, files);
    return messageId ? { channelId: job.channelId, messageId } : undefined;
  }

  /** Final messages must reach the user even when the interaction token is gone. Returns where it went. */
  async function finalMessage(job: Job, purpose: Purpose, body: Body, files?: RawFile[]): Promise<Where | undefined> {
    if (tokenAlive(job)) {
      try {
        const messageId = (await editOriginal(job, body, files)) ?? job.messageId;
        return messageId ? { channelId: job.channelId, messageId } : undefined;
      } catch (e) {
        if (!(e instanceof DiscordAPIError && typeof e.code === 'number' && TOKEN_GONE.has(e.code))) throw e;
        deps.logger.info({ jobId: job.id, code: e.code }, 'interaction token expired; posting in the channel instead');
      }
    }
    const where = await fallback(job, purpose, body, files);
    if (!noChannel(job)) await retireStaleReply(job);
    return where;
  }

  /**
   * The deferred reply still says "generating"; the bot authored it, so it may edit it through
   * the channel even without the token. Best effort: the real answer is already posted.
   */
  async function retireStaleReply(job: Job): Promise<void> {
    if (!job.messageId) return;
    try {
      await deps.rest.patch(Routes.channelMessage(job.channelId, job.messageId), {
        body: textBody(t(job.locale, 'late.retired')),
      });
    } catch (err) {
      deps.logger.debug({ jobId: job.id, err }, 'could not retire the stale reply');
    }
  }

  /** An image nobody received is kept (as a held one is), so /imagine-history can give it back. */
  async function outcomeOf(job: Job, image: DeliveredImage): Promise<DeliveryOutcome> {
    if (job.unseen !== 'unreachable') return 'delivered';
    await deps.stash
      ?.put(job.id, image)
      .catch((err: unknown) => deps.logger.warn({ jobId: job.id, err }, 'could not keep an image nobody received'));
    return 'unreachable';
  }

  const tokenGone = (e: unknown) =>
    e instanceof DiscordAPIError && typeof e.code === 'number' && TOKEN_GONE.has(e.code);
  const inBatch = (job: Job): job is Job & { batch: NonNullable<Job['batch']> } => Boolean(job.batch && deps.jobs);

  /** The batch message's id, from any job of the batch that learned it (a follower shows no progress). */
  async function batchMessageId(job: Job): Promise<string | undefined> {
    if (!job.batch || !deps.jobs) return undefined;
    const siblings = await deps.jobs(job.batch.jobIds).catch(() => []);
    return siblings.find((s) => s?.messageId)?.messageId;
  }

  const edits = deps.edits ?? createBatchEdits({ lock: deps.lock, logger: deps.logger });

  /** Re-renders the batch message from the batch's jobs and the message's own attachments, with `change` applied. */
  function renderBatch(job: Job & { batch: NonNullable<Job['batch']> }, change: BatchChange, file?: RawFile) {
    return edits.run(job.batch.id, async () => {
      const route = Routes.webhookMessage(job.reply.applicationId, job.reply.token, '@original');
      const [stored, current] = await Promise.all([
        deps.jobs!(job.batch.jobIds),
        deps.rest.get(route, { auth: false }) as Promise<APIMessage>,
      ]);
      const siblings = job.batch.jobIds.map((id, i) => (id === job.id ? job : stored[i]));
      const attachments = current.attachments ?? [];
      const body = batchBody(job, siblings, attachments, change);
      // Already in the message when this delivery runs a second time: batchBody keeps it by id.
      const shown = change.kind === 'image' && attachments.some((a) => a.filename === change.file.name);
      const files = file && !shown ? [file] : undefined;
      const message = (await deps.rest.patch(route, { body, files, auth: false })) as APIMessage;
      const attachmentId =
        change.kind === 'image' ? message.attachments?.find((a) => a.filename === change.file.name)?.id : undefined;
      return { messageId: message.id, attachmentId };
    });
  }

  /** A batch edit, or `undefined` when the token can no longer edit the message (the caller falls back). */
  async function tryBatch(job: Job & { batch: NonNullable<Job['batch']> }, change: BatchChange, file?: RawFile) {
    if (!tokenAlive(job)) return undefined;
    try {
      const result = await renderBatch(job, change, file);
      if (result.messageId) job.messageId ??= result.messageId;
      return result;
    } catch (e) {
      if (!tokenGone(e)) throw e;
      deps.logger.info(
        { jobId: job.id, batchId: job.batch.id },
        'interaction token expired; posting in the channel instead',
      );
      return undefined;
    }
  }

  return {
    async progress(job: Job, view: ProgressView) {
      if (!tokenAlive(job)) return undefined;
      if (inBatch(job)) {
        // The first image speaks for the batch while it runs; the others' progress shows as a count.
        if (job.batch.index !== 0) return undefined;
        return (await tryBatch(job, { kind: 'progress', view }))?.messageId;
      }
      return editOriginal(job, progressBody(job, view));
    },

    async deliver(job: Job, image: DeliveredImage, options: { spoiler?: boolean } = {}): Promise<DeliveryOutcome> {
      const spoiler = options.spoiler ?? false;
      const limit = deps.uploadLimit(job.guildId);
      if (image.bytes.length > limit) {
        const body = uploadLimitBody(job, image.bytes.length, limit);
        if (inBatch(job)) {
          if (!(await tryBatch(job, { kind: 'failed', text: body.content }))) await fallback(job, 'too-large', body);
        } else await finalMessage(job, 'too-large', body);
        return 'over_upload_limit';
      }
      const fileName = spoiler ? spoilerName(imageFileName(job, image.extension)) : imageFileName(job, image.extension);
      job.fileName = fileName;
      const file = { name: fileName, data: Buffer.from(image.bytes), contentType: image.contentType };
      if (inBatch(job)) {
        // An image approved by a moderator answers the batch message instead of rewriting it.
        const shown = job.state === 'held' ? undefined : await tryBatch(job, { kind: 'image', file, spoiler }, file);
        if (shown?.messageId) {
          job.published = {
            channelId: job.channelId,
            messageId: shown.messageId,
            spoiler,
            ...(shown.attachmentId ? { attachmentId: shown.attachmentId } : {}),
          };
          return 'delivered';
        }
        const posted = await fallback(job, 'image', resultBody(job, fileName, now(), spoiler), [file]);
        if (posted) job.published = { ...posted, spoiler };
        return outcomeOf(job, image);
      }
      const where = await finalMessage(job, 'image', resultBody(job, fileName, now(), spoiler), [file]);
      if (where) job.published = { ...where, spoiler };
      return outcomeOf(job, image);
    },

    async notice(job: Job, notice: Notice) {
      if (inBatch(job)) {
        if (notice !== 'rejected' && (await tryBatch(job, { kind: 'held', notice }))) return;
        await fallback(job, NOTICE_PURPOSE[notice], noticeBody(job, notice));
        return;
      }
      await finalMessage(job, NOTICE_PURPOSE[notice], noticeBody(job, notice));
    },

    async fail(job: Job, error: { kind: FailureKind; reason?: string }) {
      if (inBatch(job)) {
        if (await tryBatch(job, { kind: 'failed', text: failureText(job.locale, error.kind, error.reason) })) return;
        await fallback(job, 'failure', failureBody(job, error));
        return;
      }
      await finalMessage(job, 'failure', failureBody(job, error));
    },
  };
}

/** Upload limits by boost tier (Discord's documented values for bots). */
export function uploadLimitForTier(premiumTier: number | undefined): number {
  if (premiumTier === 3) return 100 * MIB;
  if (premiumTier === 2) return 50 * MIB;
  return 10 * MIB;
}
