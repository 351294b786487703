import {
  ApplicationIntegrationType,
  InteractionContextType,
  MessageFlags,
  PermissionFlagsBits,
  SlashCommandBuilder,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
} from 'discord.js';
import type { BotContext, Command, Outcome } from '../src/discord/command.ts';
import { localizations, t } from '../src/discord/i18n.ts';
import { discordTime, NO_MENTIONS, safeText, whatWasAsked } from '../src/discord/messages.ts';
import { isModerator } from '../src/discord/moderators.ts';
import { decidedReviewBody, decisionLine, messageLink } from '../src/discord/review-messages.ts';
import type { ReviewDecision, ReviewKind } from '../src/domain/job.ts';
import type { ReportResult } from '../src/moderation/review-types.ts';

/** How many pending reviews one answer lists (Discord caps a message at 2000 characters). */
const LIST_MAX = 15;

export const data = new SlashCommandBuilder()
  .setName('imagine-review')
  .setDescription(t('en-US', 'command.review.description'))
  .setDescriptionLocalizations(localizations('command.review.description'))
  // Staff tools act on a server's settings and review desk: only where the server installed the bot.
  .setIntegrationTypes(ApplicationIntegrationType.GuildInstall)
  .setContexts(InteractionContextType.Guild)
  .setDefaultMemberPermissions(PermissionFlagsBits.ManageMessages)
  .addSubcommand((s) =>
    s
      .setName('pending')
      .setDescription(t('en-US', 'command.review.pending'))
      .setDescriptionLocalizations(localizations('command.review.pending')),
  );

/** A private answer; the pending list quotes prompts, so links in it show no preview. */
const ephemeral = async (
  interaction: ChatInputCommandInteraction | ButtonInteraction,
  content: string,
  outcome: string,
): Promise<Outcome> => {
  const message = {
    content,
    flags: MessageFlags.Ephemeral | MessageFlags.SuppressEmbeds,
    allowedMentions: NO_MENTIONS,
  };
  if (interaction.deferred || interaction.replied) await interaction.followUp(message);
  else await interaction.reply(message);
  return outcome;
};

/** `/imagine-review pending`: what still waits in this guild, oldest first, with links. */
export async function execute(interaction: ChatInputCommandInteraction, ctx: BotContext): Promise<Outcome> {
  const locale = interaction.locale;
  if (!interaction.inGuild()) return ephemeral(interaction, t(locale, 'context.guild_only'), 'refused:guild_only');
  const { moderatorRoleId } = await ctx.settings.get(interaction.guildId);
  if (!isModerator(interaction, moderatorRoleId))
    return ephemeral(interaction, t(locale, 'moderation.not_moderator'), 'refused:not_moderator');
  const pending = await ctx.review.pending(interaction.guildId);
  if (!pending.length) return ephemeral(interaction, t(locale, 'pending.none'), 'pending:0');
  const lines = pending.slice(0, LIST_MAX).map(({ job, kind, createdAt, channelId, messageId }, i) => {
    const where =
      channelId && messageId
        ? `[${t(locale, 'pending.open')}](${messageLink(job.guildId, channelId, messageId)})`
        : `*${t(locale, 'pending.unrouted')}*`;
    const prompt = safeText(whatWasAsked(job), 60).replace(/\n/g, ' ');
    return `${i + 1}. ${discordTime(createdAt)} · ${t(locale, `pending.${kind}`)} · <@${job.userId}> · “${prompt}” · ${where}`;
  });
  if (pending.length > LIST_MAX) lines.push(t(locale, 'pending.more', { count: pending.length - LIST_MAX }));
  return ephemeral(
    interaction,
    [t(locale, 'pending.header', { count: pending.length }), ...lines].join('\n'),
    `pending:${pending.length}`,
  );
}

/**
 * Approve, Reject, Remove and Keep. The moderator check comes first, from the interaction's own
 * permissions and roles; then the click is acknowledged (publishing may take longer than
 * Discord's 3 seconds) and the review service decides: exactly one click wins.
 */
function decisionButton(kind: ReviewKind, decision: ReviewDecision) {
  return async (interaction: ButtonInteraction, jobId: string, ctx: BotContext): Promise<Outcome> => {
    const locale = interaction.locale;
    const { moderatorRoleId } = await ctx.settings.get(interaction.guildId ?? 'dm');
    if (!isModerator(interaction, moderatorRoleId))
      return ephemeral(interaction, t(locale, 'moderation.not_moderator'), 'refused:not_moderator');
    await interaction.deferUpdate();
    const moderator = { id: interaction.user.id, name: interaction.user.username };
    let result: Awaited<ReturnType<BotContext['review']['decide']>>;
    try {
      // The message the button is on, so a custom id naming another job (another guild's) decides nothing.
      const message = {
        guildId: interaction.guildId,
        messageId: interaction.message.id,
        fileNames: interaction.message.attachments.map((a) => a.name),
      };
      result = await ctx.review.decide({
        jobId,
        kind,
        decision,
        moderator,
        imageUrl: interaction.message.attachments.first()?.url,
        message,
      });
    } catch (err) {
      ctx.logger.error({ err, jobId, decision }, 'moderation decision could not be carried out');
      return ephemeral(interaction, t(locale, 'moderation.failed'), `failed:${decision}`);
    }
    if (result.outcome === 'unknown') return ephemeral(interaction, t(locale, 'moderation.unknown'), 'unknown_review');
    if (result.outcome === 'already') {
      return ephemeral(
        interaction,
        t(locale, 'moderation.already', { decision: decisionLine(result.record, locale) }),
        `already:${result.record.decision}`,
      );
    }
    await interaction.editReply(
      decidedReviewBody(interaction.message.embeds[0]?.toJSON(), result.record, interaction.guildLocale ?? locale),
    );
    return `decided:${decision}`;
  };
}

/** The answer to a report: about one image, or about the several of a batch message. */
function reportAnswer(result: ReportResult, locale: string): string {
  switch (result.outcome) {
    case 'limited':
      return t(locale, 'report.limited', { limit: result.limit, retryAt: discordTime(result.retryAt) });
    case 'already_decided':
      return result.records.length === 1
        ? t(locale, 'report.already_decided', { decision: decisionLine(result.records[0]!, locale) })
        : t(locale, 'report.all_decided');
    case 'sent':
      return result.images > 1 ? t(locale, 'report.sent_many', { count: result.images }) : t(locale, 'report.sent');
    case 'added':
      return t(locale, result.images > 1 ? 'report.added_many' : 'report.added');
    case 'already_reported':
      return t(locale, result.images > 1 ? 'report.already_reported_many' : 'report.already_reported');
    case 'no_reviewer':
    case 'unknown':
      return t(locale, `report.${result.outcome}`);
  }
}

/**
 * Any member may report a published message, once per image; the answer is private. A batch
 * message is reported with every image it shows, each reviewed on its own.
 */
async function report(interaction: ButtonInteraction, jobId: string, ctx: BotContext): Promise<Outcome> {
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const images = interaction.message.attachments.map((a) => ({
    attachmentId: a.id,
    fileName: a.name,
    url: a.url,
    spoiler: a.spoiler,
  }));
  const result = await ctx.review.report({
    jobId,
    reporter: { id: interaction.user.id, name: interaction.user.username },
    message: {
      guildId: interaction.guildId,
      channelId: interaction.channelId,
      messageId: interaction.message.id,
      images,
    },
  });
  await interaction.editReply({ content: reportAnswer(result, interaction.locale), allowedMentions: NO_MENTIONS });
  return `report:${result.outcome}`;
}

export const buttons: Command['buttons'] = {
  approve: decisionButton('flag', 'approve'),
  reject: decisionButton('flag', 'reject'),
  remove: decisionButton('report', 'remove'),
  keep: decisionButton('report', 'keep'),
  report,
};

export default { data, execute, buttons } satisfies Command;
