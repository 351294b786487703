// /imagine from a member's own install: the bot's DM, a group DM between others, a server that
// never added the bot. The real bot against the fake Discord and the fake PPInfra, on both
// engines: where the bot is no member everything goes through the interaction token, a flagged
// image nobody can review is withheld, a late image goes to the member's DM, and the quota and
// the operator's budget count across places.
import type { APIMessage } from 'discord-api-types/v10';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStorage } from '../../src/storage/open.ts';
import { createUsageLedger, utcDay } from '../../src/usage/ledger.ts';
import { CLEAN_SCORES, fakeClassifier } from '../fakes/classifier.ts';
import type { FakeDiscordOptions } from '../fakes/discord/types.ts';
import { makePicture } from '../fakes/pictures.ts';
import { skipWithoutRedis, startRedis, type FakeRedis } from '../fakes/redis.ts';
import {
  deployCommands,
  ephemeralText,
  finished,
  messageWrites,
  startBotHarness,
  type BotHarness,
  type HarnessOptions,
} from './harness.ts';

/** The first guild installed the bot; 'Elsewhere' did not, and 'Strict' lets external apps answer only privately. */
const PLACES: FakeDiscordOptions = {
  guilds: [
    { name: 'Test Guild' },
    {
      name: 'Elsewhere',
      botInstalled: false,
      members: [{ user: 'alice' }, { user: 'bob' }],
      channels: [{ name: 'chat' }],
    },
    { name: 'Strict', botInstalled: false, externalApps: 'ephemeral', members: [{ user: 'alice' }] },
  ],
};

const ENGINES = [
  { engine: 'in-process', redis: false },
  { engine: 'BullMQ', redis: true },
] as const;

let h: BotHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const LONG = { timeoutMs: 20_000 };
const clean = () => ({ processingMs: 150 });
const flaggedScript = () => ({ processingMs: 150, nsfw: true });
/** Requests the bot sent to a channel route of `channelId` (a channel message, a channel fetch). */
const channelRoutes = (bot: BotHarness, channelId: string) =>
  bot.discord.requests.filter((r) => r.path.startsWith(`/channels/${channelId}`));
const files = (bot: BotHarness) => bot.discord.requests.filter((r) => r.files.length > 0);
const labels = (m: APIMessage) =>
  ((m.components ?? []) as unknown as { components: { label?: string }[] }[]).flatMap((r) =>
    r.components.map((c) => c.label),
  );
/** The job's record once it has ended: the message goes out before the record's final save. */
async function ended(bot: BotHarness, id: string) {
  await expect
    .poll(async () => (await bot.app.jobs.get(id))?.state, { timeout: 20_000 })
    .toMatch(/delivered|held|failed/);
  return bot.app.jobs.get(id);
}
const description = (m: APIMessage) => m.embeds[0]?.description ?? '';
const jobIdOf = (m: APIMessage) => /-(\w+)\.\w+$/.exec(m.attachments[0]!.filename)![1]!;

describe.each(ENGINES)('installs for oneself ($engine)', ({ redis: onRedis }) => {
  let redis: FakeRedis | undefined;
  let db = 0;
  beforeAll(async () => {
    if (onRedis && !skipWithoutRedis) redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  const run = onRedis ? it.skipIf(skipWithoutRedis) : it;
  async function start(options: HarnessOptions = {}, warm = false) {
    const engineEnv: Record<string, string> = redis
      ? { STORAGE_URL: `${redis.url}/${++db}`, QUEUE_LOCK_MS: '10000' }
      : {};
    // On Redis the harness's seeded durations (in SQLite) are not read: seeded there too, where a test asks.
    if (redis && warm) {
      const stats = openStorage(engineEnv.STORAGE_URL!, 'stats');
      await stats.set('durations', { '1024*1024': Array(5).fill(300) });
      await stats.disconnect();
    }
    h = await startBotHarness({
      script: clean,
      ...options,
      discord: { ...PLACES, ...options.discord },
      env: { ...engineEnv, ...options.env },
    });
    await deployCommands(h);
    return h;
  }

  run('answers in the bot’s DM, in a group DM and in a server without the bot, through the token alone', async () => {
    const bot = await start();
    const dm = bot.discord.slash('imagine', { prompt: 'a lighthouse' }, { context: 'bot_dm' });
    const group = bot.discord.slash(
      'imagine',
      { prompt: 'a harbour' },
      { context: 'private', with: ['alice'], user: 'bob' },
    );
    const server = bot.discord.slash(
      'imagine',
      { prompt: 'a ferry' },
      { context: 'guild_user_install', guild: 'Elsewhere' },
    );
    for (const it of [dm, group, server]) {
      const message = await it.waitForOriginal(finished, LONG);
      expect(message.attachments).toHaveLength(1);
      expect(it.isEphemeral).toBe(false);
      // Nobody to report to where no server installed the bot.
      expect(labels(message)).not.toContain('Report');
      const job = await ended(bot, jobIdOf(message));
      expect(job).toMatchObject({ state: 'delivered', place: it.where });
    }
    // Where the bot is no member it never touched the channel: no message, no lookup.
    expect(channelRoutes(bot, group.channelId)).toEqual([]);
    expect(channelRoutes(bot, server.channelId)).toEqual([]);
    expect(bot.discord.errors).toEqual([]);
  });

  run('withholds a flagged image where nobody can review it, and shows it in the bot’s DM as a spoiler', async () => {
    const bot = await start({ script: flaggedScript });
    const server = bot.discord.slash(
      'imagine',
      { prompt: 'a statue' },
      { context: 'guild_user_install', guild: 'Elsewhere' },
    );
    const withheld = await server.waitForOriginal(finished, LONG);
    expect(withheld.content).toMatch(/^🔞 .*This server hasn’t added me, so no moderator can review it/);
    const group = bot.discord.slash('imagine', { prompt: 'a fountain' }, { context: 'private' });
    expect((await group.waitForOriginal(finished, LONG)).content).toMatch(/won’t be shown in this conversation/);
    // Nothing of either image went anywhere: no upload, no review message.
    expect(files(bot)).toEqual([]);
    const line = await bot.waitForLog((l) => l.msg === 'flagged image withheld: nobody can review it there');
    expect(await ended(bot, String(line.jobId))).toMatchObject({ state: 'held', unseen: 'withheld' });
    expect((await bot.app.jobs.get(String(line.jobId)))?.review).toBeUndefined();

    // A batch says which of its images were withheld.
    const batch = bot.discord.slash('imagine', { prompt: 'two fountains', count: 2 }, { context: 'private' });
    const both = await batch.waitForOriginal((m) => /Image 1\/2/.test(m.content) && /Image 2\/2/.test(m.content), LONG);
    expect(both.content).toMatch(/🔞 Image 1\/2 was flagged .* won’t be shown here/);
    expect(files(bot)).toEqual([]);

    const dm = bot.discord.slash('imagine', { prompt: 'a garden' }, { context: 'bot_dm' });
    const shown = await dm.waitForOriginal(finished, LONG);
    expect(shown.attachments[0]?.filename).toMatch(/^SPOILER_/);
    expect(shown.content).toMatch(/^⚠️ Content warning: .*Only you can see it here/);
    expect(bot.discord.errors).toEqual([]);
  });

  run(
    'an upscale of a flagged image shown in the bot’s DM is a spoiler too, though it looks clean itself',
    async () => {
      // Only the first image is flagged: the upscale is clean, the image it was made from decides.
      const bot = await start({ script: (req) => (req.kind ? clean() : flaggedScript()) });
      const dm = bot.discord.slash('imagine', { prompt: 'a garden' }, { context: 'bot_dm' });
      const shown = await dm.waitForOriginal(finished, LONG);
      expect(shown.attachments[0]?.filename).toMatch(/^SPOILER_/);
      const up = await bot.discord.click(shown, 'Upscale').waitForOriginal(finished, LONG);
      expect(up.attachments[0]?.filename).toMatch(/^SPOILER_/);
      expect(up.content).toMatch(/^⚠️ Content warning: /);
      const job = await ended(bot, jobIdOf(up));
      expect(job).toMatchObject({ tool: 'upscale', inputFlagged: true, nsfw: { reasons: ['input'] } });
      expect(bot.discord.errors).toEqual([]);
    },
  );

  run('DM_NSFW=hold keeps a flagged image out of the bot’s DM too', async () => {
    const bot = await start({ script: flaggedScript, env: { DM_NSFW: 'hold' } });
    const dm = bot.discord.slash('imagine', { prompt: 'a garden' }, { context: 'bot_dm' });
    expect((await dm.waitForOriginal(finished, LONG)).content).toMatch(/^🔞 .*isn’t shown, even here/);
    expect(files(bot)).toEqual([]);
  });

  run(
    'sends an image that outlived its token to the member’s DM; with DMs closed, /imagine-history says so',
    async () => {
      const bot = await start({ script: () => ({ processingMs: 1_500 }) });
      const it = bot.discord.slash(
        'imagine',
        { prompt: 'a slow tide' },
        { context: 'guild_user_install', guild: 'Elsewhere' },
      );
      await bot.api.waitFor('task-created');
      it.expireToken();
      const dmId = bot.discord.dmChannel('alice').id;
      const late = await bot.discord.waitForMessage((m) => m.channel_id === dmId && m.attachments.length > 0, LONG);
      expect(late.content).toMatch(/^Here is your image for “a slow tide”\. .*\(a server\), so I sent it here\./);
      expect(channelRoutes(bot, it.channelId)).toEqual([]);
      expect(await ended(bot, jobIdOf(late))).toMatchObject({
        state: 'delivered',
        published: { channelId: dmId, messageId: late.id },
      });

      bot.discord.refuseDms('bob');
      const closed = bot.discord.slash(
        'imagine',
        { prompt: 'a slower tide' },
        { context: 'guild_user_install', guild: 'Elsewhere', user: 'bob' },
      );
      let created = 0;
      await bot.api.waitFor('task-created', () => ++created === 2);
      closed.expireToken();
      const line = await bot.waitForLog(
        (l) => l.msg === 'the token expired and the member does not accept DMs from the bot',
      );
      await expect
        .poll(async () => (await bot.app.jobs.get(String(line.jobId)))?.state, { timeout: 20_000 })
        .toBe('delivered');
      expect(await bot.app.jobs.get(String(line.jobId))).toMatchObject({ unseen: 'unreachable' });
      const history = bot.discord.slash('imagine-history', {}, { context: 'bot_dm', user: 'bob' });
      const data = (await history.waitForCallback()).data as { embeds: { description: string }[] };
      expect(data.embeds[0]!.description).toMatch(/a slower tide[\s\S]*finished after the link expired/);
    },
  );

  run('the buttons of an image sent to the DM work there; an upscale sent there says what was asked', async () => {
    const bot = await start({ script: () => ({ processingMs: 1_500 }) });
    const elsewhere = { context: 'guild_user_install', guild: 'Elsewhere' } as const;
    const it = bot.discord.slash('imagine', { prompt: 'a slow tide' }, elsewhere);
    await bot.api.waitFor('task-created');
    it.expireToken();
    const dmId = bot.discord.dmChannel('alice').id;
    const inDm = (m: APIMessage) => m.channel_id === dmId && m.attachments.length > 0;
    const late = await bot.discord.waitForMessage(inDm, LONG);
    // The record names the DM message once it is saved, right after the message went out.
    await ended(bot, jobIdOf(late));
    const fromDm = await bot.discord.click(late, 'Upscale').waitForOriginal(finished, LONG);
    expect(description(fromDm)).toBe('🔍 Upscaled to 2048×2048');

    // An upscale asked for in the server, finished after its token: sent to the DM, saying what it is.
    const shown = await bot.discord
      .slash('imagine', { prompt: 'a calm sea' }, elsewhere)
      .waitForOriginal(finished, LONG);
    const up = bot.discord.click(shown, 'Upscale', elsewhere);
    let upscales = 0;
    await bot.api.waitFor('task-created', (task: { kind?: string }) => task.kind === 'upscale' && ++upscales === 2);
    up.expireToken();
    const sent = await bot.discord.waitForMessage((m) => inDm(m) && m.id !== late.id && m.id !== fromDm.id, LONG);
    expect(sent.content).toMatch(/^Here is your image for “Upscale to 2k”\. .*\(a server\), so I sent it here\./);
  });

  run(
    'tells the member before the token expires, and /imagine-history gives back an image that reached nobody',
    async () => {
      const bot = await start({ script: () => ({ processingMs: 6_000 }) }, true);
      bot.discord.refuseDms('bob');
      // Asked a little under 14 minutes ago, in a group DM between others: only the token answers there.
      const it = bot.discord.slash(
        'imagine',
        { prompt: 'a late comet' },
        { context: 'private', with: ['alice', 'mod'], user: 'bob', ageMs: 14 * 60_000 - 3_000 },
      );
      const notice = await it.waitForOriginal((m) => /15 minutes/.test(m.content), LONG);
      expect(notice.content).toMatch(
        /only lets me update this message for 15 minutes, so I’ll send the image to your DM with me .* use \/imagine-history to get it/,
      );
      expect(notice.attachments).toEqual([]);
      it.expireToken();
      const line = await bot.waitForLog(
        (l) => l.msg === 'the token expired and the member does not accept DMs from the bot',
      );
      const jobId = String(line.jobId);
      expect(await ended(bot, jobId)).toMatchObject({ state: 'delivered', unseen: 'unreachable' });
      expect(channelRoutes(bot, it.channelId)).toEqual([]);

      const history = bot.discord.slash('imagine-history', {}, { context: 'bot_dm', user: 'bob' });
      await history.waitForCallback();
      expect(history.isEphemeral).toBe(true);
      const list = history.original()!;
      expect(list.embeds[0]!.description).toMatch(/a late comet[\s\S]*\*\*Get it #1\*\* below gives it to you/);
      expect(labels(list)).toEqual(['Get it #1']);

      // Only the member who asked may have it.
      const other = bot.discord.click(list, 'Get it #1', { user: 'alice' });
      expect(await ephemeralText(other)).toMatch(/Only the member who asked for this image can get it/);

      const made = bot.api.tasks.get((await bot.app.jobs.get(jobId))!.taskId!)!.image!;
      for (const attempt of [1, 2]) {
        // Fetched once, it is still there to fetch again.
        const fetch = bot.discord.click(list, 'Get it #1', { user: 'bob' });
        const got = await fetch.waitForOriginal((m) => m.attachments.length > 0, LONG);
        expect(fetch.isEphemeral, `attempt ${attempt}`).toBe(true);
        expect(got.content).toMatch(/^Here is your image for “a late comet”\. Only you can see this\./);
        expect(bot.discord.files(got)[0]!.bytes.equals(Buffer.from(made))).toBe(true);
      }
      const fetches = bot.discord.requests.filter((r) => r.files.length > 0 && r.path.includes('/webhooks/'));
      for (const r of fetches)
        expect((r.body as { allowed_mentions?: { parse: string[] } }).allowed_mentions?.parse).toEqual([]);
      // Once the stash has expired, a private sentence says so.
      const images = openStorage(bot.env.STORAGE_URL!, 'images');
      await images.delete(`image:${jobId}`);
      await images.disconnect();
      const gone = bot.discord.click(list, 'Get it #1', { user: 'bob' });
      expect(await ephemeralText(gone)).toMatch(/^I no longer have that image: .* kept for 7 days/);
      // The only refusals: the expired token, and the DM the member closed.
      expect(bot.discord.errors.map((e) => e.code)).toEqual([50027, 50007]);
    },
    40_000,
  );

  run('says nothing of the token’s end where the bot posts itself, or to a job done before it', async () => {
    const bot = await start({}, true);
    const ageMs = 14 * 60_000 - 2_500;
    for (const context of ['bot_dm', 'private'] as const) {
      const it = bot.discord.slash('imagine', { prompt: 'a quick comet' }, { context, ageMs });
      expect((await it.waitForOriginal(finished, LONG)).attachments).toHaveLength(1);
    }
    // Past the moment the notice would have been due: nothing more was edited.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const said = messageWrites(bot.discord).filter((r) => JSON.stringify(r.body).includes('Still working on it'));
    expect(said).toEqual([]);
  });

  run(
    'counts a member’s quota across every place, and pays places without the bot from the operator’s budget',
    async () => {
      const bot = await start({ env: { USER_HOURLY_QUOTA: '3', USER_INSTALL_DAILY_BUDGET: '1' } });
      const inGuild = bot.discord.slash('imagine', { prompt: 'one' }, { context: 'guild' });
      expect((await inGuild.waitForOriginal(finished, LONG)).attachments).toHaveLength(1);
      const dm = bot.discord.slash('imagine', { prompt: 'two' }, { context: 'bot_dm' });
      expect((await dm.waitForOriginal(finished, LONG)).attachments).toHaveLength(1);
      // The operator's budget for places without the bot (1) is spent; the server's own is not.
      const group = bot.discord.slash('imagine', { prompt: 'three' }, { context: 'private' });
      expect(await ephemeralText(group)).toMatch(/share a daily limit of 1, and it has been reached/);
      const again = bot.discord.slash('imagine', { prompt: 'three' }, { context: 'guild' });
      expect((await again.waitForOriginal(finished, LONG)).attachments).toHaveLength(1);
      // Three images in an hour, wherever they were made: the fourth is refused everywhere.
      const fourth = bot.discord.slash('imagine', { prompt: 'four' }, { context: 'guild' });
      expect(await ephemeralText(fourth)).toMatch(/hour/);
      expect(bot.api.requests.filter((r) => r.route === 'submit')).toHaveLength(3);
      // The usage ledger keeps them apart: the server's row, and the one of installs for oneself.
      const ledger = createUsageLedger(bot.app.shared);
      const today = utcDay(Date.now());
      await expect.poll(async () => (await ledger.day('user_install', today)).images, { timeout: 20_000 }).toBe(1);
      await expect
        .poll(async () => (await ledger.day(bot.discord.guild.id, today)).images, { timeout: 20_000 })
        .toBe(2);
    },
  );
});

describe('installs for oneself, before anything is spent', () => {
  const start = async (options: HarnessOptions = {}) => {
    h = await startBotHarness({ script: clean, ...options, discord: { ...PLACES, ...options.discord } });
    await deployCommands(h);
    return h;
  };

  it('USER_INSTALL=off: only servers that installed the bot are served', async () => {
    const bot = await start({ env: { USER_INSTALL: 'off' } });
    const dm = bot.discord.slash('imagine', { prompt: 'a lighthouse' }, { context: 'bot_dm' });
    expect(await ephemeralText(dm)).toMatch(/only allows me in servers that added me/);
    const group = bot.discord.slash('imagine', { prompt: 'a lighthouse' }, { context: 'private' });
    expect(await ephemeralText(group)).toMatch(/only allows me in servers that added me/);
    const inGuild = bot.discord.slash('imagine', { prompt: 'a lighthouse' }, { context: 'guild' });
    expect((await inGuild.waitForOriginal(finished, LONG)).attachments).toHaveLength(1);
    expect(bot.api.requests.filter((r) => r.route === 'submit')).toHaveLength(1);
  });

  it('USER_INSTALL_DAILY_BUDGET=0 closes places without the bot', async () => {
    const bot = await start({ env: { USER_INSTALL_DAILY_BUDGET: '0' } });
    const dm = bot.discord.slash('imagine', { prompt: 'a lighthouse' }, { context: 'bot_dm' });
    expect(await ephemeralText(dm)).toMatch(/doesn’t allow images in DMs/);
    expect(bot.api.requests.filter((r) => r.route === 'submit')).toHaveLength(0);
  });

  it('refuses at once, for free, where only the token can answer and the queue would outlive it', async () => {
    // What the bot has seen: twenty minutes an image.
    const bot = await start({ seenDurationsMs: 20 * 60_000 });
    const group = bot.discord.slash('imagine', { prompt: 'a slow one' }, { context: 'private' });
    expect(await ephemeralText(group)).toMatch(/Discord only lets me answer here for 15 minutes\. Nothing was charged/);
    const server = bot.discord.slash(
      'imagine',
      { prompt: 'a slow one' },
      { context: 'guild_user_install', guild: 'Elsewhere' },
    );
    expect(await ephemeralText(server)).toMatch(/15 minutes/);
    // In the bot's DM a late image can still be posted: it is accepted.
    const dm = bot.discord.slash('imagine', { prompt: 'a slow one' }, { context: 'bot_dm' });
    expect((await dm.waitForCallback()).type).toBe(5);
  });

  it('estimates an upscale by what upscales take, not by its picture’s size, where only the token can answer', async () => {
    // Pictures are quick here; upscales have taken twenty minutes.
    const bot = await start({ seenDurationsByKey: { 'upscale:2k': 20 * 60_000 } });
    const group = { context: 'private' as const, with: ['alice'], user: 'bob' };
    const shown = await bot.discord.slash('imagine', { prompt: 'a harbour' }, group).waitForOriginal(finished, LONG);
    expect(await ephemeralText(bot.discord.click(shown, 'Upscale', group))).toMatch(/15 minutes\. Nothing was charged/);
    expect(bot.api.requests.filter((r) => r.route === 'upscale')).toHaveLength(0);
  });

  it('an edit in a server that never installed the bot is judged by the operator’s thresholds, not that server’s', async () => {
    const upload = Buffer.from(await makePicture(11, 80, 'png'));
    // Flagged at the operator's thresholds (porn + hentai 0.7 ≥ 0.6), not at a relaxed server's (0.8).
    const borderline = { drawing: 0.05, hentai: 0.05, neutral: 0.2, porn: 0.65, sexy: 0.05 };
    const classifier = fakeClassifier((image) => (Buffer.from(image).equals(upload) ? borderline : CLEAN_SCORES));
    const bot = await start({ classifier });
    // A registration from before /imagine-edit stayed in servers that added the bot, not deployed again.
    const edit = bot.discord.commands.list().find((c) => c.name === 'imagine-edit')!;
    Object.assign(edit, { integration_types: [0, 1], contexts: [0, 1, 2] });
    // The server had the bot once, and relaxed its sensitivity then.
    const elsewhere = bot.discord.guilds.find((g) => g.name === 'Elsewhere')!;
    await bot.app.settings.update(elsewhere.id, { sensitivity: 'relaxed' });
    const it = bot.discord.slash(
      'imagine-edit',
      { image: { file: { name: 'me.png', bytes: upload } }, instruction: 'a beach behind me' },
      { context: 'guild_user_install', guild: 'Elsewhere' },
    );
    expect((await it.waitForOriginal(finished, LONG)).content).toMatch(/^🔞 .*no moderator can review it/);
    expect(files(bot)).toEqual([]);
  });

  it('answers privately where the server lets external apps answer only privately, and checks app_permissions', async () => {
    const bot = await start();
    const strict = bot.discord.slash(
      'imagine',
      { prompt: 'a kite' },
      { context: 'guild_user_install', guild: 'Strict' },
    );
    const callback = await strict.waitForCallback();
    // The bot asked for it itself, rather than Discord forcing it.
    expect(((callback.data as { flags?: number } | undefined)?.flags ?? 0) & 64).toBe(64);
    expect((await strict.waitForOriginal(finished, LONG)).attachments).toHaveLength(1);
    expect(strict.isEphemeral).toBe(true);

    const noFiles = bot.discord.slash(
      'imagine',
      { prompt: 'a kite' },
      { context: 'private', appPermissions: ['ViewChannel', 'SendMessages', 'EmbedLinks'] },
    );
    expect(await ephemeralText(noFiles)).toMatch(/send \*\*Attach Files\*\*\. Nothing was charged/);
    expect(bot.api.requests.filter((r) => r.route === 'submit')).toHaveLength(1);
  });
});
