import {
  ApplicationIntegrationType,
  ButtonStyle,
  ComponentType,
  InteractionContextType,
  MessageFlags,
  SlashCommandBuilder,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
} from 'discord.js';
import type { BotContext, Command, Outcome } from '../src/discord/command.ts';
import { encodeCustomId } from '../src/discord/custom-id.ts';
import { localizations, t } from '../src/discord/i18n.ts';
import { EMBED_COLOR, NO_MENTIONS, button, discordTime, safeText, whatWasAsked } from '../src/discord/messages.ts';
import { HISTORY_DAYS, HISTORY_PAGE_SIZE, type HistoryPage } from '../src/usage/history.ts';
import type { Job } from '../src/domain/job.ts';
import { displaySize } from '../src/ppinfra/size.ts';

export const data = new SlashCommandBuilder()
  .setName('imagine-history')
  .setNameLocalizations(localizations('command.history.name'))
  .setDescription(t('en-US', 'command.history.description'))
  .setDescriptionLocalizations(localizations('command.history.description'))
  // Members may also install the bot for themselves: then it answers in its DM, in their DMs and
  // group DMs, and in servers that never added it (src/discord/install.ts; USER_INSTALL=off at
  // deploy time takes that back).
  .setIntegrationTypes(ApplicationIntegrationType.GuildInstall, ApplicationIntegrationType.UserInstall)
  .setContexts(InteractionContextType.Guild, InteractionContextType.BotDM, InteractionContextType.PrivateChannel);

const link = (job: Job) => {
  const where = job.published ?? (job.messageId ? { channelId: job.channelId, messageId: job.messageId } : undefined);
  if (!where) return undefined;
  // A DM or group DM is linked under `@me`, and so is a late image sent to the member's DM.
  const scope = job.guildId && where.channelId === job.channelId ? job.guildId : '@me';
  return `https://discord.com/channels/${scope}/${where.channelId}/${where.messageId}`;
};

/**
 * What a line says of a job: its prompt, or for an edit its instruction and for an upscale its
 * target, each with what it came from (the source job's own words, `sources`).
 */
function describe(locale: string, job: Job, sources: ReadonlyMap<string, Job>): string {
  const clean = (text: string, max: number) => safeText(text.replace(/\s+/g, ' '), max);
  if (!job.tool) return clean(job.prompt, 150);
  const from = job.source?.jobId ? sources.get(job.source.jobId) : undefined;
  const origin = from ? clean(whatWasAsked(from), 60) : t(locale, 'history.your_image');
  if (job.tool === 'upscale')
    return t(locale, 'history.upscale_of', { resolution: job.resolution ?? '2k', source: origin });
  return `${t(locale, 'history.edit_of', { instruction: clean(job.prompt, 120) })} ← ${origin}`;
}

/** The jobs a page's edits and upscales came from, for their lines; a record gone is left out. */
async function sourcesOf(ctx: BotContext, { images }: HistoryPage): Promise<Map<string, Job>> {
  const ids = [...new Set(images.flatMap((job) => (job.source?.jobId ? [job.source.jobId] : [])))];
  const found = await Promise.all(ids.map((id) => ctx.jobs.get(id).catch(() => undefined)));
  return new Map(found.flatMap((job) => (job ? [[job.id, job] as const] : [])));
}

/**
 * A Get it button for each image that reached nobody (DMs closed after the token expired), five
 * to a row: at most ten on a page, so two rows, and the page's Newer / Older row fits too.
 */
function fetchRows(locale: string, images: readonly Job[], number: (i: number) => number) {
  const buttons = images.flatMap((job, i) =>
    job.unseen === 'unreachable'
      ? [
          button(
            ButtonStyle.Primary,
            t(locale, 'user_install.fetch_button', { n: number(i) }),
            '📥',
            encodeCustomId('fetch', job.id),
          ),
        ]
      : [],
  );
  const rows = [];
  for (let at = 0; at < buttons.length; at += 5)
    rows.push({ type: ComponentType.ActionRow, components: buttons.slice(at, at + 5) });
  return rows;
}

/** One page: an embed of up to ten images (prompt, size, when, link) and Newer / Older buttons. */
function historyBody(
  locale: string,
  { images, page, pages }: HistoryPage,
  sources: ReadonlyMap<string, Job> = new Map(),
) {
  const days = HISTORY_DAYS;
  if (!images.length)
    return { content: t(locale, 'history.empty', { days }), embeds: [], components: [], allowedMentions: NO_MENTIONS };
  const number = (i: number) => page * HISTORY_PAGE_SIZE + i + 1;
  const lines = images.map((job, i) => {
    const url = link(job);
    return t(locale, 'history.line', {
      n: number(i),
      prompt: describe(locale, job, sources),
      size: displaySize(job.size),
      when: discordTime(job.createdAt),
      link: job.unseen
        ? t(locale, `user_install.history_${job.unseen}`, { n: number(i) })
        : url
          ? `[${t(locale, 'history.jump')}](${url})`
          : t(locale, 'history.unpublished'),
    });
  });
  const nav = [
    button(ButtonStyle.Secondary, t(locale, 'history.newer'), '◀️', encodeCustomId('history', String(page - 1))),
    button(ButtonStyle.Secondary, t(locale, 'history.older'), '▶️', encodeCustomId('history', String(page + 1))),
  ];
  nav[0]!.disabled = page === 0;
  nav[1]!.disabled = page >= pages - 1;
  return {
    content: '',
    embeds: [
      {
        title: t(locale, 'history.title'),
        description: lines.join('\n\n'),
        color: EMBED_COLOR,
        footer: { text: t(locale, 'history.footer', { page: page + 1, pages, days }) },
      },
    ],
    components: [
      ...fetchRows(locale, images, number),
      ...(pages > 1 ? [{ type: ComponentType.ActionRow, components: nav }] : []),
    ],
    allowedMentions: NO_MENTIONS,
  };
}

/** Only the member sees their history (ephemeral); it is read from the job records. */
export async function execute(interaction: ChatInputCommandInteraction, ctx: BotContext): Promise<Outcome> {
  const page = await ctx.history.page(interaction.user.id, 0);
  const body = historyBody(interaction.locale, page, await sourcesOf(ctx, page));
  await interaction.reply({ ...body, flags: MessageFlags.Ephemeral });
  return `history:${page.images.length}`;
}

export const buttons: Command['buttons'] = {
  /** Newer / Older: the page number rides in the custom id; the clicker's own history is shown. */
  async history(interaction: ButtonInteraction, pageNumber, ctx) {
    const page = await ctx.history.page(interaction.user.id, Number(pageNumber));
    await interaction.update(historyBody(interaction.locale, page, await sourcesOf(ctx, page)));
    return `history:page:${page.page}`;
  },

  /**
   * Get it: the image of a job that reached nobody, privately, to the member who asked for it
   * alone. It stays kept until the stash expires, so it can be fetched again.
   */
  async fetch(interaction: ButtonInteraction, jobId, ctx) {
    const locale = interaction.locale;
    const say = (content: string) =>
      interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
    const job = await ctx.jobs.get(jobId);
    if (job && job.userId !== interaction.user.id) {
      await say(t(locale, 'user_install.fetch_not_yours'));
      return 'fetch:not_owner';
    }
    const image = job?.unseen === 'unreachable' ? await ctx.stash?.get(job.id) : undefined;
    if (!job || !image) {
      await say(t(locale, 'user_install.fetch_gone', { days: HISTORY_DAYS }));
      return 'fetch:gone';
    }
    // An upload can outlast the 3 seconds an answer has: the private answer is deferred first.
    await interaction.deferReply({ flags: MessageFlags.Ephemeral });
    await interaction.editReply({
      content: t(locale, 'user_install.fetched', { prompt: safeText(whatWasAsked(job).replace(/\s+/g, ' '), 200) }),
      files: [{ attachment: Buffer.from(image.bytes), name: job.fileName ?? `image.${image.extension}` }],
      allowedMentions: NO_MENTIONS,
    });
    return 'fetch:sent';
  },
};

export default { data, execute, buttons } satisfies Command;
