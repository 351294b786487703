import { DiscordAPIError, Routes, type REST, type RawFile } from 'discord.js';
import type { Logger } from '../logger.ts';
import type { DeliveredImage, Delivery, DeliveryOutcome, FailureKind, Job, Notice, ProgressView } from '../jobs/types.ts';
import { t } from './i18n.ts';
import { failureBody, imageFileName, noticeBody, progressBody, resultBody, spoilerName, textBody, uploadLimitBody } from './messages.ts';

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
}

type Body = Record<string, unknown>;

/**
 * The Delivery port on Discord. Edits the deferred reply through the interaction webhook
 * (no channel permission needed, works after a restart); once the token has expired, posts a
 * new message in the channel that replies to the original one and pings only the requester.
 */
export function createDiscordDelivery(deps: DeliveryDeps): Delivery {
  const now = deps.now ?? Date.now;

  const tokenAlive = (job: Job) => now() - job.reply.createdAt < TOKEN_LIFETIME_MS - TOKEN_SAFETY_MS;

  async function editOriginal(job: Job, body: Body, files?: RawFile[]): Promise<string | undefined> {
    const message = (await deps.rest.patch(Routes.webhookMessage(job.reply.applicationId, job.reply.token, '@original'), {
      body,
      files,
      auth: false,
    })) as { id?: string };
    return message.id;
  }

  async function postInChannel(job: Job, body: Body, files?: RawFile[]): Promise<string | undefined> {
    // "Your image is ready" only when it is; a rejection or a failure gets a neutral header.
    const header = t(job.locale, files?.length ? 'late.fallback' : 'late.update', { user: `<@${job.userId}>` });
    const mention = { ...body, content: [header, body.content].filter(Boolean).join('\n') };
    const message = (await deps.rest.post(Routes.channelMessages(job.channelId), {
      body: {
        ...mention,
        allowed_mentions: { parse: [], users: [job.userId] },
        ...(job.messageId ? { message_reference: { message_id: job.messageId, fail_if_not_exists: false } } : {}),
      },
      files,
    })) as { id?: string };
    return message.id;
  }

  /** Final messages must reach the user even when the interaction token is gone. Returns the message's id. */
  async function finalMessage(job: Job, body: Body, files?: RawFile[]): Promise<string | undefined> {
    if (tokenAlive(job)) {
      try {
        return (await editOriginal(job, body, files)) ?? job.messageId;
      } catch (e) {
        if (!(e instanceof DiscordAPIError && typeof e.code === 'number' && TOKEN_GONE.has(e.code))) throw e;
        deps.logger.info({ jobId: job.id, code: e.code }, 'interaction token expired; posting in the channel instead');
      }
    }
    const id = await postInChannel(job, body, files);
    await retireStaleReply(job);
    return id;
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

  return {
    async progress(job: Job, view: ProgressView) {
      if (!tokenAlive(job)) return undefined;
      return editOriginal(job, progressBody(job, view));
    },

    async deliver(job: Job, image: DeliveredImage, options: { spoiler?: boolean } = {}): Promise<DeliveryOutcome> {
      const spoiler = options.spoiler ?? false;
      const limit = deps.uploadLimit(job.guildId);
      if (image.bytes.length > limit) {
        await finalMessage(job, uploadLimitBody(job, image.bytes.length, limit));
        return 'over_upload_limit';
      }
      const fileName = spoiler ? spoilerName(imageFileName(job, image.extension)) : imageFileName(job, image.extension);
      job.fileName = fileName;
      const file = { name: fileName, data: Buffer.from(image.bytes), contentType: image.contentType };
      const messageId = await finalMessage(job, resultBody(job, fileName, now(), spoiler), [file]);
      if (messageId) job.published = { channelId: job.channelId, messageId, spoiler };
      return 'delivered';
    },

    async notice(job: Job, notice: Notice) {
      await finalMessage(job, noticeBody(job, notice));
    },

    async fail(job: Job, error: { kind: FailureKind; reason?: string }) {
      await finalMessage(job, failureBody(job, error));
    },
  };
}

/** Upload limits by boost tier (Discord's documented values for bots). */
export function uploadLimitForTier(premiumTier: number | undefined): number {
  if (premiumTier === 3) return 100 * MIB;
  if (premiumTier === 2) return 50 * MIB;
  return 10 * MIB;
}
