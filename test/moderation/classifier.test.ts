// The local NSFW classifier with the real model (nsfwjs MobileNetV2 on tfjs' wasm backend) in its
// worker thread: scores, determinism, typed failures, a thread that dies, a model that cannot load,
// and no tensor left behind.
import { once } from 'node:events';
import { deflateSync } from 'node:zlib';
import { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NsfwScores } from '../../src/domain/job.ts';
import { ClassifierError, classifierOff } from '../../src/moderation/classifier.ts';
import { makePicture } from '../fakes/pictures.ts';
import {
  createNsfwClassifier,
  type NsfwClassifier,
  type NsfwClassifierOptions,
} from '../../src/moderation/nsfw-classifier.ts';

/** A logger into memory: the tests read what the classifier said. */
function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

const recorded: { outcome: string; reason: string; seconds: number }[] = [];
const metrics = {
  classification: (outcome: 'ok' | 'failed', reason: string, seconds: number) =>
    void recorded.push({ outcome, reason, seconds }),
};

const started: NsfwClassifier[] = [];
function classifier(options: Partial<NsfwClassifierOptions> = {}) {
  const log = memoryLogger();
  const c = createNsfwClassifier({ logger: log.logger, metrics, ...options });
  started.push(c);
  return { c, lines: log.lines };
}
afterAll(async () => {
  await Promise.all(started.map((c) => c.close()));
});

const CLASSES: (keyof NsfwScores)[] = ['drawing', 'hentai', 'neutral', 'porn', 'sexy'];
const sum = (s: NsfwScores) => CLASSES.reduce((t, k) => t + s[k], 0);

/**
 * A black PNG of `width` x `height` (1-bit grey), a few kilobytes whatever its size: what a
 * decompression bomb looks like from outside.
 */
function blackPng(width: number, height: number): Uint8Array {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Buffer) => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([length, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 1; // bit depth; colour type 0 (grey), no interlace
  const rows = Buffer.alloc(height * (1 + Math.ceil(width / 8)));
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  return new Uint8Array(png);
}

/** Rejects with a ClassifierError of `reason`. */
async function rejection(promise: Promise<unknown>): Promise<ClassifierError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ClassifierError);
  return err as ClassifierError;
}

describe('createNsfwClassifier, with the real model', { timeout: 60_000 }, () => {
  let shared: NsfwClassifier;
  let pictures: Uint8Array[];
  beforeAll(async () => {
    shared = classifier().c;
    expect(shared.status()).toBe('loading');
    pictures = await Promise.all([makePicture(1, 1024), makePicture(2, 1024), makePicture(3, 768, 'png')]);
    expect(await shared.settled()).toBe('ready');
  }, 60_000);

  it('scores every class of a generated picture, summing to 1, the same each time', async () => {
    for (const picture of pictures) {
      const first = await shared.classify(picture);
      expect(Object.keys(first).sort()).toEqual([...CLASSES].sort());
      for (const k of CLASSES) expect(first[k]).toBeGreaterThanOrEqual(0);
      expect(sum(first)).toBeCloseTo(1, 3);
      expect(await shared.classify(picture)).toEqual(first);
    }
    // Different pictures, different scores: the model looks at the pixels.
    const [a, b] = await Promise.all(pictures.slice(0, 2).map((p) => shared.classify(p)));
    expect(a).not.toEqual(b);
    expect(recorded.filter((r) => r.outcome === 'ok').length).toBeGreaterThanOrEqual(pictures.length * 2);
  });

  it('takes a Buffer, a pooled Buffer or a view into a larger buffer, and leaves the caller its bytes', async () => {
    const picture = pictures[0]!;
    const expected = await shared.classify(picture);
    expect(picture.byteLength).toBeGreaterThan(0); // not transferred away
    // What the bot holds: a Buffer from a download or from sharp (memory that may not be transferred).
    const buffer = Buffer.from(picture);
    expect(await shared.classify(buffer)).toEqual(expected);
    expect(buffer.equals(Buffer.from(picture))).toBe(true);
    const larger = new Uint8Array(picture.byteLength + 1000);
    larger.set(picture, 500);
    const view = larger.subarray(500, 500 + picture.byteLength);
    expect(await shared.classify(view)).toEqual(expected);
    expect(larger.byteLength).toBe(picture.byteLength + 1000);
    expect(Buffer.from(view).equals(Buffer.from(picture))).toBe(true);
  });

  it('rejects bytes that are not an image with a decode error, and classifies the next one', async () => {
    const garbage = new Uint8Array(4096).map((_, i) => (i * 131) % 251);
    const err = await rejection(shared.classify(garbage));
    expect(err.reason).toBe('decode');
    expect(recorded.at(-1)).toMatchObject({ outcome: 'failed', reason: 'decode' });
    // A truncated JPEG is no better.
    expect((await rejection(shared.classify(pictures[0]!.slice(0, 200)))).reason).toBe('decode');
    expect(sum(await shared.classify(pictures[1]!))).toBeCloseTo(1, 3);
    expect(shared.status()).toBe('ready');
  });

  it('refuses to decode an image far larger than the API makes (a decompression bomb): a decode error, so it is held', async () => {
    // 6000 x 6000 in about 4 KB. sharp's own limit (about 16384²) would decode it, and an
    // interlaced 16-bit one of that size, decoded whole, takes gigabytes.
    const bomb = blackPng(6000, 6000);
    expect(bomb.byteLength).toBeLessThan(100_000);
    const err = await rejection(shared.classify(bomb));
    expect(err.reason).toBe('decode');
    expect(err.message).toMatch(/pixel limit/);
    // The largest the API makes, and more, is still read.
    expect(sum(await shared.classify(blackPng(3000, 3000)))).toBeCloseTo(1, 3);
    expect(shared.status()).toBe('ready');
  });

  it('holds no more tensors after many classifications than before', async () => {
    await shared.classify(pictures[0]!);
    const before = await shared.tensorCount();
    expect(before).toBeGreaterThan(0); // the model's weights
    for (let i = 0; i < 30; i++) await shared.classify(pictures[i % pictures.length]!);
    await rejection(shared.classify(new Uint8Array([1, 2, 3])));
    expect(await shared.tensorCount()).toBe(before);
  });

  it('runs requests sent together one after another and answers each its own', async () => {
    const one = await shared.classify(pictures[0]!);
    const two = await shared.classify(pictures[1]!);
    const together = await Promise.all(
      [pictures[0]!, pictures[1]!, pictures[0]!, pictures[1]!].map((p) => shared.classify(p)),
    );
    expect(together).toEqual([one, two, one, two]);
  });
});

describe('createNsfwClassifier, when things go wrong', { timeout: 60_000 }, () => {
  it('rejects the classification in progress when its thread dies, and starts a new thread that classifies the next', async () => {
    const workers: Worker[] = [];
    const { c, lines } = classifier({ onWorker: (w) => workers.push(w) });
    const picture = await makePicture(7, 1024);
    expect(await c.settled()).toBe('ready');
    const expected = await c.classify(picture);

    const inFlight = c.classify(picture);
    await workers[0]!.terminate();
    const err = await rejection(inFlight);
    expect(err.reason).toBe('crashed');
    expect(lines.some((l) => l.msg === 'NSFW classifier thread exited; starting a new one' && l.level === 50)).toBe(
      true,
    );

    expect(workers).toHaveLength(2);
    expect(c.status()).toBe('loading');
    // Sent while the new thread loads: it waits for the model rather than failing.
    expect(await c.classify(picture)).toEqual(expected);
    expect(c.status()).toBe('ready');
  });

  it('is failed when the model cannot load: classify rejects as unavailable at once, and it tries again later', async () => {
    const workers: Worker[] = [];
    const { c, lines } = classifier({
      model: 'NoSuchModel',
      retryDelayMs: { min: 60_000, max: 60_000 },
      onWorker: (w) => workers.push(w),
    });
    expect(await c.settled()).toBe('failed');
    const err = await rejection(c.classify(await makePicture(8, 256)));
    expect(err.reason).toBe('unavailable');
    expect(recorded.at(-1)).toMatchObject({ outcome: 'failed', reason: 'unavailable' });
    expect(lines.find((l) => l.msg === 'NSFW classifier model could not be loaded')).toMatchObject({
      level: 50,
      model: 'NoSuchModel',
    });
    expect(lines.find((l) => l.msg?.toString().startsWith('NSFW classifier unavailable'))).toMatchObject({
      level: 40,
      retryInMs: 60_000,
    });
    expect(workers).toHaveLength(1);
  });

  it('starts a new thread after the retry delay once loading failed', async () => {
    // A model that never loads, retried with no delay: each failed start spawns the next thread.
    let third: () => void = () => undefined;
    const thirdStarted = new Promise<void>((resolve) => (third = resolve));
    let count = 0;
    const { c } = classifier({
      model: 'NoSuchModel',
      retryDelayMs: { min: 0, max: 0 },
      onWorker: () => ++count === 3 && third(),
    });
    await thirdStarted;
    expect(count).toBe(3);
    await c.close();
    expect(c.status()).not.toBe('ready');
  });

  it('counts a model that does not load within loadTimeoutMs as failed, and stops that thread', async () => {
    let exited: Promise<unknown> | undefined;
    const { c, lines } = classifier({
      loadTimeoutMs: 1,
      retryDelayMs: { min: 60_000, max: 60_000 },
      onWorker: (w) => {
        exited ??= once(w, 'exit');
      },
    });
    expect(await c.settled()).toBe('failed');
    expect(lines.find((l) => l.msg === 'NSFW classifier model did not load in time')).toMatchObject({
      level: 50,
      loadTimeoutMs: 1,
    });
    expect((await rejection(c.classify(new Uint8Array(10)))).reason).toBe('unavailable');
    await exited;
  });

  it('rejects with timeout when no answer comes in time', async () => {
    // 1 ms: the worker cannot even receive the request before the caller stops waiting.
    const { c } = classifier({ timeoutMs: 1 });
    expect(await c.settled()).toBe('ready');
    const err = await rejection(c.classify(await makePicture(9, 1024)));
    expect(err.reason).toBe('timeout');
  });

  it('makes a classification asked the moment it is created wait for the model, like any sent while it loads', async () => {
    const picture = await makePicture(10, 256);
    const { c } = classifier();
    expect(c.status()).toBe('loading');
    const scores = await c.classify(picture);
    expect(sum(scores)).toBeCloseTo(1, 3);
    expect(c.status()).toBe('ready');
  });

  it('rejects as unavailable once closed, and lets go of whoever waited for the load', async () => {
    const { c } = classifier();
    const waiting = c.settled();
    await c.close();
    expect(await waiting).toBe('loading');
    expect((await rejection(c.classify(new Uint8Array(10)))).reason).toBe('unavailable');
  });
});

describe('the model thread itself', { timeout: 60_000 }, () => {
  it('goes on with the next request after one that throws, instead of dying with the queue behind it', async () => {
    const worker = new Worker(new URL('../../src/moderation/classifier-worker.ts', import.meta.url), {
      workerData: { model: 'MobileNetV2', niceness: 0 },
      execArgv: [],
      stdout: true,
      stderr: true,
    });
    worker.stdout.resume();
    worker.stderr.resume();
    const exited = once(worker, 'exit').then(() => 'exited' as const);
    const replies: Record<string, unknown>[] = [];
    let answered: (reply: Record<string, unknown>) => void = () => undefined;
    const next = new Promise<Record<string, unknown>>((resolve) => (answered = resolve));
    worker.on('message', (reply: Record<string, unknown>) => {
      // Of the libraries' output, only what the thread says of the request it could not read.
      if (reply.type === 'log' && !String(reply.message).startsWith('a request the thread could not read')) return;
      replies.push(reply);
      if (reply.id === 2) answered(reply);
    });
    try {
      // Not a request the parent sends: whatever makes handling a request throw, the thread stays.
      worker.postMessage(null);
      worker.postMessage({ type: 'classify', id: 2, image: await makePicture(11, 256), deadline: Date.now() + 50_000 });
      expect(await Promise.race([next, exited])).toMatchObject({ type: 'scores', id: 2 });
      expect(replies.map((r) => r.type)).toEqual(['ready', 'log', 'scores']);
      expect(replies[1]).toMatchObject({ level: 'warn' });
    } finally {
      await worker.terminate();
    }
  });
});

describe('classifierOff', () => {
  it('is off and rejects with a typed error', async () => {
    expect(classifierOff.status()).toBe('off');
    expect((await rejection(classifierOff.classify(new Uint8Array(1)))).reason).toBe('unavailable');
  });
});
