import { Writable } from 'node:stream';
import { DiscordAPIError, HTTPError, RateLimitError } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.ts';
import { startBotHarness, type BotHarness } from './e2e/harness.ts';

const TOKEN = 'MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabcde.discord-token-value';
const KEY = 'sk_test_0123456789abcdef';

function sink() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { stream, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logger', () => {
  it('redacts secrets in fields, headers and free text', () => {
    const out = sink();
    const log = createLogger({ level: 'debug', format: 'json', secrets: [TOKEN, KEY], destination: out.stream });
    log.info({ headers: { authorization: `Bearer ${KEY}` } }, 'request');
    log.info({ req: { headers: { authorization: `Bot ${TOKEN}` } } }, 'nested');
    log.error({ err: new Error(`login failed for ${TOKEN}`) }, `key ${KEY} rejected`);
    log.info({ token: 'interaction-token-abc', apiKey: KEY }, 'fields');
    const all = out.lines.join('');
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain(KEY);
    expect(all).not.toContain('interaction-token-abc');
    const [first, second] = out.parsed();
    expect(first).toMatchObject({ headers: { authorization: '[REDACTED]' }, msg: 'request' });
    expect(second).toMatchObject({ req: { headers: { authorization: '[REDACTED]' } } });
  });

  it('child loggers carry job context', () => {
    const out = sink();
    const log = createLogger({ level: 'info', format: 'json', secrets: [], destination: out.stream });
    log.child({ jobId: 'j1', taskId: 't1', guildId: 'g', channelId: 'c', userId: 'u' }).info('polled');
    expect(out.parsed()[0]).toMatchObject({
      jobId: 'j1',
      taskId: 't1',
      guildId: 'g',
      channelId: 'c',
      userId: 'u',
      msg: 'polled',
    });
  });
});

describe('logger: failed Discord requests', () => {
  const APP = '123456789012345678';
  const WEBHOOK_TOKEN = 'aW50ZXJhY3Rpb246MTIzNDU2Nzg5OmludGVyYWN0aW9uLXRva2Vu';
  const url = `https://discord.com/api/v10/webhooks/${APP}/${WEBHOOK_TOKEN}/messages/@original`;
  const callbackUrl = `https://discord.com/api/v10/interactions/${APP}/${WEBHOOK_TOKEN}/callback?with_response=true`;
  // A PNG signature then a run no other field would hold: what the image's bytes look like in JSON.
  const bytes = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10, 201, 202, 203, 204, 205, 206, 207, 208]);
  const body = {
    files: [{ name: 'qwen-image-a-lighthouse-j1.png', data: bytes, contentType: 'image/png' }],
    body: { content: 'a lighthouse' },
  };
  const failed = () => new DiscordAPIError({ code: 10015, message: 'Unknown Webhook' }, 10015, 404, 'PATCH', url, body);

  /** What no line may hold: the token, the image in any encoding, the request's words. */
  function expectNothingPrivate(all: string) {
    expect(all).not.toContain(WEBHOOK_TOKEN);
    expect(all).not.toContain('201,202,203,204');
    expect(all).not.toContain(bytes.toString('base64'));
    expect(all).not.toContain('lighthouse');
    expect(all).not.toContain('"type":"Buffer"');
  }

  it.each([
    ['err', (e: Error) => ({ err: e })],
    ['error', (e: Error) => ({ error: e })],
    ['a cause', (e: Error) => ({ err: new Error(`delivery failed: ${e.message} (${url})`, { cause: e }) })],
  ])('keeps only name, code, status, method, masked route and message of an error logged as %s', (_, fields) => {
    const out = sink();
    const log = createLogger({ level: 'info', format: 'json', secrets: [], destination: out.stream });
    log.error(fields(failed()), 'could not deliver');
    const all = out.lines.join('');
    expectNothingPrivate(all);
    expect(all).toContain(`/webhooks/${APP}/:token/messages/@original`);
    const [line] = out.parsed();
    const logged = (line!.err ?? line!.error) as Record<string, unknown>;
    const error = (logged.cause ?? logged) as Record<string, unknown>;
    expect(error).toEqual({
      name: 'DiscordAPIError[10015]',
      code: 10015,
      status: 404,
      method: 'PATCH',
      route: `/webhooks/${APP}/:token/messages/@original`,
      message: 'Unknown Webhook',
    });
  });

  it('an HTTP error on an interaction callback: the route without its token, nothing of the body', () => {
    const out = sink();
    const log = createLogger({ level: 'info', format: 'json', secrets: [], destination: out.stream });
    log.warn({ err: new HTTPError(503, 'Service Unavailable', 'POST', callbackUrl, body) }, 'could not answer');
    expectNothingPrivate(out.lines.join(''));
    expect(out.parsed()[0]!.err).toEqual({
      name: 'HTTPError',
      status: 503,
      method: 'POST',
      route: `/interactions/${APP}/:token/callback?with_response=true`,
      message: 'Service Unavailable',
    });
  });

  it('a rate limit: the route and the wait, masked', () => {
    const out = sink();
    const log = createLogger({ level: 'info', format: 'json', secrets: [], destination: out.stream });
    const limited = new RateLimitError({
      timeToReset: 1200,
      limit: 5,
      method: 'PATCH',
      hash: 'abc',
      url,
      route: '/webhooks/:id/:token/messages/:id',
      majorParameter: APP,
      global: false,
      retryAfter: 1200,
      sublimitTimeout: 0,
      scope: 'user',
    });
    log.warn({ err: limited }, 'rate limited');
    expectNothingPrivate(out.lines.join(''));
    expect(out.parsed()[0]!.err).toEqual({
      name: 'RateLimitError[/webhooks/:id/:token/messages/:id]',
      method: 'PATCH',
      route: `/webhooks/${APP}/:token/messages/@original`,
      retryAfter: 1200,
      limit: 5,
      global: false,
      scope: 'user',
      timeToReset: 1200,
    });
  });

  it('another error keeps its fields, less what a request carried', () => {
    const out = sink();
    const log = createLogger({ level: 'info', format: 'json', secrets: [], destination: out.stream });
    const other = Object.assign(new Error(`fetch ${callbackUrl} failed`), {
      requestBody: body,
      headers: { authorization: 'Bot abc' },
      body: bytes,
      attempt: 3,
    });
    log.error({ err: other }, 'failed');
    const all = out.lines.join('');
    expectNothingPrivate(all);
    expect(all).not.toContain('Bot abc');
    expect(out.parsed()[0]!.err).toMatchObject({
      type: 'Error',
      message: `fetch https://discord.com/api/v10/interactions/${APP}/:token/callback?with_response=true failed`,
      attempt: 3,
    });
  });
});

describe('logger: the bot failing against the fake Discord and the fake PPInfra', () => {
  let bot: BotHarness | undefined;
  afterEach(async () => {
    await bot?.close();
    bot = undefined;
  });

  const PROMPT = 'a lighthouse keeper feeding seven cats';
  /** Long base64 runs: an image, or a buffer, written as text. */
  const BASE64_RUN = /[A-Za-z0-9+/]{65,}={0,2}/;
  const BYTE_ARRAY = /\[\d{1,3}(,\d{1,3}){15,}/;
  const errorLines = (h: BotHarness) => h.rawLogs.filter((l) => /"(err|error)":/.test(l));

  /** What the failed calls' log lines may never carry, the scrub of known secrets switched off. */
  function expectNothingPrivate(h: BotHarness, tokens: string[]) {
    const all = h.rawLogs.join('');
    for (const secret of [h.discord.token, h.api.apiKey, ...tokens]) expect(all).not.toContain(secret);
    expect(all).not.toMatch(BASE64_RUN);
    expect(all).not.toMatch(BYTE_ARRAY);
    expect(all).not.toContain('"type":"Buffer"');
    // The request's words (its body, its file name) stay out of the error lines.
    for (const line of errorLines(h)) expect(line).not.toMatch(/lighthouse|feeding-seven/);
  }

  it('a rejected interaction token (401) and an image upload that fails (500): code, status and masked route only', async () => {
    bot = await startBotHarness({ scrubSecrets: false, script: () => ({ queuedMs: 50, processingMs: 1_500 }) });
    const expired = bot.discord.slash('imagine', { prompt: PROMPT });
    await expired.waitForCallback();
    expired.expireToken();
    const progress = await bot.waitForLog((l) => l.msg === 'progress edit failed');
    expect(progress.err).toEqual({
      name: 'DiscordAPIError[50027]',
      code: 50027,
      status: 401,
      method: 'PATCH',
      route: `/webhooks/${bot.discord.applicationId}/:token/messages/@original`,
      message: 'Invalid Webhook Token',
    });
    // The image still reaches the channel; then the next delivery's upload fails outright.
    await bot.discord.waitForMessage((m) => m.attachments.length === 1, { timeoutMs: 15_000 });

    bot.discord.failNext({ method: 'PATCH', path: /\/webhooks\// }, { status: 500 }, 1_000);
    const uploading = bot.discord.slash('imagine', { prompt: PROMPT });
    const failed = await bot.waitForLog((l) => l.msg === 'job failed');
    expect(failed.error).toEqual({
      name: 'HTTPError',
      status: 500,
      method: 'PATCH',
      route: `/webhooks/${bot.discord.applicationId}/:token/messages/@original`,
      message: 'Internal Server Error',
    });
    expectNothingPrivate(bot, [expired.token, uploading.token]);
  });

  it('a rejected API key: the PPInfra error never carries the key', async () => {
    bot = await startBotHarness({ scrubSecrets: false });
    bot.api.inject('submit', { status: 401, reason: 'INVALID_API_KEY' });
    const it = bot.discord.slash('imagine', { prompt: PROMPT });
    const failed = await bot.waitForLog((l) => l.msg === 'job failed');
    expect(failed.error).toMatchObject({ kind: 'auth', status: 401, reason: 'INVALID_API_KEY' });
    expectNothingPrivate(bot, [it.token]);
  });
});
