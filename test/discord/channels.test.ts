// Whether a channel is age-restricted, read over REST when an image is published: against the
// fake Discord's channels and threads, as a moderator changes them.
import { Routes, type ThreadChannel } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createChannelAgeCheck } from '../../src/discord/channels.ts';
import { createLogger } from '../../src/logger.ts';
import type { FakeGuildSpec } from '../fakes/discord/types.ts';
import { startHarness, type Harness } from './helpers.ts';
import { Writable } from 'node:stream';

const GUILD: FakeGuildSpec = {
  name: 'Threads',
  channels: [
    { name: 'general' },
    { name: 'nsfw', nsfw: true },
    { name: 'news', type: 5 },
    { name: 'late-night', type: 11, parent: 'nsfw' },
    { name: 'daytime', type: 11, parent: 'general' },
    { name: 'secret', type: 12, parent: 'nsfw' },
    { name: 'announced', type: 10, parent: 'news' },
    { name: 'hidden', nsfw: true, overwrites: [{ role: 'Qwen Imagine', deny: ['ViewChannel'] }] },
  ],
};

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function setup(options: { cacheMs?: number } = {}) {
  h = await startHarness({ guilds: [GUILD] });
  const warnings: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      warnings.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  const clock = { now: 0 };
  const check = createChannelAgeCheck({
    rest: h.client.rest,
    logger: createLogger({ level: 'warn', format: 'json', secrets: [], destination: sink }),
    now: () => clock.now,
    ...options,
  });
  const id = (name: string) => h!.discord.channel(name).id;
  const reads = () =>
    h!.discord.requests
      .filter((r) => r.method === 'GET' && r.route === '/channels/{channel_id}')
      .map((r) => r.path.split('/').at(-1));
  return { discord: h.discord, client: h.client, check, id, reads, clock, warnings };
}

describe('the age check over REST', () => {
  it.each([
    ['a text channel', 'general', false],
    ['an age-restricted channel', 'nsfw', true],
    ['a public thread of an age-restricted channel', 'late-night', true],
    ['a private thread of an age-restricted channel', 'secret', true],
    ['a thread of a channel that is not age-restricted', 'daytime', false],
    ['a thread of an announcement channel', 'announced', false],
  ])('reads %s', async (_name, channel, ageRestricted) => {
    const { check, id } = await setup();
    expect(await check(id(channel))).toBe(ageRestricted);
    expect(h!.discord.errors).toEqual([]);
  });

  it('follows a channel made age-restricted, and its threads with it, on a fresh read', async () => {
    const { discord, client, check, id } = await setup();
    expect(await check(id('daytime'))).toBe(false);
    const updated = new Promise((resolve) => client.once('channelUpdate', resolve));
    discord.setAgeRestricted('general', true);
    await updated;
    // Discord's gateway tells every bot too: discord.js's own cache follows.
    expect((client.channels.cache.get(id('daytime')) as ThreadChannel).parent?.nsfw).toBe(true);
    expect(await check(id('daytime'), { fresh: true })).toBe(true);
    expect(await check(id('general'), { fresh: true })).toBe(true);
    discord.setAgeRestricted('general', false);
    expect(await check(id('daytime'), { fresh: true })).toBe(false);
  });

  it('shares one read per channel for a short while, unless asked for a fresh one', async () => {
    const { check, id, reads, clock } = await setup({ cacheMs: 10_000 });
    await Promise.all([check(id('late-night')), check(id('late-night'))]);
    expect(reads()).toEqual([id('late-night'), id('nsfw')]);
    clock.now += 9_999;
    expect(await check(id('nsfw'))).toBe(true);
    expect(reads()).toHaveLength(2);
    await check(id('nsfw'), { fresh: true });
    expect(reads()).toHaveLength(3);
    clock.now += 10_000;
    await check(id('late-night'));
    expect(reads()).toHaveLength(5);
  });

  it.each([
    ['a channel the bot cannot see', 'hidden', 50001],
    ['a deleted channel', '123456789012345678', 10003],
  ])('answers not age-restricted, and says why, for %s', async (_name, channel, code) => {
    const { discord, check, reads, warnings } = await setup();
    discord.expectError(code);
    const channelId = channel === 'hidden' ? discord.channel('hidden').id : channel;
    expect(await check(channelId)).toBe(false);
    expect(discord.errors).toEqual([]);
    expect(warnings.map((w) => [w.msg, w.channelId])).toEqual([
      ['could not read whether the channel is age-restricted; treating it as not age-restricted', channelId],
    ]);
    // Not remembered: the next read asks again.
    discord.expectError(code);
    await check(channelId);
    expect(reads()).toHaveLength(2);
  });

  it('is what GET /channels/{id} shows: a thread carries its parent, no age restriction of its own', async () => {
    const { client, id } = await setup();
    const thread = (await client.rest.get(Routes.channel(id('late-night')))) as Record<string, unknown>;
    expect(thread).toMatchObject({
      type: 11,
      parent_id: id('nsfw'),
      thread_metadata: { archived: false, locked: false },
    });
    expect(thread).not.toHaveProperty('nsfw');
    // The gateway listed it among the guild's threads, so interactions in it resolve.
    expect(client.channels.cache.get(id('secret'))?.isThread()).toBe(true);
  });
});
