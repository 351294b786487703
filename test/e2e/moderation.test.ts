// Moderator review of flagged and reported images, end to end: the real bot against the fake
// Discord and the fake PPInfra, as members and moderators would use it.
import type { APIMessage, APIRole } from 'discord-api-types/v10';
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeInteraction } from '../fakes/discord/server.ts';
import { LOCKED, MODERATED_GUILD, OTHER_REVIEW, REVIEW } from './guilds.ts';
import { ephemeralText, startBotHarness, type BotHarness, type HarnessOptions } from './harness.ts';

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
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const FLAGGED_NOTICE = /^🔞 .*A moderator will review it/;
const notice = (m: APIMessage) => m.content.startsWith('🔞') || m.content.startsWith('🚫') || m.attachments.length > 0;
const labels = (m: APIMessage) => ((m.components ?? []) as unknown as { components: { label?: string }[] }[]).flatMap((r) => r.components.map((c) => c.label));
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
const handled = (bot: BotHarness, click: FakeInteraction) => bot.waitForLog((l) => l.msg === 'interaction handled' && l.interactionId === click.id);

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
    expect((await bot.app.jobs.get(jobId))?.nsfw).toEqual({ flagged: true, hasNsfwContents: true, detectionResult: { valid: true, confidence: 0.97 } });
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
    expect(labels(published)).toEqual(['More like this', 'Edit prompt', 'Delete', 'Report']);

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
    const publications = bot.discord.requests.filter((r) => r.files.length > 0 && !r.path.startsWith(`/channels/${REVIEW}`));
    expect(publications).toHaveLength(1);
    expect(bot.discord.messageHistory(it.original()!.id).filter((m) => m.attachments.length > 0)).toHaveLength(1);
    expect(bot.logs.filter((l) => l.msg === 'moderation decision')).toHaveLength(1);
    const jobId = /job (\w+)/.exec(review.embeds[0]!.footer!.text)![1]!;
    expect(await bot.app.shared.read(`decision:${jobId}:flag`)).toMatchObject({ jobId, decision: 'approve', moderatorId: winner.user.id, review: 'flag' });
    expect(bot.discord.errors).toEqual([]);
  });

  it('gives the decision back when publishing fails, so the next click can approve', async () => {
    const bot = await start();
    const { it } = await flagged(bot);
    const review = await reviewMessage(bot);
    // More 5xx than discord.js retries on the requester's message: the approval cannot take effect.
    bot.discord.failNext(`PATCH /webhooks/${bot.discord.applicationId}/${it.token}/messages/@original`, { status: 500 }, 4);
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
    const posted = await bot.discord.waitForMessage((m) => m.channel_id === it.channelId && m.id !== it.original()!.id && m.attachments.length > 0);
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
    expect(posted.content).toMatch(new RegExp(`^<@${it.user.id}>, an update on your image request:\n🚫 A moderator reviewed this image`));
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
    expect(await privateAnswer(bot.discord.click(message, 'Report', { user: 'bob' }))).toMatch(/^Thanks\. The moderators have been asked/);
    const review = await reviewMessage(bot, REVIEW, 'Remove');
    expect(bot.discord.files(review)[0]?.filename).toMatch(/^SPOILER_/);
    expect(bot.discord.files(review)[0]?.bytes.equals(servedImage(bot))).toBe(true);
    const reporters = () => bot.discord.message(review.id)?.embeds[0]?.fields?.find((f) => f.name === 'Reported by')?.value;
    expect(reporters()).toBe(`<@${bot.discord.user('bob').id}>`);

    expect(await privateAnswer(bot.discord.click(message, 'Report', { user: 'bob' }))).toMatch(/already reported this image/);
    expect(await privateAnswer(bot.discord.click(message, 'Report', { user: 'mod2' }))).toMatch(/your report was added/);
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
    expect(await privateAnswer(bot.discord.click(message, 'Report', { user: 'rita' }))).toMatch(/already reviewed this image: 👍 Kept by/);
    expect(bot.discord.messages(REVIEW)).toHaveLength(1);
  });

  it('tells the reporter when no moderator can be reached, and lets them report again later', async () => {
    const bot = await start({ script: clean, reviewChannel: null });
    const { message } = await published(bot);
    expect(await privateAnswer(bot.discord.click(message, 'Report', { user: 'bob' }))).toMatch(/no review channel the bot can use/);
    await bot.app.settings.update(bot.discord.guild.id, { reviewChannelId: REVIEW });
    expect(await privateAnswer(bot.discord.click(message, 'Report', { user: 'bob' }))).toMatch(/^Thanks\./);
  });
});

describe('/imagine-review pending', () => {
  it('lists what waits in this guild, oldest first, with links, for moderators only', async () => {
    const bot = await start();
    await flagged(bot, { user: 'alice' });
    const first = await reviewMessage(bot);
    await flagged(bot, { user: 'bob' });
    await bot.discord.waitForMessage((m) => m.channel_id === REVIEW && m.id !== first.id && labels(m).includes('Approve'));

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

/** The moderated guild with a thread in its age-restricted channel. */
const WITH_THREAD = { ...MODERATED_GUILD, channels: [...MODERATED_GUILD.channels!, { name: 'after-dark', type: 11 as const, parent: 'nsfw' }] };

describe('the channel’s age restriction, read again when the image is published', () => {
  const published = (bot: BotHarness, it: FakeInteraction) => it.waitForOriginal((m) => m.attachments.length > 0).then((m) => bot.discord.files(m)[0]!.filename);

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
    expect(await ephemeralText(refused)).toBe('You have 2 image(s) waiting for a moderator to review them, the most one member can have here. You can ask for more once a moderator has looked at them.');
    await handled(bot, refused);
    expect(submits(bot)).toBe(2);
    expect(bot.logs.find((l) => l.msg === 'interaction handled' && l.interactionId === refused.id)?.outcome).toBe('refused:held_member');

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
    expect(await ephemeralText(refused)).toBe('本服务器有 1 张图片正在等待管理员审核，已达到上限。在管理员处理之前，新的请求已暂停。');
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
