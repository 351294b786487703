import { silentLogger, type Logger } from '../logger.ts';

/** Timers, injectable so tests drive the probe loop without waiting. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers that never keep the process alive by themselves. */
export const REAL_TIMERS: Timers = {
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
export function withTimeout<T>(work: Promise<T>, ms: number, timers: Timers): Promise<T> {
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
  const {
    probe,
    intervalMs = 5_000,
    timeoutMs = 2_000,
    now = Date.now,
    logger = silentLogger,
    timers = REAL_TIMERS,
  } = options;
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
      else
        logger.error({ reason: describe(err) }, 'storage unavailable: new requests are paused until it answers again');
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
    timer = timers.setTimeout(
      () => {
        timer = undefined;
        void check().finally(schedule);
      },
      healthy ? intervalMs : unavailableIntervalMs,
    );
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
