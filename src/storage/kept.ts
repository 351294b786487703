import { silentLogger, type Logger } from '../logger.ts';
import type { KeyValue } from './key-value.ts';
import { REAL_TIMERS, withTimeout, type StorageHealth, type Timers } from './health.ts';
import { describeStorageError } from './errors.ts';

/** A KeyValue that never loses a write to an unavailable storage (see `keepWhileUnavailable`). */
export interface KeptKeyValue extends KeyValue {
  /** Writes the values kept while the storage was unavailable; resolves with how many were saved. */
  flush(): Promise<number>;
  /** How many keys wait to be written. */
  pending(): number;
}

type Write = { value: unknown; ttl?: number } | { deleted: true };

/**
 * Wraps a namespace so that a write the storage cannot take is kept in memory instead of
 * failing: jobs in progress go on (their state is in memory anyway), reads of a kept key answer
 * with the kept value, and everything kept is written, newest value per key, once a probe
 * succeeds. While the storage is known to be unavailable, writes are kept without trying, so a
 * job does not wait on it; a write that takes longer than `timeoutMs` is kept too and the caller
 * goes on. Writes to one key are serialised, so an older value never overwrites a newer one.
 * What is kept is lost if the process dies before the storage comes back.
 */
export function keepWhileUnavailable(
  kv: KeyValue,
  health: StorageHealth,
  options: { name: string; logger?: Logger; timeoutMs?: number; timers?: Timers },
): KeptKeyValue {
  const { name, logger = silentLogger, timeoutMs = 5_000, timers = REAL_TIMERS } = options;
  const pending = new Map<string, Write>();
  const chains = new Map<string, Promise<unknown>>();
  let flushing: Promise<number> | undefined;

  const serial = (key: string, fn: () => Promise<void>): Promise<void> => {
    const run = (chains.get(key) ?? Promise.resolve()).then(fn);
    const tail = run.catch(() => undefined);
    chains.set(key, tail);
    void tail.then(() => chains.get(key) === tail && chains.delete(key));
    return run;
  };

  /** Writes `write` unless a newer value for the key replaced it meanwhile (that one follows); true when written. */
  const attempt = (key: string, write: Write) => {
    let written = false;
    return serial(key, async () => {
      if (pending.get(key) !== write) return;
      await ('deleted' in write ? kv.delete(key) : kv.set(key, write.value, write.ttl));
      written = true;
      if (pending.get(key) === write) pending.delete(key);
    }).then(() => written);
  };

  /** Whether writes are being kept for later (logged once per outage). */
  let keeping = false;
  const keep = (key: string, write: Write) => {
    pending.set(key, write);
    if (keeping) return;
    keeping = true;
    logger.warn({ namespace: name }, 'storage unavailable: keeping writes in memory until it answers again');
  };

  async function put(key: string, write: Write) {
    if (!health.healthy()) return keep(key, write);
    pending.set(key, write);
    try {
      await withTimeout(attempt(key, write), timeoutMs, timers);
    } catch (err) {
      // Still pending (unless a newer value replaced it): the next successful probe writes it.
      if (pending.get(key) === write) keep(key, write);
      health.suspect(err);
    }
  }

  async function flushAll(): Promise<number> {
    let saved = 0;
    for (const [key, write] of [...pending]) {
      try {
        if (await withTimeout(attempt(key, write), timeoutMs, timers)) saved++;
      } catch (err) {
        // The rest waits for the next successful probe (not a probe now: a write that fails while
        // probes pass would otherwise be retried in a loop).
        logger.warn(
          { namespace: name, reason: describeStorageError(err), left: pending.size },
          'could not yet save the writes kept while the storage was unavailable',
        );
        return saved;
      }
    }
    // Writes that started meanwhile may still be pending: the next successful probe looks again.
    keeping = pending.size > 0;
    if (saved || !keeping)
      logger.info(
        { namespace: name, saved, left: pending.size },
        'writes kept while the storage was unavailable are saved',
      );
    return saved;
  }

  const flush = () =>
    (flushing ??= flushAll().finally(() => {
      flushing = undefined;
    }));

  health.onCheck((ok) => {
    if (ok && keeping) void flush();
  });

  return {
    async get(key) {
      const kept = pending.get(key);
      if (kept) return 'deleted' in kept ? undefined : structuredClone(kept.value);
      if (!health.healthy()) throw new Error(`the storage is unavailable (${name})`);
      try {
        return await withTimeout(kv.get(key), timeoutMs, timers);
      } catch (err) {
        health.suspect(err);
        throw err;
      }
    },
    async set(key, value, ttl) {
      // A snapshot: the caller (a job in progress) goes on changing its object.
      await put(key, { value: structuredClone(value), ...(ttl ? { ttl } : {}) });
      return true;
    },
    async delete(key) {
      await put(key, { deleted: true });
      return true;
    },
    flush,
    pending: () => pending.size,
  };
}

/** The storage could not be opened or reached at start; the message names STORAGE_URL and says what to do. */
