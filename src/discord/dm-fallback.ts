import { DiscordAPIError, Routes, type RawFile, type REST } from 'discord.js';
import type { Logger } from '../logger.ts';
import type { Job } from '../domain/job.ts';
import { t } from './i18n.ts';
import { safeText, whatWasAsked } from './messages.ts';

/** Discord's answer when a member does not accept DMs from the bot (privacy settings, a block). */
const CANNOT_DM = 50007;

type Body = Record<string, unknown>;

const WHERE = { guild_user_install: 'server', private: 'group_dm', bot_dm: 'dm', guild: 'server' } as const;

/**
 * Where the bot is no member (a server that did not install it, a conversation between others),
 * only the interaction token can answer there; once it has expired, the member's DM with the bot
 * is the one place left. Returns where the message went, or `undefined` when the member's DMs
 * are closed to the bot: then nothing can reach them, and the job records it for /imagine-history.
 */
export function createDmFallback(deps: { rest: REST; logger: Logger }) {
  return async function sendToDm(
    job: Job,
    nonce: string,
    body: Body,
    files?: RawFile[],
  ): Promise<{ channelId: string; messageId: string } | undefined> {
    const where = t(job.locale, `user_install.where.${WHERE[job.place ?? 'guild']}`);
    // The image's message shows embeds: a link quoted from the prompt would add a preview of its own.
    // An upscale has no prompt: its target says what was asked.
    const prompt = safeText(whatWasAsked(job).replace(/\s+/g, ' '), 200).replace(
      /https?:\/\/[^\s<>]+/g,
      (url) => `<${url}>`,
    );
    const header = files?.length
      ? t(job.locale, 'user_install.delivered_to_dm', { prompt, where })
      : t(job.locale, 'late.update', { user: `<@${job.userId}>` });
    try {
      const channel = (await deps.rest.post(Routes.userChannels(), { body: { recipient_id: job.userId } })) as {
        id: string;
      };
      const message = (await deps.rest.post(Routes.channelMessages(channel.id), {
        body: {
          ...body,
          content: [header, body.content].filter(Boolean).join('\n'),
          allowed_mentions: { parse: [] },
          nonce,
          enforce_nonce: true,
        },
        files,
      })) as { id: string };
      return { channelId: channel.id, messageId: message.id };
    } catch (e) {
      if (!(e instanceof DiscordAPIError && e.code === CANNOT_DM)) throw e;
      deps.logger.info({ jobId: job.id }, 'the token expired and the member does not accept DMs from the bot');
      return undefined;
    }
  };
}
