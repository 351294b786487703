import { randomUUID } from 'node:crypto';
import type Keyv from 'keyv';
import type { Logger } from '../logger.ts';
import type { SharedState } from './shared-state.ts';
import { storageBackend } from './open.ts';
import type { KeyValue } from './key-value.ts';
import { createStorageHealth, REAL_TIMERS, withTimeout, type StorageHealth, type Timers } from './health.ts';
import { keepWhileUnavailable, type KeptKeyValue } from './kept.ts';
import {
  describeStorageError,
  errorCode,
  errorText,
  StorageUnavailableError,
  storageFailureMessage,
} from './errors.ts';

export interface AppStorage {
  health: StorageHealth;
  healthy(): boolean;
  /** The namespace, with its writes kept in memory while the storage is unavailable. */
  keep(kv: KeyValue, name: string): KeptKeyValue;
  /** Stops probing and saves what was kept (logging what could not be). */
  stop(): Promise<void>;
}

export interface StartStorageOptions {
  storageUrl: string;
  /** Every namespace the bot opened, the jobs' first: at start each gets a write, a read and a delete. */
  namespaces: Keyv[];
  shared: SharedState;
  logger: Logger;
  /** The start-up probe's limit: past it, `npm start` gives up with a clear error. */
  startTimeoutMs?: number;
  /** How often the storage is probed while it answers (STORAGE_PROBE_INTERVAL_MS, if it becomes a setting). */
  intervalMs?: number;
  /** How often while it does not: how soon the bot notices it is back. */
  unavailableIntervalMs?: number;
  /** A probe while running that has not answered in this long has failed. */
  probeTimeoutMs?: number;
  timers?: Timers;
}

const PROBE_TTL_MS = 60_000;

/**
 * A write, a read and a delete on the shared state and on the first namespace (every namespace
 * when `writeAll`), a read on the others (each has its own connection on Redis); throws on any
 * difference.
 */
async function probeAll(namespaces: Keyv[], shared: SharedState, writeAll: boolean): Promise<void> {
  const key = `storage-probe:${process.pid}:${randomUUID()}`;
  const value = { probe: key };
  await Promise.all([
    ...namespaces.map(async (kv, i) => {
      if (i > 0 && !writeAll) return void (await kv.get(key));
      await kv.set(key, value, PROBE_TTL_MS);
      const back = (await kv.get(key)) as { probe?: string } | undefined;
      if (back?.probe !== key) throw new Error('a value written could not be read back');
      await kv.delete(key);
    }),
    (async () => {
      const claimed = await shared.claim(key, value, PROBE_TTL_MS);
      if (!claimed.won || (await shared.read<typeof value>(key))?.probe !== key)
        throw new Error('a claim written could not be read back');
      await shared.release(key);
    })(),
  ]);
}

/**
 * Probes the storage before the bot does anything else: when it cannot be opened or reached in
 * `startTimeoutMs`, everything opened is closed and a StorageUnavailableError explains what to
 * check. Otherwise the storage is watched while running.
 */
export async function startStorageHealth(options: StartStorageOptions): Promise<AppStorage> {
  const { storageUrl, namespaces, shared, logger, startTimeoutMs = 5_000, timers = REAL_TIMERS } = options;
  // The adapters report the cause (connection refused, a file that cannot be opened) as events,
  // while the failed operation itself often says only "not connected".
  const seen: unknown[] = [];
  let health: StorageHealth | undefined;
  for (const kv of namespaces) {
    kv.on('error', (err: unknown) => {
      if (health) health.suspect(err);
      else seen.push(err);
    });
  }
  try {
    await withTimeout(probeAll(namespaces, shared, true), startTimeoutMs, timers);
  } catch (err) {
    // The most telling error: one with a system or SQLite code, else one the adapters reported, else the probe's own.
    const cause =
      seen.find((e) => errorCode(e)) ??
      (errorCode(err) ? err : seen.find((e) => !/not connected/i.test(errorText(e)))) ??
      err;
    await withTimeout(
      Promise.allSettled([...namespaces.map((kv) => kv.disconnect()), shared.close()]),
      1_000,
      timers,
    ).catch(() => undefined);
    throw new StorageUnavailableError(storageFailureMessage(storageUrl, cause));
  }

  const log = logger.child({ component: 'storage', storage: storageBackend(storageUrl) });
  health = createStorageHealth({
    probe: () => probeAll(namespaces, shared, false),
    intervalMs: options.intervalMs,
    unavailableIntervalMs: options.unavailableIntervalMs,
    timeoutMs: options.probeTimeoutMs,
    logger: log,
    timers,
    describe: describeStorageError,
  });
  health.start();
  const kept: KeptKeyValue[] = [];
  const watched = health;
  return {
    health: watched,
    healthy: () => watched.healthy(),
    keep(kv, name) {
      const wrapped = keepWhileUnavailable(kv, watched, { name, logger: log, timers });
      kept.push(wrapped);
      return wrapped;
    },
    async stop() {
      watched.stop();
      for (const kv of kept) {
        if (!kv.pending()) continue;
        await kv.flush().catch(() => 0);
        if (kv.pending())
          log.error({ lost: kv.pending() }, 'the storage is unavailable: writes kept in memory are lost at this stop');
      }
    },
  };
}
