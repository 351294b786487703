// Storage that cannot be opened or reached: `npm start` says so and exits 2 instead of
// waiting silently; Redis lost while the bot runs pauses new requests, keeps the jobs in
// progress, and the bot recovers by itself when Redis is back.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { t } from '../../src/discord/i18n.ts';
import { Redis } from 'ioredis';
import { createRedisJobStore } from '../../src/jobs/bullmq/store.ts';
import { openStorage } from '../../src/storage/open.ts';
import { startFakeDiscord, type FakeDiscord } from '../fakes/discord/server.ts';
import type { FakeTask } from '../fakes/ppinfra.ts';
import { freePort, skipWithoutRedis, startRedis, type FakeRedis } from '../fakes/redis.ts';
import { finished, startBotHarness, type BotHarness } from './harness.ts';

const ROOT = join(import.meta.dirname, '..', '..');
/** A stack frame, as Node prints them. */
const STACK_FRAME = /^\s+at .+/m;

describe('npm start with storage it cannot use', () => {
  let discord: FakeDiscord;
  let cwd: string;
  const children: ChildProcess[] = [];
  beforeEach(async () => {
    discord = await startFakeDiscord();
    cwd = mkdtempSync(join(tmpdir(), 'qi-storage-proc-'));
  });
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    await discord.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  /** Runs `npm start` (node src/main.ts) with only these variables; resolves when it exits. */
  async function start(storageUrl: string) {
    const env = {
      PATH: process.env.PATH ?? '',
      DISCORD_TOKEN: discord.token,
      DISCORD_API_URL: discord.apiUrl,
      PPINFRA_API_KEY: 'a-key-never-used',
      STORAGE_URL: storageUrl,
    };
    const startedAt = Date.now();
    const child = spawn(process.execPath, [join(ROOT, 'src', 'main.ts')], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, ms: Date.now() - startedAt, stdout, stderr };
  }

  it('exits 2 within 10 s when Redis does not answer, naming STORAGE_URL without its password', async () => {
    const port = await freePort();
    const run = await start(`redis://qwen:s3cret-pa55@127.0.0.1:${port}`);
    expect(run.code).toBe(2);
    expect(run.ms).toBeLessThan(10_000);
    expect(run.stderr.trim()).toBe(
      `qwen-imagine cannot start: the Redis storage at STORAGE_URL (redis://***@127.0.0.1:${port}) cannot be reached: connection refused. Check STORAGE_URL in .env, start Redis, or use the default SQLite file (remove STORAGE_URL).`,
    );
    expect(run.stdout + run.stderr).not.toContain('s3cret-pa55');
    expect(run.stdout + run.stderr).not.toMatch(STACK_FRAME);
    // It gave up before logging in to Discord.
    expect(discord.requests).toEqual([]);
  }, 30_000);

  it.each([
    [
      'under a file, so its folder cannot be created',
      (dir: string) => {
        writeFileSync(join(dir, 'a-file'), 'not a folder');
        return {
          url: `sqlite://${join(dir, 'a-file', 'sub', 'bot.sqlite')}`,
          reason: `the folder ${join(dir, 'a-file', 'sub')} cannot be created (part of the path is a file, not a folder)`,
        };
      },
    ],
    // mkdir -p never returns under /proc: this path used to hang the start for good.
    [
      'under /proc',
      () => ({
        url: 'sqlite:///proc/qi-nope/bot.sqlite',
        reason: 'the folder /proc/qi-nope cannot be created (no such file or folder)',
      }),
    ],
  ])(
    'exits 2 within 10 s when the SQLite file is %s',
    async (_case, place) => {
      const { url, reason } = place(cwd);
      const run = await start(url);
      expect(run.code).toBe(2);
      expect(run.ms).toBeLessThan(10_000);
      expect(run.stderr.trim()).toBe(
        `qwen-imagine cannot start: the SQLite storage at STORAGE_URL (${url}) cannot be opened or written: ${reason}. Check STORAGE_URL in .env: it must name an SQLite file in a folder the bot can create and write to.`,
      );
      expect(run.stdout + run.stderr).not.toMatch(STACK_FRAME);
      expect(discord.requests).toEqual([]);
    },
    30_000,
  );
});

describe.skipIf(skipWithoutRedis)('Redis lost while the bot runs', () => {
  let redis: FakeRedis | undefined;
  let bot: BotHarness | undefined;
  afterEach(async () => {
    await bot?.close();
    await redis?.stop();
    bot = undefined;
    redis = undefined;
  });

  const submits = (h: BotHarness) => h.api.requests.filter((r) => r.route === 'submit');
  const LONG = { timeoutMs: 15_000 };

  it('refuses new requests at no cost, delivers the job in progress, and accepts requests again by itself when Redis is back', async () => {
    // Redis as an operator runs it, with persistence: an outage is a crash and a restart, not a loss of data.
    redis = await startRedis({ persist: true });
    // Observed durations, so estimates are warm (the harness seeds its own SQLite file, unused here).
    const stats = openStorage(redis.url, 'stats');
    await stats.set('durations', { '1024*1024': Array(5).fill(300) });
    await stats.disconnect();
    // The first task stays PROCESSING until the test finishes it, so it is surely in progress during the outage.
    bot = await startBotHarness({
      env: { STORAGE_URL: redis.url },
      script: ({ prompt }) =>
        prompt.includes('lighthouse') ? { processingMs: 24 * 3600_000 } : { queuedMs: 50, processingMs: 250 },
    });
    const h = bot;
    const waitForMsg = (msg: string, extra: (l: Record<string, unknown>) => boolean = () => true) =>
      h.waitForLog((l) => l.msg === msg && extra(l));

    const inProgress = h.discord.slash('imagine', { prompt: 'a lighthouse in a storm' });
    const jobId = (await waitForMsg('task submitted')).jobId as string;
    const task = (await h.api.waitFor(
      'task-created',
      (x: FakeTask) => x.prompt === 'a lighthouse in a storm',
      0,
    )) as FakeTask;

    await redis.down();
    await waitForMsg('storage unavailable: new requests are paused until it answers again');

    const refused = h.discord.slash('imagine', { prompt: 'a teapot' }, { user: 'bob' });
    const callback = await refused.waitForCallback();
    expect(callback.type).toBe(4);
    expect(refused.isEphemeral).toBe(true);
    expect((callback.data as { content: string }).content).toBe(t('en-US', 'refusal.storage_unavailable'));
    await waitForMsg('interaction handled', (l) => l.outcome === 'refused:storage_unavailable');
    expect(submits(h)).toHaveLength(1);

    // The image is ready while Redis is away; the job in progress delivers it (at once with the
    // in-process queue, once Redis answers with BullMQ's, whose steps live in Redis).
    task.completedAt = Date.now();
    await redis.up();
    await waitForMsg('storage available again: accepting new requests');
    const delivered = await inProgress.waitForOriginal(finished, LONG);
    expect(h.discord.files(delivered)[0]?.bytes.equals(Buffer.from(task.image!))).toBe(true);
    await waitForMsg('job delivered', (l) => l.jobId === jobId);
    if (
      h.logs.some(
        (l) =>
          l.msg === 'storage unavailable: keeping writes in memory until it answers again' && l.namespace === 'jobs',
      )
    ) {
      await waitForMsg(
        'writes kept while the storage was unavailable are saved',
        (l) => l.namespace === 'jobs' && l.left === 0,
      );
    }
    const connection = new Redis(redis.url);
    try {
      expect((await createRedisJobStore(connection).get(jobId))?.state).toBe('delivered');
    } finally {
      await connection.quit();
    }

    const again = await h.discord
      .slash('imagine', { prompt: 'a teapot' }, { user: 'bob' })
      .waitForOriginal(finished, LONG);
    expect(again.attachments).toHaveLength(1);
    expect(submits(h)).toHaveLength(2);
    expect(h.discord.errors).toEqual([]);
  }, 40_000);
});
