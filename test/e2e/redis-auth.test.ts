// Redis as compose.yaml runs it, with --requirepass, and the bot given the password in STORAGE_URL
// (`redis://:<password>@host:port`): every client the bot opens on it (Keyv's node-redis, the shared
// state's node-redis, the job store's ioredis, BullMQ's connections) logs in, and the password
// never reaches a log line or the start-up report.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { openJobStore } from '../../src/jobs/scheduler.ts';
import { silentLogger } from '../../src/logger.ts';
import { openSharedState, openStorage } from '../../src/storage/open.ts';
import { startFakeDiscord } from '../fakes/discord/server.ts';
import { skipWithoutRedis, startRedis, type FakeRedis } from '../fakes/redis.ts';
import { finished, startBotHarness, type BotHarness } from './harness.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PASSWORD = 'c0mp0se-redis-pa55word';
const LONG = { timeoutMs: 20_000 };

let redis: FakeRedis | undefined;
let bot: BotHarness | undefined;
afterEach(async () => {
  await bot?.close();
  bot = undefined;
  await redis?.stop();
  redis = undefined;
});

describe.skipIf(skipWithoutRedis)('Redis with a password', () => {
  it('refuses a client without the password: the server really requires one', async () => {
    redis = await startRedis({ password: PASSWORD });
    // The protocol by hand: a client library would retry or hide the reply.
    const socket = connect(redis.port, '127.0.0.1');
    socket.write('PING\r\n');
    const [reply] = (await once(socket, 'data')) as [Buffer];
    socket.destroy();
    expect(reply.toString()).toMatch(/^-NOAUTH/);
  });

  it('Keyv, the shared state and the job store each open with redis://:password@host', async () => {
    redis = await startRedis({ password: PASSWORD });
    const kv = openStorage(redis.url, 'auth-check');
    await kv.set('k', { v: 1 });
    expect(await kv.get('k')).toEqual({ v: 1 });
    await kv.disconnect();
    const shared = openSharedState(redis.url);
    expect(await shared.claim('auth-check', 'me', 60_000)).toEqual({ won: true });
    await shared.close();
    const jobs = openStorage(redis.url, 'jobs');
    const { redis: connection } = await openJobStore(redis.url, jobs, silentLogger);
    expect(await connection!.ping()).toBe('PONG');
    await connection!.quit();
    await jobs.disconnect();
  });

  it('the whole bot delivers through BullMQ, and no log line holds the password', async () => {
    redis = await startRedis({ password: PASSWORD });
    bot = await startBotHarness({ env: { STORAGE_URL: redis.url, QUEUE_LOCK_MS: '10000' } });
    const message = await bot.discord.slash('imagine', { prompt: 'a locked door' }).waitForOriginal(finished, LONG);
    expect(message.attachments).toHaveLength(1);
    const check = new Redis(redis.url);
    expect((await check.keys('bull:*')).length).toBeGreaterThan(0);
    await check.quit();
    // The harness's logger is told only the Discord token and the API key: nothing scrubs the password.
    expect(bot.rawLogs.join('')).not.toContain(PASSWORD);
    expect(bot.discord.errors).toEqual([]);
  });

  it('npm start with a wrong password exits 2, says the login failed, and prints neither password', async () => {
    redis = await startRedis({ password: PASSWORD });
    const discord = await startFakeDiscord();
    const cwd = mkdtempSync(join(tmpdir(), 'qi-redis-auth-'));
    try {
      const wrong = 'not-the-pa55word';
      const env = {
        PATH: process.env.PATH ?? '',
        DISCORD_TOKEN: discord.token,
        DISCORD_API_URL: discord.apiUrl,
        PPINFRA_API_KEY: 'a-key-never-used',
        STORAGE_URL: `redis://:${wrong}@127.0.0.1:${redis.port}`,
      };
      const child = spawn(process.execPath, [join(ROOT, 'src', 'main.ts')], {
        cwd,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(2);
      expect(output).toContain(`STORAGE_URL (redis://***@127.0.0.1:${redis.port})`);
      expect(output).toMatch(/authentication failed \(check the user and password in the URL\)/);
      expect(output).not.toContain(wrong);
      expect(output).not.toContain(PASSWORD);
      expect(discord.requests).toEqual([]);
    } finally {
      await discord.stop();
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 30_000);
});
