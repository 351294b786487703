/**
 * `npm run bench` (issue 9, "Measured"): the whole bot's job path against a naive bot, side by
 * side in one run on the fake PPInfra API, on two workloads, plus 1,000 jobs in flight.
 *
 * - **bot**: the real JobService as the bot wires it (bench/bot.ts): reserve -> start -> pacing
 *   -> submit -> adaptive polling (with the global poll cap) -> download -> a recording Delivery
 *   that timestamps each delivery. The bot's configuration defaults (or the environment's), the
 *   images-per-minute budget raised to BENCH_IPM (default 1000) so it is not what is measured.
 * - **naive** (bench/naive.ts): submits everything at once, polls every second, no pacing.
 *
 * Both get the same requests at the same moment, with the same task durations (keyed by the
 * prompt). Completion at the API comes from the fake's task records, the request time from
 * when the bench called reserve/start (naive: submit), delivery from the recording Delivery
 * (naive: image bytes in hand). Ratios are bot / naive from this run.
 *
 * Workloads:
 * - realistic: five sizes, duration growing with the pixel count, +-12 % noise (seeded); a
 *   warm-up round of 20 requests (4 per size) through the bot so its estimator has history, then
 *   20 members at once while the API runs 30 % slower.
 * - wide: one size whose durations spread from 3 to 15 s (log-uniform, seeded); two bots side
 *   by side in the same burst: a fresh install (whose guess is made for 3-15 s) and one after a
 *   warm-up round of 20; then 20 members at once.
 * - in flight: BENCH_INFLIGHT (default 1000) jobs reserved and started against long tasks, in a
 *   child process (bench/inflight.ts) so RSS and event-loop delay are the bot's alone.
 * - classifier: the local NSFW classifier in a child process (bench/classifier.ts): time per
 *   classification of generated 1024² and 1536² JPEGs, and the main thread's event-loop delay
 *   while classifications run back to back, beside a window with the model idle.
 *
 * BENCH_SCALE (default 1) multiplies every duration and interval (0.25 runs about four times
 * faster). It is a measurement: the exit code is 0 even when a target is missed.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startFakePpinfra, type FakePpinfra } from '../test/fakes/ppinfra.ts';
import { NODE_FLAGS } from '../src/node-flags.ts';
import { createPpinfraClient } from '../src/ppinfra/client.ts';
import { benchConfig, createBenchBot, memberRequest } from './bot.ts';
import type { ClassifierReport } from './classifier.ts';
import type { InflightReport } from './inflight.ts';
import { naiveJob } from './naive.ts';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const IPM = Number(process.env.BENCH_IPM ?? 1000);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 1000);
const NAIVE_INTERVAL_MS = 1000 * SCALE;
const MEMBERS = 20;
/** BENCH_ONLY=realistic,wide,inflight,classifier: run only these parts (all by default), for working on one. */
const ONLY = new Set((process.env.BENCH_ONLY ?? 'realistic,wide,inflight,classifier').split(',').map((s) => s.trim()));
if (!(SCALE > 0) || !(IPM > 0) || !(INFLIGHT > 0)) throw new Error('BENCH_SCALE, BENCH_IPM and BENCH_INFLIGHT must be positive numbers');

/** A seeded generator, so every run draws the same workload. */
let seed = 42;
const random = () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
  return seed / 2 ** 31;
};
const shuffle = <T>(xs: T[]) => {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
};

/** One request: its size and how long the API takes for it at normal load (ms, unscaled). */
interface Plan {
  size: string;
  ms: number;
}

interface Targets {
  polls: number;
  lagP50: number;
  requestP95: number;
}

/** One bot in the burst: what its estimator learned before (nothing, for a fresh install). */
interface Variant {
  label: string;
  warmup: Plan[];
}

interface Workload {
  name: string;
  describe: string;
  /** Bots measured side by side in the same burst, each against the same naive bot. */
  variants: Variant[];
  burst: Plan[];
  /** The API's speed during the burst (1.3 = 30 % slower). */
  slowdown: number;
  targets: Targets;
}

const REALISTIC_SIZES = ['512*512', '768*768', '1024*1024', '1328*1328', '1536*1536'];
const pixels = (size: string) => size.split('*').map(Number).reduce((a, b) => a * b, 1);
/** 2 s plus 5.5 s per megapixel: 3.4, 5.2, 7.8, 11.7 and 15.0 s. */
const typicalMs = (size: string) => 2_000 + 5.5e-3 * pixels(size);
const noisy = (size: string): Plan => ({ size, ms: typicalMs(size) * (1 + 0.12 * (2 * random() - 1)) });
const fourOfEach = () => shuffle(REALISTIC_SIZES.flatMap((s) => [noisy(s), noisy(s), noisy(s), noisy(s)]));
const spread = (): Plan => ({ size: '1024*1024', ms: 3_000 * 5 ** random() });

const WORKLOADS: Workload[] = [
  {
    name: 'realistic',
    describe: `5 sizes ${REALISTIC_SIZES.map((s) => `${s}:${(typicalMs(s) / 1000).toFixed(1)}s`).join(' ')}, +-12 % noise; warm-up round of 20 (4 per size, at once), then ${MEMBERS} members at once with the API 30 % slower`,
    variants: [{ label: 'after warm-up', warmup: fourOfEach() }],
    burst: fourOfEach(),
    slowdown: 1.3,
    targets: { polls: 0.5, lagP50: 0.75, requestP95: 1.2 },
  },
  {
    name: 'wide',
    describe: `one size (1024*1024), durations 3-15 s log-uniform; two bots side by side, a fresh install (the estimator guesses) and one after a warm-up round of 20 (at once); then ${MEMBERS} members at once`,
    variants: [
      { label: 'fresh install', warmup: [] },
      { label: 'after warm-up', warmup: Array.from({ length: 20 }, spread) },
    ],
    burst: Array.from({ length: MEMBERS }, spread),
    slowdown: 1,
    targets: { polls: 0.85, lagP50: 1.0, requestP95: 1.2 },
  },
];

/** Durations by prompt, so the bot and the naive bot get the same task for the same request. */
const durations = new Map<string, number>();
let load = 1;
const fake = await startFakePpinfra({
  script: ({ prompt }) => {
    const ms = (durations.get(prompt) ?? 8_000) * load * SCALE;
    const queuedMs = Math.min(300 * SCALE, ms / 10);
    return { queuedMs, processingMs: ms - queuedMs };
  },
});

interface Sample {
  polls: number;
  /** Task done at the API -> delivered. */
  lagMs: number;
  /** reserve/start (naive: submit) -> delivered. */
  requestMs: number;
}

const nearestRank = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function sampleOf(api: FakePpinfra, taskId: string | undefined, requestedAt: number, deliveredAt: number): Sample {
  const task = taskId ? api.tasks.get(taskId) : undefined;
  if (!task) throw new Error(`bench: no task ${taskId} at the fake API`);
  if (process.env.BENCH_VERBOSE) {
    const at = (t: number) => `${t - task.createdAt} ms`;
    const polls = api.requests.filter((r) => r.route === 'result' && r.query.task_id === taskId).map((r) => at(r.at));
    process.stderr.write(`${task.prompt} ${task.size}: done at ${at(task.completedAt)}, polled at ${polls.join(' ')}; delivered at ${at(deliveredAt)}\n`);
  }
  return { polls: task.polls, lagMs: deliveredAt - task.completedAt, requestMs: deliveredAt - requestedAt };
}

interface Row {
  metric: string;
  bot: string;
  naive: string;
  ratio: number;
  target?: number;
}

/** Every target of the run, for the summary line. */
const checks: { ok: boolean; text: string }[] = [];

async function runWorkload(w: Workload): Promise<{ rows: Row[]; notes: string[] }> {
  const bots = await Promise.all(w.variants.map(() => createBenchBot({ baseUrl: fake.url, apiKey: fake.apiKey, scale: SCALE, imagesPerMinute: IPM })));
  const naiveClient = createPpinfraClient({ baseUrl: fake.url, apiKey: fake.apiKey });
  const t0 = Date.now();
  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;
  try {
    // Warm-up: each bot alone with its own round, so its estimator has history before the burst.
    load = 1;
    await Promise.all(
      w.variants.map(async (v, i) => {
        const bot = bots[i]!;
        const warm = await Promise.all(
          v.warmup.map((p, k) => {
            const prompt = `${w.name} ${v.label} warm-up #${k}`;
            durations.set(prompt, p.ms);
            return bot.request(memberRequest(`${w.name}-${i}-warm-${k}`, prompt, p.size));
          }),
        );
        await bot.delivery.ended(warm.map((j) => j.id));
      }),
    );
    if (w.variants.some((v) => v.warmup.length)) process.stderr.write(`${w.name}: warm-up done (${elapsed()})\n`);
    // What each bot expects when the burst comes, against what its warm-up's tasks took (full-scale s).
    const sizes = [...new Set(w.burst.map((p) => p.size))];
    const expected = w.variants.map((v, i) =>
      sizes.map((size) => {
        const took = v.warmup.filter((p) => p.size === size).map((p) => p.ms);
        const e = bots[i]!.estimator.estimate(size);
        const history = took.length ? `warm-up took ${(nearestRank(took, 50) / 1000).toFixed(1)}` : 'no history: a guess';
        return `${size} ${(e.expectedMs / SCALE / 1000).toFixed(1)}+-${(e.spreadMs / SCALE / 1000).toFixed(1)} s (${history})`;
      }),
    );

    // The burst: every member asks every bot and the naive bot at the same moment.
    load = w.slowdown;
    const botRuns: Promise<Sample>[][] = w.variants.map(() => []);
    const naiveRuns: Promise<Sample>[] = [];
    for (const [k, p] of w.burst.entries()) {
      const prompt = `${w.name} #${k}`;
      durations.set(prompt, p.ms);
      const requestedAt = Date.now();
      for (const [i, bot] of bots.entries()) {
        botRuns[i]!.push(
          bot.request(memberRequest(`${w.name}-${i}-member-${k}`, prompt, p.size)).then(async (job) => {
            await bot.delivery.ended([job.id]);
            const done = bot.delivery.delivered.get(job.id);
            if (!done) throw new Error(`bench: the bot failed job ${job.id}: ${bot.delivery.failed.get(job.id)?.kind}`);
            return sampleOf(fake, done.taskId, requestedAt, done.at);
          }),
        );
      }
      naiveRuns.push(naiveJob(naiveClient, { prompt, size: p.size }, NAIVE_INTERVAL_MS).then((o) => sampleOf(fake, o.taskId, requestedAt, o.deliveredAt)));
    }
    const n = await Promise.all(naiveRuns);
    const perBot = await Promise.all(botRuns.map((runs) => Promise.all(runs)));
    process.stderr.write(`${w.name}: burst done (${elapsed()})\n`);

    const stat = (s: Sample[]) => ({
      polls: mean(s.map((x) => x.polls)),
      lagP50: nearestRank(s.map((x) => x.lagMs), 50),
      lagP95: nearestRank(s.map((x) => x.lagMs), 95),
      requestP95: nearestRank(s.map((x) => x.requestMs), 95),
    });
    const sn = stat(n);
    const ms = (x: number) => `${Math.round(x)} ms`;
    const rows: Row[] = [];
    const notes: string[] = [];
    for (const [i, v] of w.variants.entries()) {
      const sb = stat(perBot[i]!);
      const tag = w.variants.length > 1 ? `, ${v.label}` : '';
      rows.push(
        { metric: `task-result polls per job${tag}`, bot: sb.polls.toFixed(2), naive: sn.polls.toFixed(2), ratio: sb.polls / sn.polls, target: w.targets.polls },
        { metric: `completion-to-delivery p50${tag}`, bot: ms(sb.lagP50), naive: ms(sn.lagP50), ratio: sb.lagP50 / sn.lagP50, target: w.targets.lagP50 },
        { metric: `request-to-delivery p95${tag}`, bot: ms(sb.requestP95), naive: ms(sn.requestP95), ratio: sb.requestP95 / sn.requestP95, target: w.targets.requestP95 },
        { metric: `completion-to-delivery p95${tag}`, bot: ms(sb.lagP95), naive: ms(sn.lagP95), ratio: sb.lagP95 / sn.lagP95 },
      );
      notes.push(`${v.label}: the estimate the burst started with, expected+-spread at full scale: ${expected[i]!.join('; ')}`);
    }
    for (const r of rows) {
      if (r.target !== undefined) checks.push({ ok: r.ratio <= r.target, text: `${w.name} ${r.metric} ${r.ratio.toFixed(2)}x (target <= ${r.target.toFixed(2)}x)` });
    }
    return { rows, notes };
  } finally {
    await Promise.all(bots.map((b) => b.close()));
    await naiveClient.close();
  }
}

function printTable(title: string, rows: Row[], notes: string[]) {
  console.log(`\n${title}`);
  const head = ['metric', 'bot', 'naive', 'ratio', 'target', ''];
  const cells = rows.map((r) => [
    r.metric,
    r.bot,
    r.naive,
    `${r.ratio.toFixed(2)}x`,
    r.target === undefined ? '(info)' : `<= ${r.target.toFixed(2)}x`,
    r.target === undefined ? '' : r.ratio <= r.target ? 'OK' : `MISS (+${(((r.ratio - r.target) / r.target) * 100).toFixed(0)} %)`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 || i === c.length - 1 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ').trimEnd();
  console.log(line(head));
  for (const c of cells) console.log(line(c));
  for (const n of notes) console.log(`  ${n}`);
}

/** Runs bench/inflight.ts in its own process against this process's fake (long tasks). */
async function runInflight(pollMaxPerSecond: number | undefined): Promise<InflightReport & { pollsPerSecond: number }> {
  const api = await startFakePpinfra({ script: () => ({ queuedMs: 1_000, processingMs: 60 * 60_000 }) });
  try {
    const windowMs = Math.max(5_000, 15_000 * SCALE);
    // With the V8 flags `npm start`, the Dockerfile and start:sharded run the bot with (BENCH_NODE_FLAGS adds more, to try one).
    const child = spawn(process.execPath, [...NODE_FLAGS, ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []), fileURLToPath(new URL('./inflight.ts', import.meta.url))], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env,
        BENCH_FAKE_URL: api.url,
        BENCH_FAKE_KEY: api.apiKey,
        BENCH_JOBS: String(INFLIGHT),
        BENCH_WINDOW_MS: String(windowMs),
        ...(pollMaxPerSecond === undefined ? {} : { POLL_MAX_PER_SECOND: String(pollMaxPerSecond) }),
      },
    });
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
    const polls = api.requests.filter((r) => r.route === 'result' && r.at >= report.windowStart && r.at <= report.windowEnd).length;
    return { ...report, pollsPerSecond: polls / ((report.windowEnd - report.windowStart) / 1000) };
  } finally {
    await api.close();
  }
}

/** Runs bench/classifier.ts in its own process, with the bot's V8 flags. */
async function runClassifier(): Promise<ClassifierReport> {
  const child = spawn(process.execPath, [...NODE_FLAGS, fileURLToPath(new URL('./classifier.ts', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
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
console.log(`Measured (issue 9): the bot's whole job path vs. a naive bot, side by side on the fake PPInfra API; BENCH_SCALE=${SCALE} (times below are as measured at this scale).`);
console.log(
  `bot: real JobService (createScheduler, in-process, memory store); POLL_MIN_INTERVAL_MS=${config.jobs.pollMinIntervalMs}, POLL_MAX_INTERVAL_MS=${config.jobs.pollMaxIntervalMs}, ` +
    `POLL_MAX_PER_SECOND=${config.jobs.pollMaxPerSecond} (global across jobs), PROGRESS_EDIT_INTERVAL_MS=${config.jobs.progressEditIntervalMs} (times x${SCALE}, cap /${SCALE}); a fresh estimator per bot.`,
);
console.log(
  `pacing: the bot's images-per-minute budget is set to ${IPM} (BENCH_IPM) so it is not the bottleneck here. The provider's own limit is a separate concern: ` +
    `at its default (API_IMAGES_PER_MINUTE=${config.jobs.imagesPerMinute}) a burst of ${MEMBERS} fills a whole minute and anything beyond waits in the queue.`,
);
console.log(`naive: submits everything at once, polls each task every ${NAIVE_INTERVAL_MS} ms, no pacing, no poll cap; same PpinfraClient.`);

const results: [Workload, { rows: Row[]; notes: string[] }][] = [];
for (const w of WORKLOADS.filter((w) => ONLY.has(w.name))) results.push([w, await runWorkload(w)]);
for (const [w, { rows, notes }] of results) printTable(`${w.name}: ${w.describe}; ratio = bot / naive`, rows, notes);

if (ONLY.has('inflight')) {
  const inflightRuns = [await runInflight(undefined)];
  if (config.jobs.pollMaxPerSecond < 100) inflightRuns.push(await runInflight(100));
  console.log(`\nin flight: ${INFLIGHT} jobs reserved+started at once against tasks of an hour, polling; a child process holding only the bot's job path (no discord.js), the fake API in the parent; window ${(inflightRuns[0]!.windowEnd - inflightRuns[0]!.windowStart) / 1000} s`);
  const inflightRows: string[][] = [];
  for (const r of inflightRuns) {
    const tag = `POLL_MAX_PER_SECOND=${r.pollMaxPerSecond}${r === inflightRuns[0] ? '' : ' (stress: config max)'}`;
    const rssOk = r.rssMaxMb < 150;
    const eldOk = r.eldP99Ms < 20;
    checks.push(
      { ok: rssOk, text: `in flight RSS ${r.rssMaxMb.toFixed(1)} MB with ${tag} (target < 150 MB)` },
      { ok: eldOk, text: `in flight event-loop delay p99 ${r.eldP99Ms.toFixed(1)} ms with ${tag} (target < 20 ms)` },
    );
    if (r.ended) checks.push({ ok: false, text: `in flight with ${tag}: ${r.ended} jobs ended during the window (should be none)` });
    inflightRows.push(
      [`RSS max while polling, ${tag}`, `${r.rssMaxMb.toFixed(1)} MB`, '< 150 MB', rssOk ? 'OK' : 'MISS'],
      [`event-loop delay p99, ${tag}`, `${r.eldP99Ms.toFixed(1)} ms`, '< 20 ms', eldOk ? 'OK' : 'MISS'],
      [`  (info) RSS before the jobs; V8 heap used / committed, max`, `${r.rssBeforeMb.toFixed(1)}; ${r.heapMaxMb.toFixed(1)} / ${r.heapTotalMaxMb.toFixed(1)} MB`, '', ''],
      [`  (info) delay max / idle p99 (10 ms sampling)`, `${r.eldMaxMs.toFixed(1)} / ${r.eldIdleP99Ms.toFixed(1)} ms`, '', ''],
      [`  (info) polls/s at the API; all submitted in`, `${r.pollsPerSecond.toFixed(1)}; ${(r.submitAllMs / 1000).toFixed(1)} s`, '', ''],
    );
  }
  const head = ['metric', 'value', 'target', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...inflightRows.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 || i === 3 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ').trimEnd();
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
      [`classification p95, ${s.side}*${s.side} JPEG (${s.pictures} pictures, ~${Math.round(s.bytesAvg / 1024)} KB)`, `${s.p95Ms.toFixed(0)} ms`, '< 300 ms', ok ? 'OK' : 'MISS'],
      [`  (info) p50 / max over ${s.samples}`, `${s.p50Ms.toFixed(0)} / ${s.maxMs.toFixed(0)} ms`, '', ''],
    );
  }
  const eldOk = r.eldP99Ms < 20;
  checks.push({ ok: eldOk, text: `classifier: main-thread event-loop delay p99 ${r.eldP99Ms.toFixed(1)} ms while classifying (target < 20 ms)` });
  rows.push(
    [`main-thread event-loop delay p99, classifying back to back`, `${r.eldP99Ms.toFixed(1)} ms`, '< 20 ms', eldOk ? 'OK' : 'MISS'],
    [`  (info) baseline p99, model idle; max while classifying`, `${r.eldBaselineP99Ms.toFixed(1)}; ${r.eldMaxMs.toFixed(1)} ms`, '', ''],
    [`  (info) classified in the ${r.windowMs / 1000} s window`, `${r.classified} (${((r.classified / r.windowMs) * 1000).toFixed(1)}/s)`, '', ''],
  );
  const head = ['metric', 'value', 'target', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 || i === 3 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ').trimEnd();
  console.log(line(head));
  for (const c of rows) console.log(line(c));
}

const missed = checks.filter((c) => !c.ok);
console.log(
  `\nsummary: ${checks.length - missed.length}/${checks.length} targets met${missed.length ? `; MISS: ${missed.map((c) => c.text).join('; ')}` : ''} ` +
    `(${((Date.now() - started) / 1000).toFixed(0)} s wall time, BENCH_SCALE=${SCALE}; a measurement: the exit code is 0 either way)`,
);
await fake.close();
