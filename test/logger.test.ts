import { Writable } from 'node:stream';
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
