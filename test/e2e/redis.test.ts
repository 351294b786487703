// The whole bot on Redis (STORAGE_URL=redis://...): jobs on BullMQ, limits and budget in Redis.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRedisJobStore } from '../../src/jobs/bullmq/store.ts';
import { skipWithoutRedis, startRedis } from '../fakes/redis.ts';
import { finished, startBotHarness, type BotHarness, type HarnessOptions } from './harness.ts';

let h: BotHarness | undefined;
let redis: { url: string; stop: () => Promise<void> } | undefined;
let db = 0;

describe.skipIf(skipWithoutRedis)('the bot on Redis (BullMQ)', () => {
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  // Each test its own Redis database, so queues and limits never leak between tests. Restarts
  // here are graceful (nothing needs a takeover), so the step lock is long enough that a loaded
  // machine's pauses never make BullMQ run a step twice.
  const start = async (options: HarnessOptions = {}) =>
    (h = await startBotHarness({
      ...options,
      env: { STORAGE_URL: `${redis!.url}/${++db}`, QUEUE_LOCK_MS: '10000', ...options.env },
    }));
  const submits = (bot: BotHarness) => bot.api.requests.filter((r) => r.route === 'submit');

  it('delivers six images asked at once while task-result does not know each new task for its first polls', async () => {
    // A new task is not visible to task-result at once (404 TASK_NOT_FOUND): each look counts,
    // and the next is planned on the job record, never under an id BullMQ would drop.
    const members = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
    const bot = await start({
      script: () => ({ processingMs: 800, notFoundPolls: 3 }),
      env: { USER_MAX_CONCURRENT: '1' },
      discord: { guilds: [{ name: 'Six', members: members.map((user) => ({ user })) }] },
    });
    const asked = members.map((user) => bot.discord.slash('imagine', { prompt: `poster for ${user}` }, { user }));
    const messages = await Promise.all(asked.map((it) => it.waitForOriginal(finished, { timeoutMs: 30_000 })));
    expect(messages.map((m) => m.attachments.length)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(submits(bot)).toHaveLength(6);
    expect(bot.api.requests.filter((r) => r.route === 'result' && r.status === 404).length).toBeGreaterThanOrEqual(18);
    // Every member's one slot is freed (just after the image is out), and a new request goes through.
    const connection = new Redis(bot.env.STORAGE_URL!);
    const held = async () =>
      (await Promise.all((await connection.keys('qi:limits:running:*')).map((key) => connection.scard(key)))).reduce(
        (a, b) => a + b,
        0,
      );
    await expect.poll(held).toBe(0);
    await connection.quit();
    const again = await Promise.all(
      members.map((user) => bot.discord.slash('imagine', { prompt: `again ${user}` }, { user }).waitForCallback()),
    );
    expect(again.map((c) => c.type)).toEqual([5, 5, 5, 5, 5, 5]);
  });

  it('delivers /imagine through BullMQ with one submission', async () => {
    const bot = await start();
    const message = await bot.discord
      .slash('imagine', { prompt: 'a red fox' })
      .waitForOriginal(finished, { timeoutMs: 10_000 });
    expect(bot.discord.files(message)[0]?.bytes.equals(Buffer.from([...bot.api.tasks.values()][0]!.image!))).toBe(true);
    expect(submits(bot)).toHaveLength(1);
    expect(bot.discord.errors).toEqual([]);
  });

  it('keeps the hourly quota in Redis, across a restart', async () => {
    const bot = await start({ env: { USER_HOURLY_QUOTA: '1' } });
    await bot.discord.slash('imagine', { prompt: 'one' }).waitForOriginal(finished, { timeoutMs: 10_000 });
    await bot.restart();
    const it = bot.discord.slash('imagine', { prompt: 'two' });
    const callback = await it.waitForCallback();
    expect((callback.data as { content: string }).content).toMatch(/limit of 1 images per hour/);
    expect(submits(bot)).toHaveLength(1);
  });

  it('finishes a job after a restart mid-task without submitting it again', async () => {
    const bot = await start({ script: () => ({ processingMs: 1_500 }) });
    const it = bot.discord.slash('imagine', { prompt: 'survives restarts' });
    await bot.api.waitFor('task-created');
    await it.waitForOriginal((m) => m.content.includes('Generating'));
    await bot.restart();
    expect((await it.waitForOriginal(finished, { timeoutMs: 15_000 })).attachments).toHaveLength(1);
    expect(submits(bot)).toHaveLength(1);
  });

  it('delivers a task that finished while the bot was down for longer than JOB_TIMEOUT_MS', async () => {
    const bot = await start({ env: { JOB_TIMEOUT_MS: '5000' }, script: () => ({ processingMs: 1_500 }) });
    const it = bot.discord.slash('imagine', { prompt: 'made while we were away' });
    const submitted = await bot.waitForLog((l) => l.msg === 'task submitted');
    await it.waitForOriginal((m) => m.content.includes('Generating'));
    await bot.restart({}, async () => {
      // What ten minutes of downtime leaves in storage: a job submitted long before its deadline.
      const connection = new Redis(bot.env.STORAGE_URL!);
      const store = createRedisJobStore(connection);
      const job = await store.get(String(submitted.jobId));
      await store.save({ ...job!, submittedAt: Date.now() - 600_000, createdAt: Date.now() - 600_000 });
      await connection.quit();
      await bot.api.waitFor('task-completed');
    });
    expect((await it.waitForOriginal(finished, { timeoutMs: 15_000 })).attachments).toHaveLength(1);
    expect(submits(bot)).toHaveLength(1);
  });

  it('tells the member about a failed task and keeps serving others', async () => {
    const bot = await start({
      script: ({ prompt }) =>
        prompt === 'bad' ? { processingMs: 100, outcome: 'fail', reason: 'GPU fell over' } : { processingMs: 100 },
    });
    const failed = await bot.discord
      .slash('imagine', { prompt: 'bad' })
      .waitForOriginal(finished, { timeoutMs: 10_000 });
    expect(failed.content).toMatch(/could not be generated \(GPU fell over\)/);
    const ok = await bot.discord
      .slash('imagine', { prompt: 'good' }, { user: 'bob' })
      .waitForOriginal(finished, { timeoutMs: 10_000 });
    expect(ok.attachments).toHaveLength(1);
  });
});
