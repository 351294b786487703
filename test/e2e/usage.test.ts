// What the operator pays, end to end: jobs through the real bot, then /imagine-usage and
// `npm run usage` read the ledger the finisher wrote; on SQLite across a restart, and on one
// Redis shared by two bot processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIEmbed } from 'discord-api-types/v10';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeDiscord, type FakeDiscord, type FakeInteraction } from '../fakes/discord/server.ts';
import type { InteractionContext } from '../fakes/discord/types.ts';
import { startFakePpinfra, type FakePpinfra, type FakeTaskScript } from '../fakes/ppinfra.ts';
import { skipWithoutRedis, startRedis } from '../fakes/redis.ts';
import { MODERATED_GUILD } from './guilds.ts';
import { deployCommands, finished, startBotHarness, type BotHarness } from './harness.ts';
import { sharedRedisEnv, startShardProcess } from './shard-process.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
let h: BotHarness | undefined;
afterEach(async () => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await h?.close();
  h = undefined;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Prompts say what the fake image service does with them. */
const script = (req: { prompt: string }): FakeTaskScript =>
  req.prompt.includes('fail')
    ? { processingMs: 100, outcome: 'fail', reason: 'no luck' }
    : { processingMs: 150, nsfw: req.prompt.includes('flag') };

/** The ephemeral answer to `/imagine-usage`, checked to ping nobody. */
async function usage(
  discord: FakeDiscord,
  ctx: InteractionContext = { user: 'owner' },
): Promise<{ content?: string; embed?: APIEmbed }> {
  const it = discord.slash('imagine-usage', {}, ctx);
  const callback = await it.waitForCallback({ timeoutMs: 10_000 });
  expect(callback.type).toBe(4);
  expect(it.isEphemeral).toBe(true);
  const data = callback.data as { content?: string; embeds?: APIEmbed[]; allowed_mentions?: { parse: string[] } };
  expect(data.allowed_mentions?.parse).toEqual([]);
  return { content: data.content, embed: data.embeds?.[0] };
}

const field = (embed: APIEmbed | undefined, name: string) => embed?.fields?.find((f) => f.name === name)?.value;

/** `npm run usage` as a child process in an empty folder (no .env), with only these variables. */
async function runUsageCli(args: string[], env: Record<string, string>) {
  const cwd = mkdtempSync(join(tmpdir(), 'qi-usage-cli-'));
  cleanups.push(() => rmSync(cwd, { recursive: true, force: true }));
  const child = spawn(process.execPath, [join(ROOT, 'src', 'cli', 'usage.ts'), ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = await once(child, 'exit');
  return { code: code as number, stdout, stderr };
}

describe('/imagine-usage and npm run usage on SQLite', () => {
  it('counts exactly the jobs run (delivered, failed, flagged), with the cost, across a restart, and refuses members without Manage Server', async () => {
    const bot = await startBotHarness({
      discord: { guilds: [MODERATED_GUILD] },
      script,
      env: { PRICE_PER_IMAGE: '0.035', PRICE_CURRENCY: 'USD', GUILD_DAILY_BUDGET: '100', USER_MAX_CONCURRENT: '5' },
    });
    h = bot;
    await deployCommands(bot);
    const asks: [string, string][] = [
      ['alice', 'a lighthouse'],
      ['alice', 'a harbour'],
      ['bob', 'a boat'],
      ['alice', 'please fail'],
      ['mod', 'a flag storm'],
    ];
    const counted = new Promise<void>((resolve) => {
      let n = 0;
      bot.waitForLog((l) => l.msg === 'usage recorded' && ++n === asks.length).then(() => resolve());
    });
    const messages = await Promise.all(
      asks.map(([user, prompt]) =>
        bot.discord
          .slash('imagine', { prompt }, { user, channel: 'general' })
          .waitForOriginal(finished, { timeoutMs: 10_000 }),
      ),
    );
    expect(messages.map((m) => (m.attachments.length ? 'image' : [...m.content][0]!))).toEqual([
      'image',
      'image',
      'image',
      '❌',
      '🔞',
    ]);
    await counted;

    const ids = {
      alice: bot.discord.user('alice').id,
      bob: bot.discord.user('bob').id,
      mod: bot.discord.user('mod').id,
    };
    // bob and mod tie with one image each: the smaller id first.
    const ties = [ids.bob, ids.mod].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    const expectShown = (embed: APIEmbed | undefined, left: number, budget: number) => {
      expect(embed?.title).toBe('📊 /imagine usage in this server');
      // Four images (three shown, one held for review): 4 × 0.035.
      for (const period of ['Today', 'Last 7 days', 'This month'])
        expect(field(embed, period)).toBe('**4** image(s) · 0.140 USD\n1 failed · 1 flagged');
      expect(field(embed, 'Daily budget left')).toBe(`**${left}** of ${budget} images (last 24 hours)`);
      expect(field(embed, 'Top requesters this month')).toBe(
        [`1. <@${ids.alice}>: 2`, `2. <@${ties[0]}>: 1`, `3. <@${ties[1]}>: 1`].join('\n'),
      );
    };
    // Five jobs started against the daily budget, the failed one too (its task was created).
    expectShown((await usage(bot.discord)).embed, 95, 100);

    await bot.restart();
    expectShown((await usage(bot.discord)).embed, 95, 100);
    // The server's own, lower, budget from /imagine-settings.
    await bot.discord.slash('imagine-settings limits', { 'daily-budget': 20 }, { user: 'owner' }).waitForCallback();
    expectShown((await usage(bot.discord)).embed, 15, 20);

    // In Chinese, for a member with Manage Server who is not the owner.
    const zh = (await usage(bot.discord, { user: 'bob', permissions: ['ManageGuild'], locale: 'zh-CN' })).embed;
    expect(field(zh, '今天')).toBe('**4** 张图片 · 0.140 USD\n失败 1 次 · 被标记 1 张');

    for (const user of ['alice', 'mod']) {
      expect(await usage(bot.discord, { user })).toEqual({
        content: 'Only members with the **Manage Server** permission can use `/imagine-usage`.',
        embed: undefined,
      });
    }
    // The router logs each outcome once the answer is sent: wait for the sixth line.
    const handled = (l: Record<string, unknown>) => l.msg === 'interaction handled' && l.name === 'imagine-usage';
    await bot.waitForLog((l) => handled(l) && bot.logs.filter(handled).length === 6);
    expect(bot.logs.filter(handled).map((l) => l.outcome)).toEqual([
      'usage:4',
      'usage:4',
      'usage:4',
      'usage:4',
      'refused:not_manager',
      'refused:not_manager',
    ]);
    expect(bot.discord.errors).toEqual([]);

    // The operator's view of the same file.
    const env = { STORAGE_URL: bot.storageUrl, PRICE_PER_IMAGE: '0.035', PRICE_CURRENCY: 'USD' };
    const json = await runUsageCli(['--json'], env);
    expect(json).toMatchObject({ code: 0, stderr: '' });
    const report = JSON.parse(json.stdout);
    const totals = { images: 4, edits: 0, upscales: 0, failed: 1, flagged: 1, cost: '0.140' };
    expect(report.price).toEqual({ perImage: '0.035', currency: 'USD' });
    expect(report.guilds).toEqual([{ guildId: bot.discord.guild.id, today: totals, lastDays: totals, month: totals }]);
    expect(report.total).toEqual({ today: totals, lastDays: totals, month: totals });
    expect(report.periods.lastDays.days).toBe(7);

    const table = await runUsageCli(['--days', '30'], env);
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toMatch(/^Images made, \d{4}-\d\d-\d\d \(UTC\), at 0\.035 USD per image$/);
    expect(lines.find((l) => l.startsWith('guild'))?.split(/\s{2,}/)).toEqual([
      'guild',
      'today',
      'last 30 days',
      'this month',
      'failed',
      'flagged',
    ]);
    expect(lines.find((l) => l.startsWith(bot.discord.guild.id))?.split(/\s{2,}/)).toEqual([
      bot.discord.guild.id,
      '4 (0.140 USD)',
      '4 (0.140 USD)',
      '4 (0.140 USD)',
      '1',
      '1',
    ]);
    expect(lines.find((l) => l.startsWith('total'))?.split(/\s{2,}/)).toEqual([
      'total',
      '4 (0.140 USD)',
      '4 (0.140 USD)',
      '4 (0.140 USD)',
      '1',
      '1',
    ]);
  });

  it('npm run usage says clearly when the storage cannot be opened, and exits 2', async () => {
    const missing = await runUsageCli([], {
      STORAGE_URL: `sqlite://${join(tmpdir(), 'qi-no-such-folder', 'bot.sqlite')}`,
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /^qwen-imagine usage: the SQLite storage at STORAGE_URL \(sqlite:\/\/.*\) does not exist/,
    );
    const refused = await runUsageCli(['--json'], { STORAGE_URL: 'redis://user:s3cret@127.0.0.1:1' });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      'the Redis storage at STORAGE_URL (redis://***@127.0.0.1:1) cannot be reached: connection refused',
    );
    expect(refused.stderr).not.toContain('s3cret');
    expect(refused.stdout).toBe('');
    const wrongDays = await runUsageCli(['--days', 'x'], { STORAGE_URL: 'memory://' });
    expect(wrongDays.code).toBe(2);
    expect(wrongDays.stderr).toContain('--days must be a whole number from 1 to 400.');
  });
});

describe.skipIf(skipWithoutRedis)('usage on one Redis shared by two bot processes', () => {
  /** `npm start` as shard `shard` of 2, resolved once it serves; counts its 'usage recorded' lines. */
  async function startShard(shard: number, env: Record<string, string>, cwd: string) {
    const started = await startShardProcess(shard, env, cwd, children);
    return {
      child: started.child,
      recorded: () =>
        started
          .stdout()
          .split('\n')
          .filter((l) => l.includes('"msg":"usage recorded"') && l.includes('"counted":true')).length,
    };
  }

  it('adds up exactly: every job counted once, in its own guild, whichever process finished it', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const cwd = mkdtempSync(join(tmpdir(), 'qi-usage-multi-'));
    cleanups.push(() => rmSync(cwd, { recursive: true, force: true }));
    const discord = await startFakeDiscord({ shards: 2, guilds: [{ name: 'Alpha' }, { name: 'Beta' }] });
    cleanups.push(() => discord.stop());
    const api: FakePpinfra = await startFakePpinfra({ script });
    cleanups.push(() => api.close());
    const env = sharedRedisEnv(
      { discord, api, redis },
      { PRICE_PER_IMAGE: '0.5', LOG_LEVEL: 'debug', USER_MAX_CONCURRENT: '10' },
    );
    const [alpha, beta] = discord.guilds;
    const shards = await Promise.all([startShard(0, env, cwd), startShard(1, env, cwd)]);

    // Alpha: six images (one flagged, shown behind a spoiler in its age-restricted channel) and a failure; Beta: four images.
    const asked: FakeInteraction[] = [];
    const ask = (guild: typeof alpha, user: string, prompt: string, channel?: string) =>
      asked.push(
        discord.slash(
          'imagine',
          { prompt },
          { guild: guild!.id, user, ...(channel ? { channel: discord.channel(channel, guild!.id).id } : {}) },
        ),
      );
    for (let i = 0; i < 3; i++) ask(alpha, 'alice', `alpha alice ${i}`);
    for (let i = 0; i < 2; i++) ask(alpha, 'bob', `alpha bob ${i}`);
    ask(alpha, 'bob', 'alpha flag', 'nsfw');
    ask(alpha, 'alice', 'alpha fail');
    for (let i = 0; i < 4; i++) ask(beta, i % 2 ? 'mod' : 'owner', `beta ${i}`);
    const messages = await Promise.all(asked.map((it) => it.waitForOriginal(finished, { timeoutMs: 20_000 })));
    expect(messages.filter((m) => m.attachments.length).length).toBe(10);
    // Each job is counted once, by whichever process finished it, after its message is final.
    const recorded = () => shards[0]!.recorded() + shards[1]!.recorded();
    await new Promise<void>((resolve) => {
      const check = () => recorded() >= 11 && resolve();
      for (const shard of shards) shard.child.stdout!.on('data', check);
      check();
    });
    expect(recorded()).toBe(11);

    const inAlpha = (await usage(discord, { guild: alpha!.id, user: 'owner' })).embed;
    expect(field(inAlpha, 'Today')).toBe('**6** image(s) · 3.00\n1 failed · 1 flagged');
    // Seven jobs started in Alpha (the failed task was created, so not refunded), counted in Redis.
    expect(field(inAlpha, 'Daily budget left')).toBe('**193** of 200 images (last 24 hours)');
    // alice and bob three images each (bob's flagged one counts): the smaller id first.
    const [first, second] = [discord.user('alice').id, discord.user('bob').id].sort((a, b) =>
      BigInt(a) < BigInt(b) ? -1 : 1,
    );
    expect(field(inAlpha, 'Top requesters this month')).toBe(`1. <@${first}>: 3\n2. <@${second}>: 3`);
    const inBeta = (await usage(discord, { guild: beta!.id, user: 'owner' })).embed;
    expect(field(inBeta, 'Last 7 days')).toBe('**4** image(s) · 2.00\n0 failed · 0 flagged');

    const json = await runUsageCli(['--json'], { STORAGE_URL: redis.url, PRICE_PER_IMAGE: '0.5' });
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.total.today).toEqual({ images: 10, edits: 0, upscales: 0, failed: 1, flagged: 1, cost: '5.00' });
    expect(
      Object.fromEntries(
        report.guilds.map((g: { guildId: string; month: { images: number } }) => [g.guildId, g.month.images]),
      ),
    ).toEqual({ [alpha!.id]: 6, [beta!.id]: 4 });
  });
});
