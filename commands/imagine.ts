import {
  ActionRowBuilder,
  ApplicationIntegrationType,
  InteractionContextType,
  ModalBuilder,
  PermissionFlagsBits,
  SlashCommandBuilder,
  TextInputBuilder,
  TextInputStyle,
  type AutocompleteInteraction,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type ModalSubmitInteraction,
} from 'discord.js';
import type { BotContext, Command, Outcome } from '../src/discord/command.ts';
import { encodeCustomId } from '../src/discord/custom-id.ts';
import { localizations, t, type MessageKey } from '../src/discord/i18n.ts';
import { checkInput, refuse, startJob, type MemberInput } from '../src/discord/requests.ts';
import type { Job } from '../src/domain/job.ts';
import { SIZE_PRESETS, displaySize, parseSize } from '../src/ppinfra/size.ts';
import { PLACEMENTS, TEXT_MAX_LENGTH, type Placement } from '../src/prompts/exact-text.ts';
import { messageShowsJob } from '../src/discord/result-messages.ts';

/** Discord's own cap on the option; the configured PROMPT_MAX_LENGTH is checked with a friendly message. */
const PROMPT_OPTION_MAX = 4000;
/** The most images one request can ask for (the `count` option's maximum). */
const COUNT_OPTION_MAX = 4;

export const data = new SlashCommandBuilder()
  .setName('imagine')
  .setNameLocalizations(localizations('command.name'))
  .setDescription(t('en-US', 'command.description'))
  .setDescriptionLocalizations(localizations('command.description'))
  // Members may also install the bot for themselves: then it answers in its DM, in their DMs and
  // group DMs, and in servers that never added it (src/discord/install.ts; USER_INSTALL=off at
  // deploy time takes that back).
  .setIntegrationTypes(ApplicationIntegrationType.GuildInstall, ApplicationIntegrationType.UserInstall)
  .setContexts(InteractionContextType.Guild, InteractionContextType.BotDM, InteractionContextType.PrivateChannel)
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
  )
  .addStringOption((o) =>
    o
      .setName('text')
      .setNameLocalizations(localizations('command.text.name'))
      .setDescription(t('en-US', 'command.text'))
      .setDescriptionLocalizations(localizations('command.text'))
      .setMaxLength(TEXT_MAX_LENGTH),
  )
  .addStringOption((o) =>
    o
      .setName('placement')
      .setNameLocalizations(localizations('command.placement.name'))
      .setDescription(t('en-US', 'command.placement'))
      .setDescriptionLocalizations(localizations('command.placement'))
      .addChoices(
        ...PLACEMENTS.map((p) => ({
          name: t('en-US', `placement.${p}`),
          name_localizations: localizations(`placement.${p}`),
          value: p,
        })),
      ),
  )
  .addIntegerOption((o) =>
    o
      .setName('count')
      .setNameLocalizations(localizations('command.count.name'))
      .setDescription(t('en-US', 'command.count'))
      .setDescriptionLocalizations(localizations('command.count'))
      .setMinValue(1)
      .setMaxValue(COUNT_OPTION_MAX),
  );

/** How many images a request may ask for: the option's range, capped by MAX_IMAGES_PER_REQUEST. */
const maxImages = (ctx: BotContext) => ctx.generation.maxImagesPerRequest ?? COUNT_OPTION_MAX;

export async function execute(interaction: ChatInputCommandInteraction, ctx: BotContext): Promise<Outcome> {
  const checked = checkInput(
    interaction.locale,
    {
      prompt: interaction.options.getString('prompt', true),
      size: interaction.options.getString('size') ?? ctx.generation.defaultSize,
      text: interaction.options.getString('text') ?? undefined,
      placement: (interaction.options.getString('placement') ?? undefined) as Placement | undefined,
    },
    ctx,
  );
  if (!checked.ok) return refuse(interaction, checked.message, checked.problem);
  const count = interaction.options.getInteger('count') ?? 1;
  if (count > maxImages(ctx))
    return refuse(interaction, t(interaction.locale, 'count.too_many', { max: maxImages(ctx) }), 'count_too_many');
  return startJob(interaction, checked.request, ctx, count);
}

/** Another round of a request: as many images as it asked for, within today's maximum. */
const countOf = (job: Job | undefined, ctx: BotContext) =>
  Math.max(1, Math.min(job?.batch?.count ?? 1, maxImages(ctx)));

/** Offers the presets (localised), and echoes a valid typed size first so free text still works. */
export async function autocomplete(interaction: AutocompleteInteraction): Promise<Outcome> {
  const typed = interaction.options.getFocused().trim().toLowerCase();
  const locale = interaction.locale;
  const parsed = typed ? parseSize(typed) : undefined;
  const presets = SIZE_PRESETS.filter(
    (p) =>
      !typed ||
      p.name.includes(typed) ||
      p.size.startsWith(typed.replace(/[x×]/, '*')) ||
      t(locale, `preset.${p.name}` as MessageKey).includes(typed),
  );
  const choices = presets.map((p) => ({
    name: `${t(locale, `preset.${p.name}` as MessageKey)} · ${displaySize(p.size)} (${p.ratio})`,
    value: p.size,
  }));
  if (parsed?.ok && !SIZE_PRESETS.some((p) => p.size === parsed.size))
    choices.unshift({ name: `${t(locale, 'size.custom')} · ${displaySize(parsed.size)}`, value: parsed.size });
  await interaction.respond(choices.slice(0, 25));
  return `choices:${Math.min(choices.length, 25)}`;
}

/** Whether the button's message is about `job` (the custom id's job is the client's word, see `messageShowsJob`). */
const onItsMessage = (interaction: ButtonInteraction, job: Job) =>
  messageShowsJob(job, {
    id: interaction.message.id,
    guildId: interaction.guildId,
    fileNames: interaction.message.attachments.map((a) => a.name),
  });

export const buttons: Command['buttons'] = {
  async regen(interaction, jobId, ctx) {
    const job = await ctx.jobs.get(jobId);
    // Another guild's job, or a held one, would have its prompt quoted in this channel.
    if (!job || !onItsMessage(interaction, job))
      return refuse(interaction, t(interaction.locale, 'button.unknown_job'), 'unknown_job');
    // The stored prompt passed the terms of its day; the operator may have blocked it since.
    const checked = checkInput(interaction.locale, storedInput(job), ctx);
    if (!checked.ok) return refuse(interaction, checked.message, checked.problem);
    return startJob(interaction, { ...checked.request, regenerateOf: job.id }, ctx, countOf(job, ctx));
  },

  /**
   * Opens the Edit prompt form. Only the member who asked sees their words in it: a prompt that
   * is held or hidden from the channel must not be readable by whoever clicks the button.
   */
  async edit(interaction, jobId, ctx) {
    const job = await ctx.jobs.get(jobId);
    if (!job) return refuse(interaction, t(interaction.locale, 'button.unknown_job'), 'unknown_job');
    await interaction.showModal(editForm(job, interaction.locale, interaction.user.id === job.userId));
    return 'modal:edit';
  },

  async del(interaction, jobId, ctx) {
    const job = await ctx.jobs.get(jobId);
    const requesterId = job?.userId ?? interaction.message.interactionMetadata?.user.id;
    const isModerator = interaction.memberPermissions?.has(PermissionFlagsBits.ManageMessages) ?? false;
    if (interaction.user.id !== requesterId && !isModerator)
      return refuse(interaction, t(interaction.locale, 'button.delete_refused'), 'not_requester');
    // Their own job's id on someone else's message deletes nothing.
    if (job && !isModerator && !onItsMessage(interaction, job))
      return refuse(interaction, t(interaction.locale, 'button.delete_refused'), 'not_on_message');
    // For a component interaction, @original is the message the button sits on.
    await interaction.deferUpdate();
    await interaction.deleteReply();
    return isModerator && interaction.user.id !== requesterId ? 'deleted:moderator' : 'deleted:requester';
  },
};

/** What the member typed for a job, as it is checked again before another round. */
const storedInput = (job: Job): MemberInput => ({
  prompt: job.input?.prompt ?? job.prompt,
  size: job.size,
  text: job.input?.text,
  placement: job.input?.placement,
});

/** The Edit prompt form: the size, and for the requester their prompt and exact text, ready to change. */
function editForm(job: Job, locale: string, isRequester: boolean) {
  const input = (
    id: string,
    label: MessageKey,
    style: TextInputStyle,
    value: string | undefined,
    max: number,
    required: boolean,
  ) => {
    const field = new TextInputBuilder()
      .setCustomId(id)
      .setLabel(t(locale, label))
      .setStyle(style)
      .setMaxLength(max)
      .setRequired(required);
    if (value) field.setValue([...value].slice(0, max).join(''));
    return new ActionRowBuilder<TextInputBuilder>().addComponents(field);
  };
  return new ModalBuilder()
    .setCustomId(encodeCustomId('edit', job.id))
    .setTitle(t(locale, 'edit.title'))
    .addComponents(
      input(
        'prompt',
        'edit.prompt',
        TextInputStyle.Paragraph,
        isRequester ? (job.input?.prompt ?? job.prompt) : undefined,
        PROMPT_OPTION_MAX,
        true,
      ),
      input('size', 'edit.size', TextInputStyle.Short, job.size, 32, true),
      input(
        'text',
        'edit.text',
        TextInputStyle.Short,
        isRequester ? job.input?.text : undefined,
        TEXT_MAX_LENGTH,
        false,
      ),
    );
}

export const modals: Command['modals'] = {
  /** The Edit prompt form sent back: a new job, with the same checks and limits as /imagine. */
  async edit(interaction: ModalSubmitInteraction, jobId, ctx) {
    const original = await ctx.jobs.get(jobId);
    const field = (id: string) => {
      const data = interaction.fields.fields.get(id);
      return data && 'value' in data && typeof data.value === 'string' ? data.value : '';
    };
    const checked = checkInput(
      interaction.locale,
      { prompt: field('prompt'), size: field('size'), text: field('text'), placement: original?.input?.placement },
      ctx,
    );
    if (!checked.ok) return refuse(interaction, checked.message, checked.problem);
    return startJob(interaction, { ...checked.request, regenerateOf: jobId }, ctx, countOf(original, ctx));
  },
};

export default { data, execute, autocomplete, buttons, modals } satisfies Command;
