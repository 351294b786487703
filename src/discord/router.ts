import { MessageFlags, type Interaction } from 'discord.js';
import type { Logger } from '../logger.ts';
import type { BotContext, Command, Outcome } from './command.ts';
import { parseCustomId } from './custom-id.ts';
import { t } from './i18n.ts';
import { NO_MENTIONS } from './messages.ts';

/**
 * The one interactionCreate entry and the one error boundary: whatever a handler throws is
 * logged for the operator and answered with a single friendly sentence, never a stack trace.
 */
export function createRouter(deps: { commands: Map<string, Command>; ctx: BotContext; logger: Logger }) {
  const { commands, ctx, logger } = deps;

  async function dispatch(interaction: Interaction): Promise<string> {
    if (interaction.isChatInputCommand() || interaction.isMessageContextMenuCommand()) {
      const command = commands.get(interaction.commandName);
      if (!command) return 'unknown-command';
      // A name belongs to one kind of command; the registered kind is the one Discord sends.
      return (
        (await (command.execute as (i: typeof interaction, c: BotContext) => Promise<Outcome>)(interaction, ctx)) ||
        'ok'
      );
    }
    if (interaction.isAutocomplete()) {
      return (await commands.get(interaction.commandName)?.autocomplete?.(interaction, ctx)) || 'ok';
    }
    if (interaction.isButton()) {
      const parsed = parseCustomId(interaction.customId);
      const handler =
        parsed && [...commands.values()].find((c) => c.buttons?.[parsed.action])?.buttons?.[parsed.action];
      if (!parsed || !handler) return 'unknown-button';
      return (await handler(interaction, parsed.jobId, ctx)) || 'ok';
    }
    if (interaction.isModalSubmit()) {
      const parsed = parseCustomId(interaction.customId);
      const handler = parsed && [...commands.values()].find((c) => c.modals?.[parsed.action])?.modals?.[parsed.action];
      if (!parsed || !handler) return 'unknown-modal';
      return (await handler(interaction, parsed.jobId, ctx)) || 'ok';
    }
    return 'ignored';
  }

  return async function route(interaction: Interaction): Promise<void> {
    const started = Date.now();
    const name =
      interaction.isCommand() || interaction.isAutocomplete()
        ? interaction.commandName
        : interaction.isButton()
          ? interaction.customId
          : undefined;
    const log = logger.child({
      interactionId: interaction.id,
      guildId: interaction.guildId,
      channelId: interaction.channelId,
      userId: interaction.user.id,
    });
    try {
      const outcome = await dispatch(interaction);
      log.info({ type: interaction.type, name, outcome, ms: Date.now() - started }, 'interaction handled');
    } catch (err) {
      log.error({ err, type: interaction.type, name, ms: Date.now() - started }, 'interaction failed');
      await apologise(interaction).catch((e: unknown) =>
        log.warn({ err: e }, 'could not report the failure to the user'),
      );
    }
  };
}

/**
 * No SUPPRESS_EMBEDS here, unlike every text that quotes a member: this text is the bot's alone,
 * and after a deferred update it edits the message the button sits on, whose embeds must stay.
 */
async function apologise(interaction: Interaction): Promise<void> {
  if (!interaction.isRepliable()) return;
  const content = `❌ ${t(interaction.locale, 'error.internal')}`;
  if (interaction.deferred || interaction.replied)
    await interaction.editReply({ content, allowedMentions: NO_MENTIONS });
  else await interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: NO_MENTIONS });
}
