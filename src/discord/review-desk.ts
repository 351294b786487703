import { DiscordAPIError, Routes, type APIMessage, type REST } from 'discord.js';
import type { Job } from '../domain/job.ts';
import type { Logger } from '../logger.ts';
import { createBatchEdits, type BatchEdits } from './batch-edits.ts';
import { removedBody, removedFromBatchBody, reviewBody, reviewEmbed } from './review-messages.ts';
import { withoutImageButtons } from './result-buttons.ts';
import { imageFileName, namesJob, spoilerName } from './result-messages.ts';
import type { ReviewDesk } from '../moderation/review-types.ts';

const UNKNOWN_MESSAGE = 10008;

/**
 * Review messages over REST, so they work from any process and after a restart. They are
 * written in the guild's language: the moderators reading them share it more often than not.
 */
export function createDiscordReviewDesk(deps: {
  rest: REST;
  guildLocale: (guildId: string | null) => string;
  logger: Logger;
  /** The batch message edits, shared with the delivery so a removal never undoes an image it adds (or the reverse). */
  edits?: BatchEdits;
}): ReviewDesk {
  const { rest } = deps;
  const edits = deps.edits ?? createBatchEdits({ logger: deps.logger });

  /**
   * Drops one image from a message that shows several (a batch), keeping the others by id; the
   * last image going takes the whole message down as a single one does. Read inside the batch's
   * edit lock: two moderators removing two images at once must not put back each other's.
   */
  async function retractFromBatch(
    job: Job & { batch: NonNullable<Job['batch']> },
    published: NonNullable<Job['published']>,
  ) {
    const route = Routes.channelMessage(published.channelId, published.messageId);
    await edits.run(job.batch.id, async () => {
      const current = (await rest.get(route)) as APIMessage;
      const attachments = current.attachments ?? [];
      const ours = (a: { id: string; filename: string }) =>
        a.id === published.attachmentId || namesJob(a.filename, job.id);
      // Gone already (a removal that ran twice): nothing left to take down.
      if (!attachments.some(ours)) return;
      const kept = attachments.filter((a) => !ours(a));
      // The image's own Change… and Upscale go with it; the rest of the buttons stay as they were.
      const components = withoutImageButtons(current.components as Parameters<typeof withoutImageButtons>[0], job.id);
      await rest.patch(route, {
        body: kept.length ? { ...removedFromBatchBody(job, current.content, kept), components } : removedBody(job),
      });
    });
  }

  return {
    async post(channelId, job, image, kind, reporters) {
      const fileName = spoilerName(imageFileName(job, image.extension));
      const message = (await rest.post(Routes.channelMessages(channelId), {
        body: reviewBody(job, kind, reporters, deps.guildLocale(job.guildId), fileName),
        files: [{ name: fileName, data: Buffer.from(image.bytes), contentType: image.contentType }],
      })) as { id: string };
      return message.id;
    },

    async showReporters(job, reporters) {
      if (!job.report?.channelId || !job.report.messageId) return;
      await rest.patch(Routes.channelMessage(job.report.channelId, job.report.messageId), {
        body: {
          embeds: [reviewEmbed(job, 'report', reporters, deps.guildLocale(job.guildId))],
          allowed_mentions: { parse: [] },
        },
      });
    },

    async retract(job) {
      const { published, batch } = job;
      if (!published) throw new Error('no published message to remove');
      try {
        // An image alone in its message (an approved one of a batch) takes the message down as any single image does.
        if (batch && published.attachmentId) await retractFromBatch({ ...job, batch }, published);
        else
          await rest.patch(Routes.channelMessage(published.channelId, published.messageId), { body: removedBody(job) });
      } catch (err) {
        // Already deleted (by the requester's Delete button, say): the image is gone, as asked.
        if (err instanceof DiscordAPIError && err.code === UNKNOWN_MESSAGE) return;
        throw err;
      }
    },
  };
}
