/** `npm start`: the bot, configured from `.env` and the environment. */
import dotenv from 'dotenv';
import { startApp } from './app.ts';
import { formatProblems, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { describeStartFailure } from './startup.ts';
import { storageSecrets } from './storage/open.ts';

dotenv.config({ quiet: true });
const loaded = loadConfig(process.env, undefined, { isTTY: process.stdout.isTTY });
if (!loaded.ok) {
  console.error(formatProblems(loaded.problems));
  process.exit(2);
}
// Under `npm run start:sharded` every shard is a process on the same host: shard N serves its
// health and metrics on METRICS_PORT + N, so they do not take each other's port. (A process given
// SHARDS by hand, one per container as in compose.yaml, keeps METRICS_PORT.)
const shardId = (() => {
  if (process.env.SHARDING_MANAGER !== 'true') return Number.NaN;
  try {
    // discord.js reads SHARDS as JSON: `1` from the ShardingManager, or `[1]`.
    const parsed: unknown = JSON.parse(process.env.SHARDS ?? 'null');
    return Number(Array.isArray(parsed) ? parsed[0] : parsed);
  } catch {
    return Number.NaN;
  }
})();
const config =
  loaded.config.ops && loaded.config.ops.port > 0 && Number.isInteger(shardId) && shardId > 0
    ? { ...loaded.config, ops: { ...loaded.config.ops, port: Math.min(65_535, loaded.config.ops.port + shardId) } }
    : loaded.config;
const secrets = [config.discordToken, config.ppinfra.apiKey, ...storageSecrets(config.storageUrl)];
const root = createLogger({ ...config.log, secrets });
// Under `npm run start:sharded` every line says which shard wrote it.
const logger = process.env.SHARDS ? root.child({ shard: process.env.SHARDS }) : root;

process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));

let app: Awaited<ReturnType<typeof startApp>> | undefined;
let stopping: NodeJS.Signals | undefined;

/** Pauses jobs (they resume on the next start), closes everything, exits. */
function stop(signal: NodeJS.Signals) {
  logger.info({ signal }, 'stopping: jobs in progress will resume on the next start');
  const force = setTimeout(() => {
    logger.error({ waitingFor: app?.closing() }, 'did not stop within 15 s; exiting');
    process.exit(1);
  }, 15_000);
  force.unref();
  app!.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err }, 'unclean stop');
      process.exit(1);
    },
  );
}

// Handlers before the start: a signal while starting is honoured once the start is done,
// instead of killing the process mid-way with the default action.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = signal;
    if (app) return stop(signal);
    // A start that hangs (Discord unreachable) must not make the signal useless.
    setTimeout(() => process.exit(1), 15_000).unref();
  });
}
// A shard whose manager is gone (killed) stops too, instead of running on unsupervised.
if (process.send) process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));

try {
  app = await startApp(config, logger);
  if (stopping) stop(stopping);
} catch (err) {
  // One sentence an operator can act on (Discord unreachable, token rejected, storage): no stack
  // trace, no secret. The details go to the log at debug level.
  logger.debug({ err }, 'could not start');
  const failure = describeStartFailure(err, secrets);
  console.error(failure.message);
  process.exit(failure.exitCode);
}
