import {
  InteractionContextType,
  MessageFlags,
  PermissionFlagsBits,
  SlashCommandBuilder,
  type AutocompleteInteraction,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
} from 'discord.js';
import type { BotContext, Command, Outcome } from '../src/discord/command.ts';
import { localizations, t, type MessageKey } from '../src/discord/i18n.ts';
import { refusalText, sizeFormatText, NO_MENTIONS } from '../src/discord/messages.ts';
import { missingPermissions } from '../src/discord/permissions.ts';
import type { JobRequest } from '../src/jobs/types.ts';
import { checkPrompt } from '../src/ppinfra/prompt.ts';
import { SIZE_PRESETS, displaySize, parseSize } from '../src/ppinfra/size.ts';

/** Discord's own cap on the option; the configured PROMPT_MAX_LENGTH is checked with a friendly message. */
const PROMPT_OPTION_MAX = 4000;

export const data = new SlashCommandBuilder()
  .setName('imagine')
  .setNameLocalizations(localizations('command.name'))
  .setDescription(t('en-US', 'command.description'))
  .setDescriptionLocalizations(localizations('command.description'))
  .setContexts(InteractionContextType.Guild)
  .addStringOption((o) =>
    o
      .setName('prompt')
      .setNameLocalizations(localizations('command.prompt.name'))
      .setDescription(t('en-US', 'command.prompt'))
      .setDescriptionLocalizations(localizations('command.prompt'))
      .setRequired(true)
      .setMaxLength(PROMPT_OPTION_MAX),
  )
  .addStringOption((o) =>
    o
      .setName('size')
      .setNameLocalizations(localizations('command.size.name'))
      .setDescription(t('en-US', 'command.size'))
      .setDescriptionLocalizations(localizations('command.size'))
      .setAutocomplete(true)
      .setMaxLength(32),
  );

/** Refusals cost nothing: ephemeral, before any defer, no API call. Returns the outcome to log. */
async function refuse(interaction: ChatInputCommandInteraction | ButtonInteraction, content: string, outcome: string): Promise<Outcome> {
  await interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
  return `refused:${outcome}`;
}

type Checked = { ok: true; request: Omit<JobRequest, 'userId' | 'userName' | 'guildId' | 'channelId' | 'channelNsfw' | 'locale'> } | { ok: false; message: string; problem: string };

function checkInput(locale: string, promptInput: string, sizeInput: string, ctx: BotContext): Checked {
  const prompt = checkPrompt(promptInput, { maxLength: ctx.generation.promptMaxLength, blockedTerms: ctx.generation.blockedTerms });
  if (!prompt.ok) {
    const problem = `prompt_${prompt.problem}`;
    if (prompt.problem === 'too_long') return { ok: false, problem, message: t(locale, 'prompt.too_long', { length: prompt.length, limit: prompt.limit }) };
    return { ok: false, problem, message: t(locale, prompt.problem === 'empty' ? 'prompt.empty' : 'prompt.blocked') };
  }
  const size = parseSize(sizeInput);
  if (!size.ok) {
    const message = size.problem === 'format' ? sizeFormatText(locale, sizeInput) : t(locale, 'size.range', { width: size.width, height: size.height });
    return { ok: false, problem: `size_${size.problem}`, message };
  }
  return { ok: true, request: { prompt: prompt.prompt, size: size.size } };
}

/** Shared by /imagine and Regenerate: check the channel and limits, defer publicly, hand over. */
async function startJob(
  interaction: ChatInputCommandInteraction | ButtonInteraction,
  input: { prompt: string; size: string; regenerateOf?: string },
  ctx: BotContext,
): Promise<Outcome> {
  const locale = interaction.locale;
  const missing = missingPermissions(interaction.appPermissions);
  if (missing.length) return refuse(interaction, t(locale, 'permissions.missing', { permissions: missing.map((m) => `**${m}**`).join(', ') }), 'permissions');
  if (ctx.storage && !ctx.storage.healthy()) return refuse(interaction, t(locale, 'refusal.storage_unavailable'), 'storage_unavailable');
  const channel = interaction.channel;
  const guild = interaction.guildId ? await ctx.settings.get(interaction.guildId) : undefined;
  const request: JobRequest = {
    ...input,
    userId: interaction.user.id,
    userName: interaction.user.username,
    guildId: interaction.guildId,
    channelId: interaction.channelId ?? '',
    // A thread inherits its parent's age restriction; unknown counts as not age-restricted.
    channelNsfw: Boolean(channel && ('nsfw' in channel ? channel.nsfw : channel.isThread() && channel.parent && 'nsfw' in channel.parent && channel.parent.nsfw)),
    locale,
    ...(guild ? { caps: { userHourlyQuota: guild.userHourlyQuota, guildDailyBudget: guild.guildDailyBudget } } : {}),
  };
  const reservation = await ctx.jobs.reserve(request);
  if (!reservation.ok) return refuse(interaction, refusalText(locale, reservation.refusal), reservation.refusal.kind);
  try {
    await interaction.deferReply();
  } catch (e) {
    await ctx.jobs.release(reservation.ticket);
    throw e;
  }
  const reply = { applicationId: interaction.applicationId, token: interaction.token, createdAt: Math.min(interaction.createdTimestamp, Date.now()) };
  const job = await ctx.jobs.start(reservation.ticket, reply);
  return `started:${job.id}`;
}

export async function execute(interaction: ChatInputCommandInteraction, ctx: BotContext): Promise<Outcome> {
  if (!interaction.inGuild()) return refuse(interaction, t(interaction.locale, 'context.guild_only'), 'guild_only');
  const checked = checkInput(interaction.locale, interaction.options.getString('prompt', true), interaction.options.getString('size') ?? ctx.generation.defaultSize, ctx);
  if (!checked.ok) return refuse(interaction, checked.message, checked.problem);
  return startJob(interaction, checked.request, ctx);
}

/** Offers the presets (localised), and echoes a valid typed size first so free text still works. */
export async function autocomplete(interaction: AutocompleteInteraction): Promise<Outcome> {
  const typed = interaction.options.getFocused().trim().toLowerCase();
  const locale = interaction.locale;
  const parsed = typed ? parseSize(typed) : undefined;
  const presets = SIZE_PRESETS.filter((p) => !typed || p.name.includes(typed) || p.size.startsWith(typed.replace(/[x×]/, '*')) || t(locale, `preset.${p.name}` as MessageKey).includes(typed));
  const choices = presets.map((p) => ({ name: `${t(locale, `preset.${p.name}` as MessageKey)} · ${displaySize(p.size)} (${p.ratio})`, value: p.size }));
  if (parsed?.ok && !SIZE_PRESETS.some((p) => p.size === parsed.size)) choices.unshift({ name: `${t(locale, 'size.custom')} · ${displaySize(parsed.size)}`, value: parsed.size });
  await interaction.respond(choices.slice(0, 25));
  return `choices:${Math.min(choices.length, 25)}`;
}

export const buttons: Command['buttons'] = {
  async regen(interaction, jobId, ctx) {
    const job = await ctx.jobs.get(jobId);
    if (!job) return refuse(interaction, t(interaction.locale, 'button.unknown_job'), 'unknown_job');
    return startJob(interaction, { prompt: job.prompt, size: job.size, regenerateOf: job.id }, ctx);
  },

  async del(interaction, jobId, ctx) {
    const job = await ctx.jobs.get(jobId);
    const requesterId = job?.userId ?? interaction.message.interactionMetadata?.user.id;
    const isModerator = interaction.memberPermissions?.has(PermissionFlagsBits.ManageMessages) ?? false;
    if (interaction.user.id !== requesterId && !isModerator) return refuse(interaction, t(interaction.locale, 'button.delete_refused'), 'not_requester');
    // For a component interaction, @original is the message the button sits on.
    await interaction.deferUpdate();
    await interaction.deleteReply();
    return isModerator && interaction.user.id !== requesterId ? 'deleted:moderator' : 'deleted:requester';
  },
};

export default { data, execute, autocomplete, buttons } satisfies Command;
