import {
  ApplicationIntegrationType,
  InteractionContextType,
  MessageFlags,
  PermissionFlagsBits,
  SlashCommandBuilder,
  type APIEmbed,
  type APIEmbedField,
  type ChatInputCommandInteraction,
} from 'discord.js';
import type { BotContext, Command, Outcome } from '../src/discord/command.ts';
import { localizations, t } from '../src/discord/i18n.ts';
import { EMBED_COLOR, NO_MENTIONS } from '../src/discord/messages.ts';
import { guildUsage, money, type Price, type UsageTotals } from '../src/usage/ledger.ts';

/** How many members the answer names. */
const TOP = 5;
const WEEK_DAYS = 7;

export const data = new SlashCommandBuilder()
  .setName(t('en-US', 'usage.command.name'))
  .setNameLocalizations(localizations('usage.command.name'))
  .setDescription(t('en-US', 'usage.command.description'))
  .setDescriptionLocalizations(localizations('usage.command.description'))
  // Staff tools act on a server's settings and review desk: only where the server installed the bot.
  .setIntegrationTypes(ApplicationIntegrationType.GuildInstall)
  .setContexts(InteractionContextType.Guild)
  .setDefaultMemberPermissions(PermissionFlagsBits.ManageGuild);

/** Every answer is for the manager alone, and the members it names are mentions that ping nobody. */
async function answer(
  interaction: ChatInputCommandInteraction,
  body: { content?: string; embeds?: APIEmbed[] },
  outcome: string,
): Promise<Outcome> {
  await interaction.reply({ ...body, flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
  return outcome;
}

/** Each tool at its own price (PRICE_PER_EDIT, PRICE_PER_UPSCALE, else PRICE_PER_IMAGE). */
export interface ToolPrices {
  image: Price | undefined;
  edit: Price | undefined;
  upscale: Price | undefined;
}

function pricesOf(ctx: BotContext): ToolPrices {
  const image = ctx.usage?.price;
  const as = (perImage: string | undefined) => (perImage ? { perImage, currency: image?.currency } : undefined);
  return { image, edit: as(ctx.tools?.pricePerEdit), upscale: as(ctx.tools?.pricePerUpscale) };
}

function period(locale: string, name: string, totals: UsageTotals, prices: ToolPrices): APIEmbedField {
  const line = (text: string, count: number, price: Price | undefined) =>
    price ? `${text} · ${money(count, price)}` : text;
  const images = t(locale, 'usage.images', { count: totals.images });
  // Edits and upscales get a line once there are any: a server that never used them reads as before.
  const tools = [
    ...(totals.edits ? [line(t(locale, 'usage.edits', { count: totals.edits }), totals.edits, prices.edit)] : []),
    ...(totals.upscales
      ? [line(t(locale, 'usage.upscales', { count: totals.upscales }), totals.upscales, prices.upscale)]
      : []),
  ];
  return {
    name,
    value: [
      line(images, totals.images, prices.image),
      ...tools,
      t(locale, 'usage.failed_flagged', { failed: totals.failed, flagged: totals.flagged }),
    ].join('\n'),
    inline: true,
  };
}

/** `/imagine-usage`: what this server made today, this week and this month, what it cost, and the budget left. */
export async function execute(interaction: ChatInputCommandInteraction, ctx: BotContext): Promise<Outcome> {
  const locale = interaction.locale;
  if (!interaction.inGuild())
    return answer(interaction, { content: t(locale, 'context.guild_only') }, 'refused:guild_only');
  // Default member permissions only hide the command, and a server's admins can widen who sees it.
  if (!interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild))
    return answer(interaction, { content: t(locale, 'usage.not_manager') }, 'refused:not_manager');
  if (!ctx.usage) return answer(interaction, { content: t(locale, 'error.internal') }, 'refused:no_ledger');
  const { ledger, now = Date.now } = ctx.usage;
  const prices = pricesOf(ctx);
  const [usage, settings, used] = await Promise.all([
    guildUsage(ledger, interaction.guildId, now(), TOP),
    ctx.settings.get(interaction.guildId),
    ctx.jobs.dailyBudgetUsed?.(interaction.guildId),
  ]);
  const budget = settings.guildDailyBudget;
  const top = usage.top.map(({ userId, images }, i) => `${i + 1}. <@${userId}>: ${images}`);
  const embed: APIEmbed = {
    title: t(locale, 'usage.title'),
    color: EMBED_COLOR,
    fields: [
      period(locale, t(locale, 'usage.today'), usage.today, prices),
      period(locale, t(locale, 'usage.last_days', { days: WEEK_DAYS }), usage.lastDays, prices),
      period(locale, t(locale, 'usage.month'), usage.month, prices),
      ...(used === undefined
        ? []
        : [
            {
              name: t(locale, 'usage.budget'),
              value: t(locale, 'usage.budget_value', { left: Math.max(0, budget - used), budget }),
            },
          ]),
      { name: t(locale, 'usage.top'), value: top.length ? top.join('\n') : t(locale, 'usage.top_none') },
    ],
    footer: { text: t(locale, 'usage.footer') },
  };
  return answer(interaction, { embeds: [embed] }, `usage:${usage.month.images}`);
}

export default { data, execute } satisfies Command;
