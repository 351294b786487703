import {
  ApplicationIntegrationType,
  ChannelType,
  InteractionContextType,
  MessageFlags,
  PermissionFlagsBits,
  PermissionsBitField,
  SlashCommandBuilder,
  type ChatInputCommandInteraction,
} from 'discord.js';
import type { BotContext, Command, Outcome } from '../src/discord/command.ts';
import { t } from '../src/discord/i18n.ts';
import { NO_MENTIONS } from '../src/discord/messages.ts';
import { REVIEW_CHANNEL_PERMISSIONS, missingPermissions } from '../src/discord/permissions.ts';
import { NSFW_POLICIES, SENSITIVITIES, type NsfwPolicy, type Sensitivity } from '../src/moderation/settings.ts';
import { choice, named, summary } from '../src/discord/settings-messages.ts';

const REVIEW_ALL = ['on', 'off'] as const;

export const data = named(new SlashCommandBuilder(), 'command')
  // Staff tools act on a server's settings and review desk: only where the server installed the bot.
  .setIntegrationTypes(ApplicationIntegrationType.GuildInstall)
  .setContexts(InteractionContextType.Guild)
  .setDefaultMemberPermissions(PermissionFlagsBits.ManageGuild)
  .addSubcommand((s) => named(s, 'show'))
  .addSubcommand((s) =>
    named(s, 'review_channel').addChannelOption((o) =>
      named(o, 'channel').addChannelTypes(ChannelType.GuildText, ChannelType.GuildAnnouncement),
    ),
  )
  .addSubcommand((s) => named(s, 'moderator_role').addRoleOption((o) => named(o, 'role')))
  .addSubcommand((s) =>
    named(s, 'nsfw_channels').addStringOption((o) =>
      named(o, 'mode')
        .setRequired(true)
        .addChoices(...NSFW_POLICIES.map((policy) => choice('mode', policy))),
    ),
  )
  .addSubcommand((s) =>
    named(s, 'sensitivity').addStringOption((o) =>
      named(o, 'level')
        .setRequired(true)
        .addChoices(...SENSITIVITIES.map((level) => choice('level', level))),
    ),
  )
  .addSubcommand((s) =>
    named(s, 'review_all').addStringOption((o) =>
      named(o, 'state')
        .setRequired(true)
        .addChoices(...REVIEW_ALL.map((state) => choice('state', state))),
    ),
  )
  .addSubcommand((s) =>
    named(s, 'limits')
      .addIntegerOption((o) => named(o, 'hourly_quota').setMinValue(1))
      .addIntegerOption((o) => named(o, 'daily_budget').setMinValue(1))
      .addBooleanOption((o) => named(o, 'reset')),
  );

type Interaction = ChatInputCommandInteraction<'cached'>;

/** Every answer is for the admin alone, and no channel or role named in it pings anyone. */
async function answer(interaction: ChatInputCommandInteraction, content: string, outcome: string): Promise<Outcome> {
  if (interaction.deferred) await interaction.editReply({ content, allowedMentions: NO_MENTIONS });
  else await interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
  return outcome;
}

const refuse = (interaction: ChatInputCommandInteraction, content: string, outcome: string) =>
  answer(interaction, content, `refused:${outcome}`);

const channelMention = (id: string) => `<#${id}>`;
const roleMention = (id: string) => `<@&${id}>`;

async function show(interaction: Interaction, ctx: BotContext): Promise<Outcome> {
  const settings = await ctx.settings.get(interaction.guildId);
  return answer(interaction, summary(interaction.locale, settings, ctx.settings.defaults), 'settings:show');
}

/** Checked from the cache before storing, so a review message can never fail for want of a permission. */
function botMissingIn(interaction: Interaction, channelId: string): string[] {
  const me = interaction.guild.members.me;
  const channel = interaction.guild.channels.cache.get(channelId);
  // A channel the bot does not know is one it can do nothing in.
  const granted = (me && channel?.permissionsFor(me)) || new PermissionsBitField();
  return missingPermissions(granted, REVIEW_CHANNEL_PERMISSIONS);
}

const seenByEveryone = (interaction: Interaction, channelId: string) =>
  interaction.guild.channels.cache
    .get(channelId)
    ?.permissionsFor(interaction.guild.roles.everyone)
    .has(PermissionFlagsBits.ViewChannel) ?? false;

/** Held images wait for a channel; a failure to post them must not hide that the choice was saved. */
async function routePending(interaction: Interaction, ctx: BotContext): Promise<string[]> {
  const locale = interaction.locale;
  try {
    const count = await ctx.review.routePending(interaction.guildId);
    return count > 0 ? [t(locale, 'settings.review_channel.routed', { count })] : [];
  } catch (err) {
    ctx.logger.warn({ err, guildId: interaction.guildId }, 'could not route held images to the new review channel');
    return [t(locale, 'settings.review_channel.route_failed')];
  }
}

async function reviewChannel(interaction: Interaction, ctx: BotContext): Promise<Outcome> {
  const locale = interaction.locale;
  const channelId = interaction.options.getChannel('channel')?.id;
  if (channelId) {
    const missing = botMissingIn(interaction, channelId);
    const permissions = missing.map((m) => `**${m}**`).join(', ');
    if (missing.length)
      return refuse(
        interaction,
        t(locale, 'settings.review_channel.missing', { channel: channelMention(channelId), permissions }),
        'missing_permissions',
      );
  }
  // Sending the images that waited for a channel may take longer than Discord's 3 seconds.
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const { reviewChannelSource: source, reviewChannelId: inForce } = await ctx.settings.update(interaction.guildId, {
    reviewChannelId: channelId ?? null,
  });
  const stored = {
    guild: 'settings.review_channel.set',
    operator: 'settings.review_channel.cleared',
    none: 'settings.review_channel.cleared_none',
  } as const;
  const lines = [
    t(locale, stored[source], { channel: channelMention(inForce ?? '') }),
    ...(channelId && seenByEveryone(interaction, channelId)
      ? [t(locale, 'settings.review_channel.public', { channel: channelMention(channelId) })]
      : []),
    ...(inForce ? await routePending(interaction, ctx) : []),
  ];
  return answer(
    interaction,
    lines.join('\n'),
    channelId ? 'settings:review-channel' : 'settings:review-channel-cleared',
  );
}

async function moderatorRole(interaction: Interaction, ctx: BotContext): Promise<Outcome> {
  const locale = interaction.locale;
  const role = interaction.options.getRole('role');
  if (role?.id === interaction.guildId)
    return refuse(interaction, t(locale, 'settings.moderator_role.everyone'), 'everyone_role');
  if (role?.managed)
    return refuse(
      interaction,
      t(locale, 'settings.moderator_role.managed', { role: roleMention(role.id) }),
      'managed_role',
    );
  await ctx.settings.update(interaction.guildId, { moderatorRoleId: role?.id ?? null });
  const content = role
    ? t(locale, 'settings.moderator_role.set', { role: roleMention(role.id) })
    : t(locale, 'settings.moderator_role.cleared');
  return answer(interaction, content, role ? 'settings:moderator-role' : 'settings:moderator-role-cleared');
}

async function nsfwChannels(interaction: Interaction, ctx: BotContext): Promise<Outcome> {
  const mode = interaction.options.getString('mode', true) as NsfwPolicy;
  await ctx.settings.update(interaction.guildId, { nsfwChannels: mode });
  return answer(
    interaction,
    t(interaction.locale, 'settings.nsfw_channels.set', { policy: t(interaction.locale, `settings.policy.${mode}`) }),
    `settings:nsfw-channels:${mode}`,
  );
}

async function sensitivity(interaction: Interaction, ctx: BotContext): Promise<Outcome> {
  const level = interaction.options.getString('level', true) as Sensitivity;
  await ctx.settings.update(interaction.guildId, { sensitivity: level });
  return answer(
    interaction,
    t(interaction.locale, 'settings.sensitivity.set', {
      level: t(interaction.locale, `settings.sensitivity.${level}`),
    }),
    `settings:sensitivity:${level}`,
  );
}

/** Turning it on without a review channel is allowed (the channel may come next), but said plainly. */
async function reviewAll(interaction: Interaction, ctx: BotContext): Promise<Outcome> {
  const locale = interaction.locale;
  const on = interaction.options.getString('state', true) === 'on';
  const settings = await ctx.settings.update(interaction.guildId, { reviewAll: on });
  const lines = [
    t(locale, on ? 'settings.review_all.set_on' : 'settings.review_all.set_off'),
    ...(on && !settings.reviewChannelId ? [t(locale, 'settings.review_all.no_channel')] : []),
  ];
  return answer(interaction, lines.join('\n'), `settings:review-all:${on ? 'on' : 'off'}`);
}

/**
 * `reset: True` sends every limit not given back to the operator's maximum; a limit given with it
 * is still set. Zero is not a way to reset: Discord's own `min 1` keeps it out.
 */
async function limits(interaction: Interaction, ctx: BotContext): Promise<Outcome> {
  const locale = interaction.locale;
  const max = ctx.settings.defaults;
  const hourly = interaction.options.getInteger('hourly-quota') ?? undefined;
  const daily = interaction.options.getInteger('daily-budget') ?? undefined;
  const reset = interaction.options.getBoolean('reset') ?? false;
  if (hourly === undefined && daily === undefined && !reset) {
    return refuse(
      interaction,
      t(locale, 'settings.limits.nothing', { hourly: max.userHourlyQuota, daily: max.guildDailyBudget }),
      'no_limits',
    );
  }
  if (hourly !== undefined && hourly > max.userHourlyQuota)
    return refuse(
      interaction,
      t(locale, 'settings.limits.hourly_too_high', { max: max.userHourlyQuota }),
      'above_maximum',
    );
  if (daily !== undefined && daily > max.guildDailyBudget)
    return refuse(
      interaction,
      t(locale, 'settings.limits.daily_too_high', { max: max.guildDailyBudget }),
      'above_maximum',
    );
  const settings = await ctx.settings.update(interaction.guildId, {
    userHourlyQuota: hourly ?? (reset ? null : undefined),
    guildDailyBudget: daily ?? (reset ? null : undefined),
  });
  return answer(
    interaction,
    t(locale, 'settings.limits.set', { hourly: settings.userHourlyQuota, daily: settings.guildDailyBudget }),
    reset ? 'settings:limits-reset' : 'settings:limits',
  );
}

const SUBCOMMANDS: Record<string, (interaction: Interaction, ctx: BotContext) => Promise<Outcome>> = {
  show,
  'review-channel': reviewChannel,
  'moderator-role': moderatorRole,
  'nsfw-channels': nsfwChannels,
  sensitivity,
  'review-all': reviewAll,
  limits,
};

export async function execute(interaction: ChatInputCommandInteraction, ctx: BotContext): Promise<Outcome> {
  if (!interaction.inCachedGuild())
    return refuse(interaction, t(interaction.locale, 'context.guild_only'), 'guild_only');
  // Default member permissions only hide the command, and a server's admins can widen who sees it.
  if (!interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild))
    return refuse(interaction, t(interaction.locale, 'settings.not_manager'), 'not_manager');
  const subcommand = interaction.options.getSubcommand();
  const run = SUBCOMMANDS[subcommand];
  if (!run) return refuse(interaction, t(interaction.locale, 'error.internal'), `unknown_subcommand:${subcommand}`);
  return run(interaction, ctx);
}

export default { data, execute } satisfies Command;
