/**
 * What `npm start` prints when the start fails: one plain sentence saying what to check, and the
 * exit code (README, "Exit codes"). Never a stack trace, never a secret.
 */
import { DiscordUnreachableError } from './discord/bot.ts';
import { OpsPortError } from './ops/http.ts';
import { StorageUnavailableError } from './storage/errors.ts';

export interface StartFailure {
  /** 1: the start failed (Discord, the network, anything else); 2: configuration or storage. */
  exitCode: 1 | 2;
  message: string;
}

/** Discord answered 401 to the token (REST) or closed the gateway with 4004. */
export function isTokenRejected(err: unknown): boolean {
  const { code, status } = (err ?? {}) as { code?: unknown; status?: unknown };
  return (
    code === 'TokenInvalid' ||
    code === 4004 ||
    status === 401 ||
    /\b401\b|invalid token|authentication failed/i.test(String(err))
  );
}

export function describeStartFailure(err: unknown, secrets: readonly string[] = []): StartFailure {
  const scrub = (text: string) =>
    secrets.filter((s) => s.length >= 6).reduce((t, s) => t.split(s).join('[REDACTED]'), text);
  const say = (exitCode: 1 | 2, sentence: string): StartFailure => ({
    exitCode,
    message: scrub(`qwen-imagine cannot start: ${sentence}`),
  });
  if (err instanceof StorageUnavailableError || err instanceof OpsPortError) return say(2, err.message);
  if (err instanceof DiscordUnreachableError) {
    return say(
      1,
      `Could not reach Discord at ${err.url} (${err.detail}): check the network, or DISCORD_API_URL if you set one.`,
    );
  }
  if (isTokenRejected(err)) {
    return say(1, 'Discord rejected DISCORD_TOKEN: check the token in .env (Developer Portal, Bot, Reset Token).');
  }
  const message = err instanceof Error ? err.message : String(err);
  return say(1, `${message.split('\n')[0]} (LOG_LEVEL=debug logs the details).`);
}
