// Moderator review of flagged and reported images, end to end: the real bot against the fake
// Discord and the fake PPInfra, as members and moderators would use it.
import type { APIMessage, APIRole } from 'discord-api-types/v10';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLEAN_SCORES, fakeClassifier, PORN_SCORES } from '../fakes/classifier.ts';
import { makePicture } from '../fakes/pictures.ts';
import type { FakeInteraction } from '../fakes/discord/server.ts';
import { skipWithoutRedis, startRedis, type FakeRedis } from '../fakes/redis.ts';
import { LOCKED, MODERATED_GUILD, OTHER_REVIEW, REVIEW } from './guilds.ts';
import { ephemeralText, messageWrites, startBotHarness, type BotHarness, type HarnessOptions } from './harness.ts';

let h: BotHarness | undefined;
async function start(options: HarnessOptions & { reviewChannel?: string | null } = {}) {
  const { reviewChannel = REVIEW, ...rest } = options;
  h = await startBotHarness({
    script: () => ({ processingMs: 100, nsfw: true }),
    ...rest,
    discord: { guilds: [MODERATED_GUILD], ...rest.discord },
    env: { ...(reviewChannel ? { REVIEW_CHANNEL_ID: reviewChannel } : {}), ...rest.env },
  });
  return h;
}
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const FLAGGED_NOTICE = /^🔞 .*A moderator will review it/;
const notice = (m: APIMessage) => m.content.startsWith('🔞') || m.content.startsWith('🚫') || m.attachments.length > 0;
const labels = (m: APIMessage) =>
  ((m.components ?? []) as unknown as { components: { label?: string }[] }[]).flatMap((r) =>
    r.components.map((c) => c.label),
  );
const servedImage = (bot: BotHarness, index = 0) => Buffer.from([...bot.api.tasks.values()][index]!.image!);

/** The review message for the n-th flagged image, once it has its buttons. */
const reviewMessage = (bot: BotHarness, channel = REVIEW, label = 'Approve') =>
  bot.discord.waitForMessage((m) => m.channel_id === channel && labels(m).includes(label));

/** A flagged image asked for in #general: resolves when the requester has been told it is held. */
async function flagged(bot: BotHarness, ctx: { user?: string; channel?: string; locale?: string } = {}) {
  const it = bot.discord.slash('imagine', { prompt: 'a @everyone poster' }, { channel: 'general', ...ctx });
  const held = await it.waitForOriginal(notice);
  return { it, held };
}

/** The ephemeral answer to a click (a reply, or a follow-up after a deferred update). */
async function privateAnswer(click: FakeInteraction): Promise<string> {
  const callback = await click.waitForCallback();
  if (callback.type === 4) {
    expect((callback.data as { flags?: number }).flags! & 64).toBe(64);
    return (callback.data as { content: string }).content;
  }
  // A deferred private reply is filled in by editing it; a deferred update answers with a follow-up.
  const message = callback.type === 5 ? await click.waitForOriginal() : await click.waitForFollowup();
  expect((message.flags ?? 0) & 64).toBe(64);
  return message.content;
}

/** Resolves when a click has been fully handled (the bot logs one line per interaction). */
const handled = (bot: BotHarness, click: FakeInteraction) =>
  bot.waitForLog((l) => l.msg === 'interaction handled' && l.interactionId === click.id);

describe('a flagged image in a channel that is not age-restricted', () => {
  it('never reaches the channel: only the review channel gets the bytes, as a spoiler, with what a moderator needs', async () => {
    const bot = await start();
    const { it, held } = await flagged(bot);
    expect(held.content).toMatch(FLAGGED_NOTICE);
    const review = await reviewMessage(bot);

    // The only upload so far is the spoiler in the review channel, and it is the generated image.
    const uploads = bot.discord.requests.filter((r) => r.files.length > 0);
    expect(uploads.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /channels/${REVIEW}/messages`]);
    const [file] = bot.discord.files(review);
    expect(file?.filename).toMatch(/^SPOILER_qwen-image-/);
    expect(file?.bytes.equals(servedImage(bot))).toBe(true);
    // No version of the requester's message ever had an image or an embed.
    for (const version of bot.discord.messageHistory(it.original()!.id)) {
      expect(version.attachments).toEqual([]);
      expect(version.embeds).toEqual([]);
    }
    expect(bot.discord.messages(it.channelId).flatMap((m) => m.attachments)).toEqual([]);

    const embed = review.embeds[0]!;
    expect(embed.image).toBeUndefined();
    expect(embed.description).toBe('a @\u200beveryone poster');
    const fields = Object.fromEntries((embed.fields ?? []).map((f) => [f.name, f.value]));
    expect(fields.Size).toBe('1024×1024');
    expect(fields['Requested by']).toBe(`<@${it.user.id}>`);
    expect(fields['Original message']).toContain(`/channels/${it.guildId}/${it.channelId}/${it.original()!.id}`);
    expect(fields['Flags from the image service']).toContain('"has_nsfw_contents":true');
    expect(fields['Flags from the image service']).toContain('confidence');
    expect(labels(review)).toEqual(['Approve', 'Reject']);
    const post = bot.discord.requests.find((r) => r.path === `/channels/${REVIEW}/messages`)!;
    expect((post.body as { allowed_mentions: unknown }).allowed_mentions).toEqual({ parse: [] });
    expect(review.mentions).toEqual([]);
    expect(review.mention_everyone).toBe(false);
    expect(bot.discord.errors).toEqual([]);

    // The raw flags are on the job record for the reviewer.
    const jobId = /job (\w+)/.exec(embed.footer!.text)![1]!;
    expect((await bot.app.jobs.get(jobId))?.nsfw).toEqual({
      flagged: true,
      hasNsfwContents: true,
      detectionResult: { valid: true, confidence: 0.97 },
      classifier: 'off',
      reasons: ['provider'],
    });
    expect(fields['Why it was held']).toBe('The image service flagged it');
    expect(fields['The bot’s own NSFW check']).toBe(
      'Off (the bot operator turned it off): only the image service’s flags count',
    );
  });

  it('publishes it for the requester as a spoiler once a moderator approves, and the review message says who', async () => {
    const bot = await start();
    const { it } = await flagged(bot);
    const review = await reviewMessage(bot);
    const approve = bot.discord.click(review, 'Approve', { user: 'mod' });

    const published = await it.waitForOriginal((m) => m.attachments.length > 0);
    const [file] = bot.discord.files(published);
    expect(file?.filename).toMatch(/^SPOILER_/);
    expect(file?.bytes.equals(servedImage(bot))).toBe(true);
    expect(published.content).toMatch(/^⚠️ Content warning/);
    expect(published.embeds[0]?.image).toBeUndefined();
    expect(labels(published)).toEqual(['More like this', 'Edit prompt', 'Delete', 'Report', 'Change…', 'Upscale']);

    await handled(bot, approve);
    const decided = bot.discord.message(review.id)!;
    expect(decided.components).toEqual([]);
    const decision = decided.embeds[0]?.fields?.find((f) => f.name === 'Decision')?.value;
    expect(decision).toMatch(new RegExp(`^✅ Approved by <@${bot.discord.user('mod').id}> on <t:\\d+:f>`));
    // The review message keeps its image for the record.
    expect(decided.attachments).toHaveLength(1);
    expect(bot.discord.errors).toEqual([]);
  });

  it('keeps a rejected image unpublished for good and tells the requester in their language', async () => {
    const bot = await start();
    const { it } = await flagged(bot, { locale: 'zh-CN' });
    const review = await reviewMessage(bot);
    const reject = bot.discord.click(review, 'Reject', { user: 'mod' });
    const told = await it.waitForOriginal((m) => m.content.startsWith('🚫'));
    expect(told.content).toContain('管理员审核了这张图片，决定不予发布');
    await handled(bot, reject);
    expect(bot.discord.message(review.id)?.embeds[0]?.fields?.at(-1)?.value).toMatch(/^⛔ Rejected by/);
    expect(bot.discord.message(review.id)?.components).toEqual([]);
    expect(bot.discord.requests.filter((r) => r.files.length > 0)).toHaveLength(1);
    for (const version of bot.discord.messageHistory(it.original()!.id)) expect(version.attachments).toEqual([]);
  });

  it.each([
    ['a member without Manage Messages', 'alice'],
    ['a member whose role is not the moderator role', 'rita'],
  ])('refuses %s: nothing published, the review message unchanged', async (_name, user) => {
    const bot = await start();
    const { it } = await flagged(bot);
    const review = await reviewMessage(bot);
    const versions = bot.discord.messageHistory(review.id).length;
    const click = bot.discord.click(review, 'Approve', { user });
    expect(await privateAnswer(click)).toMatch(/^Only moderators can decide on this/);
    await handled(bot, click);
    expect(bot.discord.messageHistory(review.id)).toHaveLength(versions);
    expect(labels(bot.discord.message(review.id)!)).toEqual(['Approve', 'Reject']);
    expect(it.original()!.attachments).toEqual([]);
    expect(bot.discord.requests.filter((r) => r.files.length > 0)).toHaveLength(1);
  });

  it('lets the configured moderator role decide without Manage Messages', async () => {
    const bot = await start();
    const reviewer = (bot.discord.guild.roles as APIRole[]).find((r) => r.name === 'Reviewer')!;
    await bot.app.settings.update(bot.discord.guild.id, { moderatorRoleId: reviewer.id });
    const { it } = await flagged(bot);
    bot.discord.click(await reviewMessage(bot), 'Approve', { user: 'rita' });
    expect((await it.waitForOriginal((m) => m.attachments.length > 0)).attachments).toHaveLength(1);
  });

  it('gives exactly one outcome to two moderators clicking at once and to a double click', async () => {
    const bot = await start();
    const { it } = await flagged(bot);
    const review = await reviewMessage(bot);
    // Dispatched back to back, before the bot has answered either.
    const clicks = [
      bot.discord.click(review, 'Approve', { user: 'mod' }),
      bot.discord.click(review, 'Approve', { user: 'mod2' }),
      bot.discord.click(review, 'Approve', { user: 'mod2' }),
    ];
    const lines = await Promise.all(clicks.map((c) => handled(bot, c)));
    const outcomes = lines.map((l) => l.outcome).sort();
    expect(outcomes).toEqual(['already:approve', 'already:approve', 'decided:approve']);

    const winner = clicks[lines.findIndex((l) => l.outcome === 'decided:approve')]!;
    for (const loser of clicks.filter((c) => c !== winner)) {
      expect(await privateAnswer(loser)).toContain(`Already decided: ✅ Approved by <@${winner.user.id}>`);
    }
    // One publication, one audit record.
    const publications = bot.discord.requests.filter(
      (r) => r.files.length > 0 && !r.path.startsWith(`/channels/${REVIEW}`),
    );
    expect(publications).toHaveLength(1);
    expect(bot.discord.messageHistory(it.original()!.id).filter((m) => m.attachments.length > 0)).toHaveLength(1);
    expect(bot.logs.filter((l) => l.msg === 'moderation decision')).toHaveLength(1);
    const jobId = /job (\w+)/.exec(review.embeds[0]!.footer!.text)![1]!;
    expect(await bot.app.shared.read(`decision:${jobId}:flag`)).toMatchObject({
      jobId,
      decision: 'approve',
      moderatorId: winner.user.id,
      review: 'flag',
    });
    expect(bot.discord.errors).toEqual([]);
  });

  it('gives the decision back when publishing fails, so the next click can approve', async () => {
    const bot = await start();
    const { it } = await flagged(bot);
    const review = await reviewMessage(bot);
    // More 5xx than discord.js retries on the requester's message: the approval cannot take effect.
    bot.discord.failNext(
      `PATCH /webhooks/${bot.discord.applicationId}/${it.token}/messages/@original`,
      { status: 500 },
      4,
    );
    const first = bot.discord.click(review, 'Approve', { user: 'mod' });
    expect(await privateAnswer(first)).toMatch(/^That did not go through.*Nothing was decided/);
    expect(labels(bot.discord.message(review.id)!)).toEqual(['Approve', 'Reject']);
    expect(bot.logs.filter((l) => l.msg === 'moderation decision')).toEqual([]);

    bot.discord.click(bot.discord.message(review.id)!, 'Approve', { user: 'mod2' });
    expect((await it.waitForOriginal((m) => m.attachments.length > 0)).attachments).toHaveLength(1);
    const record = await bot.waitForLog((l) => l.msg === 'moderation decision');
    expect(record.audit).toMatchObject({ decision: 'approve', moderatorId: bot.discord.user('mod2').id });
  });

  it('still publishes in the channel when the requester’s interaction token expired before the approval', async () => {
    const bot = await start();
    const { it } = await flagged(bot);
    const review = await reviewMessage(bot);
    it.expireToken();
    bot.discord.expectError(50027);
    bot.discord.click(review, 'Approve', { user: 'mod' });
    const posted = await bot.discord.waitForMessage(
      (m) => m.channel_id === it.channelId && m.id !== it.original()!.id && m.attachments.length > 0,
    );
    expect(posted.attachments[0]?.filename).toMatch(/^SPOILER_/);
    expect(posted.message_reference?.message_id).toBe(it.original()!.id);
    expect(posted.content).toContain(`<@${it.user.id}>`);
    expect(bot.discord.errors).toEqual([]);
  });
});

describe('after the requester’s interaction token expired', () => {
  it('tells the requester about a rejection in the channel, without calling it a ready image', async () => {
    const bot = await start();
    const { it } = await flagged(bot);
    const review = await reviewMessage(bot);
    it.expireToken();
    bot.discord.expectError(50027);
    bot.discord.click(review, 'Reject', { user: 'mod' });
    const posted = await bot.discord.waitForMessage((m) => m.channel_id === it.channelId && m.content.includes('🚫'));
    expect(posted.content).toMatch(
      new RegExp(`^<@${it.user.id}>, an update on your image request:\n🚫 A moderator reviewed this image`),
    );
    expect(posted.attachments).toEqual([]);
    expect(posted.message_reference?.message_id).toBe(it.original()!.id);
  });
});

describe('age-restricted channels', () => {
  it('publish a flagged image as a spoiler with a content warning by default, with no review', async () => {
    const bot = await start();
    const it = bot.discord.slash('imagine', { prompt: 'x' }, { channel: 'nsfw' });
    const shown = await it.waitForOriginal((m) => m.attachments.length > 0);
    expect(shown.attachments[0]?.filename).toMatch(/^SPOILER_/);
    expect(shown.content).toMatch(/^⚠️ Content warning/);
    expect(bot.discord.messages(REVIEW)).toEqual([]);
  });

  it('send it to review first when the guild chose review, and show it unblurred once approved', async () => {
    const bot = await start();
    await bot.app.settings.update(bot.discord.guild.id, { nsfwChannels: 'review' });
    const { it, held } = await flagged(bot, { channel: 'nsfw' });
    expect(held.content).toMatch(FLAGGED_NOTICE);
    bot.discord.click(await reviewMessage(bot), 'Approve', { user: 'mod' });
    const shown = await it.waitForOriginal((m) => m.attachments.length > 0);
    expect(shown.attachments[0]?.filename).not.toMatch(/^SPOILER_/);
    expect(shown.embeds[0]?.image?.url).toContain(shown.attachments[0]!.filename);
  });
});

describe('without a usable review channel', () => {
  it.each([
    ['none is configured', null],
    ['the bot cannot attach files in it', LOCKED],
  ])('withholds the image when %s, tells the requester, and sends it once a channel is set', async (_name, channel) => {
    const bot = await start({ reviewChannel: channel });
    if (channel) bot.discord.expectError(50013);
    const { it, held } = await flagged(bot);
    expect(held.content).toMatch(/no review channel the bot can use/);
    expect(bot.discord.requests.filter((r) => r.files.length > 0 && r.status < 300)).toEqual([]);
    expect(bot.discord.errors).toEqual([]);

    // A moderator sets a channel later: the held image goes there and can still be approved.
    await bot.app.settings.update(bot.discord.guild.id, { reviewChannelId: OTHER_REVIEW });
    expect(await bot.app.review.routePending(bot.discord.guild.id)).toBe(1);
    const review = await reviewMessage(bot, OTHER_REVIEW);
    expect(bot.discord.files(review)[0]?.bytes.equals(servedImage(bot))).toBe(true);
    await it.waitForOriginal((m) => FLAGGED_NOTICE.test(m.content));
    bot.discord.click(review, 'Approve', { user: 'mod' });
    expect((await it.waitForOriginal((m) => m.attachments.length > 0)).attachments).toHaveLength(1);
  });
});

describe('reports', () => {
  const clean = () => ({ processingMs: 100 });

  async function published(bot: BotHarness) {
    const it = bot.discord.slash('imagine', { prompt: 'a calm lake' }, { user: 'alice' });
    return { it, message: await it.waitForOriginal((m) => m.attachments.length > 0) };
  }

  it('lets any member report once; Remove takes the image down and tells the requester', async () => {
    const bot = await start({ script: clean });
    const { it, message } = await published(bot);
    expect(await privateAnswer(bot.discord.click(message, 'Report', { user: 'bob' }))).toMatch(
      /^Thanks\. The moderators have been asked/,
    );
    const review = await reviewMessage(bot, REVIEW, 'Remove');
    expect(bot.discord.files(review)[0]?.filename).toMatch(/^SPOILER_/);
    expect(bot.discord.files(review)[0]?.bytes.equals(servedImage(bot))).toBe(true);
    const reporters = () =>
      bot.discord.message(review.id)?.embeds[0]?.fields?.find((f) => f.name === 'Reported by')?.value;
    expect(reporters()).toBe(`<@${bot.discord.user('bob').id}>`);

    expect(await privateAnswer(bot.discord.click(message, 'Report', { user: 'bob' }))).toMatch(
      /already reported this image/,
    );
    expect(await privateAnswer(bot.discord.click(message, 'Report', { user: 'mod2' }))).toMatch(
      /your report was added/,
    );
    expect(reporters()).toBe(`<@${bot.discord.user('bob').id}>, <@${bot.discord.user('mod2').id}>`);
    expect(bot.discord.messages(REVIEW)).toHaveLength(1);

    const remove = bot.discord.click(bot.discord.message(review.id)!, 'Remove', { user: 'mod' });
    const gone = await it.waitForOriginal((m) => m.attachments.length === 0);
    expect(gone.content).toBe('🗑️ A moderator removed this image after a member reported it.');
    expect(gone.embeds).toEqual([]);
    await handled(bot, remove);
    expect(bot.discord.message(review.id)?.embeds[0]?.fields?.at(-1)?.value).toMatch(/^🗑️ Removed by/);
    expect(bot.discord.message(review.id)?.components).toEqual([]);
    expect(bot.discord.errors).toEqual([]);
  });

  it('Keep dismisses the report and leaves the image where it is', async () => {
    const bot = await start({ script: clean });
    const { it, message } = await published(bot);
    await privateAnswer(bot.discord.click(message, 'Report', { user: 'bob' }));
    const keep = bot.discord.click(await reviewMessage(bot, REVIEW, 'Keep'), 'Keep', { user: 'mod' });
    await handled(bot, keep);
    expect(it.original()!.attachments).toHaveLength(1);
    expect(bot.discord.messages(REVIEW)[0]?.components).toEqual([]);
    expect(bot.discord.messages(REVIEW)[0]?.embeds[0]?.fields?.at(-1)?.value).toMatch(/^👍 Kept by/);
    // Once kept, a later report does not bring it back to the moderators.
    expect(await privateAnswer(bot.discord.click(message, 'Report', { user: 'rita' }))).toMatch(
      /already reviewed this image: 👍 Kept by/,
    );
    expect(bot.discord.messages(REVIEW)).toHaveLength(1);
  });

  it('tells the reporter when no moderator can be reached, and lets them report again later', async () => {
    const bot = await start({ script: clean, reviewChannel: null });
    const { message } = await published(bot);
    expect(await privateAnswer(bot.discord.click(message, 'Report', { user: 'bob' }))).toMatch(
      /no review channel the bot can use/,
    );
    await bot.app.settings.update(bot.discord.guild.id, { reviewChannelId: REVIEW });
    expect(await privateAnswer(bot.discord.click(message, 'Report', { user: 'bob' }))).toMatch(/^Thanks\./);
  });
});

/** The engines a batch can run on: the in-process queue (SQLite), and BullMQ with its state in Redis. */
const ENGINES = [
  { engine: 'in-process', redis: false },
  { engine: 'BullMQ', redis: true },
] as const;

describe.each(ENGINES)('reports on a batch message ($engine)', ({ redis: onRedis }) => {
  let redis: FakeRedis | undefined;
  let db = 0;
  beforeAll(async () => {
    if (onRedis && !skipWithoutRedis) redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  const LONG = { timeoutMs: 20_000 };
  const engineEnv = (): Record<string, string> =>
    redis ? { STORAGE_URL: `${redis.url}/${++db}`, QUEUE_LOCK_MS: '10000' } : {};
  const startOn = (
    env: Record<string, string> = {},
    script: HarnessOptions['script'] = () => ({ processingMs: 100 }),
  ) => start({ script, env: { ...engineEnv(), ...env } });
  const run = onRedis ? it.skipIf(skipWithoutRedis) : it;

  /** Alice's `/imagine count:4`, once its one message shows all four images and its buttons. */
  async function batchOfFour(bot: BotHarness) {
    const it = bot.discord.slash(
      'imagine',
      { prompt: 'four calm lakes', count: 4 },
      { user: 'alice', channel: 'general' },
    );
    return it.waitForOriginal((m) => m.attachments.length === 4 && (m.components ?? []).length > 0, LONG);
  }
  const jobOf = (review: APIMessage) => /job (\w+)/.exec(review.embeds[0]!.footer!.text)![1]!;
  const reportersOf = (bot: BotHarness, review: APIMessage) =>
    bot.discord.message(review.id)?.embeds[0]?.fields?.find((f) => f.name === 'Reported by')?.value;
  const base64 = (bytes: Buffer) => bytes.toString('base64');

  run('sends moderators every image of the message, each on its own review message with its own decision', async () => {
    const bot = await startOn();
    const batch = await batchOfFour(bot);
    expect(await privateAnswer(bot.discord.click(batch, 'Report', { user: 'bob' }))).toMatch(
      /^Thanks\. The moderators have been asked/,
    );

    // The answer comes once every image is with the moderators: four review messages, one image each.
    const reviews = bot.discord.messages(REVIEW);
    expect(reviews).toHaveLength(4);
    for (const review of reviews) {
      expect(labels(review)).toEqual(['Remove', 'Keep']);
      expect(bot.discord.files(review)).toHaveLength(1);
      expect(bot.discord.files(review)[0]?.filename).toMatch(/^SPOILER_qwen-image-/);
      expect(reportersOf(bot, review)).toBe(`<@${bot.discord.user('bob').id}>`);
    }
    // Each says which image of the message it is, numbered as the batch message numbers them.
    const numbers = await Promise.all(reviews.map(async (r) => (await bot.app.jobs.get(jobOf(r)))!.batch!.index + 1));
    expect(reviews.map((r) => r.embeds[0]?.fields?.find((f) => f.name === 'Image')?.value)).toEqual(
      numbers.map((n) => `${n} of 4 in one message`),
    );
    expect(reviews.map((r) => base64(bot.discord.files(r)[0]!.bytes)).sort()).toEqual(
      bot.discord
        .files(batch)
        .map((f) => base64(f.bytes))
        .sort(),
    );
    expect(new Set(reviews.map(jobOf)).size).toBe(4);
    for (const write of messageWrites(bot.discord))
      expect((write.body as { allowed_mentions?: { parse?: string[] } }).allowed_mentions?.parse ?? []).toEqual([]);
    expect(bot.discord.errors).toEqual([]);
  });

  run(
    'Remove on one image takes only that one out of the batch message; a later report reaches the images nobody decided',
    async () => {
      const bot = await startOn();
      const batch = await batchOfFour(bot);
      await privateAnswer(bot.discord.click(batch, 'Report', { user: 'bob' }));
      const reviews = bot.discord.messages(REVIEW);
      expect(reviews).toHaveLength(4);

      // The review message of the image shown second in the batch message.
      const target = bot.discord.attachmentBytes(batch.attachments[1]!);
      const review = reviews.find((r) => bot.discord.files(r)[0]!.bytes.equals(target))!;
      const job = await bot.app.jobs.get(jobOf(review));
      await handled(bot, bot.discord.click(review, 'Remove', { user: 'mod' }));

      const after = bot.discord.message(batch.id)!;
      expect(after.attachments.map((a) => a.id)).toEqual(batch.attachments.filter((_, i) => i !== 1).map((a) => a.id));
      expect(after.content).toContain(
        `🗑️ Image ${job!.batch!.index + 1} of 4 was removed by a moderator after a member reported it.`,
      );
      expect(after.content).toContain('> four calm lakes');
      expect((after.flags ?? 0) & 4).toBe(4);
      // The removed image's own buttons (it was shown second) went with it.
      const left = [1, 3, 4];
      expect(labels(after)).toEqual([
        'More like this',
        'Edit prompt',
        'Delete',
        'Report',
        ...left.map((n) => `Change… ${n}`),
        ...left.map((n) => `Upscale ${n}`),
      ]);
      expect(bot.discord.message(review.id)?.embeds[0]?.fields?.at(-1)?.value).toMatch(/^🗑️ Removed by/);
      const others = reviews.filter((r) => r.id !== review.id);
      for (const other of others) expect(labels(bot.discord.message(other.id)!)).toEqual(['Remove', 'Keep']);

      // Another member reports the message later: the three images nobody decided take the report.
      expect(await privateAnswer(bot.discord.click(after, 'Report', { user: 'mod2' }))).toMatch(
        /your report was added/,
      );
      expect(bot.discord.messages(REVIEW)).toHaveLength(4);
      for (const other of others)
        expect(reportersOf(bot, other)).toBe(`<@${bot.discord.user('bob').id}>, <@${bot.discord.user('mod2').id}>`);

      // Kept, all three: only now is the message all decided.
      for (const other of others)
        await handled(bot, bot.discord.click(bot.discord.message(other.id)!, 'Keep', { user: 'mod' }));
      expect(bot.discord.message(batch.id)?.attachments).toHaveLength(3);
      expect(
        await privateAnswer(bot.discord.click(bot.discord.message(batch.id)!, 'Report', { user: 'rita' })),
      ).toMatch(/already reviewed every image/);
      expect(bot.discord.messages(REVIEW)).toHaveLength(4);
      expect(bot.discord.errors).toEqual([]);
    },
  );

  run('two moderators removing two images at once: both go, the other two stay', async () => {
    const bot = await startOn();
    const batch = await batchOfFour(bot);
    await privateAnswer(bot.discord.click(batch, 'Report', { user: 'bob' }));
    const reviews = bot.discord.messages(REVIEW);
    const reviewOf = (i: number) =>
      reviews.find((r) => bot.discord.files(r)[0]!.bytes.equals(bot.discord.attachmentBytes(batch.attachments[i]!)))!;
    // Dispatched back to back: each removal reads the message's attachments and writes back the ones it keeps.
    const clicks = [
      bot.discord.click(reviewOf(0), 'Remove', { user: 'mod' }),
      bot.discord.click(reviewOf(3), 'Remove', { user: 'mod2' }),
    ];
    const lines = await Promise.all(clicks.map((c) => handled(bot, c)));
    expect(lines.map((l) => l.outcome)).toEqual(['decided:remove', 'decided:remove']);
    const after = bot.discord.message(batch.id)!;
    expect(after.attachments.map((a) => a.id)).toEqual([batch.attachments[1]!.id, batch.attachments[2]!.id]);
    expect(after.content.match(/was removed by a moderator/g)).toHaveLength(2);
    expect(bot.discord.errors).toEqual([]);
  });

  run('an image of a batch approved after review, posted on its own, is reported and removed alone', async () => {
    let n = 0;
    const bot = await startOn({}, () => (++n === 2 ? { processingMs: 100, nsfw: true } : { processingMs: 100 }));
    const it = bot.discord.slash(
      'imagine',
      { prompt: 'a garden party', count: 2 },
      { user: 'alice', channel: 'general' },
    );
    const batch = await it.waitForOriginal((m) => m.attachments.length === 1 && (m.components ?? []).length > 0, LONG);
    bot.discord.click(await reviewMessage(bot), 'Approve', { user: 'mod' });
    const approved = await bot.discord.waitForMessage(
      (m) => m.id !== batch.id && m.channel_id === batch.channel_id && m.attachments.length === 1,
      LONG,
    );

    expect(await privateAnswer(bot.discord.click(approved, 'Report', { user: 'bob' }))).toBe(
      'Thanks. The moderators have been asked to look at this image.',
    );
    const review = await reviewMessage(bot, REVIEW, 'Remove');
    expect(bot.discord.files(review)[0]?.bytes.equals(bot.discord.attachmentBytes(approved.attachments[0]!))).toBe(
      true,
    );
    await handled(bot, bot.discord.click(review, 'Remove', { user: 'mod' }));
    expect(bot.discord.message(approved.id)?.content).toContain(
      'A moderator removed this image after a member reported it.',
    );
    expect(bot.discord.message(approved.id)?.attachments).toEqual([]);
    // The batch message keeps its image.
    expect(bot.discord.message(batch.id)?.attachments.map((a) => a.id)).toEqual(batch.attachments.map((a) => a.id));
    expect(bot.discord.errors).toEqual([]);
  });

  run('refuses a member’s 11th report in an hour, politely, saying when they can report again', async () => {
    const bot = await startOn({ USER_MAX_CONCURRENT: '11' });
    const asked = Array.from({ length: 11 }, (_, i) =>
      bot.discord.slash('imagine', { prompt: `lake number ${i + 1}` }, { user: 'alice', channel: 'general' }),
    );
    const images = await Promise.all(asked.map((it) => it.waitForOriginal((m) => m.attachments.length > 0, LONG)));
    for (const image of images.slice(0, 10))
      expect(await privateAnswer(bot.discord.click(image, 'Report', { user: 'bob' }))).toMatch(/^Thanks\./);
    const refused = await privateAnswer(bot.discord.click(images[10]!, 'Report', { user: 'bob' }));
    expect(refused).toMatch(/^You have sent 10 reports in the last hour\. You can report again <t:\d+:R>\.$/);
    expect(bot.discord.messages(REVIEW)).toHaveLength(10);
    // Another member is not held back by Bob's reports.
    expect(await privateAnswer(bot.discord.click(images[10]!, 'Report', { user: 'mod2' }))).toMatch(/^Thanks\./);
    expect(bot.discord.messages(REVIEW)).toHaveLength(11);
  });
});

describe('/imagine-review pending', () => {
  it('lists what waits in this guild, oldest first, with links, for moderators only', async () => {
    const bot = await start();
    await flagged(bot, { user: 'alice' });
    const first = await reviewMessage(bot);
    await flagged(bot, { user: 'bob' });
    await bot.discord.waitForMessage(
      (m) => m.channel_id === REVIEW && m.id !== first.id && labels(m).includes('Approve'),
    );

    const refused = bot.discord.slash('imagine-review pending', {}, { user: 'alice' });
    expect(await privateAnswer(refused)).toMatch(/^Only moderators/);

    const list = await privateAnswer(bot.discord.slash('imagine-review pending', {}, { user: 'mod' }));
    const lines = list.split('\n');
    expect(lines[0]).toBe('**2** image(s) waiting for review, oldest first:');
    expect(lines[1]).toContain(`<@${bot.discord.user('alice').id}>`);
    expect(lines[1]).toContain(`/channels/${bot.discord.guild.id}/${REVIEW}/${first.id}`);
    expect(lines[2]).toContain(`<@${bot.discord.user('bob').id}>`);

    bot.discord.click(first, 'Reject', { user: 'mod' });
    await bot.discord.waitForMessage((m) => m.id === first.id && (m.components ?? []).length === 0);
    const after = await privateAnswer(bot.discord.slash('imagine-review pending', {}, { user: 'mod' }));
    expect(after.split('\n')).toHaveLength(2);
  });

  it('keeps pending reviews across a restart: the old review message still approves, and nothing is polled again', async () => {
    const bot = await start();
    const { it } = await flagged(bot);
    const review = await reviewMessage(bot);
    const resultPolls = bot.api.count('result');
    await bot.restart();
    bot.discord.click(review, 'Approve', { user: 'mod' });
    expect((await it.waitForOriginal((m) => m.attachments.length > 0)).attachments).toHaveLength(1);
    expect(bot.api.count('result')).toBe(resultPolls);
    expect(bot.api.requests.filter((r) => r.route === 'submit')).toHaveLength(1);
  });
});

describe.each([
  ['in-process (SQLite)', async () => ({})],
  [
    'BullMQ (Redis)',
    async () => {
      const redis = await startRedis();
      cleanups.push(redis.stop);
      // Long enough that a loaded machine's pauses never make BullMQ run a step twice.
      return { STORAGE_URL: redis.url, QUEUE_LOCK_MS: '10000' };
    },
  ],
] as const)('the bot’s own NSFW check, %s', (engine, storage) => {
  const clean = () => ({ processingMs: 100 });
  const fields = (m: APIMessage) => Object.fromEntries((m.embeds[0]?.fields ?? []).map((f) => [f.name, f.value]));
  const skip = engine.startsWith('BullMQ') && skipWithoutRedis;

  it.skipIf(skip)(
    'holds an image it scores as explicit though the image service did not flag it, and shows the moderator both signals',
    async () => {
      const classifier = fakeClassifier(PORN_SCORES);
      const bot = await start({ script: clean, classifier, env: await storage() });
      expect(bot.logs.find((l) => l.msg === 'qwen-imagine is running')?.storage).toBe(
        engine.startsWith('BullMQ') ? 'redis' : 'sqlite',
      );
      const { it, held } = await flagged(bot);
      expect(held.content).toMatch(FLAGGED_NOTICE);
      const review = await reviewMessage(bot);

      // It looked at the very image the API served, and nothing reached the requester's channel.
      expect(classifier.seen.map((bytes) => Buffer.from(bytes).equals(servedImage(bot)))).toEqual([true]);
      expect(bot.discord.requests.filter((r) => r.files.length > 0).map((r) => r.path)).toEqual([
        `/channels/${REVIEW}/messages`,
      ]);
      for (const version of bot.discord.messageHistory(it.original()!.id)) expect(version.attachments).toEqual([]);

      const shown = fields(review);
      expect(shown['Why it was held']).toBe('The bot’s own check flagged it');
      expect(shown['The bot’s own NSFW check']).toBe(
        'Porn 0.90 · Hentai 0.02 · Sexy 0.05 · Drawing 0.01 · Neutral 0.02',
      );
      expect(shown['Flags from the image service']).toBe('`{"has_nsfw_contents":null,"nsfw_detection_result":null}`');

      // Approved, it goes out behind a spoiler in a channel that is not age-restricted.
      bot.discord.click(review, 'Approve', { user: 'mod' });
      const published = await it.waitForOriginal((m) => m.attachments.length > 0);
      expect(published.attachments[0]?.filename).toMatch(/^SPOILER_/);
      expect(bot.discord.errors).toEqual([]);
    },
  );

  it.skipIf(skip)(
    'holds every image unchecked while the check fails, says so to the moderator and the operator, and shows images again once it works',
    async () => {
      const classifier = fakeClassifier(new Error('the worker exited'));
      const bot = await start({ script: clean, classifier, env: await storage() });
      const { held } = await flagged(bot);
      expect(held.content).toMatch(FLAGGED_NOTICE);
      const review = await reviewMessage(bot);
      expect(fields(review)['Why it was held']).toBe('The bot’s own check failed: held unchecked');
      expect(fields(review)['The bot’s own NSFW check']).toBe('⚠️ The check failed: held unchecked');
      const warning = await bot.waitForLog(
        (l) => typeof l.msg === 'string' && l.msg.startsWith('the NSFW classifier could not check an image'),
      );
      expect(warning.level).toBe(40);
      expect(warning.err).toMatchObject({ message: 'the worker exited' });

      classifier.answer(CLEAN_SCORES);
      const next = await bot.discord
        .slash('imagine', { prompt: 'a quiet harbour' }, { user: 'alice' })
        .waitForOriginal(notice);
      expect(next.attachments).toHaveLength(1);
      expect(next.attachments[0]?.filename).not.toMatch(/^SPOILER_/);
      expect(bot.discord.messages(REVIEW)).toHaveLength(1);
    },
  );
});

describe('the bot’s own NSFW check and the guild’s choices', () => {
  const clean = () => ({ processingMs: 100 });

  it('publishes an image it flags behind a spoiler in an age-restricted channel where the guild chose spoilers', async () => {
    const bot = await start({ script: clean, classifier: fakeClassifier(PORN_SCORES) });
    const shown = await bot.discord
      .slash('imagine', { prompt: 'x' }, { channel: 'nsfw' })
      .waitForOriginal((m) => m.attachments.length > 0);
    expect(shown.attachments[0]?.filename).toMatch(/^SPOILER_/);
    expect(shown.content).toMatch(/^⚠️ Content warning/);
    expect(bot.discord.messages(REVIEW)).toEqual([]);
  });

  it('flags a borderline image on a strict server and shows it on a relaxed one', async () => {
    const borderline = { ...CLEAN_SCORES, neutral: 0.5, porn: 0.47 };
    const bot = await start({ script: clean, classifier: fakeClassifier(borderline) });
    await bot.app.settings.update(bot.discord.guild.id, { sensitivity: 'strict' });
    expect((await flagged(bot)).held.content).toMatch(FLAGGED_NOTICE);
    await bot.app.settings.update(bot.discord.guild.id, { sensitivity: 'relaxed' });
    expect((await flagged(bot)).held.attachments).toHaveLength(1);
  });

  it('delivers a clean image at once when the check is off and the image service did not flag it', async () => {
    const bot = await start({ script: clean });
    const { held } = await flagged(bot);
    expect(held.attachments).toHaveLength(1);
    expect(held.attachments[0]?.filename).not.toMatch(/^SPOILER_/);
    expect(bot.discord.messages(REVIEW)).toEqual([]);
  });
});

/** The moderated guild with a thread in its age-restricted channel. */
const WITH_THREAD = {
  ...MODERATED_GUILD,
  channels: [...MODERATED_GUILD.channels!, { name: 'after-dark', type: 11 as const, parent: 'nsfw' }],
};

describe('the channel’s age restriction, read again when the image is published', () => {
  const published = (bot: BotHarness, it: FakeInteraction) =>
    it.waitForOriginal((m) => m.attachments.length > 0).then((m) => bot.discord.files(m)[0]!.filename);

  it('shows an approved image without a spoiler when the channel was made age-restricted while it waited', async () => {
    const bot = await start();
    const { it } = await flagged(bot);
    const review = await reviewMessage(bot);
    bot.discord.setAgeRestricted('general', true);
    bot.discord.click(review, 'Approve', { user: 'mod' });
    expect(await published(bot, it)).not.toMatch(/^SPOILER_/);
    expect(bot.discord.errors).toEqual([]);
  });

  it('puts an approved image behind a spoiler when the channel is no longer age-restricted', async () => {
    const bot = await start();
    await bot.app.settings.update(bot.discord.guild.id, { nsfwChannels: 'review' });
    const { it } = await flagged(bot, { channel: 'nsfw' });
    const review = await reviewMessage(bot);
    bot.discord.setAgeRestricted('nsfw', false);
    bot.discord.click(review, 'Approve', { user: 'mod' });
    expect(await published(bot, it)).toMatch(/^SPOILER_/);
  });

  it('sends a flagged image to review when the channel stopped being age-restricted while it was generated', async () => {
    const bot = await start({ script: () => ({ processingMs: 1_500, nsfw: true }) });
    const it = bot.discord.slash('imagine', { prompt: 'x' }, { channel: 'nsfw' });
    await it.waitForCallback();
    bot.discord.setAgeRestricted('nsfw', false);
    expect((await it.waitForOriginal(notice)).content).toMatch(FLAGGED_NOTICE);
    await reviewMessage(bot);
    expect(bot.discord.requests.filter((r) => r.files.length > 0 && r.path.startsWith('/webhooks/'))).toEqual([]);
  });

  it('counts a thread of an age-restricted channel as age-restricted: behind a spoiler, no review', async () => {
    const bot = await start({ discord: { guilds: [WITH_THREAD] } });
    const it = bot.discord.slash('imagine', { prompt: 'x' }, { channel: 'after-dark' });
    expect(await published(bot, it)).toMatch(/^SPOILER_/);
    expect(bot.discord.messages(REVIEW)).toEqual([]);
  });

  it('follows the thread’s parent: made not age-restricted, the thread’s flagged image is reviewed', async () => {
    const bot = await start({ discord: { guilds: [WITH_THREAD] } });
    bot.discord.setAgeRestricted('nsfw', false);
    const { it } = await flagged(bot, { channel: 'after-dark' });
    const review = await reviewMessage(bot);
    bot.discord.setAgeRestricted('nsfw', true);
    bot.discord.click(review, 'Approve', { user: 'mod' });
    expect(await published(bot, it)).not.toMatch(/^SPOILER_/);
    expect(bot.discord.errors).toEqual([]);
  });
});

describe('caps on images waiting for a moderator', () => {
  const submits = (bot: BotHarness) => bot.api.requests.filter((r) => r.route === 'submit').length;

  it('refuses a member with HELD_PER_MEMBER images waiting, politely and for free, until a moderator decides', async () => {
    const bot = await start({ env: { HELD_PER_MEMBER: '2' } });
    await flagged(bot, { user: 'alice' });
    const first = await reviewMessage(bot);
    await flagged(bot, { user: 'alice' });
    expect(submits(bot)).toBe(2);

    const refused = bot.discord.slash('imagine', { prompt: 'one more' }, { channel: 'general', user: 'alice' });
    expect(await ephemeralText(refused)).toBe(
      'You have 2 image(s) waiting for a moderator to review them, the most one member can have here. You can ask for more once a moderator has looked at them.',
    );
    await handled(bot, refused);
    expect(submits(bot)).toBe(2);
    expect(bot.logs.find((l) => l.msg === 'interaction handled' && l.interactionId === refused.id)?.outcome).toBe(
      'refused:held_member',
    );

    // Someone else in the server is not held back by it.
    await flagged(bot, { user: 'bob' });
    expect(submits(bot)).toBe(3);

    // A decision frees a place.
    const reject = bot.discord.click(first, 'Reject', { user: 'mod' });
    await handled(bot, reject);
    await flagged(bot, { user: 'alice' });
    expect(submits(bot)).toBe(4);
  });

  it('refuses everyone in a guild with HELD_PER_GUILD images waiting, in their language', async () => {
    const bot = await start({ env: { HELD_PER_GUILD: '1' } });
    await flagged(bot, { user: 'alice' });
    const refused = bot.discord.slash('imagine', { prompt: 'x' }, { channel: 'general', user: 'bob', locale: 'zh-CN' });
    expect(await ephemeralText(refused)).toBe(
      '本服务器有 1 张图片正在等待管理员审核，已达到上限。在管理员处理之前，新的请求已暂停。',
    );
    expect(submits(bot)).toBe(1);
  });
});

describe('a flagged image over the server’s upload limit', () => {
  it('is not kept for review: the requester is told it is too large, and the job fails', async () => {
    const bot = await start({ imageSizeBytes: 11 * 1024 * 1024 });
    const it = bot.discord.slash('imagine', { prompt: 'x' }, { channel: 'general' });
    const told = await it.waitForOriginal((m) => m.content.startsWith('❌'));
    expect(told.content).toMatch(/^❌ The image is larger than this server’s upload limit/);
    expect(bot.discord.requests.filter((r) => r.files.length > 0)).toEqual([]);
    expect(bot.discord.messages(REVIEW)).toEqual([]);
    const jobId = (await bot.waitForLog((l) => l.msg === 'image over the server’s upload limit')).jobId as string;
    expect(await bot.app.jobs.get(jobId)).toMatchObject({ state: 'failed', error: { kind: 'upload_limit' } });
    expect(await bot.app.review.pending(bot.discord.guild.id)).toEqual([]);
  });
});

describe('the bot’s own NSFW check with the real model', () => {
  /** The job id a delivered file is named after (see `imageFileName`): after the prompt's words. */
  const jobOfFile = (name: string) => /^qwen-image-a-paper-crane-(.+)\.\w+$/.exec(name)![1]!;

  it('scores the very image the API served, keeps the scores on the job, and publishes an image it finds clean', async () => {
    const picture = await makePicture(7, 1024);
    const bot = await start({ script: () => ({ processingMs: 100, image: picture }), env: { NSFW_CLASSIFIER: 'on' } });
    const shown = await bot.discord
      .slash('imagine', { prompt: 'a paper crane' }, { channel: 'general' })
      .waitForOriginal(notice);
    expect(shown.attachments).toHaveLength(1);
    expect(shown.attachments[0]?.filename).not.toMatch(/^SPOILER_/);
    // The record is finished just after Discord took the image.
    const jobId = jobOfFile(shown.attachments[0]!.filename);
    await bot.waitForLog((l) => l.msg === 'job delivered' && l.jobId === jobId);
    const job = await bot.app.jobs.get(jobId);
    expect(job?.nsfw?.classifier).toBe('ok');
    const scores = job!.nsfw!.scores!;
    expect(Object.keys(scores).sort()).toEqual(['drawing', 'hentai', 'neutral', 'porn', 'sexy']);
    expect(Object.values(scores).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 2);
    expect(scores.porn + scores.hentai).toBeLessThan(0.6);
    expect(bot.discord.messages(REVIEW)).toEqual([]);
  });

  it('holds an image it cannot read, unchecked, instead of publishing it', async () => {
    const unreadable = new Uint8Array(4096).fill(0x5a);
    const bot = await start({
      script: () => ({ processingMs: 100, image: unreadable }),
      env: { NSFW_CLASSIFIER: 'on' },
    });
    const { held } = await flagged(bot);
    expect(held.attachments).toEqual([]);
    expect(held.content).toMatch(FLAGGED_NOTICE);
    const review = await reviewMessage(bot);
    const fields = Object.fromEntries((review.embeds[0]?.fields ?? []).map((f) => [f.name, f.value]));
    expect(fields['Why it was held']).toBe('The bot’s own check failed: held unchecked');
  });
});
