import { describe, expect, it } from 'vitest';
import { DiscordUnreachableError, unreachableCause } from '../src/discord/bot.ts';
import { describeStartFailure, isTokenRejected } from '../src/startup.ts';
import { StorageUnavailableError } from '../src/storage/errors.ts';

const TOKEN = 'MTIzNDU2Nzg5.secret.discord-token';

describe('describeStartFailure', () => {
  it('Discord unreachable: exit 1, names the URL and what to check', () => {
    const failure = describeStartFailure(new DiscordUnreachableError('http://127.0.0.1:1', 'ECONNREFUSED'));
    expect(failure).toEqual({
      exitCode: 1,
      message:
        'qwen-imagine cannot start: Could not reach Discord at http://127.0.0.1:1 (ECONNREFUSED): check the network, or DISCORD_API_URL if you set one.',
    });
  });

  it('token rejected: exit 1, without the token', () => {
    const err = Object.assign(new Error(`401: Unauthorized for ${TOKEN}`), { status: 401 });
    const failure = describeStartFailure(err, [TOKEN]);
    expect(failure.exitCode).toBe(1);
    expect(failure.message).toContain('Discord rejected DISCORD_TOKEN');
    expect(failure.message).not.toContain(TOKEN);
  });

  it('storage: exit 2 with the storage sentence', () => {
    const err = new StorageUnavailableError(
      'the SQLite storage at STORAGE_URL (sqlite://./x) cannot be opened: EACCES.',
    );
    expect(describeStartFailure(err)).toMatchObject({ exitCode: 2, message: expect.stringContaining('STORAGE_URL') });
  });

  it('anything else: exit 1, the first line of the message, secrets scrubbed, no stack', () => {
    const failure = describeStartFailure(new Error(`boom with ${TOKEN}\nsecond line`), [TOKEN]);
    expect(failure.exitCode).toBe(1);
    expect(failure.message).toBe('qwen-imagine cannot start: boom with [REDACTED] (LOG_LEVEL=debug logs the details).');
    expect(describeStartFailure('plain').message).toContain('plain');
  });

  it('recognises the ways discord.js says the token is wrong', () => {
    expect(isTokenRejected(Object.assign(new Error('An invalid token was provided.'), { code: 'TokenInvalid' }))).toBe(
      true,
    );
    expect(isTokenRejected({ code: 4004 })).toBe(true);
    expect(isTokenRejected(new Error('connect ECONNREFUSED'))).toBe(false);
    expect(isTokenRejected(undefined)).toBe(false);
  });
});

describe('unreachableCause', () => {
  it('finds the network code anywhere in the cause chain, and discord.js request timeouts', () => {
    expect(unreachableCause(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(
      unreachableCause(new TypeError('fetch failed', { cause: Object.assign(new Error('y'), { code: 'ENOTFOUND' }) })),
    ).toBe('ENOTFOUND');
    expect(unreachableCause(new DOMException('This operation was aborted', 'AbortError'))).toBe('timeout');
    expect(unreachableCause(new Error('401: Unauthorized'))).toBeUndefined();
    expect(unreachableCause(undefined)).toBeUndefined();
  });
});
