// The bot as operators run it: `npm start` and `npm run deploy-commands` as child processes,
// configured only by environment variables, against the fakes.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeDiscord, type FakeDiscord } from '../fakes/discord/server.ts';
import { startFakePpinfra, type FakePpinfra } from '../fakes/ppinfra.ts';
import { MODERATED_GUILD, REVIEW } from './guilds.ts';
import { finished } from './harness.ts';
import { NODE_FLAGS } from '../../src/node-flags.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let discord: FakeDiscord;
let api: FakePpinfra;
let cwd: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  discord = await startFakeDiscord();
  api = await startFakePpinfra({ script: () => ({ processingMs: 200 }) });
  // An empty working directory: no stray .env is read, and ./data lands here.
  cwd = mkdtempSync(join(tmpdir(), 'qi-proc-'));
});
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await discord.stop();
  await api.close();
  rmSync(cwd, { recursive: true, force: true });
});

function run(script: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [join(ROOT, 'src', script)], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number);
  return { child, exited, output: () => ({ stdout, stderr }) };
}

/** Resolves once the bot says it is connected and serving. */
const running = (proc: ReturnType<typeof run>) =>
  new Promise<void>((resolve) => {
    const check = () => proc.output().stdout.includes('qwen-imagine is running') && resolve();
    proc.child.stdout!.on('data', check);
    check();
  });

const botEnv = () => ({
  DISCORD_TOKEN: discord.token,
  DISCORD_API_URL: discord.apiUrl,
  PPINFRA_API_KEY: api.apiKey,
  PPINFRA_BASE_URL: api.url,
});

describe('npm run deploy-commands', () => {
  it('registers /imagine to one guild, localised, reading the application id from Discord', async () => {
    const proc = run('cli/deploy-commands.ts', {
      DISCORD_TOKEN: discord.token,
      DISCORD_API_URL: discord.apiUrl,
      DISCORD_GUILD_ID: discord.guild.id,
    });
    expect(await proc.exited).toBe(0);
    expect(proc.output().stdout).toContain('Registered 7 command(s) for guild');
    for (const name of [
      '/imagine',
      '/imagine-edit',
      '/imagine-history',
      '/imagine-review',
      '/imagine-settings',
      '/imagine-usage',
      '“Imagine this” (message menu)',
    ])
      expect(proc.output().stdout).toContain(name);
    const put = discord.requests.find((r) => r.method === 'PUT');
    expect(put?.path).toBe(`/applications/${discord.applicationId}/guilds/${discord.guild.id}/commands`);
    expect((put!.body as { name: string }[]).map((c) => c.name).sort()).toEqual([
      'Imagine this',
      'imagine',
      'imagine-edit',
      'imagine-history',
      'imagine-review',
      'imagine-settings',
      'imagine-usage',
    ]);
    // /imagine-usage: in servers only, shown to Manage Server by default, named in Chinese too.
    expect((put!.body as { name: string }[]).find((c) => c.name === 'imagine-usage')).toMatchObject({
      contexts: [0],
      default_member_permissions: '32',
      name_localizations: { 'zh-CN': '画图用量' },
    });
    const [command] = (put!.body as { name: string }[]).filter((c) => c.name === 'imagine') as {
      name: string;
      name_localizations: Record<string, string>;
      options: { name: string; autocomplete?: boolean; max_length?: number }[];
    }[];
    expect(command).toMatchObject({ name: 'imagine', name_localizations: { 'zh-CN': '画图' } });
    expect(command?.options.map((o) => o.name)).toEqual(['prompt', 'size', 'text', 'placement', 'count']);
    expect(command?.options[1]?.autocomplete).toBe(true);
    expect(discord.errors).toEqual([]);
  });

  it('registers globally without a guild id', async () => {
    const proc = run('cli/deploy-commands.ts', { DISCORD_TOKEN: discord.token, DISCORD_API_URL: discord.apiUrl });
    expect(await proc.exited).toBe(0);
    expect(discord.requests.find((r) => r.method === 'PUT')?.path).toBe(
      `/applications/${discord.applicationId}/commands`,
    );
  });
});

describe('npm start', () => {
  it('runs the bot from the environment, serves /imagine and stops cleanly on SIGTERM', async () => {
    const proc = run('main.ts', botEnv());
    await discord.waitForRequest((r) => r.path === '/gateway/bot', { timeoutMs: 15_000 });
    await running(proc);
    const message = await discord
      .slash('imagine', { prompt: 'a teapot' })
      .waitForOriginal(finished, { timeoutMs: 10_000 });
    expect(discord.files(message)[0]?.bytes.equals(Buffer.from([...api.tasks.values()][0]!.image!))).toBe(true);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    const { stdout, stderr } = proc.output();
    expect(stdout + stderr).not.toContain(discord.token);
    expect(stdout + stderr).not.toContain(api.apiKey);
    expect(stdout).toContain('"msg":"job delivered"');
  });

  it('loads the NSFW classifier in its thread under the V8 flags npm start and the Dockerfile use; stdout stays pino JSON', async () => {
    const child = spawn(process.execPath, [...NODE_FLAGS, join(ROOT, 'src', 'main.ts')], {
      cwd,
      env: { PATH: process.env.PATH ?? '', ...botEnv(), LOG_LEVEL: 'debug' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    const ready = new Promise<void>((resolve) =>
      child.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('"msg":"NSFW classifier ready"')) resolve();
      }),
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await ready;
    child.kill('SIGTERM');
    expect((await once(child, 'exit'))[0]).toBe(0);
    const lines = stdout.trim().split('\n');
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    // nsfwjs' own announcement arrives as a debug line of the logger, not as bare console output.
    expect(lines.some((l) => l.includes('NSFW classifier thread said') && l.includes("You're using the model"))).toBe(
      true,
    );
    expect(stderr).toBe('');
  });

  it('lists every configuration problem at once and exits non-zero', async () => {
    const proc = run('main.ts', { PPINFRA_BASE_URL: 'not-a-url', USER_HOURLY_QUOTA: 'lots' });
    expect(await proc.exited).toBe(2);
    const { stderr } = proc.output();
    for (const name of ['DISCORD_TOKEN', 'PPINFRA_API_KEY', 'PPINFRA_BASE_URL', 'USER_HOURLY_QUOTA'])
      expect(stderr).toContain(name);
    expect(stderr).not.toMatch(/at .*\.ts:\d+/);
  });

  it('says clearly that Discord rejected the token, without printing it', async () => {
    const proc = run('main.ts', { ...botEnv(), DISCORD_TOKEN: 'MTIz.wrong.token-value-xyz' });
    expect(await proc.exited).toBe(1);
    const { stdout, stderr } = proc.output();
    expect(stdout + stderr).toContain('Discord rejected DISCORD_TOKEN');
    expect(stdout + stderr).not.toContain('MTIz.wrong.token-value-xyz');
    expect(stdout + stderr).not.toMatch(STACK);
  });
});

/** A stack frame, in any form Node prints one. */
const STACK = /\n\s+at |\\n\s+at |"stack"/;

/** A loopback port nobody listens on (taken from the OS, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('npm start when Discord cannot be reached', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  });

  const token = 'MTIz.unreachable.token-value-xyz';
  const expectOneSentence = (proc: ReturnType<typeof run>, url: string) => {
    const { stdout, stderr } = proc.output();
    expect(stderr.trim()).toMatch(
      new RegExp(
        `^qwen-imagine cannot start: Could not reach Discord at ${url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\([^)]+\\): check the network, or DISCORD_API_URL if you set one\\.$`,
      ),
    );
    expect(stdout + stderr).not.toMatch(STACK);
    expect(stdout + stderr).not.toContain(token);
    expect(stdout + stderr).not.toContain(api.apiKey);
  };

  it('says so in one sentence and exits 1 when DISCORD_API_URL is a closed port', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const started = Date.now();
    const proc = run('main.ts', { ...botEnv(), DISCORD_TOKEN: token, DISCORD_API_URL: url });
    expect(await proc.exited).toBe(1);
    expect(Date.now() - started).toBeLessThan(30_000);
    expectOneSentence(proc, url);
  });

  it('gives up within DISCORD_LOGIN_TIMEOUT_MS when the gateway cannot be reached (discord.js would retry forever)', async () => {
    const gateway = `ws://127.0.0.1:${await closedPort()}`;
    // A REST endpoint that answers, and sends the bot to a gateway nobody listens on.
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          url: gateway,
          shards: 1,
          session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
        }),
      );
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const rest = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const proc = run('main.ts', {
      ...botEnv(),
      DISCORD_TOKEN: token,
      DISCORD_API_URL: rest,
      DISCORD_LOGIN_TIMEOUT_MS: '2000',
    });
    expect(await proc.exited).toBe(1);
    expectOneSentence(proc, gateway);
    expect(proc.output().stderr).toContain('no connection within 2 s');
  });
});

describe('a flagged image across a crash', () => {
  it('is still published when a moderator approves after the bot was killed (SIGKILL) and restarted', async () => {
    await discord.stop();
    discord = await startFakeDiscord({ guilds: [MODERATED_GUILD] });
    api.setScript(() => ({ processingMs: 200, nsfw: true }));
    const env = { ...botEnv(), REVIEW_CHANNEL_ID: REVIEW };
    const first = run('main.ts', env);
    await running(first);
    const it = discord.slash('imagine', { prompt: 'a storm poster' }, { channel: 'general' });
    await it.waitForOriginal((m) => m.content.startsWith('🔞'), { timeoutMs: 10_000 });
    const review = await discord.waitForMessage((m) => m.channel_id === REVIEW && m.components?.length === 1, {
      timeoutMs: 10_000,
    });

    first.child.kill('SIGKILL');
    await first.exited;
    const second = run('main.ts', env);
    await running(second);
    discord.click(review, 'Approve', { user: 'mod' });
    const published = await it.waitForOriginal((m) => m.attachments.length > 0, { timeoutMs: 10_000 });
    expect(discord.files(published)[0]?.bytes.equals(Buffer.from([...api.tasks.values()][0]!.image!))).toBe(true);
    expect(api.requests.filter((r) => r.route === 'submit')).toHaveLength(1);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
