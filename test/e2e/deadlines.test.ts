// Deadlines that never discard a paid image: the queue wait is bounded on its own, JOB_TIMEOUT_MS
// counts from the submission, and a job resumed after a long downtime gets one look at its task.
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/domain/job.ts';
import { createJobStore } from '../../src/jobs/store.ts';
import { openStorage } from '../../src/storage/open.ts';
import { finished, startBotHarness, type BotHarness, type HarnessOptions } from './harness.ts';

let h: BotHarness | undefined;
const start = async (options: HarnessOptions = {}) => (h = await startBotHarness(options));
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const submits = (bot: BotHarness) => bot.api.requests.filter((r) => r.route === 'submit');

describe('deadlines', () => {
  it('counts JOB_TIMEOUT_MS from the submission, so time in the queue does not eat the generation time', async () => {
    // Waiting 5 s then generating for 3.5 s overruns 8 s counted from the request, not from the submission.
    const bot = await start({
      env: { MAX_JOBS_IN_FLIGHT: '1', JOB_TIMEOUT_MS: '8000' },
      script: ({ prompt }) => ({ processingMs: prompt === 'first' ? 5_000 : 3_500 }),
    });
    const first = bot.discord.slash('imagine', { prompt: 'first' }, { user: 'alice' });
    await bot.api.waitFor('task-created');
    const second = bot.discord.slash('imagine', { prompt: 'second' }, { user: 'bob' });
    await second.waitForOriginal((m) => m.content.includes('in line'));
    expect((await first.waitForOriginal(finished, { timeoutMs: 15_000 })).attachments).toHaveLength(1);
    expect((await second.waitForOriginal(finished, { timeoutMs: 15_000 })).attachments).toHaveLength(1);
  });

  it('cancels a job that waited longer than QUEUE_TIMEOUT_MS, before anything is charged, and refunds the member', async () => {
    const bot = await start({
      env: { MAX_JOBS_IN_FLIGHT: '1', QUEUE_TIMEOUT_MS: '1000', USER_HOURLY_QUOTA: '1' },
      script: () => ({ processingMs: 4_000 }),
    });
    bot.discord.slash('imagine', { prompt: 'long one' }, { user: 'alice' });
    await bot.api.waitFor('task-created');
    const waiting = bot.discord.slash('imagine', { prompt: 'waits' }, { user: 'bob' });
    const cancelled = await waiting.waitForOriginal(finished, { timeoutMs: 10_000 });
    expect(cancelled.content).toMatch(/^❌ Your request waited too long in the queue.*before anything was charged/);
    expect(submits(bot)).toHaveLength(1);
    // The refund is real: bob, whose hourly quota is 1, may ask again at once.
    const again = bot.discord.slash('imagine', { prompt: 'again' }, { user: 'bob' });
    expect((await again.waitForCallback()).type).toBe(5);
  });

  it('delivers a task that finished while the bot was down for longer than JOB_TIMEOUT_MS', async () => {
    const bot = await start({ env: { JOB_TIMEOUT_MS: '5000' }, script: () => ({ processingMs: 1_500 }) });
    const it = bot.discord.slash('imagine', { prompt: 'made while we were away' });
    await bot.api.waitFor('task-created');
    await it.waitForOriginal((m) => m.content.includes('Generating'));
    await bot.restart({}, async () => {
      // What ten minutes of downtime leaves in storage: a job submitted long before its deadline.
      const kv = openStorage(bot.storageUrl, 'jobs');
      const store = createJobStore(kv);
      const [job] = (await store.listActive()) as Job[];
      await store.save({ ...job!, submittedAt: Date.now() - 600_000, createdAt: Date.now() - 600_000 });
      await kv.disconnect();
      await bot.api.waitFor('task-completed');
    });
    const message = await it.waitForOriginal(finished, { timeoutMs: 10_000 });
    expect(message.attachments).toHaveLength(1);
    expect(submits(bot)).toHaveLength(1);
  });

  it('records an image over the server’s upload limit as such, not as delivered', async () => {
    const bot = await start({ imageSizeBytes: 11 * 1024 * 1024 });
    const it = bot.discord.slash('imagine', { prompt: 'a huge mural' });
    await it.waitForOriginal(finished, { timeoutMs: 10_000 });
    const line = await bot.waitForLog((l) => l.msg === 'image over the server’s upload limit');
    const job = await bot.app.jobs.get(String(line.jobId));
    expect(job).toMatchObject({ state: 'failed', error: { kind: 'upload_limit' } });
  });
});
