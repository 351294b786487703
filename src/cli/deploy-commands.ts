/**
 * `npm run deploy-commands`: registers the slash commands globally (they reach every server
 * within minutes), or to DISCORD_GUILD_ID only (instantly, for development).
 */
import { REST, Routes, type APIApplication } from 'discord.js';
import dotenv from 'dotenv';
import { formatProblems, loadConfig } from '../config.ts';
import { forInstall } from '../discord/install.ts';
import { loadCommands } from '../discord/loader.ts';

dotenv.config({ quiet: true });
const loaded = loadConfig(process.env, { discord: true, ppinfra: false });
if (!loaded.ok) {
  console.error(formatProblems(loaded.problems));
  process.exit(2);
}
const { config } = loaded;
const rest = new REST(config.discordApiUrl ? { api: config.discordApiUrl } : {}).setToken(config.discordToken);

try {
  const commands = await loadCommands();
  const body = forInstall(
    [...commands.values()].map((c) => c.data.toJSON()),
    { userInstall: config.userInstall.enabled },
  );
  // The application id comes from Discord with the token, never from configuration.
  const app = (await rest.get(Routes.currentApplication())) as APIApplication;
  const route = config.discordGuildId
    ? Routes.applicationGuildCommands(app.id, config.discordGuildId)
    : Routes.applicationCommands(app.id);
  const saved = (await rest.put(route, { body })) as { name: string; type?: number }[];
  const where = config.discordGuildId
    ? `guild ${config.discordGuildId}`
    : 'all servers (global; may take a few minutes to appear)';
  console.log(
    `Registered ${saved.length} command(s) for ${where}: ${saved.map((c) => (c.type === 3 ? `“${c.name}” (message menu)` : `/${c.name}`)).join(', ')}`,
  );
  // Installs for oneself only reach global commands; a guild registration is for development.
  if (config.userInstall.enabled && !config.discordGuildId)
    console.log(
      `Members can also install it for themselves: https://discord.com/oauth2/authorize?client_id=${app.id}&integration_type=1&scope=applications.commands`,
    );
} catch (err) {
  const status = (err as { status?: number }).status;
  const hint =
    status === 401
      ? 'Discord rejected DISCORD_TOKEN.'
      : status === 403 || status === 404
        ? 'Check DISCORD_GUILD_ID: the bot must be in that server.'
        : '';
  console.error(
    `Could not register commands: ${(err as Error).message}${hint ? `\n${hint}` : ''}`.replaceAll(
      config.discordToken,
      '[REDACTED]',
    ),
  );
  process.exitCode = 1;
}
