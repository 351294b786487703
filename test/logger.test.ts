import { Writable } from 'node:stream';
import { DiscordAPIError } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.ts';

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
    expect(out.parsed()[0]).toMatchObject({ jobId: 'j1', taskId: 't1', guildId: 'g', channelId: 'c', userId: 'u', msg: 'polled' });
  });
});

describe('logger: failed Discord requests', () => {
  const APP = '123456789012345678';
  const WEBHOOK_TOKEN = 'aW50ZXJhY3Rpb246MTIzNDU2Nzg5OmludGVyYWN0aW9uLXRva2Vu';
  const url = `https://discord.com/api/v10/webhooks/${APP}/${WEBHOOK_TOKEN}/messages/@original`;
  // A PNG signature then a run no other field would hold: what the image's bytes look like in JSON.
  const bytes = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10, 201, 202, 203, 204, 205, 206, 207, 208]);
  const failed = () =>
    new DiscordAPIError({ code: 10015, message: 'Unknown Webhook' }, 10015, 404, 'PATCH', url, {
      files: [{ name: 'lighthouse.png', data: bytes, contentType: 'image/png' }],
      body: { content: 'a lighthouse' },
    });

  it.each([
    ['err', (e: Error) => ({ err: e })],
    ['error', (e: Error) => ({ error: e })],
    ['a cause', (e: Error) => ({ err: new Error(`delivery failed: ${e.message} (${url})`, { cause: e }) })],
  ])('drops the image and masks the interaction token of an error logged as %s', (_, fields) => {
    const out = sink();
    const log = createLogger({ level: 'info', format: 'json', secrets: [], destination: out.stream });
    log.error(fields(failed()), 'could not deliver');
    const all = out.lines.join('');
    expect(all).not.toContain(WEBHOOK_TOKEN);
    expect(all).not.toContain('201,202,203,204');
    expect(all).not.toContain(bytes.toString('base64'));
    expect(all).toContain(`/webhooks/${APP}/***/messages/@original`);
    const [line] = out.parsed();
    const logged = (line!.err ?? line!.error) as Record<string, unknown>;
    const error = (logged.cause ?? logged) as Record<string, unknown>;
    expect(error).toMatchObject({ status: 404, code: 10015, method: 'PATCH', message: 'Unknown Webhook' });
    expect(error.files).toEqual(['lighthouse.png']);
  });
});
