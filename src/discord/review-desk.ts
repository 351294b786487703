import { DiscordAPIError, Routes, type REST } from 'discord.js';
import type { Logger } from '../logger.ts';
import type { ReviewDesk } from '../moderation/review.ts';
import { imageFileName, spoilerName } from './messages.ts';
import { removedBody, reviewBody, reviewEmbed } from './review-messages.ts';

const UNKNOWN_MESSAGE = 10008;

/**
 * Review messages over REST, so they work from any process and after a restart. They are
 * written in the guild's language: the moderators reading them share it more often than not.
 */
export function createDiscordReviewDesk(deps: { rest: REST; guildLocale: (guildId: string | null) => string; logger: Logger }): ReviewDesk {
  const { rest } = deps;
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
        body: { embeds: [reviewEmbed(job, 'report', reporters, deps.guildLocale(job.guildId))], allowed_mentions: { parse: [] } },
      });
    },

    async retract(job) {
      if (!job.published) throw new Error('no published message to remove');
      try {
        await rest.patch(Routes.channelMessage(job.published.channelId, job.published.messageId), { body: removedBody(job) });
      } catch (err) {
        // Already deleted (by the requester's Delete button, say): the image is gone, as asked.
        if (err instanceof DiscordAPIError && err.code === UNKNOWN_MESSAGE) return;
        throw err;
      }
    },
  };
}
