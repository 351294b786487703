import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import type Keyv from 'keyv';
import { silentLogger, type Logger } from '../logger.ts';
import type { SharedState } from './shared-state.ts';
import { isRedisUrl, makeFolder, redactStorageUrl, sqlitePath, storageBackend } from './open.ts';
import type { KeyValue } from './key-value.ts';

/** Timers, injectable so tests drive the probe loop without waiting. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers that never keep the process alive by themselves. */
const REAL_TIMERS: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

class TimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms / 1000} s`);
    this.name = 'TimeoutError';
  }
}

/** Settles like `work`, or rejects with a TimeoutError after `ms`; the timer never outlives it. */
function withTimeout<T>(work: Promise<T>, ms: number, timers: Timers): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = timers.setTimeout(() => reject(new TimeoutError(ms)), ms);
    work.then(
      (value) => {
        timers.clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        timers.clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * Whether the storage answers right now. Refusing new requests while it does not is the
 * command's job (`healthy()`); getting it back is this module's: a probe runs every
 * `intervalMs` (every `unavailableIntervalMs` while it is down), and at once when an operation
 * reports a failure (`suspect`).
 */
export interface StorageHealth {
  healthy(): boolean;
  /** Called when the storage goes away or comes back. Returns an unsubscribe function. */
  onChange(listener: (healthy: boolean) => void): () => void;
  /** Called after every probe, with its result (after `onChange` listeners when it changed). */
  onCheck(listener: (healthy: boolean) => void): () => void;
  /** An operation failed: probe now rather than at the next tick. Probes are never run twice at once. */
  suspect(err?: unknown): void;
  /** Probes now (or joins the probe in progress); resolves with the state after it. */
  check(): Promise<boolean>;
  /** Starts the periodic probe. */
  start(): void;
  stop(): void;
}

export interface StorageHealthOptions {
  /** Resolves when the storage works (a write, a read and a delete); rejects or hangs when it does not. */
  probe: () => Promise<void>;
  /** Between two probes while the storage answers (failures reported by operations probe at once besides). */
  intervalMs?: number;
  /** Between two probes while it does not: how soon its return is noticed. */
  unavailableIntervalMs?: number;
  /** A probe that has not answered in this long has failed. */
  timeoutMs?: number;
  now?: () => number;
  logger?: Logger;
  timers?: Timers;
  /** Turns a probe failure into the few words the log line carries. */
  describe?: (err: unknown) => string;
}

export function createStorageHealth(options: StorageHealthOptions): StorageHealth {
  const { probe, intervalMs = 5_000, timeoutMs = 2_000, now = Date.now, logger = silentLogger, timers = REAL_TIMERS } = options;
  const unavailableIntervalMs = options.unavailableIntervalMs ?? Math.min(intervalMs, 2_000);
  const describe = options.describe ?? ((err: unknown) => (err instanceof Error ? err.message : String(err)));
  let healthy = true;
  let since = now();
  let running: Promise<boolean> | undefined;
  let timer: unknown;
  let stopped = true;
  const changeListeners = new Set<(healthy: boolean) => void>();
  const checkListeners = new Set<(healthy: boolean) => void>();
  const notify = (listeners: Set<(healthy: boolean) => void>, value: boolean) => {
    for (const listener of listeners) {
      try {
        listener(value);
      } catch (err) {
        logger.error({ err }, 'storage health listener failed');
      }
    }
  };

  const settle = (ok: boolean, err?: unknown) => {
    if (ok !== healthy) {
      const at = now();
      if (ok) logger.info({ downMs: at - since }, 'storage available again: accepting new requests');
      else logger.error({ reason: describe(err) }, 'storage unavailable: new requests are paused until it answers again');
      healthy = ok;
      since = at;
      notify(changeListeners, ok);
    }
    notify(checkListeners, ok);
    return ok;
  };

  const check = () =>
    (running ??= withTimeout(Promise.resolve().then(probe), timeoutMs, timers)
      .then(
        () => settle(true),
        (err: unknown) => settle(false, err),
      )
      .finally(() => {
        running = undefined;
      }));

  const schedule = () => {
    if (stopped) return;
    timer = timers.setTimeout(() => {
      timer = undefined;
      void check().finally(schedule);
    }, healthy ? intervalMs : unavailableIntervalMs);
  };

  const subscribe = (listeners: Set<(healthy: boolean) => void>, listener: (healthy: boolean) => void) => {
    listeners.add(listener);
    return () => void listeners.delete(listener);
  };

  return {
    healthy: () => healthy,
    onChange: (listener) => subscribe(changeListeners, listener),
    onCheck: (listener) => subscribe(checkListeners, listener),
    suspect() {
      // While unavailable, the periodic probe is already watching for its return.
      if (healthy && !stopped) void check();
    },
    check,
    start() {
      if (!stopped) return;
      stopped = false;
      schedule();
    },
    stop() {
      stopped = true;
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
    },
  };
}

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
        logger.warn({ namespace: name, reason: describeStorageError(err), left: pending.size }, 'could not yet save the writes kept while the storage was unavailable');
        return saved;
      }
    }
    // Writes that started meanwhile may still be pending: the next successful probe looks again.
    keeping = pending.size > 0;
    if (saved || !keeping) logger.info({ namespace: name, saved, left: pending.size }, 'writes kept while the storage was unavailable are saved');
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
export class StorageUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageUnavailableError';
  }
}

const errorCode = (err: unknown): string | undefined => {
  const e = err as { code?: unknown; errors?: { code?: unknown }[]; cause?: unknown } | undefined;
  if (typeof e?.code === 'string') return e.code;
  const inner = e?.errors?.find((x) => typeof x?.code === 'string')?.code;
  if (typeof inner === 'string') return inner;
  return e?.cause ? errorCode(e.cause) : undefined;
};
const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

const CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host cannot be reached',
  ENETUNREACH: 'the network cannot be reached',
  ENOTFOUND: 'the host name is unknown',
  EAI_AGAIN: 'the host name could not be resolved',
  ENOTDIR: 'part of the path is a file, not a folder',
  ENOENT: 'no such file or folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full',
  SQLITE_CANTOPEN: 'the database file cannot be opened or created',
  SQLITE_READONLY: 'the database file is read-only',
  SQLITE_FULL: 'the disk is full',
  SQLITE_NOTADB: 'the file is not an SQLite database',
  SQLITE_CORRUPT: 'the database file is damaged',
  SQLITE_PERM: 'permission denied',
};

/** A few words for people: what went wrong with the storage, never a password. */
export function describeStorageError(err: unknown): string {
  const code = errorCode(err);
  if (code && CODES[code]) return CODES[code]!;
  const text = errorText(err);
  if (/WRONGPASS|NOAUTH|invalid password|AUTH/i.test(text)) return 'authentication failed (check the user and password in the URL)';
  if (/Connection timeout/i.test(text)) return 'the connection timed out';
  if (/Socket closed unexpectedly/i.test(text)) return 'the connection was closed';
  if (/client is offline|not connected or has failed to connect/i.test(text)) return 'the connection is lost';
  return redactStorageUrl(text.replace(/\s+/g, ' ').trim()).replace(/:\/\/[^@\s/]*@/g, '://***@') || 'unknown error';
}

/**
 * The one line `npm start` prints when the storage does not work, e.g. "the Redis storage at
 * STORAGE_URL (redis://***@db:6379) cannot be reached: connection refused. Check …".
 */
export function storageFailureMessage(storageUrl: string, err: unknown): string {
  const shown = redactStorageUrl(storageUrl);
  const backend = storageBackend(storageUrl);
  if (isRedisUrl(storageUrl)) {
    return `the ${backend} storage at STORAGE_URL (${shown}) cannot be reached: ${describeStorageError(err)}. Check STORAGE_URL in .env, start Redis, or use the default SQLite file (remove STORAGE_URL).`;
  }
  let reason = describeStorageError(err);
  if (backend === 'SQLite') {
    // The most common cause, named precisely: a folder that cannot be created.
    const folder = dirname(sqlitePath(storageUrl));
    try {
      makeFolder(folder);
    } catch (e) {
      reason = `the folder ${folder} cannot be created (${describeStorageError(e)})`;
    }
  }
  return `the ${backend} storage at STORAGE_URL (${shown}) cannot be opened or written: ${reason}. Check STORAGE_URL in .env: it must name an SQLite file in a folder the bot can create and write to.`;
}

/** What the application gets: the health, and namespaces that keep their writes through an outage. */
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
      if (!claimed.won || (await shared.read<typeof value>(key))?.probe !== key) throw new Error('a claim written could not be read back');
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
    const cause = seen.find((e) => errorCode(e)) ?? (errorCode(err) ? err : seen.find((e) => !/not connected/i.test(errorText(e)))) ?? err;
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
        if (kv.pending()) log.error({ lost: kv.pending() }, 'the storage is unavailable: writes kept in memory are lost at this stop');
      }
    },
  };
}
