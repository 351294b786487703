import { AttachmentBuilder, DiscordAPIError, HTTPError, Routes, type ChatInputCommandInteraction } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { caught, deferred, startHarness, type Harness } from './helpers.ts';

/** Runs `steps` on the next slash command and resolves with the error it threw (or undefined). */
function handleNextCommand(h: Harness, steps: (i: ChatInputCommandInteraction) => Promise<unknown>): Promise<unknown> {
  const outcome = deferred<unknown>();
  h.onInteraction(async (interaction) => {
    if (interaction.isChatInputCommand()) outcome.resolve(await caught(() => steps(interaction)));
  });
  return outcome.promise;
}

function apiError(error: unknown): { status: number; code: number | string; raw: unknown } {
  if (!(error instanceof DiscordAPIError)) throw new Error(`expected a DiscordAPIError, got ${String(error)}`);
  return { status: error.status, code: error.code, raw: error.rawError };
}

describe("fake Discord enforces Discord's rules", () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('a first callback after the deadline gets 404 Unknown interaction (10062)', async () => {
    h = await startHarness();
    const { discord } = h;
    const started = deferred();
    const gate = deferred();
    const outcome = handleNextCommand(h, async (i) => {
      started.resolve();
      await gate.promise;
      await i.deferReply();
    });
    const interaction = discord.slash('imagine', { prompt: 'slow' });
    await started.promise;
    interaction.elapse(3001); // as if the handler had taken 3 s
    gate.resolve();
    expect(apiError(await outcome)).toMatchObject({
      status: 404,
      code: 10062,
      raw: { message: 'Unknown interaction', code: 10062 },
    });
    expect(interaction.acknowledged).toBe(false);
    expect(interaction.callbacks).toMatchObject([{ type: 5, accepted: false, status: 404 }]);
    expect(discord.takeErrors()).toMatchObject([
      { status: 404, code: 10062, route: '/interactions/{interaction_id}/{interaction_token}/callback' },
    ]);
  });

  it('the deadline is callbackDeadlineMs after dispatch, also for a raw REST call', async () => {
    h = await startHarness({ callbackDeadlineMs: 50 });
    const { discord } = h;
    const interaction = discord.slash('imagine', { prompt: 'ignored' }); // no handler answers
    interaction.elapse(51);
    discord.expectError(10062);
    const res = await fetch(`${discord.apiUrl}/v10/interactions/${interaction.id}/${interaction.token}/callback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 4, data: { content: 'late' } }),
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ message: 'Unknown interaction', code: 10062 });
    expect(discord.errors).toEqual([]);
    expect(discord.expectedErrors).toHaveLength(1);
  });

  it('a second callback gets 400 Interaction has already been acknowledged (40060)', async () => {
    h = await startHarness();
    const { discord, client } = h;
    const outcome = handleNextCommand(h, async (i) => {
      await i.reply('one');
      // Another process answering the same interaction: discord.js' own guard is bypassed.
      await client.rest.post(Routes.interactionCallback(i.id, i.token), {
        body: { type: 4, data: { content: 'two' } },
        auth: false,
      });
    });
    const interaction = discord.slash('imagine', { prompt: 'x' });
    discord.expectError(40060);
    expect(apiError(await outcome)).toMatchObject({
      status: 400,
      code: 40060,
      raw: { message: 'Interaction has already been acknowledged.', code: 40060 },
    });
    expect(interaction.original()?.content).toBe('one');
    expect(interaction.callbacks.map((c) => [c.type, c.status, c.accepted])).toEqual([
      [4, 204, true],
      [4, 400, false],
    ]);
    expect(discord.errors).toEqual([]);
  });

  it('an expired interaction token gets 401 Invalid Webhook Token (50027)', async () => {
    h = await startHarness();
    const { discord } = h;
    const gate = deferred();
    const outcome = handleNextCommand(h, async (i) => {
      await i.deferReply();
      await gate.promise;
      await i.editReply('too late');
    });
    const interaction = discord.slash('imagine', { prompt: 'x' });
    await interaction.waitForCallback();
    interaction.expireToken();
    gate.resolve();
    expect(apiError(await outcome)).toMatchObject({
      status: 401,
      code: 50027,
      raw: { message: 'Invalid Webhook Token', code: 50027 },
    });
    expect(discord.takeErrors()).toMatchObject([{ status: 401, code: 50027 }]);
  });

  it('tokens expire interactionTokenTtlMs after dispatch', async () => {
    h = await startHarness({ interactionTokenTtlMs: 60_000 });
    const { discord } = h;
    const gate = deferred();
    const outcome = handleNextCommand(h, async (i) => {
      await i.deferReply();
      await gate.promise;
      await i.followUp('after a minute');
    });
    const interaction = discord.slash('imagine', { prompt: 'x' });
    await interaction.waitForCallback();
    interaction.elapse(60_001);
    gate.resolve();
    discord.expectError({ code: 50027, status: 401 });
    expect(apiError(await outcome)).toMatchObject({ status: 401, code: 50027 });
    expect(discord.errors).toEqual([]);
  });

  it('an upload above 10 MiB gets 413 Request entity too large (40005)', async () => {
    h = await startHarness();
    const { discord } = h;
    const outcome = handleNextCommand(h, async (i) => {
      await i.deferReply();
      await i.editReply({ files: [new AttachmentBuilder(Buffer.alloc(10 * 1024 * 1024 + 1, 1), { name: 'big.png' })] });
    });
    discord.slash('imagine', { prompt: 'x' });
    expect(apiError(await outcome)).toMatchObject({
      status: 413,
      code: 40005,
      raw: { message: 'Request entity too large', code: 40005 },
    });
    expect(discord.takeErrors()).toMatchObject([{ status: 413, code: 40005 }]);
  });

  it('a body the OpenAPI spec rejects gets 400 Invalid Form Body (50035) with an errors tree', async () => {
    h = await startHarness();
    const { discord } = h;
    expect(discord.validateAgainstOpenApi).toBe(true);
    const outcome = handleNextCommand(h, (i) =>
      i.reply({ embeds: [{ title: 'x', color: 'red' as unknown as number }] }),
    );
    discord.slash('imagine', { prompt: 'x' });
    const error = apiError(await outcome);
    expect(error).toMatchObject({ status: 400, code: 50035, raw: { message: 'Invalid Form Body', code: 50035 } });
    expect(error.raw).toMatchObject({
      errors: {
        data: {
          embeds: { 0: { color: { _errors: [{ code: 'NUMBER_TYPE_COERCE', message: 'Value "red" is not int.' }] } } },
        },
      },
    });
    expect(discord.takeErrors()).toMatchObject([{ status: 400, code: 50035 }]);
  });

  it('the same body is accepted when OpenAPI validation is off (so the spec is what rejected it)', async () => {
    h = await startHarness({ validateAgainstOpenApi: false });
    const { discord } = h;
    const outcome = handleNextCommand(h, (i) =>
      i.reply({ embeds: [{ title: 'x', color: 'red' as unknown as number }] }),
    );
    const interaction = discord.slash('imagine', { prompt: 'x' });
    expect(await outcome).toBeUndefined();
    expect(interaction.original()?.embeds[0]?.title).toBe('x');
    expect(discord.errors).toEqual([]);
  });

  it('message limits: content, embeds, embed sizes, fields, empty messages', async () => {
    h = await startHarness();
    const { discord, client } = h;
    const channel = await client.channels.fetch(discord.channel('general').id);
    if (!channel?.isSendable()) throw new Error('not sendable');
    const send = async (options: Parameters<typeof channel.send>[0]): Promise<unknown> =>
      apiError(await caught(() => channel.send(options))).raw;

    expect(await send({ content: 'x'.repeat(2001) })).toMatchObject({
      code: 50035,
      errors: { content: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 2000 or fewer in length.' }] } },
    });
    expect(await send({ embeds: Array.from({ length: 11 }, (_, n) => ({ title: `e${n}` })) })).toMatchObject({
      code: 50035,
      errors: { embeds: {} },
    });
    expect(
      await send({ embeds: [{ description: 'd'.repeat(4000) }, { description: 'd'.repeat(2001) }] }),
    ).toMatchObject({
      code: 50035,
      errors: { embeds: { _errors: [{ code: 'MAX_EMBED_SIZE_EXCEEDED' }] } },
    });
    expect(
      await send({ embeds: [{ fields: Array.from({ length: 26 }, (_, n) => ({ name: `f${n}`, value: 'v' })) }] }),
    ).toMatchObject({
      code: 50035,
      errors: { embeds: { 0: { fields: {} } } },
    });
    expect(await send({ embeds: [{ fields: [{ name: 'n', value: 'v'.repeat(1025) }] }] })).toMatchObject({
      code: 50035,
    });
    expect(await send({ embeds: [{ footer: { text: 'f'.repeat(2049) } }] })).toMatchObject({ code: 50035 });
    expect(await send({ content: '' })).toEqual({ message: 'Cannot send an empty message', code: 50006 });
    expect(discord.takeErrors().map((e) => e.code)).toEqual([50035, 50035, 50035, 50035, 50035, 50035, 50006]);
    // At the limit is fine.
    await channel.send({ content: 'x'.repeat(2000) });
    expect(discord.errors).toEqual([]);
  });

  it('enforce_nonce: a second message with the same nonce is the first one again; without it, a new message', async () => {
    h = await startHarness();
    const { discord, client } = h;
    const channel = await client.channels.fetch(discord.channel('general').id);
    if (!channel?.isSendable()) throw new Error('not sendable');

    const first = await channel.send({ content: 'once', nonce: 'job-1:image', enforceNonce: true });
    const again = await channel.send({ content: 'once, retried', nonce: 'job-1:image', enforceNonce: true });
    expect(again.id).toBe(first.id);
    expect(again.content).toBe('once');
    const other = await channel.send({ content: 'another purpose', nonce: 'job-1:failure', enforceNonce: true });
    expect(other.id).not.toBe(first.id);
    expect(discord.messages('general').map((m) => m.content)).toEqual(['once', 'another purpose']);

    // The same nonce without enforce_nonce is only echoed back: Discord creates the message.
    const plain = await channel.send({ content: 'twice', nonce: 'plain', enforceNonce: false });
    const plainAgain = await channel.send({ content: 'twice', nonce: 'plain', enforceNonce: false });
    expect(plainAgain.id).not.toBe(plain.id);
    expect(discord.messages('general').filter((m) => m.content === 'twice')).toHaveLength(2);
    expect(discord.errors).toEqual([]);
  });

  it("bot routes need Authorization: Bot <token>; unknown routes, channels and messages get Discord's 404s", async () => {
    h = await startHarness();
    const { discord, client } = h;
    const unauthorized = await fetch(`${discord.apiUrl}/v10/users/@me`);
    expect(unauthorized.status).toBe(401);
    expect(await unauthorized.json()).toEqual({ message: '401: Unauthorized', code: 0 });
    const wrong = await fetch(`${discord.apiUrl}/v10/users/@me`, { headers: { authorization: 'Bot nope' } });
    expect(wrong.status).toBe(401);
    const notFound = await fetch(`${discord.apiUrl}/v10/nothing/here`, {
      headers: { authorization: `Bot ${discord.token}` },
    });
    expect([notFound.status, await notFound.json()]).toEqual([404, { message: '404: Not Found', code: 0 }]);

    expect(apiError(await caught(() => client.channels.fetch('1234567890123456789')))).toMatchObject({
      status: 404,
      code: 10003,
    });
    const general = await client.channels.fetch(discord.channel('general').id);
    if (!general?.isTextBased()) throw new Error('not text');
    expect(apiError(await caught(() => general.messages.fetch('1234567890123456789')))).toMatchObject({
      status: 404,
      code: 10008,
    });
    expect(discord.takeErrors().map((e) => [e.status, e.code])).toEqual([
      [401, 0],
      [401, 0],
      [404, 0],
      [404, 10003],
      [404, 10008],
    ]);
  });

  it('a wrong token makes client.login fail (401 on /gateway/bot)', async () => {
    h = await startHarness();
    const { discord } = h;
    const { Client, GatewayIntentBits } = await import('discord.js');
    const other = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: discord.apiUrl } });
    const error = await caught(() => other.login('not-the-token'));
    await other.destroy();
    expect((error as Error).message).toMatch(/invalid token/i);
    expect(discord.takeErrors()).toMatchObject([{ status: 401, route: '/gateway/bot' }]);
  });

  it('every response carries rate-limit headers', async () => {
    h = await startHarness();
    const { discord } = h;
    const res = await fetch(`${discord.apiUrl}/v10/users/@me`, { headers: { authorization: `Bot ${discord.token}` } });
    expect(res.status).toBe(200);
    for (const name of [
      'x-ratelimit-limit',
      'x-ratelimit-remaining',
      'x-ratelimit-reset',
      'x-ratelimit-reset-after',
      'x-ratelimit-bucket',
    ]) {
      expect(res.headers.get(name), name).toBeTruthy();
    }
  });
});

describe('fault injection: discord.js retries and the message still arrives', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('a 429 on the callback route is retried after retry_after', async () => {
    h = await startHarness();
    const { discord } = h;
    discord.failNext('POST /interactions/{interaction_id}/{interaction_token}/callback', {
      status: 429,
      retryAfterSec: 0.05,
    });
    const outcome = handleNextCommand(h, (i) => i.reply('after a 429'));
    const interaction = discord.slash('imagine', { prompt: 'x' });
    expect(await outcome).toBeUndefined();
    expect(interaction.original()?.content).toBe('after a 429');
    const attempts = discord.requests.filter(
      (r) => r.route === '/interactions/{interaction_id}/{interaction_token}/callback',
    );
    expect(attempts.map((r) => [r.status, r.injected])).toEqual([
      [429, true],
      [204, false],
    ]);
    expect(attempts[0]?.response).toEqual({ message: 'You are being rate limited.', retry_after: 0.05, global: false });
    expect(discord.errors).toEqual([]);
  });

  it('a global 429 on channel messages is retried', async () => {
    h = await startHarness();
    const { discord, client } = h;
    discord.failNext(
      { method: 'POST', path: /\/channels\/\d+\/messages$/ },
      { status: 429, retryAfterSec: 0.05, global: true },
    );
    const channel = await client.channels.fetch(discord.channel('general').id);
    if (!channel?.isSendable()) throw new Error('not sendable');
    const sent = await channel.send('hello');
    expect(discord.message(sent.id)?.content).toBe('hello');
    expect(discord.requests.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([429, 200]);
    expect(discord.errors).toEqual([]);
  });

  it('5xx answers are retried by discord.js (up to rest.retries)', async () => {
    h = await startHarness();
    const { discord } = h;
    discord.failNext('PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original', { status: 502 }, 2);
    const outcome = handleNextCommand(h, async (i) => {
      await i.deferReply();
      await i.editReply('after two 502s');
    });
    const interaction = discord.slash('imagine', { prompt: 'x' });
    expect(await outcome).toBeUndefined();
    expect(interaction.original()?.content).toBe('after two 502s');
    expect(discord.requests.filter((r) => r.method === 'PATCH').map((r) => r.status)).toEqual([502, 502, 200]);
    expect(discord.errors).toEqual([]);
  });

  it('more 5xx than retries surface as an HTTPError in the bot', async () => {
    h = await startHarness();
    const { discord } = h;
    discord.failNext(/messages\/@original$/, { status: 500 }, 4);
    const outcome = handleNextCommand(h, async (i) => {
      await i.deferReply();
      await i.editReply('never');
    });
    discord.slash('imagine', { prompt: 'x' });
    const error = await outcome;
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).status).toBe(500);
    expect(discord.errors).toEqual([]);
  });
});
