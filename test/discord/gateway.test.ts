import { once } from 'node:events';
import { ChannelType, Client, Events, GatewayIntentBits } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startFakeDiscord, type FakeDiscord } from '../fakes/discord/server.ts';
import { startHarness, type Harness } from './helpers.ts';

describe('fake Discord gateway with the real discord.js client', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('logs in, emits ready and sees the guild with its channels, roles and nsfw flags', async () => {
    h = await startHarness();
    const { client, discord } = h;
    expect(client.user?.id).toBe(discord.botUser.id);
    expect(client.user?.bot).toBe(true);
    expect(client.application?.id).toBe(discord.applicationId);
    const guild = client.guilds.cache.get(discord.guild.id);
    expect(guild?.name).toBe('Test Guild');
    const general = guild?.channels.cache.get(discord.channel('general').id);
    const nsfw = guild?.channels.cache.get(discord.channel('nsfw').id);
    expect(general?.type).toBe(ChannelType.GuildText);
    expect(general && 'nsfw' in general ? general.nsfw : undefined).toBe(false);
    expect(nsfw && 'nsfw' in nsfw ? nsfw.nsfw : undefined).toBe(true);
    expect(guild?.roles.cache.find((r) => r.name === 'Moderator')?.permissions.has('ManageMessages')).toBe(true);
    // With the Guilds intent only, GUILD_CREATE carries the bot's own member, like Discord.
    expect(guild?.members.me?.id).toBe(discord.botUser.id);
    expect(guild?.members.me?.permissions.has('AttachFiles')).toBe(true);
    expect(guild?.members.cache.size).toBe(1);
    expect(discord.errors).toEqual([]);
  });

  it('records what discord.js sends: /gateway/bot, the connection query, IDENTIFY', async () => {
    h = await startHarness();
    const { discord } = h;
    const gatewayBot = discord.requests.find((r) => r.route === '/gateway/bot');
    expect(gatewayBot?.headers.authorization).toBe('Bot [redacted]');
    expect(gatewayBot?.response).toMatchObject({
      url: discord.gatewayUrl,
      shards: 1,
      session_start_limit: { max_concurrency: 1 },
    });
    expect(discord.gateway.connectionUrls).toEqual(['/gateway?v=10&encoding=json']);
    const identify = discord.gateway.received.find((p) => p.op === 2);
    expect(identify?.d).toMatchObject({
      token: '[redacted]',
      intents: GatewayIntentBits.Guilds,
      shard: [0, 1],
      compress: false,
      properties: {
        browser: expect.stringMatching(/^@discordjs\/ws/),
        device: expect.stringMatching(/^@discordjs\/ws/),
        os: process.platform,
      },
    });
  });

  it('answers heartbeats with HEARTBEAT_ACK', async () => {
    h = await startHarness({ heartbeatIntervalMs: 30 });
    const { client, discord } = h;
    await new Promise<void>((resolve) => {
      const onDebug = (message: string): void => {
        if (!message.includes('Heartbeat acknowledged')) return;
        client.off(Events.Debug, onDebug);
        resolve();
      };
      client.on(Events.Debug, onDebug);
    });
    expect(discord.gateway.received.some((p) => p.op === 1)).toBe(true);
  });

  it('op 7 RECONNECT: discord.js resumes on resume_gateway_url and missed events are replayed', async () => {
    h = await startHarness();
    const { client, discord } = h;
    h.onInteraction(async (interaction) => {
      if (interaction.isChatInputCommand()) await interaction.reply('replayed');
    });
    const resumed = once(client, Events.ShardResume);
    const closed = once(discord.gateway, 'close');
    discord.gateway.requestReconnect();
    expect((await closed)[1]).toBe(4200); // discord.js closes with 4200 when it intends to resume
    // Dispatched while the bot is disconnected: buffered and replayed on RESUME.
    const interaction = discord.slash('ping');
    await resumed;
    expect((await interaction.waitForOriginal()).content).toBe('replayed');
    expect(discord.gateway.connectionUrls[1]).toBe('/gateway-resume?v=10&encoding=json');
    const resume = discord.gateway.received.find((p) => p.op === 6);
    expect(resume?.d).toMatchObject({
      token: '[redacted]',
      session_id: [...discord.gateway.sessions.keys()][0],
      seq: expect.any(Number),
    });
    expect(discord.errors).toEqual([]);
  });
});

/** A bare WebSocket client, to drive the gateway where discord.js would not misbehave. */
async function rawGateway(discord: FakeDiscord, query = '?v=10&encoding=json') {
  const ws = new WebSocket(`${discord.gatewayUrl}${query}`);
  const inbox: { op: number; d: unknown; s: number | null; t: string | null }[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data) => {
    inbox.push(JSON.parse(String(data)) as (typeof inbox)[number]);
    for (const w of waiters.splice(0)) w();
  });
  const closed = once(ws, 'close') as Promise<[number, Buffer]>;
  await once(ws, 'open');
  return {
    ws,
    closed: closed.then(([code]) => code),
    send: (payload: unknown) => ws.send(JSON.stringify(payload)),
    async next() {
      while (inbox.length === 0) await new Promise<void>((resolve) => waiters.push(resolve));
      return inbox.shift()!;
    },
  };
}

describe('fake Discord gateway protocol (raw WebSocket)', () => {
  let discord: FakeDiscord | undefined;
  afterEach(async () => {
    await discord?.stop();
    discord = undefined;
  });

  it('HELLO, heartbeat ACK, READY then GUILD_CREATE with increasing sequence numbers', async () => {
    discord = await startFakeDiscord({ heartbeatIntervalMs: 1000 });
    const gw = await rawGateway(discord);
    expect(await gw.next()).toMatchObject({ op: 10, d: { heartbeat_interval: 1000 } });
    gw.send({ op: 1, d: null });
    expect(await gw.next()).toMatchObject({ op: 11 });
    gw.send({ op: 2, d: { token: discord.token, intents: 1, properties: { os: 'linux', browser: 'x', device: 'x' } } });
    const ready = await gw.next();
    expect(ready).toMatchObject({
      op: 0,
      t: 'READY',
      s: 1,
      d: {
        v: 10,
        user: { id: discord.botUser.id, bot: true },
        application: { id: discord.applicationId },
        guilds: [{ id: discord.guild.id, unavailable: true }],
      },
    });
    expect(ready.d).toHaveProperty('session_id');
    expect(ready.d).toHaveProperty(
      'resume_gateway_url',
      expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+\/gateway-resume$/),
    );
    const guildCreate = await gw.next();
    expect(guildCreate).toMatchObject({
      op: 0,
      t: 'GUILD_CREATE',
      s: 2,
      d: { id: discord.guild.id, unavailable: false },
    });
    gw.ws.close(1000);
    await gw.closed;
  });

  it('closes 4004 on a bad token, and records the error', async () => {
    discord = await startFakeDiscord();
    const gw = await rawGateway(discord);
    await gw.next();
    discord.expectError(4004);
    gw.send({ op: 2, d: { token: 'wrong', intents: 1, properties: {} } });
    expect(await gw.closed).toBe(4004);
    expect(discord.expectedErrors).toMatchObject([
      { method: 'GATEWAY', code: 4004, message: 'Authentication failed.' },
    ]);
    expect(discord.errors).toEqual([]);
  });

  it('closes 4014 for privileged intents the app has not enabled, 4003 before identify, 4012 on a bad version', async () => {
    discord = await startFakeDiscord();
    const a = await rawGateway(discord);
    await a.next();
    a.send({ op: 2, d: { token: discord.token, intents: 1 | (1 << 15), properties: {} } });
    expect(await a.closed).toBe(4014);
    const b = await rawGateway(discord);
    await b.next();
    b.send({ op: 8, d: { guild_id: discord.guild.id } });
    expect(await b.closed).toBe(4003);
    const c = await rawGateway(discord, '?v=9&encoding=json');
    expect(await c.closed).toBe(4012);
    expect(discord.takeErrors().map((e) => e.code)).toEqual([4014, 4003, 4012]);
  });

  it('RESUME of an unknown session gets INVALID_SESSION (d: false)', async () => {
    discord = await startFakeDiscord();
    const gw = await rawGateway(discord);
    await gw.next();
    gw.send({ op: 6, d: { token: discord.token, session_id: 'nope', seq: 3 } });
    expect(await gw.next()).toMatchObject({ op: 9, d: false });
    gw.ws.close(1000);
    await gw.closed;
  });

  it('slash() without a connected bot throws a helpful error', async () => {
    discord = await startFakeDiscord();
    expect(() => discord!.slash('imagine')).toThrow(/no bot session/);
  });
});

describe('client built from scratch', () => {
  it("works with only rest.api set (the bot's own construction)", async () => {
    const discord = await startFakeDiscord();
    const client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: discord.apiUrl } });
    const ready = once(client, Events.ClientReady);
    await client.login(discord.token);
    await ready;
    expect(client.guilds.cache.size).toBe(1);
    await client.destroy();
    await discord.stop();
  });
});
