// Sharding in the fake Discord, against the real discord.js Client: `shards` in /gateway/bot,
// `shard` in IDENTIFY, guilds split by `(guild_id >> 22) % num_shards`, each guild's events on
// the shard that holds it, DMs on shard 0.
import { once } from 'node:events';
import { Client, Events, GatewayIntentBits, type Interaction } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { shardOfGuild, snowflakeOnShard, startFakeDiscord, type FakeDiscord } from '../fakes/discord/server.ts';
import type { FakeDiscordOptions } from '../fakes/discord/types.ts';

const TWO_GUILDS: FakeDiscordOptions = { shards: 2, guilds: [{ name: 'Alpha' }, { name: 'Beta' }] };

interface ShardClient {
  client: Client;
  /** Interactions this client received, in order. */
  received: Interaction[];
  /** Resolves with the next interaction this client receives. */
  next(): Promise<Interaction>;
}

let discord: FakeDiscord | undefined;
const clients: Client[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) await client.destroy();
  await discord?.stop();
  discord = undefined;
});

/** A discord.js client logged in to the fake with `options` (e.g. one shard of two), every interaction answered with its shard id. */
async function connect(
  d: FakeDiscord,
  options: { shards?: number[] | 'auto'; shardCount?: number },
): Promise<ShardClient> {
  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    rest: { api: d.apiUrl, retries: 1, timeout: 5000 },
    ...options,
  });
  clients.push(client);
  const received: Interaction[] = [];
  client.on(Events.InteractionCreate, (interaction) => {
    received.push(interaction);
    if (interaction.isChatInputCommand())
      void interaction.reply(`shard ${interaction.guild?.shardId ?? client.ws.shards.firstKey()}`);
  });
  const ready = once(client, Events.ClientReady);
  await client.login(d.token);
  await ready;
  return { client, received, next: () => once(client, Events.InteractionCreate).then(([i]) => i as Interaction) };
}

describe('fake Discord sharding with the real discord.js client', () => {
  it('announces the shard count in /gateway/bot and spreads guilds without ids over the shards', async () => {
    discord = await startFakeDiscord({
      shards: 3,
      guilds: [{ name: 'A' }, { name: 'B' }, { name: 'C' }, { name: 'D' }, { name: 'E', id: snowflakeOnShard(2, 3) }],
    });
    expect(discord.shards).toBe(3);
    expect(discord.guilds.map((g) => discord!.shardOf(g.id))).toEqual([0, 1, 2, 0, 2]);
    expect(discord.guilds.map((g) => shardOfGuild(g.id, 3))).toEqual([0, 1, 2, 0, 2]);
    expect(discord.shardOf('B')).toBe(1);
    const res = await fetch(`${discord.apiUrl}/v10/gateway/bot`, {
      headers: { authorization: `Bot ${discord.token}` },
    });
    expect(await res.json()).toMatchObject({
      url: discord.gatewayUrl,
      shards: 3,
      session_start_limit: { max_concurrency: 1 },
    });
  });

  it('keeps explicit guild ids, and puts the default guild on shard 0', async () => {
    const onOne = snowflakeOnShard(1, 2);
    discord = await startFakeDiscord({ shards: 2, guilds: [{ name: 'Pinned', id: onOne }] });
    expect(discord.guild.id).toBe(onOne);
    expect(discord.shardOf()).toBe(1);
    await discord.stop();
    discord = await startFakeDiscord({ shards: 2 });
    expect(discord.guild.name).toBe('Test Guild');
    expect(discord.shardOf()).toBe(0);
  });

  it('two clients, one per shard: each identifies with its shard and gets only its guilds', async () => {
    discord = await startFakeDiscord(TWO_GUILDS);
    const zero = await connect(discord, { shards: [0], shardCount: 2 });
    const one = await connect(discord, { shards: [1], shardCount: 2 });
    const identifies = discord.gateway.received
      .filter((p) => p.op === 2)
      .map((p) => (p.d as { shard: number[] }).shard);
    expect(identifies).toEqual([
      [0, 2],
      [1, 2],
    ]);
    expect([...zero.client.guilds.cache.values()].map((g) => g.name)).toEqual(['Alpha']);
    expect([...one.client.guilds.cache.values()].map((g) => g.name)).toEqual(['Beta']);
    expect(one.client.guilds.cache.first()?.shardId).toBe(1);
    // READY lists only the session's guilds, too.
    const readies = [...discord.gateway.sessions.values()].map(
      (s) => JSON.parse(s.history[0]!.text) as { t: string; d: { guilds: { id: string }[]; shard: number[] } },
    );
    expect(readies.map((r) => [r.t, r.d.shard, r.d.guilds.map((g) => g.id)])).toEqual([
      ['READY', [0, 2], [discord.channel('general', 'Alpha').guild_id]],
      ['READY', [1, 2], [discord.channel('general', 'Beta').guild_id]],
    ]);
    expect(discord.errors).toEqual([]);
  });

  it("an interaction in a guild reaches only the client of that guild's shard; DMs reach shard 0", async () => {
    discord = await startFakeDiscord(TWO_GUILDS);
    const zero = await connect(discord, { shards: [0], shardCount: 2 });
    const one = await connect(discord, { shards: [1], shardCount: 2 });

    const inBeta = discord.slash('imagine', { prompt: 'a kite' }, { guild: 'Beta' });
    expect((await inBeta.waitForOriginal()).content).toBe('shard 1');
    const inAlpha = discord.slash('imagine', { prompt: 'a boat' }, { guild: 'Alpha', user: 'bob' });
    expect((await inAlpha.waitForOriginal()).content).toBe('shard 0');
    const dm = discord.slash('imagine', { prompt: 'a bee' }, { dm: true });
    expect((await dm.waitForOriginal()).content).toBe('shard 0');

    expect(zero.received.map((i) => i.id)).toEqual([inAlpha.id, dm.id]);
    expect(one.received.map((i) => i.id)).toEqual([inBeta.id]);
    // What the gateway sent: INTERACTION_CREATE only in the owning shard's session.
    const sent = [...discord.gateway.sessions.values()].map((s) =>
      s.history
        .map((h) => JSON.parse(h.text) as { t: string; d: { id?: string } })
        .filter((p) => p.t === 'INTERACTION_CREATE')
        .map((p) => p.d.id),
    );
    expect(sent).toEqual([[inAlpha.id, dm.id], [inBeta.id]]);
    expect(discord.errors).toEqual([]);
  });

  it('one client running every shard (shards: auto) gets both guilds, each on its shard', async () => {
    discord = await startFakeDiscord({ ...TWO_GUILDS, maxConcurrency: 2 });
    const both = await connect(discord, { shards: 'auto' });
    expect(both.client.options.shardCount).toBe(2);
    expect([...both.client.guilds.cache.values()].map((g) => [g.name, g.shardId])).toEqual([
      ['Alpha', 0],
      ['Beta', 1],
    ]);
    expect((await discord.slash('imagine', { prompt: 'x' }, { guild: 'Beta' }).waitForOriginal()).content).toBe(
      'shard 1',
    );
    expect((await discord.slash('imagine', { prompt: 'y' }, { guild: 'Alpha' }).waitForOriginal()).content).toBe(
      'shard 0',
    );
  });

  it('refuses to simulate an interaction whose shard has no session, naming the shard', async () => {
    discord = await startFakeDiscord(TWO_GUILDS);
    await connect(discord, { shards: [0], shardCount: 2 });
    expect(() => discord!.slash('imagine', { prompt: 'x' }, { guild: 'Beta' })).toThrow(
      /no bot session on shard 1 of 2/,
    );
    expect(() => discord!.slash('imagine', { prompt: 'x' }, { guild: 'Alpha' })).not.toThrow();
  });

  it('a shard that reconnects gets the events it missed, and only its own', async () => {
    discord = await startFakeDiscord(TWO_GUILDS);
    const zero = await connect(discord, { shards: [0], shardCount: 2 });
    const one = await connect(discord, { shards: [1], shardCount: 2 });
    const resumed = once(one.client, Events.ShardResume);
    // Only shard 1's connection goes down (discord.js resumes after 4000).
    const oneSession = [...discord.gateway.sessions.values()].find((s) => s.shard[0] === 1)!;
    const closed = once(discord.gateway, 'close');
    discord.gateway.disconnectSession(oneSession.id, 4000);
    await closed;
    const missed = discord.slash('imagine', { prompt: 'while away' }, { guild: 'Beta' });
    await resumed;
    expect((await missed.waitForOriginal()).content).toBe('shard 1');
    expect(zero.received).toEqual([]);
    expect(discord.gateway.received.filter((p) => p.op === 6)).toMatchObject([{ d: { session_id: oneSession.id } }]);
    expect(discord.errors).toEqual([]);
  });
});

/** A bare WebSocket that says HELLO-IDENTIFY and collects what the gateway answers. */
async function identifyRaw(
  d: FakeDiscord,
  shard: unknown,
): Promise<{
  closed: Promise<number>;
  inbox: { t: string | null; d: unknown }[];
  ws: WebSocket;
  ready: Promise<void>;
}> {
  const ws = new WebSocket(`${d.gatewayUrl}?v=10&encoding=json`);
  const inbox: { op: number; t: string | null; d: unknown }[] = [];
  let onGuilds: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onGuilds = resolve));
  ws.on('message', (data) => {
    const payload = JSON.parse(String(data)) as { op: number; t: string | null; d: unknown };
    inbox.push(payload);
    if (payload.op === 10)
      ws.send(
        JSON.stringify({
          op: 2,
          d: { token: d.token, intents: 1, properties: {}, ...(shard === undefined ? {} : { shard }) },
        }),
      );
    const guilds = inbox.find((p) => p.t === 'READY')?.d as { guilds: unknown[] } | undefined;
    if (guilds && inbox.filter((p) => p.t === 'GUILD_CREATE').length === guilds.guilds.length) onGuilds();
  });
  const closed = once(ws, 'close').then(([code]) => code as number);
  await once(ws, 'open');
  return { closed, inbox, ws, ready };
}

describe('fake Discord sharding protocol (raw WebSocket)', () => {
  it('IDENTIFY: the announced count is accepted, another count closes 4011, a shard id out of range 4010', async () => {
    discord = await startFakeDiscord(TWO_GUILDS);
    const ok = await identifyRaw(discord, [1, 2]);
    await ok.ready;
    expect(ok.inbox.filter((p) => p.t === 'GUILD_CREATE').map((p) => (p.d as { name: string }).name)).toEqual(['Beta']);
    ok.ws.close(1000);
    await ok.closed;

    expect(await (await identifyRaw(discord, [0, 1])).closed).toBe(4011);
    expect(await (await identifyRaw(discord, undefined)).closed).toBe(4011); // no shard means [0, 1]
    expect(await (await identifyRaw(discord, [0, 3])).closed).toBe(4011);
    expect(await (await identifyRaw(discord, [2, 2])).closed).toBe(4010);
    expect(await (await identifyRaw(discord, [-1, 2])).closed).toBe(4010);
    expect(await (await identifyRaw(discord, [0.5, 2])).closed).toBe(4010);
    expect(discord.takeErrors().map((e) => [e.code, e.message])).toEqual([
      [4011, 'Sharding required.'],
      [4011, 'Sharding required.'],
      [4011, 'Sharding required.'],
      [4010, 'Invalid shard.'],
      [4010, 'Invalid shard.'],
      [4010, 'Invalid shard.'],
    ]);
  });

  it('one shard (the default) keeps accepting IDENTIFY without a shard, and closes 4011 for two', async () => {
    discord = await startFakeDiscord({ guilds: [{ name: 'Alpha' }, { name: 'Beta' }] });
    const ok = await identifyRaw(discord, undefined);
    await ok.ready;
    expect(ok.inbox.filter((p) => p.t === 'GUILD_CREATE')).toHaveLength(2);
    ok.ws.close(1000);
    await ok.closed;
    expect(await (await identifyRaw(discord, [0, 2])).closed).toBe(4011);
    expect(discord.takeErrors().map((e) => e.code)).toEqual([4011]);
  });

  it('rejects a shard count that is not a positive integer', async () => {
    await expect(startFakeDiscord({ shards: 0 })).rejects.toThrow(/shards must be a positive integer/);
    expect(() => snowflakeOnShard(2, 2)).toThrow(/no shard 2 of 2/);
  });
});
