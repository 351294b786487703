import {
  ApplicationCommandType,
  ApplicationIntegrationType,
  ContextMenuCommandBuilder,
  InteractionContextType,
  type MessageContextMenuCommandInteraction,
} from 'discord.js';
import type { BotContext, MessageMenuCommand, Outcome } from '../src/discord/command.ts';
import { localizations, t } from '../src/discord/i18n.ts';
import { checkInput, refuse, startJob } from '../src/discord/requests.ts';

/** "Apps → Imagine this" on any message: its text becomes the prompt, at the default size. */
export const data = new ContextMenuCommandBuilder()
  .setName(t('en-US', 'menu.imagine_this'))
  .setNameLocalizations(localizations('menu.imagine_this'))
  .setType(ApplicationCommandType.Message)
  // Members may also install the bot for themselves: then it answers in its DM, in their DMs and
  // group DMs, and in servers that never added it (src/discord/install.ts; USER_INSTALL=off at
  // deploy time takes that back).
  .setIntegrationTypes(ApplicationIntegrationType.GuildInstall, ApplicationIntegrationType.UserInstall)
  .setContexts(InteractionContextType.Guild, InteractionContextType.BotDM, InteractionContextType.PrivateChannel);

export async function execute(interaction: MessageContextMenuCommandInteraction, ctx: BotContext): Promise<Outcome> {
  const locale = interaction.locale;
  // Embeds and attachments are not a prompt; a message of only those has nothing to imagine.
  const words = interaction.targetMessage.content.trim();
  if (!words) return refuse(interaction, t(locale, 'menu.no_text'), 'no_text');
  const checked = checkInput(locale, { prompt: words, size: ctx.generation.defaultSize }, ctx);
  if (!checked.ok) return refuse(interaction, checked.message, checked.problem);
  return startJob(interaction, checked.request, ctx);
}

export default { data, execute } satisfies MessageMenuCommand;
