// /imagine-settings end to end: a server manager's choices, through the fake Discord and the
// real bot, stored where the bot stores everything else.
import type { APIRole } from 'discord-api-types/v10';
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeGuildSpec, InteractionContext } from '../fakes/discord/types.ts';
import { skipWithoutRedis, startRedis } from '../fakes/redis.ts';
import { deployCommands, finished, startBotHarness, type BotHarness, type HarnessOptions } from './harness.ts';

const OPERATOR_CHANNEL_ID = '1300000000000000001';

/** A server with a moderators-only channel, a channel where the bot cannot post images, and a role with no permissions. */
const GUILD: FakeGuildSpec = {
  name: 'Settings Guild',
  roles: [{ name: 'Moderator', permissions: ['ManageMessages'] }, { name: 'Reviewer' }],
  channels: [
    { name: 'general' },
    { name: 'nsfw', nsfw: true },
    {
      name: 'mod-review',
      overwrites: [
        { role: '@everyone', deny: ['ViewChannel'] },
        { role: 'Moderator', allow: ['ViewChannel'] },
        { user: 'bot', allow: ['ViewChannel'] },
      ],
    },
    { name: 'locked', overwrites: [{ user: 'bot', deny: ['AttachFiles', 'EmbedLinks'] }] },
    {
      name: 'ops-review',
      id: OPERATOR_CHANNEL_ID,
      overwrites: [
        { role: '@everyone', deny: ['ViewChannel'] },
        { user: 'bot', allow: ['ViewChannel'] },
      ],
    },
  ],
  members: [{ user: 'alice' }, { user: 'mod', roles: ['Moderator'] }],
};

let h: BotHarness | undefined;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** Starts the bot and registers the commands the way `npm run deploy-commands` does, so options are typed like Discord's client types them. */
async function start(options: HarnessOptions = {}): Promise<BotHarness> {
  h = await startBotHarness({ ...options, discord: { guilds: [GUILD], ...options.discord } });
  await deployCommands(h);
  return h;
}

/** The ephemeral text answering `/imagine-settings <subcommand>`, checked to ping no one. */
async function settings(
  bot: BotHarness,
  subcommand: string,
  options: Record<string, string | number | boolean> = {},
  ctx: InteractionContext = { user: 'owner' },
): Promise<string> {
  const it = bot.discord.slash(`imagine-settings ${subcommand}`, options, ctx);
  const callback = await it.waitForCallback();
  expect(it.isEphemeral).toBe(true);
  if (callback.type === 5) {
    // Deferred (a review channel may have held images to send): the answer is the edited reply.
    const message = await it.waitForOriginal();
    const edit = bot.discord.requests.findLast((r) => r.method === 'PATCH' && r.path.includes(it.token));
    expect((edit!.body as { allowed_mentions?: { parse: string[] } }).allowed_mentions?.parse).toEqual([]);
    return message.content;
  }
  expect(callback.type).toBe(4);
  const data = callback.data as { content: string; allowed_mentions?: { parse: string[] } };
  expect(data.allowed_mentions?.parse).toEqual([]);
  return data.content;
}

const channelId = (bot: BotHarness, name: string) => bot.discord.channel(name).id;
const roles = (bot: BotHarness) => bot.discord.guild.roles as APIRole[];
const roleId = (bot: BotHarness, name: string) => roles(bot).find((r) => r.name === name)!.id;
const botRole = (bot: BotHarness) => roles(bot).find((r) => r.managed)!;
const outcomes = (bot: BotHarness) =>
  bot.logs.filter((l) => l.msg === 'interaction handled' && l.name === 'imagine-settings').map((l) => l.outcome);

describe('/imagine-settings end to end', () => {
  it('registers as a guild-only command that only Manage Server sees by default, named in Chinese too', async () => {
    const bot = await start();
    const registered = bot.discord.commands.list().find((c) => c.name === 'imagine-settings');
    expect(registered).toMatchObject({
      name: 'imagine-settings',
      contexts: [0],
      default_member_permissions: '32',
      name_localizations: { 'zh-CN': '画图设置' },
    });
    expect(registered?.options?.map((o) => o.name)).toEqual([
      'show',
      'review-channel',
      'moderator-role',
      'nsfw-channels',
      'sensitivity',
      'review-all',
      'limits',
    ]);
    const choices = (sub: string) => registered?.options?.find((o) => o.name === sub)?.options?.[0];
    expect(choices('sensitivity')).toMatchObject({
      name: 'level',
      required: true,
      choices: [{ value: 'strict' }, { value: 'standard' }, { value: 'relaxed' }],
    });
    expect(choices('review-all')).toMatchObject({
      name: 'state',
      required: true,
      choices: [{ value: 'on' }, { value: 'off' }],
    });
    expect(bot.discord.errors).toEqual([]);
  });

  it('shows what is in force before anyone chose: the operator’s channel and maximums', async () => {
    const bot = await start({
      env: { REVIEW_CHANNEL_ID: OPERATOR_CHANNEL_ID, USER_HOURLY_QUOTA: '12', GUILD_DAILY_BUDGET: '120' },
    });
    const shown = await settings(bot, 'show');
    expect(shown).toContain(
      `Review channel for flagged images: <#${OPERATOR_CHANNEL_ID}> (the bot operator’s default)`,
    );
    expect(shown).toContain('Who can approve or reject them: members with Manage Messages only');
    expect(shown).toContain('Flagged images in age-restricted channels: posted behind a spoiler');
    expect(shown).toContain(
      'How readily the bot’s own check flags images: **standard** (the bot operator’s thresholds)',
    );
    expect(shown).toContain('Every image reviewed before it is shown: **off**: only flagged images are held');
    expect(shown).toContain('Images per member per hour: **12** (operator maximum: 12)');
    expect(shown).toContain('Images per day for the whole server: **120** (operator maximum: 120)');
  });

  it('sets each setting, shows it, and clears each back to the operator’s defaults', async () => {
    const bot = await start({
      env: { REVIEW_CHANNEL_ID: OPERATOR_CHANNEL_ID, USER_HOURLY_QUOTA: '20', GUILD_DAILY_BUDGET: '200' },
    });
    const review = channelId(bot, 'mod-review');
    const reviewer = roleId(bot, 'Reviewer');

    expect(await settings(bot, 'review-channel', { channel: 'mod-review' })).toBe(
      `✅ Flagged images will now go to <#${review}> for review.`,
    );
    expect(await settings(bot, 'moderator-role', { role: 'Reviewer' })).toBe(
      `✅ Members with <@&${reviewer}> can now approve or reject flagged images.`,
    );
    expect(await settings(bot, 'nsfw-channels', { mode: 'review' })).toBe(
      '✅ In age-restricted channels, flagged images are now held until a moderator approves them.',
    );
    expect(await settings(bot, 'sensitivity', { level: 'strict' })).toBe(
      '✅ The bot’s own NSFW check is now **strict** (borderline images are flagged too). The image service’s flags count as before.',
    );
    expect(await settings(bot, 'review-all', { state: 'on' })).toBe(
      '✅ Every image is now held until a moderator approves it, flagged or not.',
    );
    expect(await settings(bot, 'limits', { 'hourly-quota': 5, 'daily-budget': 50 })).toBe(
      '✅ Limits in this server: **5** images per member per hour, **50** per day for the whole server.',
    );
    let shown = await settings(bot, 'show');
    expect(shown).toContain(`Review channel for flagged images: <#${review}> (chosen here)`);
    expect(shown).toContain(`Who can approve or reject them: members with <@&${reviewer}>`);
    expect(shown).toContain('Flagged images in age-restricted channels: held until a moderator approves them');
    expect(shown).toContain(
      'How readily the bot’s own check flags images: **strict** (borderline images are flagged too)',
    );
    expect(shown).toContain('Every image reviewed before it is shown: **on**: every image waits for a moderator');
    expect(shown).toContain('Images per member per hour: **5** (operator maximum: 20)');
    expect(shown).toContain('Images per day for the whole server: **50** (operator maximum: 200)');

    // One limit alone leaves the other as it was.
    expect(await settings(bot, 'limits', { 'daily-budget': 80 })).toContain(
      '**5** images per member per hour, **80** per day',
    );

    expect(await settings(bot, 'review-channel')).toBe(
      `✅ This server’s review channel is cleared: flagged images go to <#${OPERATOR_CHANNEL_ID}>, the bot operator’s default.`,
    );
    expect(await settings(bot, 'moderator-role')).toMatch(
      /^✅ Moderator role cleared: only members with Manage Messages/,
    );
    expect(await settings(bot, 'nsfw-channels', { mode: 'spoiler' })).toBe(
      '✅ In age-restricted channels, flagged images are now posted behind a spoiler.',
    );
    expect(await settings(bot, 'sensitivity', { level: 'relaxed' })).toContain(
      '**relaxed** (only clear cases are flagged)',
    );
    expect(await settings(bot, 'review-all', { state: 'off' })).toBe(
      '✅ Only flagged images are held for review now; the others are shown at once.',
    );
    expect(await settings(bot, 'limits', { reset: true })).toBe(
      '✅ Limits in this server: **20** images per member per hour, **200** per day for the whole server.',
    );
    shown = await settings(bot, 'show');
    expect(shown).toContain(`<#${OPERATOR_CHANNEL_ID}> (the bot operator’s default)`);
    expect(shown).toContain('members with Manage Messages only');
    expect(shown).toContain('posted behind a spoiler');
    expect(shown).toContain('**relaxed**');
    expect(shown).toContain('**off**: only flagged images are held');
    expect(shown).toContain('**20** (operator maximum: 20)');
    expect(shown).toContain('**200** (operator maximum: 200)');
    expect(bot.discord.errors).toEqual([]);
  });

  it('says flagged images cannot be reviewed when neither the operator nor the server chose a channel', async () => {
    const bot = await start();
    expect(await settings(bot, 'show')).toContain(
      'Review channel for flagged images: none: flagged images can’t be reviewed here',
    );
    await settings(bot, 'review-channel', { channel: 'mod-review' });
    expect(await settings(bot, 'review-channel')).toMatch(
      /^✅ This server’s review channel is cleared\. There is no default/,
    );
    expect(await settings(bot, 'show')).toContain('none: flagged images can’t be reviewed here');
  });

  it.each<[string, InteractionContext]>([
    ['a member', { user: 'alice' }],
    ['a moderator with Manage Messages only', { user: 'mod' }],
  ])('refuses %s without Manage Server, and changes nothing', async (_who, ctx) => {
    const bot = await start();
    const tries = [
      ['show', {}],
      ['nsfw-channels', { mode: 'review' }],
      ['sensitivity', { level: 'relaxed' }],
      ['review-all', { state: 'on' }],
      ['review-channel', { channel: 'mod-review' }],
      ['limits', { 'hourly-quota': 1 }],
    ] as const;
    for (const [subcommand, options] of tries) {
      expect(await settings(bot, subcommand, options, ctx)).toBe(
        'Only members with the **Manage Server** permission can use `/imagine-settings`. Nothing was changed.',
      );
    }
    const shown = await settings(bot, 'show');
    expect(shown).toContain('posted behind a spoiler');
    expect(shown).toContain('none: flagged images can’t be reviewed here');
    expect(shown).toContain('**20** (operator maximum: 20)');
    expect(shown).toContain('**standard**');
    expect(shown).toContain('**off**: only flagged images are held');
    expect(outcomes(bot).filter((o) => o === 'refused:not_manager')).toHaveLength(tries.length);
  });

  it('lets a member with Manage Server who is not the owner change settings', async () => {
    const bot = await start();
    expect(
      await settings(bot, 'nsfw-channels', { mode: 'review' }, { user: 'alice', permissions: ['ManageGuild'] }),
    ).toMatch(/^✅/);
    expect(await settings(bot, 'show')).toContain('held until a moderator approves them');
  });

  it('refuses a review channel where the bot cannot post images, naming what it lacks, and stores nothing', async () => {
    const bot = await start();
    const content = await settings(bot, 'review-channel', { channel: 'locked' });
    expect(content).toBe(
      `I can’t use <#${channelId(bot, 'locked')}> for review: I’m missing **Attach Files**, **Embed Links** there. Grant them, or choose another channel. Nothing was changed.`,
    );
    expect(await settings(bot, 'show')).toContain('none: flagged images can’t be reviewed here');
    expect(outcomes(bot)).toContain('refused:missing_permissions');
  });

  it('accepts a channel everyone can see, with a warning that members will see flagged images there', async () => {
    const bot = await start();
    const general = channelId(bot, 'general');
    const lines = (await settings(bot, 'review-channel', { channel: 'general' })).split('\n');
    expect(lines).toEqual([
      `✅ Flagged images will now go to <#${general}> for review.`,
      `⚠️ Everyone in this server can see <#${general}>, so members will see flagged images there. Consider hiding it from @everyone.`,
    ]);
    expect(await settings(bot, 'show')).toContain(`<#${general}> (chosen here)`);
    // A moderators-only channel gets no warning.
    expect(await settings(bot, 'review-channel', { channel: 'mod-review' })).not.toContain('⚠️');
  });

  it('sends images held for want of a review channel to the new one, and says how many', async () => {
    const bot = await start({ script: () => ({ processingMs: 100, nsfw: true }) });
    const asked = bot.discord.slash('imagine', { prompt: 'a beach' }, { user: 'alice' });
    const held = await asked.waitForOriginal(finished);
    expect(held.content).toMatch(/no review channel/);
    expect(held.attachments).toEqual([]);

    const content = await settings(bot, 'review-channel', { channel: 'mod-review' });
    expect(content.split('\n')).toEqual([
      `✅ Flagged images will now go to <#${channelId(bot, 'mod-review')}> for review.`,
      '📨 1 image(s) already waiting for review were sent there.',
    ]);
    const [reviewMessage] = bot.discord.messages(channelId(bot, 'mod-review'));
    expect(reviewMessage?.attachments).toHaveLength(1);
    // Nothing was left waiting: choosing a channel again routes nothing more.
    expect(await settings(bot, 'review-channel', { channel: 'mod-review' })).not.toContain('📨');
  });

  it.each<[string, (bot: BotHarness) => string, (bot: BotHarness) => string]>([
    [
      '@everyone',
      () => '@everyone',
      () =>
        '@everyone can’t be the moderator role: every member could approve flagged images. Choose your moderators’ role. Nothing was changed.',
    ],
    [
      'the bot’s own role',
      (bot) => botRole(bot).name,
      (bot) =>
        `<@&${botRole(bot).id}> belongs to a bot or an integration, so it can’t be given to moderators. Choose a role you give to people. Nothing was changed.`,
    ],
  ])('refuses %s as the moderator role', async (_name, role, expected) => {
    const bot = await start();
    expect(await settings(bot, 'moderator-role', { role: role(bot) })).toBe(expected(bot));
    expect(await settings(bot, 'show')).toContain('members with Manage Messages only');
  });

  it('refuses limits above the operator’s maximums, naming them, and explains what to give', async () => {
    const bot = await start({ env: { USER_HOURLY_QUOTA: '10', GUILD_DAILY_BUDGET: '100' } });
    expect(await settings(bot, 'limits', { 'hourly-quota': 11 })).toBe(
      'The hourly quota can be at most **10** images per member, the bot operator’s maximum. Nothing was changed.',
    );
    expect(await settings(bot, 'limits', { 'hourly-quota': 5, 'daily-budget': 101 })).toBe(
      'The daily budget can be at most **100** images for the server, the bot operator’s maximum. Nothing was changed.',
    );
    expect(await settings(bot, 'limits')).toBe(
      'Give `hourly-quota` (at most 10), `daily-budget` (at most 100), or `reset: True` to go back to the operator’s maximums.',
    );
    expect(await settings(bot, 'show')).toContain('**10** (operator maximum: 10)');
    // Exactly the maximum is fine; Discord's client itself keeps values below 1 out.
    expect(await settings(bot, 'limits', { 'hourly-quota': 10, 'daily-budget': 100 })).toMatch(/^✅/);
    expect(() => bot.discord.slash('imagine-settings limits', { 'hourly-quota': 2.5 }, { user: 'owner' })).toThrow(
      /integer/,
    );
  });

  it('with reset, sets the limits given and sends the others back to the maximums', async () => {
    const bot = await start();
    await settings(bot, 'limits', { 'hourly-quota': 3, 'daily-budget': 30 });
    expect(await settings(bot, 'limits', { reset: true, 'daily-budget': 40 })).toBe(
      '✅ Limits in this server: **20** images per member per hour, **40** per day for the whole server.',
    );
  });

  it('answers a Chinese-speaking manager in Chinese', async () => {
    const bot = await start();
    const shown = await settings(bot, 'show', {}, { user: 'owner', locale: 'zh-CN' });
    expect(shown).toContain('本服务器的 /imagine 设置');
    expect(shown).toContain('每位成员每小时的图片数：**20**');
    expect(await settings(bot, 'nsfw-channels', { mode: 'review' }, { user: 'alice', locale: 'zh-CN' })).toContain(
      '管理服务器',
    );
    expect(shown).toContain('机器人自身检查标记图片的严格程度：**标准**');
    expect(await settings(bot, 'review-all', { state: 'on' }, { user: 'owner', locale: 'zh-CN' })).toContain(
      '现在每张图片都会被暂扣',
    );
  });

  it('warns that review of every image needs a review channel when the server has none', async () => {
    const bot = await start();
    const lines = (await settings(bot, 'review-all', { state: 'on' })).split('\n');
    expect(lines).toEqual([
      '✅ Every image is now held until a moderator approves it, flagged or not.',
      '⚠️ This server has no review channel yet, so no image can be approved: choose one with `/imagine-settings review-channel`.',
    ]);
    await settings(bot, 'review-channel', { channel: 'mod-review' });
    expect(await settings(bot, 'review-all', { state: 'on' })).not.toContain('⚠️');
    expect(outcomes(bot)).toContain('settings:review-all:on');
  });

  it('holds a clean image for review once the server reviews every image, and shows the next at once when it stops', async () => {
    const bot = await start();
    await settings(bot, 'review-channel', { channel: 'mod-review' });
    await settings(bot, 'review-all', { state: 'on' });
    const asked = bot.discord.slash('imagine', { prompt: 'a beach' }, { user: 'alice' });
    const held = await asked.waitForOriginal(finished);
    expect(held.attachments).toEqual([]);
    expect(held.content).toMatch(
      /^🔞 This server has a moderator look at every image before it is shown\. A moderator will review it/,
    );
    const [review] = bot.discord.messages(channelId(bot, 'mod-review'));
    expect(review?.attachments).toHaveLength(1);
    expect(review?.embeds[0]?.fields?.find((f) => f.name === 'Why it was held')?.value).toBe(
      'This server reviews every image',
    );
    // Nothing flagged it: once approved it is shown as it is, not behind a spoiler.
    bot.discord.click(review!, 'Approve', { user: 'mod' });
    const approved = await asked.waitForOriginal((m) => m.attachments.length > 0);
    expect(approved.attachments[0]?.filename).not.toMatch(/^SPOILER_/);

    await settings(bot, 'review-all', { state: 'off' });
    const shown = await bot.discord
      .slash('imagine', { prompt: 'a beach again' }, { user: 'alice' })
      .waitForOriginal(finished);
    expect(shown.attachments).toHaveLength(1);
    expect(bot.discord.messages(channelId(bot, 'mod-review'))).toHaveLength(1);
  });
});

describe.each([
  ['SQLite', async () => ({})],
  [
    'Redis',
    async () => {
      const redis = await startRedis();
      cleanups.push(redis.stop);
      return { STORAGE_URL: redis.url };
    },
  ],
] as const)('/imagine-settings on %s', (backend, storage) => {
  it.skipIf(backend === 'Redis' && skipWithoutRedis)('keeps every choice across a restart', async () => {
    const bot = await start({ env: await storage() });
    await settings(bot, 'review-channel', { channel: 'mod-review' });
    await settings(bot, 'moderator-role', { role: 'Reviewer' });
    await settings(bot, 'nsfw-channels', { mode: 'review' });
    await settings(bot, 'sensitivity', { level: 'strict' });
    await settings(bot, 'review-all', { state: 'on' });
    await settings(bot, 'limits', { 'hourly-quota': 7, 'daily-budget': 70 });

    await bot.restart();
    expect(bot.logs.filter((l) => l.msg === 'qwen-imagine is running').map((l) => l.storage)).toEqual([
      backend.toLowerCase(),
      backend.toLowerCase(),
    ]);
    const shown = await settings(bot, 'show');
    expect(shown).toContain(`<#${channelId(bot, 'mod-review')}> (chosen here)`);
    expect(shown).toContain(`members with <@&${roleId(bot, 'Reviewer')}>`);
    expect(shown).toContain('held until a moderator approves them');
    expect(shown).toContain('**strict** (borderline images are flagged too)');
    expect(shown).toContain('**on**: every image waits for a moderator');
    expect(shown).toContain('**7** (operator maximum: 20)');
    expect(shown).toContain('**70** (operator maximum: 200)');
    expect(bot.discord.errors).toEqual([]);
  });
});
