import {
  ActionRowBuilder,
  ApplicationIntegrationType,
  InteractionContextType,
  ModalBuilder,
  SlashCommandBuilder,
  TextInputBuilder,
  TextInputStyle,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type Message,
  type ModalSubmitInteraction,
} from 'discord.js';
import { loadAttachmentImage } from '../src/discord/attachments.ts';
import { linkFresh } from '../src/discord/cdn-expiry.ts';
import type { BotContext, Command, Outcome } from '../src/discord/command.ts';
import { encodeCustomId } from '../src/discord/custom-id.ts';
import { localizations, t } from '../src/discord/i18n.ts';
import { placeFor, refuse, startJob, type Asking } from '../src/discord/requests.ts';
import { messageShowsJob, namesJob } from '../src/discord/result-messages.ts';
import type { Job } from '../src/domain/job.ts';
import { sourceFlagged, usableSource } from '../src/domain/source.ts';
import { UPSCALE_LONG_SIDE, upscaledSize, type Source } from '../src/domain/tools.ts';
import { SEED_MAX } from '../src/ppinfra/edit.ts';
import { checkPrompt } from '../src/prompts/check.ts';
import { EDIT_INPUT_LIMITS, type ImageCheck } from '../src/prompts/image-input.ts';

// The image tools: /imagine-edit on a member's own picture, and Change… and Upscale on every result.

/** What the edit endpoint takes as an instruction: the form and the option both stop here. */
const INSTRUCTION_MAX = 500;
/**
 * The checks of an upload run before the interaction is answered, inside Discord's 3 s: the
 * download and the classifier's look each get a bounded share, and a look that runs out holds the
 * result for review (fail closed) rather than refusing the member.
 */
const DOWNLOAD_TIMEOUT_MS = 1_500;
const CLASSIFY_TIMEOUT_MS = 1_000;

export const data = new SlashCommandBuilder()
  .setName('imagine-edit')
  .setNameLocalizations(localizations('command.edit.name'))
  .setDescription(t('en-US', 'command.edit.description'))
  .setDescriptionLocalizations(localizations('command.edit.description'))
  // A member's own picture is edited only in servers that added the bot, where a review desk can
  // see what the edit made of it: Discord offers the command nowhere else.
  .setIntegrationTypes(ApplicationIntegrationType.GuildInstall)
  .setContexts(InteractionContextType.Guild)
  .addAttachmentOption((o) =>
    o
      .setName('image')
      .setNameLocalizations(localizations('command.edit.option.image.name'))
      .setDescription(t('en-US', 'command.edit.option.image'))
      .setDescriptionLocalizations(localizations('command.edit.option.image'))
      .setRequired(true),
  )
  .addStringOption((o) =>
    o
      .setName('instruction')
      .setNameLocalizations(localizations('command.edit.option.instruction.name'))
      .setDescription(t('en-US', 'command.edit.option.instruction'))
      .setDescriptionLocalizations(localizations('command.edit.option.instruction'))
      .setRequired(true)
      .setMaxLength(INSTRUCTION_MAX),
  )
  .addIntegerOption((o) =>
    o
      .setName('seed')
      .setNameLocalizations(localizations('command.edit.option.seed.name'))
      .setDescription(t('en-US', 'command.edit.option.seed'))
      .setDescriptionLocalizations(localizations('command.edit.option.seed'))
      .setMinValue(0)
      .setMaxValue(SEED_MAX),
  );

/** The instruction passes the prompt's rules (blocked terms), within the edit's own length. */
function checkInstruction(interaction: Asking, text: string, ctx: BotContext) {
  const checked = checkPrompt(text, { maxLength: INSTRUCTION_MAX, blockedTerms: ctx.generation.blockedTerms });
  if (checked.ok) return { ok: true as const, instruction: checked.prompt };
  const locale = interaction.locale;
  const message =
    checked.problem === 'too_long'
      ? t(locale, 'prompt.too_long', { length: checked.length, limit: checked.limit })
      : t(locale, checked.problem === 'empty' ? 'prompt.empty' : 'prompt.blocked');
  return { ok: false as const, message, problem: `instruction_${checked.problem}` };
}

const MIB = 1024 * 1024;

/** One private sentence for each way an upload can fail its checks. */
function imageRefusal(locale: string, result: Exclude<Awaited<ReturnType<typeof loadAttachmentImage>>, { ok: true }>) {
  switch (result.reason) {
    case 'not_image':
      return t(locale, 'image.not_image');
    case 'unsupported_format':
      return t(locale, 'image.unsupported_format', { format: result.format.toUpperCase() });
    case 'too_large':
      return t(locale, 'image.too_large', {
        size: ('size' in result ? result.size / MIB : result.limit / MIB).toFixed(1),
        limit: Math.floor(result.limit / MIB),
      });
    case 'too_many_pixels':
      return t(locale, 'image.too_many_pixels', { width: result.width, height: result.height, limit: result.limit });
    case 'unreadable':
      return t(locale, 'image.unreadable');
    case 'timeout':
      return t(locale, 'image.download_timeout');
    default:
      return t(locale, 'image.download_failed');
  }
}

/** `/imagine-edit`: the picture is checked (metadata, bounded download, bytes, classifier) before anything is reserved. */
export async function execute(interaction: ChatInputCommandInteraction, ctx: BotContext): Promise<Outcome> {
  const locale = interaction.locale;
  if (!interaction.inGuild()) return refuse(interaction, t(locale, 'context.guild_only'), 'guild_only');
  const instruction = checkInstruction(interaction, interaction.options.getString('instruction', true), ctx);
  if (!instruction.ok) return refuse(interaction, instruction.message, instruction.problem);
  const attachment = interaction.options.getAttachment('image');
  if (!attachment) return refuse(interaction, t(locale, 'image.missing'), 'image_missing');
  const loaded: ImageCheck | Awaited<ReturnType<typeof loadAttachmentImage>> = await loadAttachmentImage(
    {
      url: attachment.url,
      size: attachment.size,
      content_type: attachment.contentType,
      width: attachment.width,
      height: attachment.height,
    },
    { timeoutMs: DOWNLOAD_TIMEOUT_MS, limits: EDIT_INPUT_LIMITS },
  );
  if (!loaded.ok) return refuse(interaction, imageRefusal(locale, loaded), `image_${loaded.reason}`);
  // A server's sensitivity is its own: where it never installed the bot (a registration from
  // before /imagine-edit stayed in servers), the operator's defaults judge the picture.
  const where = await placeFor(interaction, ctx);
  if ('outcome' in where) return where.outcome;
  const settingsOf = where.place === 'guild' ? interaction.guildId : null;
  const inputFlagged = await ctx.review.inputFlagged(settingsOf, loaded.bytes, CLASSIFY_TIMEOUT_MS);
  const seed = interaction.options.getInteger('seed') ?? undefined;
  const source: Source = { url: attachment.url, width: loaded.width, height: loaded.height };
  return startJob(
    interaction,
    {
      prompt: instruction.instruction,
      size: `${loaded.width}*${loaded.height}`,
      tool: 'edit',
      source,
      ...(inputFlagged ? { inputFlagged } : {}),
      ...(seed === undefined ? {} : { seed }),
    },
    ctx,
  );
}

/**
 * The result image a button is about, taken fresh from the message it sits on (a CDN URL there is
 * signed for about a day, longer than any job). `gone` when the job is not this message's, or its
 * image is no longer there (the custom id is the client's word); `unavailable` when a moderator
 * took it down or it was never shown (its message may still carry the buttons).
 */
async function sourceOf(
  interaction: ButtonInteraction | ModalSubmitInteraction,
  jobId: string,
  ctx: BotContext,
): Promise<{ job: Job; source: Source; inputFlagged: boolean } | 'gone' | 'unavailable'> {
  const job = await ctx.jobs.get(jobId);
  const message: Message | null = interaction.message;
  if (!job || !message) return 'gone';
  const names = message.attachments.map((a) => a.name);
  if (!messageShowsJob(job, { id: message.id, guildId: interaction.guildId, fileNames: names })) return 'gone';
  if (!usableSource(job)) return 'unavailable';
  const attachment = message.attachments.find((a) => namesJob(a.name, job.id));
  if (!attachment?.width || !attachment.height) return 'gone';
  const { width, height } = attachment;
  const image = job.batch ? job.batch.index + 1 : undefined;
  const source = { url: attachment.url, jobId: job.id, ...(image ? { image } : {}), width, height };
  // The message's own spoiler counts too: it goes out before the record's final save says so.
  return { job, source, inputFlagged: sourceFlagged(job) || attachment.spoiler };
}

/** The private, free answer when there is no source to work on. */
const noSource = (interaction: Asking, why: 'gone' | 'unavailable') =>
  refuse(interaction, t(interaction.locale, `image.${why}`), `image_${why}`);

function upscale(interaction: Asking, source: Source, resolution: '2k' | '4k', inputFlagged: boolean, ctx: BotContext) {
  return startJob(
    interaction,
    {
      prompt: '',
      size: `${source.width}*${source.height}`,
      tool: 'upscale',
      source,
      resolution,
      ...(inputFlagged ? { inputFlagged } : {}),
    },
    ctx,
  );
}

export const buttons: Command['buttons'] = {
  /** Opens the Change… form; the new job starts when it is sent back. */
  async change(interaction, jobId, ctx) {
    const found = await sourceOf(interaction, jobId, ctx);
    if (typeof found === 'string') return noSource(interaction, found);
    const field = new TextInputBuilder()
      .setCustomId('instruction')
      .setLabel(t(interaction.locale, 'change.instruction'))
      .setStyle(TextInputStyle.Paragraph)
      .setMaxLength(INSTRUCTION_MAX)
      .setRequired(true);
    await interaction.showModal(
      new ModalBuilder()
        .setCustomId(encodeCustomId('change', jobId))
        .setTitle(t(interaction.locale, 'change.title'))
        .addComponents(new ActionRowBuilder<TextInputBuilder>().addComponents(field)),
    );
    return 'modal:change';
  },

  async upscale(interaction, jobId, ctx) {
    const found = await sourceOf(interaction, jobId, ctx);
    if (typeof found === 'string') return noSource(interaction, found);
    const resolution = ctx.tools?.upscaleResolution ?? '2k';
    // Messages posted before upscales lost their Upscale button still carry it. An upscale's size is
    // the one it was asked for (what the message shows may be a stand-in of another size).
    const { job } = found;
    const { width, height } =
      job.tool === 'upscale' && job.source ? upscaledSize(job.source, job.resolution ?? '2k') : found.source;
    if (Math.max(width, height) >= UPSCALE_LONG_SIDE[resolution]) {
      const text = t(interaction.locale, 'image.already_upscaled', { width, height, resolution });
      return refuse(interaction, text, 'already_upscaled');
    }
    return upscale(interaction, found.source, resolution, found.inputFlagged, ctx);
  },

  /**
   * On the message of an upscale too large to post: the same picture again, at 2k. That picture is
   * the link kept on the record, signed for about a day: checked before anything is spent, as is
   * the image it came from (a moderator may have taken it down since).
   */
  async upscale2k(interaction, jobId, ctx) {
    const job = await ctx.jobs.get(jobId);
    if (!job?.source || job.tool !== 'upscale' || job.guildId !== interaction.guildId)
      return noSource(interaction, 'gone');
    const from = job.source.jobId ? await ctx.jobs.get(job.source.jobId) : undefined;
    if (from && !usableSource(from)) return noSource(interaction, 'unavailable');
    if (!linkFresh(job.source.url, Date.now()))
      return refuse(interaction, t(interaction.locale, 'image.offer_expired'), 'offer_expired');
    return upscale(interaction, job.source, '2k', Boolean(job.inputFlagged), ctx);
  },
};

export const modals: Command['modals'] = {
  async change(interaction, jobId, ctx) {
    const found = await sourceOf(interaction, jobId, ctx);
    if (typeof found === 'string') return noSource(interaction, found);
    const data = interaction.fields.fields.get('instruction');
    const text = data && 'value' in data && typeof data.value === 'string' ? data.value : '';
    const instruction = checkInstruction(interaction, text, ctx);
    if (!instruction.ok) return refuse(interaction, instruction.message, instruction.problem);
    const { source, inputFlagged } = found;
    return startJob(
      interaction,
      {
        prompt: instruction.instruction,
        size: `${source.width}*${source.height}`,
        tool: 'edit',
        source,
        ...(inputFlagged ? { inputFlagged } : {}),
      },
      ctx,
    );
  },
};

export default { data, execute, buttons, modals } satisfies Command;
