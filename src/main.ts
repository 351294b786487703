/** `npm start`: the bot, configured from `.env` and the environment. */
import dotenv from 'dotenv';
import { startApp } from './app.ts';
import { formatProblems, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { StorageUnavailableError } from './storage-health.ts';
import { storageSecrets } from './storage.ts';

dotenv.config({ quiet: true });
const loaded = loadConfig(process.env);
if (!loaded.ok) {
  console.error(formatProblems(loaded.problems));
  process.exit(2);
}
const { config } = loaded;
const logger = createLogger({ ...config.log, secrets: [config.discordToken, config.ppinfra.apiKey, ...storageSecrets(config.storageUrl)] });

process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));

let app: Awaited<ReturnType<typeof startApp>>;
try {
  app = await startApp(config, logger);
} catch (err) {
  if (err instanceof StorageUnavailableError) {
    // One line an operator can act on, like a configuration problem: no stack trace, no password.
    console.error(`qwen-imagine cannot start: ${err.message}`);
    process.exit(2);
  }
  const tokenRejected = (err as { code?: string }).code === 'TokenInvalid' || /401|invalid token/i.test(String(err));
  logger.fatal({ err }, tokenRejected ? 'Discord rejected DISCORD_TOKEN: check the token in .env' : 'could not start');
  process.exit(1);
}

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: jobs in progress will resume on the next start');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'unclean stop');
        process.exit(1);
      },
    );
  });
}
