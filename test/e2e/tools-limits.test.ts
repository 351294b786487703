// The image tools under the rules every image has: the member's own picture is an input of
// moderation, and edits and upscales count against the quotas and in the usage ledger, each
// at its own price. The real bot against the fakes.
import type { APIEmbed, APIMessage } from 'discord-api-types/v10';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLEAN_SCORES, fakeClassifier, PORN_SCORES } from '../fakes/classifier.ts';
import { makePicture } from '../fakes/pictures.ts';
import { skipWithoutRedis, startRedis, type FakeRedis } from '../fakes/redis.ts';
import { MODERATED_GUILD, REVIEW } from './guilds.ts';
import {
  deployCommands,
  ephemeralText,
  finished,
  startBotHarness,
  type BotHarness,
  type HarnessOptions,
} from './harness.ts';

let h: BotHarness | undefined;
let redis: FakeRedis | undefined;
let db = 0;
afterEach(async () => {
  await h?.close();
  h = undefined;
});
afterAll(async () => {
  await redis?.stop();
});

const LONG = { timeoutMs: 20_000 };
const routes = (bot: BotHarness, route: string) => bot.api.requests.filter((r) => r.route === route);
const labels = (m: APIMessage) =>
  ((m.components ?? []) as unknown as { components: { label?: string }[] }[])
    .flatMap((row) => row.components)
    .map((b) => b.label);
const field = (embed: APIEmbed | undefined, name: string) => embed?.fields?.find((f) => f.name === name)?.value;

const ENGINES = [
  { engine: 'in-process', queue: false },
  { engine: 'BullMQ', queue: true },
] as const;

describe.each(ENGINES)('image tools and the rules on $engine', ({ queue }) => {
  beforeAll(async () => {
    if (queue && !skipWithoutRedis) redis ??= await startRedis();
  });
  const start = async (options: HarnessOptions = {}) => {
    h = await startBotHarness({
      ...options,
      discord: { guilds: [MODERATED_GUILD] },
      env: {
        REVIEW_CHANNEL_ID: REVIEW,
        ...(queue ? { STORAGE_URL: `${redis!.url}/${++db}`, QUEUE_LOCK_MS: '10000' } : {}),
        ...options.env,
      },
    });
    await deployCommands(h);
    return h;
  };

  it.skipIf(queue && skipWithoutRedis)(
    'a member’s picture the classifier flags: its edit is held for a moderator, who is told why',
    async () => {
      const upload = Buffer.from(await makePicture(11, 80, 'png'));
      const classifier = fakeClassifier((image) => (Buffer.from(image).equals(upload) ? PORN_SCORES : CLEAN_SCORES));
      const bot = await start({ classifier });
      const it = bot.discord.slash(
        'imagine-edit',
        { image: { file: { name: 'me.png', bytes: upload } }, instruction: 'a beach behind me' },
        { user: 'alice', channel: 'general' },
      );
      const held = await it.waitForOriginal(finished, LONG);
      expect(held.attachments).toHaveLength(0);
      expect(held.content).toMatch(/^🔞/);
      // Looked at before the job was made, and the result after.
      expect(Buffer.from(classifier.seen[0]!).equals(upload)).toBe(true);
      expect(classifier.seen).toHaveLength(2);
      const review = await bot.discord.waitForMessage(
        (m) => m.channel_id === REVIEW && labels(m).includes('Approve'),
        LONG,
      );
      expect(field(review.embeds[0], 'Why it was held')).toBe(
        'The member’s image was flagged (or could not be checked)',
      );
      expect(routes(bot, 'edit')).toHaveLength(1);
      expect(bot.discord.errors).toEqual([]);
    },
  );

  it.skipIf(queue && skipWithoutRedis)(
    'an image approved behind a spoiler: its upscale is held for a moderator too, not posted openly',
    async () => {
      // Only the first image is flagged: the upscale itself looks clean, the source decides.
      const bot = await start({
        script: (req) => (req.kind ? { processingMs: 100 } : { processingMs: 100, nsfw: true }),
      });
      const it = bot.discord.slash('imagine', { prompt: 'a statue' }, { channel: 'general', user: 'alice' });
      await it.waitForOriginal((m) => m.content.startsWith('🔞'), LONG);
      const review = await bot.discord.waitForMessage(
        (m) => m.channel_id === REVIEW && labels(m).includes('Approve'),
        LONG,
      );
      bot.discord.click(review, 'Approve', { user: 'mod' });
      const published = await it.waitForOriginal((m) => m.attachments.length > 0, LONG);
      expect(bot.discord.files(published)[0]!.filename).toMatch(/^SPOILER_/);
      const up = await bot.discord.click(published, 'Upscale', { user: 'bob' }).waitForOriginal(finished, LONG);
      expect(up.attachments).toHaveLength(0);
      expect(up.content).toMatch(/^🔞/);
      const second = await bot.discord.waitForMessage(
        (m) => m.channel_id === REVIEW && m.id !== review.id && labels(m).includes('Approve'),
        LONG,
      );
      expect(field(second.embeds[0], 'Why it was held')).toBe(
        'The member’s image was flagged (or could not be checked)',
      );
      expect(routes(bot, 'upscale')).toHaveLength(1);
    },
  );

  it.skipIf(queue && skipWithoutRedis)(
    'edits and upscales count against the hourly quota, and /imagine-usage and the history show each tool apart',
    async () => {
      const bot = await start({
        env: {
          USER_HOURLY_QUOTA: '3',
          PRICE_PER_IMAGE: '0.02',
          PRICE_PER_EDIT: '0.05',
          PRICE_PER_UPSCALE: '0.01',
          PRICE_CURRENCY: 'USD',
        },
      });
      const counted = new Promise<void>((resolve) => {
        let n = 0;
        void bot.waitForLog((l) => l.msg === 'usage recorded' && ++n === 3).then(() => resolve());
      });
      const ctx = { user: 'alice', channel: 'general' };
      const first = await bot.discord.slash('imagine', { prompt: 'a quiet lake' }, ctx).waitForOriginal(finished, LONG);
      const change = bot.discord.click(first, 'Change…', ctx);
      await change.modal();
      await change.submitModal({ instruction: 'add swans' }, ctx).waitForOriginal(finished, LONG);
      await bot.discord.click(first, 'Upscale', ctx).waitForOriginal(finished, LONG);
      // The fourth of the hour, whichever tool: refused, and nothing sent.
      expect(await ephemeralText(bot.discord.click(first, 'Upscale', ctx))).toMatch(/limit of 3 images per hour/);
      expect(routes(bot, 'upscale')).toHaveLength(1);
      await counted;

      const asked = bot.discord.slash('imagine-usage', {}, { user: 'owner' });
      const embed = ((await asked.waitForCallback()).data as unknown as { embeds: APIEmbed[] }).embeds[0];
      expect(field(embed, 'Today')).toBe(
        '**1** image(s) · 0.02 USD\n**1** edit(s) · 0.05 USD\n**1** upscale(s) · 0.01 USD\n0 failed · 0 flagged',
      );
      const history = bot.discord.slash('imagine-history', {}, ctx);
      const lines =
        ((await history.waitForCallback()).data as unknown as { embeds: APIEmbed[] }).embeds[0]?.description ?? '';
      expect(lines).toContain('🔍 upscale 2k of a quiet lake');
      expect(lines).toContain('🖌️ add swans ← a quiet lake');
      expect(lines).toContain('a quiet lake');
      expect(bot.discord.errors).toEqual([]);
    },
  );
});
