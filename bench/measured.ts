/**
 * `npm run bench`: the bot measured as members see it, against fixed 1-s polling, on a family of
 * workloads judged on the worst (bench/family.ts), plus 1,000 jobs in flight and the classifier.
 *
 * - family: 14 workloads (warm-up depth and shape, load shift, sizes, burst or trickle), each
 *   two whole bots side by side on their own fake Discord and fake PPInfra: the bot with its
 *   configuration's poll settings, and the same bot polling every second. Delivery is timed at
 *   the fake Discord. Targets on the worst workload and on the median one. BENCH_WORKLOADS=a,b
 *   runs only those; BENCH_PARALLEL (default 2) workloads run at a time.
 * - in flight: BENCH_INFLIGHT (default 1000) jobs reserved and started against long tasks, in a
 *   child process (bench/inflight.ts) so RSS and event-loop delay are the bot's alone.
 * - classifier: the local NSFW classifier in a child process (bench/classifier.ts): time per
 *   classification of generated 1024² and 1536² JPEGs, and the main thread's event-loop delay
 *   while classifications run back to back, beside a window with the model idle.
 *
 * BENCH_SCALE (default 1) multiplies every duration and interval; the bot's POLL_MIN_INTERVAL_MS
 * must stay at least 200 ms after scaling, so 0.5 is about as far as it goes. BENCH_ONLY=family,
 * inflight,classifier runs only those parts. It is a measurement: the exit code is 0 even when a
 * target is missed.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startFakePpinfra } from '../test/fakes/ppinfra.ts';
import { NODE_FLAGS } from '../src/node-flags.ts';
import { benchConfig } from './bot.ts';
import type { ClassifierReport } from './classifier.ts';
import { runFamily, type Check } from './family.ts';
import type { InflightReport } from './inflight.ts';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const IPM = Number(process.env.BENCH_IPM ?? 1000);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 1000);
const PARALLEL = Number(process.env.BENCH_PARALLEL ?? 2);
/** BENCH_ONLY=family,inflight,classifier: run only these parts (all by default), for working on one. */
const ONLY = new Set((process.env.BENCH_ONLY ?? 'family,inflight,classifier').split(',').map((s) => s.trim()));
const WORKLOADS = (process.env.BENCH_WORKLOADS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
if (!(SCALE > 0) || !(IPM > 0) || !(INFLIGHT > 0) || !(PARALLEL >= 1))
  throw new Error('BENCH_SCALE, BENCH_IPM, BENCH_INFLIGHT and BENCH_PARALLEL must be positive numbers');

/** Every target of the run, for the summary line. */
const checks: Check[] = [];

/** Runs bench/inflight.ts in its own process against this process's fake (long tasks). */
async function runInflight(pollMaxPerSecond: number | undefined): Promise<InflightReport & { pollsPerSecond: number }> {
  const api = await startFakePpinfra({ script: () => ({ queuedMs: 1_000, processingMs: 60 * 60_000 }) });
  try {
    const windowMs = Math.max(5_000, 15_000 * SCALE);
    // With the V8 flags `npm start`, the Dockerfile and start:sharded run the bot with (BENCH_NODE_FLAGS adds more, to try one).
    const child = spawn(
      process.execPath,
      [
        ...NODE_FLAGS,
        ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
        fileURLToPath(new URL('./inflight.ts', import.meta.url)),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          ...process.env,
          BENCH_FAKE_URL: api.url,
          BENCH_FAKE_KEY: api.apiKey,
          BENCH_JOBS: String(INFLIGHT),
          BENCH_WINDOW_MS: String(windowMs),
          ...(pollMaxPerSecond === undefined ? {} : { POLL_MAX_PER_SECOND: String(pollMaxPerSecond) }),
        },
      },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const guard = setTimeout(() => child.kill(), 180_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(guard);
    const last = out.trim().split('\n').pop();
    if (code !== 0 || !last) throw new Error(`bench/inflight.ts exited with ${code}`);
    const report = JSON.parse(last) as InflightReport;
    const polls = api.requests.filter(
      (r) => r.route === 'result' && r.at >= report.windowStart && r.at <= report.windowEnd,
    ).length;
    return { ...report, pollsPerSecond: polls / ((report.windowEnd - report.windowStart) / 1000) };
  } finally {
    await api.close();
  }
}

/** Runs bench/classifier.ts in its own process, with the bot's V8 flags. */
async function runClassifier(): Promise<ClassifierReport> {
  const child = spawn(process.execPath, [...NODE_FLAGS, fileURLToPath(new URL('./classifier.ts', import.meta.url))], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: process.env,
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const guard = setTimeout(() => child.kill(), 300_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(guard);
  const last = out.trim().split('\n').pop();
  if (code !== 0 || !last) throw new Error(`bench/classifier.ts exited with ${code}`);
  return JSON.parse(last) as ClassifierReport;
}

// ---------------------------------------------------------------- run

const config = benchConfig();
const started = Date.now();
console.log(
  `Measured: the bot as members see it vs. fixed 1-s polling, on a family of workloads judged on the worst; BENCH_SCALE=${SCALE} (times below are as measured at this scale).`,
);
console.log(
  `bot: the whole bot (src/app.ts); POLL_MIN_INTERVAL_MS=${config.jobs.pollMinIntervalMs}, POLL_MAX_INTERVAL_MS=${config.jobs.pollMaxIntervalMs}, ` +
    `POLL_MAX_PER_SECOND=${config.jobs.pollMaxPerSecond} (global across jobs), PROGRESS_EDIT_INTERVAL_MS=${config.jobs.progressEditIntervalMs} (times x${SCALE}, cap /${SCALE}); a fresh estimator per bot.`,
);
console.log(
  `pacing: the bot's images-per-minute budget is set to ${IPM} (BENCH_IPM) so it is not the bottleneck here. The provider's own limit is a separate concern: ` +
    `at its default (API_IMAGES_PER_MINUTE=${config.jobs.imagesPerMinute}) a burst of 20 fills a whole minute and anything beyond waits in the queue.`,
);

if (ONLY.has('family'))
  checks.push(...(await runFamily({ scale: SCALE, imagesPerMinute: IPM, parallel: PARALLEL, only: WORKLOADS })));

if (ONLY.has('inflight')) {
  const inflightRuns = [await runInflight(undefined)];
  if (config.jobs.pollMaxPerSecond < 100) inflightRuns.push(await runInflight(100));
  console.log(
    `\nin flight: ${INFLIGHT} jobs reserved+started at once against tasks of an hour, polling; a child process holding only the bot's job path (no discord.js), the fake API in the parent; window ${(inflightRuns[0]!.windowEnd - inflightRuns[0]!.windowStart) / 1000} s`,
  );
  const inflightRows: string[][] = [];
  for (const r of inflightRuns) {
    const tag = `POLL_MAX_PER_SECOND=${r.pollMaxPerSecond}${r === inflightRuns[0] ? '' : ' (stress: config max)'}`;
    const rssOk = r.rssMaxMb < 150;
    const eldOk = r.eldP99Ms < 20;
    checks.push(
      { ok: rssOk, text: `in flight RSS ${r.rssMaxMb.toFixed(1)} MB with ${tag} (target < 150 MB)` },
      { ok: eldOk, text: `in flight event-loop delay p99 ${r.eldP99Ms.toFixed(1)} ms with ${tag} (target < 20 ms)` },
    );
    if (r.ended)
      checks.push({
        ok: false,
        text: `in flight with ${tag}: ${r.ended} jobs ended during the window (should be none)`,
      });
    inflightRows.push(
      [`RSS max while polling, ${tag}`, `${r.rssMaxMb.toFixed(1)} MB`, '< 150 MB', rssOk ? 'OK' : 'MISS'],
      [`event-loop delay p99, ${tag}`, `${r.eldP99Ms.toFixed(1)} ms`, '< 20 ms', eldOk ? 'OK' : 'MISS'],
      [
        `  (info) RSS before the jobs; V8 heap used / committed, max`,
        `${r.rssBeforeMb.toFixed(1)}; ${r.heapMaxMb.toFixed(1)} / ${r.heapTotalMaxMb.toFixed(1)} MB`,
        '',
        '',
      ],
      [
        `  (info) delay max / idle p99 (10 ms sampling)`,
        `${r.eldMaxMs.toFixed(1)} / ${r.eldIdleP99Ms.toFixed(1)} ms`,
        '',
        '',
      ],
      [
        `  (info) polls/s at the API; all submitted in`,
        `${r.pollsPerSecond.toFixed(1)}; ${(r.submitAllMs / 1000).toFixed(1)} s`,
        '',
        '',
      ],
    );
  }
  const head = ['metric', 'value', 'target', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...inflightRows.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => (i === 0 || i === 3 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  console.log(line(head));
  for (const c of inflightRows) console.log(line(c));
}

if (ONLY.has('classifier')) {
  const r = await runClassifier();
  console.log(
    `\nclassifier: the local NSFW model (nsfwjs MobileNetV2, tfjs wasm) in its worker thread, a child process of its own with the bot's V8 flags; ` +
      `a family of generated JPEGs (seeded gradients, blobs, noise); one classification at a time as a caller sees it; model loaded in ${Math.round(r.loadMs)} ms`,
  );
  const rows: string[][] = [];
  for (const s of r.sizes) {
    const ok = s.p95Ms < 300;
    checks.push({ ok, text: `classifier p95 ${s.p95Ms.toFixed(0)} ms at ${s.side}² (target < 300 ms)` });
    rows.push(
      [
        `classification p95, ${s.side}*${s.side} JPEG (${s.pictures} pictures, ~${Math.round(s.bytesAvg / 1024)} KB)`,
        `${s.p95Ms.toFixed(0)} ms`,
        '< 300 ms',
        ok ? 'OK' : 'MISS',
      ],
      [`  (info) p50 / max over ${s.samples}`, `${s.p50Ms.toFixed(0)} / ${s.maxMs.toFixed(0)} ms`, '', ''],
    );
  }
  const eldOk = r.eldP99Ms < 20;
  checks.push({
    ok: eldOk,
    text: `classifier: main-thread event-loop delay p99 ${r.eldP99Ms.toFixed(1)} ms while classifying (target < 20 ms)`,
  });
  rows.push(
    [
      `main-thread event-loop delay p99, classifying back to back`,
      `${r.eldP99Ms.toFixed(1)} ms`,
      '< 20 ms',
      eldOk ? 'OK' : 'MISS',
    ],
    [
      `  (info) baseline p99, model idle; max while classifying`,
      `${r.eldBaselineP99Ms.toFixed(1)}; ${r.eldMaxMs.toFixed(1)} ms`,
      '',
      '',
    ],
    [
      `  (info) classified in the ${r.windowMs / 1000} s window`,
      `${r.classified} (${((r.classified / r.windowMs) * 1000).toFixed(1)}/s)`,
      '',
      '',
    ],
  );
  const head = ['metric', 'value', 'target', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => (i === 0 || i === 3 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  console.log(line(head));
  for (const c of rows) console.log(line(c));
}

const missed = checks.filter((c) => !c.ok);
console.log(
  `\nsummary: ${checks.length - missed.length}/${checks.length} targets met${missed.length ? `; MISS: ${missed.map((c) => c.text).join('; ')}` : ''} ` +
    `(${((Date.now() - started) / 1000).toFixed(0)} s wall time, BENCH_SCALE=${SCALE}; a measurement: the exit code is 0 either way)`,
);
