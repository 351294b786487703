import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Keyv from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import KeyvRedis from '@keyv/redis';
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
  if (/^rediss?:\/\//.test(storageUrl)) return new Keyv({ ...options, store: new KeyvRedis(storageUrl) });
  const file = sqlitePath(storageUrl);
  mkdirSync(dirname(file), { recursive: true });
  return new Keyv({ ...options, store: new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 5_000 }) });
}

/** `sqlite://./data/x.sqlite` is relative to the working directory; `sqlite:///abs/x.sqlite` absolute. */
export function sqlitePath(storageUrl: string): string {
  return resolve(storageUrl.replace(/^sqlite:\/\//, ''));
}

/** Atomic claims and sets on the same backend: Redis commands, or serialised Keyv operations for one process. */
export function openSharedState(storageUrl: string): SharedState {
  if (/^rediss?:\/\//.test(storageUrl)) return createRedisSharedState(storageUrl);
  return createLocalSharedState(openStorage(storageUrl, 'shared'));
}
