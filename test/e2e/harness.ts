// The whole bot (src/app.ts, as `npm start` builds it) against the fake Discord and the fake
// PPInfra, with real SQLite storage in a temporary folder.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { APIMessage } from 'discord-api-types/v10';
import { Routes } from 'discord.js';
import { expect, onTestFailed } from 'vitest';
import { startApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { loadCommands } from '../../src/discord/loader.ts';
import { createLogger } from '../../src/logger.ts';
import type { ImageClassifier } from '../../src/moderation/classifier.ts';
import { openStorage } from '../../src/storage/open.ts';
import type { FakeInteraction } from '../fakes/discord/interactions.ts';
import { startFakeDiscord, type FakeDiscord } from '../fakes/discord/server.ts';
import type { FakeDiscordOptions } from '../fakes/discord/types.ts';
import { startFakePpinfra, type FakePpinfra, type FakeScriptRequest, type FakeTaskScript } from '../fakes/ppinfra.ts';

export interface BotHarness {
  discord: FakeDiscord;
  api: FakePpinfra;
  app: Awaited<ReturnType<typeof startApp>>;
  /** Parsed log lines the bot wrote. */
  logs: Record<string, unknown>[];
  /** Resolves with the first log line (already written or to come) that matches. */
  waitForLog(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  rawLogs: string[];
  env: Record<string, string>;
  storageUrl: string;
  /**
   * Stops the bot only (storage kept), then starts a new one on the same storage and fakes.
   * `whileDown` runs in between, e.g. to age the stored jobs as a long downtime would.
   */
  restart(env?: Record<string, string>, whileDown?: () => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  discord?: FakeDiscordOptions;
  script?: (req: FakeScriptRequest) => FakeTaskScript;
  /** Size of the images the fake API serves (default: tiny). */
  imageSizeBytes?: number;
  /** Durations the bot "has seen" before, so tests need not wait for a cold estimate. */
  seenDurationsMs?: number;
  /** What the bot has seen of other kinds of image, by duration key (`durationKey`): `upscale:2k` and the like. */
  seenDurationsByKey?: Record<string, number>;
  /** The local NSFW classifier (`test/fakes/classifier.ts`); off when absent, as without NSFW_CLASSIFIER. Kept across restarts. */
  classifier?: ImageClassifier;
  /**
   * false: the logger is not told the bot token and the API key, so a test can show that no
   * log line carries them in the first place (the scrub is a second line of defence).
   */
  scrubSecrets?: boolean;
}

/** Fast timings for tests; each can be overridden per test. */
const TEST_ENV = {
  PROGRESS_EDIT_INTERVAL_MS: '300',
  POLL_MIN_INTERVAL_MS: '200',
  POLL_MAX_INTERVAL_MS: '1000',
  POLL_MAX_PER_SECOND: '50',
  LOG_LEVEL: 'debug',
  // The model costs a second of CPU and ~100 MB per bot: on only where a test asks for it.
  NSFW_CLASSIFIER: 'off',
};

export async function startBotHarness(options: HarnessOptions = {}): Promise<BotHarness> {
  const discord = await startFakeDiscord(options.discord);
  const api = await startFakePpinfra({
    script: options.script ?? (() => ({ queuedMs: 50, processingMs: 250 })),
    imageSizeBytes: options.imageSizeBytes,
  });
  const dir = mkdtempSync(join(tmpdir(), 'qi-e2e-'));
  const storageUrl = `sqlite://${join(dir, 'bot.sqlite')}`;
  const stats = openStorage(storageUrl, 'stats');
  await stats.set('durations', {
    '1024*1024': Array(5).fill(options.seenDurationsMs ?? 300),
    ...Object.fromEntries(
      Object.entries(options.seenDurationsByKey ?? {}).map(([key, ms]) => [key, Array(5).fill(ms)]),
    ),
  });
  await stats.disconnect();

  const rawLogs: string[] = [];
  const logged = new EventEmitter().setMaxListeners(0);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      rawLogs.push(String(chunk));
      const line = JSON.parse(String(chunk)) as Record<string, unknown>;
      logs.push(line);
      logged.emit('line', line);
      done();
    },
  });
  // A failure in CI is explained by what the bot said: its warnings and errors go with the report.
  onTestFailed(() => {
    for (const line of logs.filter((l) => (l.level as number) >= 40).slice(-40))
      console.error('bot log:', JSON.stringify(line).slice(0, 2_000));
  });
  let env: Record<string, string> = {
    DISCORD_TOKEN: discord.token,
    PPINFRA_API_KEY: api.apiKey,
    PPINFRA_BASE_URL: api.url,
    DISCORD_API_URL: discord.apiUrl,
    STORAGE_URL: storageUrl,
    ...TEST_ENV,
    ...options.env,
  };
  const boot = async () => {
    const loaded = loadConfig(env);
    if (!loaded.ok) throw new Error(loaded.problems.join('; '));
    const logger = createLogger({
      level: 'debug',
      format: 'json',
      secrets: options.scrubSecrets === false ? [] : [env.DISCORD_TOKEN!, env.PPINFRA_API_KEY!],
      destination: sink,
    });
    return startApp(loaded.config, logger, options.classifier ? { classifier: options.classifier } : {});
  };
  const harness: BotHarness = {
    discord,
    api,
    app: await boot(),
    logs,
    waitForLog: (predicate) =>
      new Promise((resolve) => {
        const seen = logs.find(predicate);
        if (seen) return resolve(seen);
        const check = (line: Record<string, unknown>) => {
          if (!predicate(line)) return;
          logged.off('line', check);
          resolve(line);
        };
        logged.on('line', check);
      }),
    rawLogs,
    env,
    storageUrl,
    async restart(extra = {}, whileDown) {
      await harness.app.stop();
      await whileDown?.();
      env = { ...env, ...extra };
      harness.env = env;
      harness.app = await boot();
    },
    async close() {
      await harness.app.stop();
      await discord.stop();
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** The message has its final content: an image, or a failure/withheld notice. */
export const finished = (m: APIMessage) => m.attachments.length > 0 || /^(❌|🔞)/.test(m.content);

/** Every request the bot sent to the fake Discord that creates or edits a message. */
export function messageWrites(discord: FakeDiscord) {
  return discord.requests.filter(
    (r) =>
      (r.method === 'POST' || r.method === 'PATCH') &&
      r.body &&
      typeof r.body === 'object' &&
      !Array.isArray(r.body) &&
      r.route !== '/applications/{application_id}/commands',
  );
}

/**
 * The private sentence an interaction was answered with at once (no defer, so nothing was
 * billed), checked to be ephemeral and to ping nobody.
 */
export async function ephemeralText(it: FakeInteraction): Promise<string> {
  const callback = await it.waitForCallback();
  expect(callback.type).toBe(4);
  expect(it.isEphemeral).toBe(true);
  const data = callback.data as { content: string; allowed_mentions?: { parse: string[] } };
  expect(data.allowed_mentions?.parse).toEqual([]);
  return data.content;
}

/**
 * Registers every command in `commands/` through the bot's own REST client, as `npm run
 * deploy-commands` does, so the fake types options and offers message commands like Discord.
 */
export async function deployCommands(bot: BotHarness): Promise<void> {
  const body = [...(await loadCommands()).values()].map((c) => c.data.toJSON());
  await bot.app.bot.client.rest.put(Routes.applicationCommands(bot.discord.applicationId), { body });
}
