import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import KeyvRedis, { createClient } from '@keyv/redis';
import { createLocalSharedState, createRedisSharedState, type SharedState } from './shared-state.ts';

/** `memory://` is one map per process, shared like a server would be, gone when the process ends. */
const MEMORY = new Map<string, unknown>();

/**
 * Opens a Keyv namespace on the backend STORAGE_URL names: an embedded SQLite file by
 * default, Redis for several processes, memory for throwaway runs. `throwOnErrors` makes a
 * failed write an error instead of a silently lost job.
 */
export function openStorage(storageUrl: string, namespace: string): Keyv {
  const options = { namespace, throwOnErrors: true };
  if (storageUrl.startsWith('memory://')) return new Keyv({ ...options, store: MEMORY });
  // The adapter's own throwOnErrors too: by default it swallows a failed command and Keyv would
  // report a write that never happened as done.
  if (isRedisUrl(storageUrl)) {
    const redis = redisConnection(storageUrl);
    const store = new KeyvRedis(redis.options, { throwOnErrors: true });
    redis.watch(store.client);
    return new Keyv({ ...options, store });
  }
  const file = sqlitePath(storageUrl);
  // A folder that cannot be created (a path under a file, no permission) is reported by the
  // start-up probe, which names STORAGE_URL, rather than thrown here with a stack trace.
  try {
    makeFolder(dirname(file));
  } catch {}
  return new Keyv({ ...options, store: new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 5_000 }) });
}

/**
 * `mkdir -p`, by hand: `mkdirSync(…, { recursive: true })` never returns for a path under /proc
 * (Node loops on ENOENT there), and a start must fail, not hang.
 */
export function makeFolder(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (statSync(dir).isDirectory()) return;
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR' });
    }
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw err;
    makeFolder(parent);
    mkdirSync(dir);
  }
}

/** `sqlite://./data/x.sqlite` is relative to the working directory; `sqlite:///abs/x.sqlite` absolute. */
export function sqlitePath(storageUrl: string): string {
  return resolve(storageUrl.replace(/^sqlite:\/\//, ''));
}

/** Atomic claims and sets on the same backend: Redis commands, or serialised Keyv operations for one process. */
export function openSharedState(storageUrl: string): SharedState {
  if (isRedisUrl(storageUrl)) {
    const redis = redisConnection(storageUrl);
    return createRedisSharedState(storageUrl, undefined, redis.watch(createClient(redis.options)));
  }
  return createLocalSharedState(openStorage(storageUrl, 'shared'));
}

export const isRedisUrl = (storageUrl: string) => /^rediss?:\/\//.test(storageUrl);

/** The backend's name, for people: `Redis`, `SQLite` or `memory`. */
export const storageBackend = (storageUrl: string) =>
  isRedisUrl(storageUrl) ? 'Redis' : storageUrl.startsWith('memory://') ? 'memory' : 'SQLite';

/** STORAGE_URL as it may be shown: `redis://user:pass@host` becomes `redis://***@host`. */
export function redactStorageUrl(storageUrl: string): string {
  return storageUrl.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, '$1***@');
}

/** The password in a Redis STORAGE_URL, for the logger to scrub wherever it might appear. */
export function storageSecrets(storageUrl: string): string[] {
  if (!isRedisUrl(storageUrl)) return [];
  try {
    const password = decodeURIComponent(new URL(storageUrl).password);
    return password ? [password] : [];
  } catch {
    return [];
  }
}

/** How long one attempt to open a connection to Redis may take. */
const REDIS_CONNECT_TIMEOUT_MS = 3_000;
/** Attempts at the first connection before giving up (about 3 s in all when nothing listens). */
const REDIS_FIRST_CONNECT_ATTEMPTS = 5;
/** The longest pause between two attempts to get a lost connection back. */
const REDIS_MAX_BACKOFF_MS = 2_000;
/**
 * A command waits at most this long, for instance queued while the connection is being restored;
 * then it fails and leaves the queue, so a write is never replayed long after its caller moved on.
 */
const REDIS_COMMAND_TIMEOUT_MS = 10_000;

/**
 * A node-redis client for every connection the bot opens. Left to its defaults it retries a
 * connection forever and holds commands until one succeeds, so a wrong STORAGE_URL or a stopped
 * Redis made `npm start` wait silently. Here the first connection gives up after a few attempts
 * (the start-up probe then reports it); once connected, a lost connection is retried for good
 * with a capped backoff, so the bot gets its storage back by itself, while commands fail at once
 * until it is back; and no command waits more than REDIS_COMMAND_TIMEOUT_MS.
 */
function redisConnection(url: string) {
  let connected = false;
  const options = {
    url,
    commandOptions: { timeout: REDIS_COMMAND_TIMEOUT_MS },
    socket: {
      connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
      reconnectStrategy: (retries: number) =>
        connected
          ? Math.min(100 * 2 ** retries, REDIS_MAX_BACKOFF_MS)
          : retries + 1 < REDIS_FIRST_CONNECT_ATTEMPTS && Math.min(250 * 2 ** retries, 1_000),
    },
  };
  const watch = <
    C extends { on(event: string, listener: () => void): unknown; options?: { disableOfflineQueue?: boolean } },
  >(
    client: C,
  ): C => {
    client.on('ready', () => {
      connected = true;
      // Commands sent before the first connection wait for it (several namespaces start at once);
      // once connected, a command sent while the connection is lost fails at once instead of
      // waiting for it to come back: jobs keep their writes in memory meanwhile, and the health
      // probe sees the outage right away.
      if (client.options) client.options.disableOfflineQueue = true;
    });
    // Without a listener, the 'error' event of a dropped connection would be thrown and end the process.
    client.on('error', () => undefined);
    return client;
  };
  return { options, watch };
}
