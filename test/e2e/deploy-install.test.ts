// `npm run deploy-commands` and USER_INSTALL: what reaches Discord's registration endpoint, read
// back from the fake Discord, with members' own installs allowed (the default) and turned off.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeDiscord, type FakeDiscord } from '../fakes/discord/server.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let discord: FakeDiscord;
let cwd: string;

beforeEach(async () => {
  discord = await startFakeDiscord();
  cwd = mkdtempSync(join(tmpdir(), 'qi-deploy-'));
});
afterEach(async () => {
  await discord.stop();
  rmSync(cwd, { recursive: true, force: true });
});

async function deploy(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'src', 'cli', 'deploy-commands.ts')], {
    cwd,
    env: { PATH: process.env.PATH ?? '', DISCORD_TOKEN: discord.token, DISCORD_API_URL: discord.apiUrl, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout, stderr };
}

const registered = () =>
  Object.fromEntries(
    discord.commands.list().map((c) => [c.name, { integration_types: c.integration_types, contexts: c.contexts }]),
  );
const GUILD_ONLY = { integration_types: [0], contexts: [0] };
const EVERYWHERE = { integration_types: [0, 1], contexts: [0, 1, 2] };

describe('npm run deploy-commands with USER_INSTALL', () => {
  it('by default registers /imagine, /imagine-history and Imagine this for both installs and every context; /imagine-edit and the staff commands for servers that installed the bot only', async () => {
    const { code, stdout, stderr } = await deploy({});
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(registered()).toEqual({
      imagine: EVERYWHERE,
      'imagine-edit': GUILD_ONLY,
      'imagine-history': EVERYWHERE,
      'Imagine this': EVERYWHERE,
      'imagine-review': GUILD_ONLY,
      'imagine-settings': GUILD_ONLY,
      'imagine-usage': GUILD_ONLY,
    });
    expect(stdout).toContain(
      `https://discord.com/oauth2/authorize?client_id=${discord.applicationId}&integration_type=1&scope=applications.commands`,
    );
    expect(discord.errors).toEqual([]);
  });

  it('USER_INSTALL=off registers every command for servers that installed the bot only, and prints no install link', async () => {
    const { code, stdout } = await deploy({ USER_INSTALL: 'off' });
    expect(code).toBe(0);
    const all = registered();
    expect(Object.keys(all)).toHaveLength(7);
    for (const [name, command] of Object.entries(all)) expect(command, name).toEqual(GUILD_ONLY);
    expect(stdout).not.toContain('integration_type=1');
    expect(discord.errors).toEqual([]);
  });

  it('a bad USER_INSTALL stops before anything is registered, with exit code 2', async () => {
    const { code, stderr } = await deploy({ USER_INSTALL: 'maybe' });
    expect(code).toBe(2);
    expect(stderr).toContain('USER_INSTALL must be on or off');
    expect(discord.requests.filter((r) => r.method === 'PUT')).toEqual([]);
  });
});
