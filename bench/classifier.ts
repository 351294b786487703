/**
 * The local NSFW classifier, measured (run by bench/measured.ts in a child process of its own,
 * with the bot's V8 flags, so the event loop measured is this one alone; or on its own with
 * `node bench/classifier.ts`). Prints one JSON line, a `ClassifierReport`.
 *
 * - Time per classification, as a caller of `classify()` sees it (copy to the thread, decode,
 *   resize, inference, answer), one at a time, for a family of generated 1024² and 1536² JPEGs
 *   (seeded gradients, blobs and noise: several pictures, not one).
 * - Event-loop delay p99 of the main thread (node:perf_hooks monitorEventLoopDelay, 10 ms
 *   sampling) over a window with classifications back to back (two in flight, so the thread is
 *   never idle), against a window beside it with the model loaded and idle.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../src/logger.ts';
import { makePicture } from '../test/fakes/pictures.ts';
import { createNsfwClassifier } from '../src/moderation/nsfw-classifier.ts';

export interface ClassifierReport {
  loadMs: number;
  sizes: {
    side: number;
    pictures: number;
    samples: number;
    p50Ms: number;
    p95Ms: number;
    maxMs: number;
    bytesAvg: number;
  }[];
  eldBaselineP99Ms: number;
  eldP99Ms: number;
  eldMaxMs: number;
  windowMs: number;
  /** Classifications finished during the loaded window. */
  classified: number;
}

const SIDES = [1024, 1536];
const PICTURES = Number(process.env.BENCH_CLASSIFIER_PICTURES ?? 6);
const SAMPLES = Number(process.env.BENCH_CLASSIFIER_SAMPLES ?? 60);
const WINDOW_MS = Number(process.env.BENCH_CLASSIFIER_WINDOW_MS ?? 10_000);

const nearestRank = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
};

const family = new Map<number, Uint8Array[]>();
for (const side of SIDES)
  family.set(side, await Promise.all(Array.from({ length: PICTURES }, (_, i) => makePicture(1000 * side + i, side))));

const loadStarted = performance.now();
const classifier = createNsfwClassifier({ logger: silentLogger, timeoutMs: 60_000 });
if ((await classifier.settled()) !== 'ready') throw new Error('bench/classifier.ts: the model did not load');
const loadMs = performance.now() - loadStarted;

// A few rounds first: the thread's JIT and libvips' caches warm up as they would in a running bot.
for (const pictures of family.values()) for (const p of pictures) await classifier.classify(p);

const sizes: ClassifierReport['sizes'] = [];
for (const side of SIDES) {
  const pictures = family.get(side)!;
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    await classifier.classify(pictures[i % pictures.length]!);
    times.push(performance.now() - started);
  }
  sizes.push({
    side,
    pictures: pictures.length,
    samples: times.length,
    p50Ms: nearestRank(times, 50),
    p95Ms: nearestRank(times, 95),
    maxMs: Math.max(...times),
    bytesAvg: pictures.reduce((t, p) => t + p.byteLength, 0) / pictures.length,
  });
}

// Baseline: the same process, the model loaded, nothing to classify.
await sleep(500);
const baseline = monitorEventLoopDelay();
baseline.enable();
await sleep(WINDOW_MS);
baseline.disable();

// Loaded: two callers, each sending its next picture as soon as its last is answered.
const all = [...family.values()].flat();
let running = true;
let classified = 0;
const caller = async (offset: number) => {
  for (let i = offset; running; i += 2) {
    await classifier.classify(all[i % all.length]!);
    if (running) classified++;
  }
};
const eld = monitorEventLoopDelay();
eld.enable();
const callers = [caller(0), caller(1)];
await sleep(WINDOW_MS);
running = false;
eld.disable();
await Promise.all(callers);
await classifier.close();

const report: ClassifierReport = {
  loadMs,
  sizes,
  eldBaselineP99Ms: baseline.percentile(99) / 1e6,
  eldP99Ms: eld.percentile(99) / 1e6,
  eldMaxMs: eld.max / 1e6,
  windowMs: WINDOW_MS,
  classified,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
