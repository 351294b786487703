import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from './command.ts';

export const COMMANDS_DIR = join(import.meta.dirname, '..', '..', 'commands');

/**
 * Imports every module in `commands/`. A broken module stops the start instead of being
 * skipped: a bot that silently lost a command is worse than one that says why it won't run.
 */
export async function loadCommands(dir = COMMANDS_DIR): Promise<Map<string, Command>> {
  const files = (await readdir(dir)).filter((f) => /\.(ts|js)$/.test(f) && !/\.(test|d)\.ts$/.test(f)).sort();
  const commands = new Map<string, Command>();
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as Partial<Command>;
    if (!mod.data?.name || typeof mod.execute !== 'function') {
      throw new Error(`commands/${file} must export "data" (a SlashCommandBuilder) and "execute(interaction, ctx)"`);
    }
    if (commands.has(mod.data.name)) throw new Error(`commands/${file} registers /${mod.data.name} twice`);
    commands.set(mod.data.name, mod as Command);
  }
  return commands;
}
