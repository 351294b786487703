/**
 * `npm run start:sharded`: the bot on several gateway shards, one process per shard, started
 * and watched by discord.js' ShardingManager. Each shard process runs `src/main.ts` (what
 * `npm start` runs); discord.js gives each its shard id and the shard count through the
 * environment (`SHARDS`, `SHARD_COUNT`). The shards share jobs, limits and settings on Redis.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ShardingManager, type Shard } from 'discord.js';
import dotenv from 'dotenv';
import { formatProblems, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { NODE_FLAGS } from './node-flags.ts';
import { isRedisUrl, storageSecrets } from './storage/open.ts';

/** Discord lets a bot identify once per 5 s (per max_concurrency bucket): ShardingManager's own pause. */
const SPAWN_DELAY_MS = 5_500;
/** How long a shard may take from its spawn to READY before the start is given up. */
const READY_TIMEOUT_MS = 60_000;
/** How long the shards get to stop after SIGTERM/SIGINT (each pauses its jobs) before they are killed. */
const STOP_TIMEOUT_MS = 20_000;
const DISCORD_API = 'https://discord.com/api';

dotenv.config({ quiet: true });

const problems: string[] = [];
const loaded = loadConfig(process.env, undefined, { isTTY: process.stdout.isTTY });
if (!loaded.ok) problems.push(...loaded.problems);
const shardCountRaw = process.env.SHARD_COUNT?.trim();
const fixedCount = shardCountRaw ? Number(shardCountRaw) : 'auto';
if (fixedCount !== 'auto' && !(/^\d+$/.test(shardCountRaw ?? '') && fixedCount >= 1))
  problems.push('SHARD_COUNT must be a whole number of at least 1');
if (!loaded.ok || problems.length > 0) {
  console.error(formatProblems(problems.sort()));
  process.exit(2);
}
const { config } = loaded;
const logger = createLogger({
  ...config.log,
  secrets: [config.discordToken, config.ppinfra.apiKey, ...storageSecrets(config.storageUrl)],
});

const count = fixedCount === 'auto' ? await recommendedShardCount() : fixedCount;
if (count > 1 && !isRedisUrl(config.storageUrl)) {
  const backend = config.storageUrl.startsWith('memory://') ? 'memory://' : 'SQLite';
  console.error(
    [
      `qwen-imagine cannot start ${count} shards: each shard is a process of its own, and STORAGE_URL (${backend}) serves one process.`,
      'Set STORAGE_URL=redis://host:6379 so every shard shares the jobs, limits and settings, or run one process with `npm start`.',
    ].join('\n'),
  );
  process.exit(2);
}

// No respawn while starting: a shard that cannot start (a configuration or storage problem it
// has just printed) would otherwise be restarted in a loop. Once all are ready, discord.js
// restarts a shard whose process ends.
const manager = new ShardingManager(join(import.meta.dirname, 'main.ts'), {
  token: config.discordToken,
  totalShards: count,
  mode: 'process',
  respawn: false,
  execArgv: [...NODE_FLAGS],
});
let started = false;
let stopping = false;
const stopped = new AbortController();

manager.on('shardCreate', (shard: Shard) => {
  shard.on('spawn', (child) =>
    logger.info({ shard: shard.id, shards: count, pid: (child as ChildProcess).pid }, 'shard spawned'),
  );
  shard.on('ready', () => logger.info({ shard: shard.id, shards: count }, 'shard ready'));
  shard.on('death', (child) => {
    const { exitCode, signalCode } = child as ChildProcess;
    const fields = { shard: shard.id, exitCode, signal: signalCode };
    if (stopping) return logger.info(fields, 'shard stopped');
    if (started) return logger.warn(fields, 'shard exited; discord.js starts it again');
    // The shard said why on stderr; its exit code (2 for configuration and storage) becomes ours.
    fail(`shard ${shard.id} exited with code ${exitCode ?? signalCode} before all shards were ready`, exitCode || 1);
  });
  // A respawn that fails: without a listener, EventEmitter would throw it and end the manager.
  shard.on('error', (err) => logger.error({ err, shard: shard.id }, 'shard could not be started again'));
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    logger.info(
      { signal, shards: manager.shards.size },
      'stopping every shard: jobs in progress will resume on the next start',
    );
    void stopAll(signal).then((code) => process.exit(code));
  });
}

logger.info({ shards: count, source: fixedCount === 'auto' ? 'GET /gateway/bot' : 'SHARD_COUNT' }, 'starting shards');
try {
  // ShardingManager.spawn() without its loop: the same pause between shards, but one a signal can end.
  for (let id = 0; id < count && !stopping; id++) {
    const shard = manager.createShard(id);
    await Promise.all([
      shard.spawn(READY_TIMEOUT_MS),
      id < count - 1 ? sleep(SPAWN_DELAY_MS, undefined, { signal: stopped.signal }) : undefined,
    ]);
  }
  if (!stopping) {
    started = true;
    manager.respawn = true;
    logger.info({ shards: count }, 'all shards ready');
  }
} catch (err) {
  // A shard that died has already stopped everything; this is a shard that was never ready.
  if (!stopping) fail(`could not start the shards: ${(err as Error).message}`, 1);
}

/** Stops every shard, then exits with `code`. */
function fail(reason: string, code: number): void {
  logger.fatal({ shards: count }, reason);
  void stopAll(null, code).then((exitCode) => process.exit(exitCode));
}

/**
 * Sends `signal` to every shard process (each pauses its jobs and exits, like `npm start` does)
 * and resolves, once all have exited, with 0 if all stopped cleanly, else `failure`.
 */
async function stopAll(signal: NodeJS.Signals | null, failure = 1): Promise<number> {
  stopping = true;
  manager.respawn = false;
  stopped.abort();
  const children = [...manager.shards.values()]
    .map((shard) => shard.process)
    .filter((child): child is ChildProcess => child !== null && child.exitCode === null && child.signalCode === null);
  const force = setTimeout(() => {
    logger.error(
      { shards: children.filter((c) => c.exitCode === null).length },
      'shards did not stop in time: killing them',
    );
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  }, STOP_TIMEOUT_MS);
  force.unref();
  const sent = signal ?? 'SIGTERM';
  const clean = await Promise.all(
    children.map(async (child) => {
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      child.kill(sent);
      const [code, killedBy] = await exited;
      // A shard still starting (before `npm start` handles signals) ends by the signal itself: a stop too.
      return code === 0 || killedBy === sent;
    }),
  );
  clearTimeout(force);
  return signal !== null && clean.every(Boolean) ? 0 : failure;
}

/** The shard count Discord recommends (GET /gateway/bot), asked where the shards' REST calls go. */
async function recommendedShardCount(): Promise<number> {
  const base = config.discordApiUrl ?? DISCORD_API;
  const where = config.discordApiUrl ? 'DISCORD_API_URL' : 'Discord';
  let response: Response;
  try {
    response = await fetch(`${base.replace(/\/+$/, '')}/v10/gateway/bot`, {
      headers: { authorization: `Bot ${config.discordToken}` },
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    console.error(
      `qwen-imagine cannot start: could not ask ${where} for the recommended shard count (${cause}). Set SHARD_COUNT to skip the question.`,
    );
    process.exit(1);
  }
  if (response.status === 401) {
    console.error('qwen-imagine cannot start: Discord rejected DISCORD_TOKEN: check the token in .env');
    process.exit(1);
  }
  const body = (await response.json().catch(() => null)) as { shards?: unknown } | null;
  const shards = body?.shards;
  if (!response.ok || typeof shards !== 'number' || !Number.isInteger(shards) || shards < 1) {
    console.error(
      `qwen-imagine cannot start: ${where} did not give a shard count (GET /gateway/bot: HTTP ${response.status}). Set SHARD_COUNT to skip the question.`,
    );
    process.exit(1);
  }
  return shards;
}
