// `/imagine count` asks for several images of one prompt, shown in one message
// as they arrive; More like this asks for as many again. The real bot against the fakes.
import type { APIMessage } from 'discord-api-types/v10';
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeTask, FakeTaskScript } from '../fakes/ppinfra.ts';
import { skipWithoutRedis, startRedis, type FakeRedis } from '../fakes/redis.ts';
import { MODERATED_GUILD, REVIEW } from './guilds.ts';
import { ephemeralText, messageWrites, startBotHarness, type BotHarness, type HarnessOptions } from './harness.ts';

let h: BotHarness | undefined;
let redis: FakeRedis | undefined;
const start = async (options: HarnessOptions = {}) => (h = await startBotHarness(options));
afterEach(async () => {
  await h?.close();
  h = undefined;
  await redis?.stop();
  redis = undefined;
});

const submits = (bot: BotHarness) => bot.api.requests.filter((r) => r.route === 'submit');
const LONG = { timeoutMs: 20_000 };
/** A task that stays PROCESSING until the test finishes it. */
const HELD: FakeTaskScript = { processingMs: 24 * 3600_000 };
/** Every image of the batch has its answer: the buttons come with the last one. */
const done = (m: APIMessage) =>
  (m.components ?? []).length > 0 || (/❌/.test(m.content) && !/still generating/.test(m.content));
const labels = (m: APIMessage) =>
  ((m.components ?? []) as unknown as { components: { label?: string }[] }[])
    .flatMap((row) => row.components)
    .map((b) => b.label);

/** Every write of the bot locks mentions down. */
function expectNoPings(bot: BotHarness) {
  for (const write of messageWrites(bot.discord)) {
    const body = write.body as { allowed_mentions?: { parse?: string[]; users?: string[] } };
    expect(body.allowed_mentions?.parse ?? []).toEqual([]);
  }
}

describe('/imagine count (variations)', () => {
  it('count 4: four submissions, one message with four images and a progress line, quotas charged four', async () => {
    const bot = await start({ env: { USER_HOURLY_QUOTA: '5' } });
    const it = bot.discord.slash('imagine', { prompt: 'a lighthouse at dawn', count: 4 });
    expect((await it.waitForCallback()).type).toBe(5);
    const message = await it.waitForOriginal((m) => m.attachments.length === 4 && done(m), LONG);
    expect(submits(bot).map((r) => r.body)).toEqual(
      Array(4).fill({ prompt: 'a lighthouse at dawn', size: '1024*1024' }),
    );
    expect(it.followups()).toEqual([]);
    // Four different images, each one of the tasks.
    const bytes = bot.discord.files(message).map((f) => f.bytes.toString('base64'));
    expect(new Set(bytes).size).toBe(4);
    const served = [...bot.api.tasks.values()].map((t) => Buffer.from(t.image!).toString('base64'));
    expect(bytes.sort()).toEqual(served.sort());
    expect(message.content).toContain('**4 of 4** images ready');
    expect(message.content).toContain('> a lighthouse at dawn');
    expect(labels(message)).toEqual([
      'More like this',
      'Edit prompt',
      'Delete',
      'Report',
      ...[1, 2, 3, 4].map((n) => `Change… ${n}`),
      ...[1, 2, 3, 4].map((n) => `Upscale ${n}`),
    ]);
    // On the way, the same message showed how many were ready and how many still coming.
    const contents = bot.discord.messageHistory(message.id).map((m) => m.content);
    expect(contents.some((c) => /\*\*\d of 4\*\* ready · \d still generating/.test(c))).toBe(true);

    // 4 of the 5 images this hour are used: 2 more do not fit, and nothing is sent.
    const refused = await ephemeralText(bot.discord.slash('imagine', { prompt: 'two more', count: 2 }));
    expect(refused).toMatch(/You asked for 2 images, but only 1 more fit in your limit of 5 images per hour/);
    expect(submits(bot)).toHaveLength(4);
    // One still fits.
    const one = await bot.discord
      .slash('imagine', { prompt: 'one more' })
      .waitForOriginal((m) => m.attachments.length === 1, LONG);
    expect(one.attachments).toHaveLength(1);
    expect(submits(bot)).toHaveLength(5);
    expectNoPings(bot);
    expect(bot.discord.errors).toEqual([]);
  });

  it('counts as one request against USER_MAX_CONCURRENT', async () => {
    const bot = await start({ env: { USER_MAX_CONCURRENT: '1' }, script: () => HELD });
    const first = bot.discord.slash('imagine', { prompt: 'three at once', count: 3 });
    await first.waitForCallback();
    await bot.api.waitFor('task-created', () => submits(bot).length === 3, LONG.timeoutMs);
    const refused = await ephemeralText(bot.discord.slash('imagine', { prompt: 'another' }));
    expect(refused).toMatch(/already have 1 image\(s\) in progress/);
    expect(submits(bot)).toHaveLength(3);
  });

  it('one of four failing: three images and one clear note in the same message', async () => {
    let n = 0;
    const bot = await start({
      script: () =>
        ++n === 2 ? { processingMs: 100, outcome: 'fail', reason: 'the sampler diverged' } : { processingMs: 250 },
    });
    const it = bot.discord.slash('imagine', { prompt: 'a bowl of ramen', count: 4 });
    const message = await it.waitForOriginal((m) => m.attachments.length === 3 && done(m), LONG);
    expect(submits(bot)).toHaveLength(4);
    expect(message.content).toContain('**3 of 4** images ready');
    expect(message.content).toMatch(/❌ Image 2 of 4: .*could not be generated.*the sampler diverged/);
    // Change… and Upscale only for the images shown, numbered as they are shown.
    expect(labels(message)).toEqual([
      'More like this',
      'Edit prompt',
      'Delete',
      'Report',
      ...[1, 2, 3].map((n) => `Change… ${n}`),
      ...[1, 2, 3].map((n) => `Upscale ${n}`),
    ]);
    expect(it.followups()).toEqual([]);
    expect(bot.discord.messages().filter((m) => m.id !== message.id && m.attachments.length)).toEqual([]);
    expect(bot.discord.errors).toEqual([]);
  });

  it('count above MAX_IMAGES_PER_REQUEST: an ephemeral answer, nothing sent', async () => {
    const bot = await start({ env: { MAX_IMAGES_PER_REQUEST: '2' } });
    const refused = await ephemeralText(bot.discord.slash('imagine', { prompt: 'three please', count: 3 }));
    expect(refused).toMatch(/at most 2 image\(s\) at a time/);
    expect(submits(bot)).toHaveLength(0);
    expect(bot.discord.errors).toEqual([]);
  });

  it('two images finishing at the same moment both end up attached', async () => {
    const bot = await start({ script: () => HELD });
    const it = bot.discord.slash('imagine', { prompt: 'twin moons', count: 2 });
    await it.waitForCallback();
    await bot.api.waitFor('task-created', () => bot.api.tasks.size === 2, LONG.timeoutMs);
    const tasks = [...bot.api.tasks.values()] as FakeTask[];
    const now = Date.now();
    for (const task of tasks) task.completedAt = now;
    const message = await it.waitForOriginal((m) => m.attachments.length === 2 && done(m), LONG);
    expect(message.content).toContain('**2 of 2** images ready');
    expect(bot.discord.errors).toEqual([]);
  });

  it('More like this on a batch: a new batch of the same count and prompt, for whoever clicks', async () => {
    const bot = await start();
    const first = await bot.discord
      .slash('imagine', { prompt: 'a paper crane', size: 'wide', count: 2 })
      .waitForOriginal((m) => m.attachments.length === 2 && done(m), LONG);
    const again = bot.discord.click(first, 'More like this', { user: 'bob' });
    const second = await again.waitForOriginal((m) => m.attachments.length === 2 && done(m), LONG);
    expect(second.id).not.toBe(first.id);
    expect(submits(bot).map((r) => r.body)).toEqual(Array(4).fill({ prompt: 'a paper crane', size: '1536*864' }));
    // Delete takes the whole batch message away.
    await bot.discord.click(first, 'Delete', { user: 'alice' }).waitForCallback();
    await bot.discord.waitForRequest((r) => r.method === 'DELETE');
    expect(bot.discord.errors).toEqual([]);
  });

  it.skipIf(skipWithoutRedis)('on Redis and BullMQ: one message with every image', async () => {
    redis = await startRedis();
    const bot = await start({ env: { STORAGE_URL: redis.url, QUEUE_LOCK_MS: '10000', USER_HOURLY_QUOTA: '3' } });
    const it = bot.discord.slash('imagine', { prompt: 'a harbour in fog', count: 3 });
    const message = await it.waitForOriginal((m) => m.attachments.length === 3 && done(m), LONG);
    expect(submits(bot)).toHaveLength(3);
    expect(message.content).toContain('**3 of 3** images ready');
    const refused = await ephemeralText(bot.discord.slash('imagine', { prompt: 'one more' }));
    expect(refused).toMatch(/limit of 3 images per hour/);
    expect(submits(bot)).toHaveLength(3);
    expect(bot.discord.errors).toEqual([]);
  });
});

describe('/imagine count with moderation', () => {
  it('a flagged variation is held in the batch message; approving it answers that message instead of rewriting it', async () => {
    let n = 0;
    const bot = await start({
      discord: { guilds: [MODERATED_GUILD] },
      env: { REVIEW_CHANNEL_ID: REVIEW },
      script: () => (++n === 2 ? { processingMs: 100, nsfw: true } : { processingMs: 100 }),
    });
    const it = bot.discord.slash('imagine', { prompt: 'a garden party', count: 2 }, { channel: 'general' });
    const batch = await it.waitForOriginal((m) => m.attachments.length === 1 && done(m), LONG);
    expect(batch.content).toMatch(/🔞 Image 2 of 2 .*waiting for a moderator/);
    expect(batch.content).toContain('**1 of 2** images ready');
    const review = await bot.discord.waitForMessage((m) => m.channel_id === REVIEW && labels(m).includes('Approve'));
    bot.discord.click(review, 'Approve', { user: 'mod' });
    const approved = await bot.discord.waitForMessage(
      (m) => m.id !== batch.id && m.channel_id === batch.channel_id && m.attachments.length === 1,
      LONG,
    );
    expect(approved.message_reference?.message_id).toBe(batch.id);
    expect(bot.discord.files(approved)[0]?.filename).toMatch(/^SPOILER_/);
    // The batch message still has its first image.
    expect(bot.discord.message(batch.id)?.attachments).toHaveLength(1);
    expect(bot.discord.errors).toEqual([]);
  });
});
