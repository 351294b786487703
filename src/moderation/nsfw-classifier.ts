import { Worker } from 'node:worker_threads';
import type { NsfwScores } from '../domain/job.ts';
import type { Logger } from '../logger.ts';
import type { WorkerOptions, WorkerReply, WorkerRequest } from './classifier-worker.ts';
import { ClassifierError, type ImageClassifier } from './classifier.ts';
import type { ClassifierFailure, ClassifierStatus } from '../domain/moderation.ts';

// The local NSFW model (nsfwjs), in its own thread (classifier-worker.ts) so a classification never blocks the bot.

/** What the classifier reports about each classification (see `Metrics.classification`). */
export interface ClassifierMetrics {
  classification(outcome: 'ok' | 'failed', reason: ClassifierFailure | 'none', seconds: number): void;
}

export interface NsfwClassifierOptions {
  logger: Logger;
  metrics?: ClassifierMetrics;
  /** How long one classify may take, queue included, before it rejects with `timeout` (ms). */
  timeoutMs?: number;
  /** How long loading the model may take before the thread counts as failed (ms). */
  loadTimeoutMs?: number;
  /** The wait before starting a thread again after a failed start, doubling from `min` to `max` (ms). */
  retryDelayMs?: { min: number; max: number };
  /**
   * Linux: the model thread's nice value above the bot's (0-19, default 10), so when both want a
   * core the event loop gets it and the classification waits (measured by `npm run bench`).
   */
  niceness?: number;
  /** The nsfwjs model name; tests name one that does not exist to play a model that cannot load. */
  model?: string;
  /** Sees every thread as it starts; tests terminate one to play a crash. */
  onWorker?: (worker: Worker) => void;
}

/** The classifier with what tests and the bench need to wait on and to look into. */
export interface NsfwClassifier extends ImageClassifier {
  /** Resolves with the status once it is not `loading` (at once if it is not). */
  settled(): Promise<ClassifierStatus>;
  /** How many tensors the model's thread holds: constant between classifications unless one leaks. */
  tensorCount(): Promise<number>;
}

export const NSFW_CLASSIFIER_TIMEOUT_MS = 10_000;
/** Loading takes about half a second on an idle machine; a minute means a thread that will not load. */
const LOAD_TIMEOUT_MS = 60_000;
const RETRY_DELAY_MS = { min: 1_000, max: 60_000 };
const NICENESS = 10;
const WORKER_URL = new URL('./classifier-worker.ts', import.meta.url);

interface Pending {
  resolve(value: unknown): void;
  reject(err: ClassifierError): void;
  timer: NodeJS.Timeout;
}

/**
 * The nsfwjs MobileNetV2 model in a worker thread (`classifier-worker.ts`): decoding, resizing and
 * inference never run on the bot's event loop. The model loads once per thread; the status is
 * `loading` until it has, then `ready`, or `failed` while it cannot (a new thread is tried after a
 * growing delay). A thread that dies rejects what it was working on and is replaced at once.
 *
 * Every failure rejects with a `ClassifierError` and is logged with its reason, never the image.
 */
export function createNsfwClassifier(options: NsfwClassifierOptions): NsfwClassifier {
  const log = options.logger;
  const metrics = options.metrics;
  const timeoutMs = options.timeoutMs ?? NSFW_CLASSIFIER_TIMEOUT_MS;
  const loadTimeoutMs = options.loadTimeoutMs ?? LOAD_TIMEOUT_MS;
  const retryDelay = options.retryDelayMs ?? RETRY_DELAY_MS;
  const model = options.model ?? 'MobileNetV2';
  const niceness = options.niceness ?? NICENESS;

  let status: ClassifierStatus = 'loading';
  let worker: Worker | undefined;
  let closed = false;
  /** Starts that failed in a row: the next retry waits longer. */
  let failedStarts = 0;
  let loadTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  /** When the thread last answered anything: a timeout with no answer since the request means it hangs. */
  let lastReplyAt = 0;
  let nextId = 1;
  const pending = new Map<number, Pending>();
  let waiters: ((s: ClassifierStatus) => void)[] = [];

  function setStatus(next: ClassifierStatus) {
    status = next;
    if (next === 'loading') return;
    const ready = waiters;
    waiters = [];
    for (const w of ready) w(next);
  }

  function settle(id: number, outcome: { value: unknown } | { error: ClassifierError }) {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in outcome) p.reject(outcome.error);
    else p.resolve(outcome.value);
  }

  function rejectAll(reason: ClassifierFailure, message: string) {
    for (const id of [...pending.keys()]) settle(id, { error: new ClassifierError(reason, message) });
  }

  /** Stops a thread this classifier no longer listens to; its callers are told `reason`. */
  function retire(reason: ClassifierFailure, message: string) {
    const w = worker;
    worker = undefined;
    clearTimeout(loadTimer);
    rejectAll(reason, message);
    w?.terminate().catch(() => undefined);
  }

  function retryLater() {
    setStatus('failed');
    const delay = Math.min(retryDelay.max, retryDelay.min * 2 ** failedStarts);
    failedStarts++;
    log.warn(
      { retryInMs: delay, failedStarts },
      'NSFW classifier unavailable: images it should classify are held until it loads',
    );
    retryTimer = setTimeout(start, delay);
    retryTimer.unref();
  }

  function start() {
    if (closed) return;
    // A retry after a failed start stays `failed` until the model is in: health does not flap to
    // up for the second a retry loads, and callers are not kept waiting on a load that may fail.
    if (status !== 'failed') setStatus('loading');
    // execArgv: the bot's V8 flags are process-wide already, and a worker refuses some of them.
    const workerData: WorkerOptions = { model, niceness };
    const w = new Worker(WORKER_URL, { workerData, execArgv: [], stdout: true, stderr: true });
    worker = w;
    w.unref();
    // Anything a library writes past the console goes to the log, never to the bot's stdout.
    const output = (chunk: Buffer) => log.debug({ output: String(chunk).trimEnd() }, 'NSFW classifier thread output');
    w.stdout.on('data', output);
    w.stderr.on('data', output);
    w.on('message', (reply: WorkerReply) => {
      if (w === worker) onReply(reply);
    });
    w.on('error', (err) => {
      if (w === worker) log.error({ err }, 'NSFW classifier thread failed');
    });
    w.on('exit', (exitCode) => {
      if (w !== worker || closed) return;
      const wasReady = status === 'ready';
      retire('crashed', 'the NSFW classifier thread exited');
      log.error({ exitCode, wasReady }, 'NSFW classifier thread exited; starting a new one');
      // A thread that died after loading is replaced at once; one that died loading waits its turn.
      if (wasReady) start();
      else retryLater();
    });
    loadTimer = setTimeout(() => {
      if (w !== worker) return;
      log.error({ loadTimeoutMs }, 'NSFW classifier model did not load in time');
      retire('unavailable', 'the NSFW classifier model did not load');
      retryLater();
    }, loadTimeoutMs);
    loadTimer.unref();
    options.onWorker?.(w);
  }

  function onReply(reply: WorkerReply) {
    lastReplyAt = Date.now();
    switch (reply.type) {
      case 'ready':
        clearTimeout(loadTimer);
        failedStarts = 0;
        log.info({ loadMs: Math.round(reply.loadMs), model }, 'NSFW classifier ready');
        setStatus('ready');
        return;
      case 'failed':
        log.error({ reason: reply.message, model }, 'NSFW classifier model could not be loaded');
        retire('unavailable', 'the NSFW classifier model could not be loaded');
        retryLater();
        return;
      case 'scores':
        return settle(reply.id, { value: reply.scores });
      case 'debug':
        return settle(reply.id, { value: reply.tensors });
      case 'error': {
        const reason: ClassifierFailure =
          reply.reason === 'decode' ? 'decode' : reply.reason === 'expired' ? 'timeout' : 'crashed';
        return settle(reply.id, {
          error: new ClassifierError(
            reason,
            `${reason === 'decode' ? 'not an image the classifier can read' : 'the classification failed'}: ${reply.message}`,
          ),
        });
      }
      case 'log':
        return log[reply.level]({ output: reply.message }, 'NSFW classifier thread said');
    }
  }

  /** Sends one request; rejects `unavailable` at once while no model can answer. */
  function ask<T>(request: (id: number, deadline: number) => WorkerRequest, transfer: ArrayBuffer[] = []): Promise<T> {
    // Asked before the first thread exists (sharp still loading, see below): `loading` means a
    // request waits for the model, so it waits for the thread too rather than being held.
    if (!worker && !closed && status === 'loading' && !firstStarted)
      return starting.then(() => ask<T>(request, transfer));
    const w = worker;
    if (closed || !w || status === 'failed')
      return Promise.reject(
        new ClassifierError(
          'unavailable',
          closed ? 'the NSFW classifier is closed' : 'the NSFW classifier model is not loaded',
        ),
      );
    const id = nextId++;
    const sentAt = Date.now();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        settle(id, { error: new ClassifierError('timeout', `no classification within ${timeoutMs} ms`) });
        // A loaded thread that answered nothing at all in that time hangs: replace it.
        if (w === worker && status === 'ready' && lastReplyAt < sentAt) {
          log.error({ timeoutMs }, 'NSFW classifier thread stopped answering; starting a new one');
          retire('crashed', 'the NSFW classifier thread stopped answering');
          start();
        }
      }, timeoutMs);
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        w.postMessage(request(id, sentAt + timeoutMs), transfer);
      } catch (err) {
        settle(id, {
          error: new ClassifierError(
            'crashed',
            `the request could not be sent to the NSFW classifier thread: ${err instanceof Error ? err.message : String(err)}`,
          ),
        });
      }
    });
  }

  // libvips must stay loaded in the main thread: on glibc, when the last thread holding it exits
  // the library is unloaded and the next thread's sharp crashes (sharp's documentation on worker
  // threads). So the first thread starts once the main thread has loaded it.
  let firstStarted = false;
  const starting = import('sharp')
    .then(start, (err: unknown) => {
      log.error({ err }, 'NSFW classifier cannot start: sharp did not load');
      setStatus('failed');
    })
    .catch((err: unknown) => {
      // A thread that could not even be created: nothing will answer, so nothing waits for it.
      log.error({ err }, 'NSFW classifier cannot start: its thread could not be created');
      setStatus('failed');
    })
    .finally(() => {
      firstStarted = true;
    });

  return {
    status: () => status,
    async classify(image) {
      const started = performance.now();
      // A copy into a fresh ArrayBuffer, handed over: the caller keeps its bytes, the thread gets
      // no more than the image (a Buffer's pool would be cloned whole), and a Buffer's memory,
      // which may not be transferred, is never what is sent. (Buffer#slice would not copy.)
      const copy = new Uint8Array(image.byteLength);
      copy.set(image);
      try {
        const scores = await ask<NsfwScores>(
          (id, deadline) => ({ type: 'classify', id, image: copy, deadline }),
          [copy.buffer],
        );
        metrics?.classification('ok', 'none', (performance.now() - started) / 1000);
        return scores;
      } catch (err) {
        const reason = err instanceof ClassifierError ? err.reason : 'crashed';
        metrics?.classification('failed', reason, (performance.now() - started) / 1000);
        log.warn(
          { reason, bytes: image.byteLength, err: err instanceof Error ? err.message : String(err) },
          'NSFW classification failed; the image is held',
        );
        throw err;
      }
    },
    settled: () => (status === 'loading' ? new Promise((resolve) => waiters.push(resolve)) : Promise.resolve(status)),
    tensorCount: () => ask<number>((id) => ({ type: 'debug', id })),
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      const w = worker;
      retire('unavailable', 'the NSFW classifier is closed');
      // Whoever waits for the load is told where it stopped rather than left waiting.
      const stranded = waiters;
      waiters = [];
      for (const resolve of stranded) resolve(status);
      await w?.terminate();
    },
  };
}
