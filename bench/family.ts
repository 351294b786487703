/**
 * The family of workloads of `npm run bench` (bench/measured.ts), judged on the worst.
 *
 * A bench run on one or two workloads it was tuned against says little about the next one, so
 * each workload varies one thing members and the API actually vary: how much the bot has seen
 * before (warm-up depth per size), how that history came in (at once, or in waves), how far the
 * API's speed moved since (load shift), the sizes asked for, and how requests arrive (a burst,
 * or a trickle). The targets are judged on the worst workload of the family, and on the median.
 *
 * Each workload runs two whole bots (src/app.ts, as `npm start` builds it: discord.js, SQLite
 * storage, the real Delivery) side by side, each with its own fake Discord and fake PPInfra:
 * - **bot**: the configuration's poll settings (the environment's, or the defaults);
 * - **baseline**: the same bot polling every second from submission (POLL_MIN_INTERVAL_MS =
 *   POLL_MAX_INTERVAL_MS = 1 s, an estimator expecting every task done at once, no poll cap),
 *   which is what a bot without a schedule does.
 * Both get the same /imagine at the same moment, with the same task duration (keyed by the
 * prompt). Delivery is when the fake Discord's @original of the interaction first carries the
 * image: what the member sees. Completion is the fake API's task record; the request is the
 * moment the member ran the command. Ratios are bot / baseline in the same run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIMessage } from 'discord-api-types/v10';
import { startApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createDurationEstimator, type DurationEstimator } from '../src/jobs/estimator.ts';
import { silentLogger } from '../src/logger.ts';
import { sleep } from '../src/ppinfra/retry.ts';
import { startFakeDiscord, type FakeDiscord } from '../test/fakes/discord/server.ts';
import { startFakePpinfra, type FakePpinfra } from '../test/fakes/ppinfra.ts';
import { atScale } from './bot.ts';

export interface Check {
  ok: boolean;
  text: string;
}

/** One request: its size and how long the API takes for it at normal load (ms, full scale). */
interface Plan {
  size: string;
  ms: number;
}

interface Workload {
  name: string;
  describe: string;
  /** Warm-up requests, in the order they are sent. */
  warmup: Plan[];
  /** Warm-up sent all at once, or in waves of WAVE every WAVE_GAP_MS. */
  waves: boolean;
  /** The API's speed during the measured requests, relative to the warm-up (1.3 = 30 % slower). */
  load: number;
  /** The measured requests. */
  requests: Plan[];
  /** 0: all at once (a burst); otherwise one request every this many ms (a trickle). */
  everyMs: number;
}

// ---------------------------------------------------------------- the family

/** A seeded generator per workload, so every run (and every subset of workloads) draws the same requests. */
const seeded = (name: string) => {
  let seed = [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 2 ** 31, 42);
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
};

const SIZES = ['512*512', '768*768', '1024*1024', '1328*1328', '1536*1536'];
const pixels = (size: string) =>
  size
    .split('*')
    .map(Number)
    .reduce((a, b) => a * b, 1);
/** 2 s plus 5.5 s per megapixel: 3.4, 5.2, 7.8, 11.7 and 15.0 s (what Qwen-Image takes, about). */
const typicalMs = (size: string) => 2_000 + 5.5e-3 * pixels(size);
const BURST = 20;
const TRICKLE_EVERY_MS = 2_000;
const TRICKLE = 30;
const WAVE = 5;
const WAVE_GAP_MS = 4_000;

type Sizes = 'mixed' | 'wide';
interface Axes {
  sizes: Sizes;
  depth: 0 | 3 | 8;
  waves: boolean;
  shift: number;
  trickle: boolean;
}

function workload(name: string, a: Axes): Workload {
  const random = seeded(name);
  // Mixed: the five sizes, +-12 % around the typical time. Wide: one size whose tasks take
  // anything from 3 to 15 s (log-uniform), where no single estimate fits.
  const draw = (size: string): Plan =>
    a.sizes === 'wide'
      ? { size, ms: 3_000 * 5 ** random() }
      : { size, ms: typicalMs(size) * (1 + 0.12 * (2 * random() - 1)) };
  const sizes = a.sizes === 'wide' ? ['1024*1024'] : SIZES;
  const shuffle = (xs: Plan[]) => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  };
  const warmup = shuffle(sizes.flatMap((s) => Array.from({ length: a.depth }, () => draw(s))));
  const count = a.trickle ? TRICKLE : BURST;
  const requests = Array.from({ length: count }, (_, k) => draw(sizes[k % sizes.length]!));
  shuffle(requests);
  const shift =
    a.shift === 0
      ? 'same speed'
      : `API ${a.shift > 0 ? `${Math.round(a.shift * 100)} % slower` : `${Math.round(-a.shift * 100)} % faster`}`;
  const describe = [
    a.sizes === 'wide' ? '1024*1024 3-15 s' : '5 sizes',
    a.depth ? `warm-up ${a.depth}/size ${a.waves ? `in waves of ${WAVE}` : 'at once'}` : 'no warm-up',
    shift,
    a.trickle ? `trickle ${TRICKLE} x 1/${TRICKLE_EVERY_MS / 1000} s` : `burst ${BURST}`,
  ].join(', ');
  return {
    name,
    describe,
    warmup,
    waves: a.waves,
    load: 1 + a.shift,
    requests,
    everyMs: a.trickle ? TRICKLE_EVERY_MS : 0,
  };
}

const BASE: Axes = { sizes: 'mixed', depth: 3, waves: false, shift: 0, trickle: false };
/**
 * Why these 14 of the 3 x 2 x 4 x 2 x 2 = 192 combinations: a base workload, each axis varied
 * alone from it (which axis hurts), then the combinations where the bot's picture of the API is
 * most wrong or thinnest, which is where an adaptive schedule loses to fixed polling:
 * - deep warm-up in waves then a big shift: a long, confident history that no longer holds,
 *   slower (+60 %: polls that come too early and back off past the finish) and faster
 *   (-20 %: tasks that finish before the first poll is even due);
 * - no warm-up with a trickle: every request made on the fresh-install guess, one at a time;
 * - wide sizes with no history, and with a shift: the spread no estimate narrows.
 */
export const FAMILY: Workload[] = [
  workload('base', BASE),
  workload('cold', { ...BASE, depth: 0 }),
  workload('deep', { ...BASE, depth: 8 }),
  workload('waves', { ...BASE, waves: true }),
  workload('faster20', { ...BASE, shift: -0.2 }),
  workload('slower30', { ...BASE, shift: 0.3 }),
  workload('slower60', { ...BASE, shift: 0.6 }),
  workload('trickle', { ...BASE, trickle: true }),
  workload('wide', { ...BASE, sizes: 'wide' }),
  workload('deep-waves-slower60', { ...BASE, depth: 8, waves: true, shift: 0.6 }),
  workload('deep-waves-faster20', { ...BASE, depth: 8, waves: true, shift: -0.2 }),
  workload('cold-trickle', { ...BASE, depth: 0, trickle: true }),
  workload('wide-cold', { ...BASE, sizes: 'wide', depth: 0 }),
  workload('wide-slower60', { ...BASE, sizes: 'wide', shift: 0.6 }),
];

// ---------------------------------------------------------------- one bot on its own fakes

/** The baseline's estimator: every task expected done at once, so the schedule polls at its minimum spacing from the start. */
const fixedInterval: DurationEstimator = {
  estimate: () => ({ expectedMs: 0, spreadMs: 0, samples: 0 }),
  record: async () => {},
  load: async () => {},
};

interface Rig {
  label: string;
  discord: FakeDiscord;
  api: FakePpinfra;
  close(): Promise<void>;
}

interface RigOptions {
  label: string;
  scale: number;
  imagesPerMinute: number;
  /** Task duration (full scale) by prompt, shared with the other bot of the workload. */
  durations: Map<string, number>;
  load: () => number;
  baseline: boolean;
}

async function startRig(o: RigOptions): Promise<Rig> {
  const discord = await startFakeDiscord();
  const api = await startFakePpinfra({
    script: ({ prompt }) => {
      const ms = (o.durations.get(prompt) ?? 8_000) * o.load() * o.scale;
      const queuedMs = Math.min(300 * o.scale, ms / 10);
      return { queuedMs, processingMs: ms - queuedMs };
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'qi-bench-'));
  const base = loadConfig({ ...process.env, STORAGE_URL: 'memory://' }, { discord: false, ppinfra: false });
  if (!base.ok) throw new Error(`bench: the environment's bot configuration is invalid: ${base.problems.join('; ')}`);
  const poll = o.baseline
    ? {
        POLL_MIN_INTERVAL_MS: String(1000 * o.scale),
        POLL_MAX_INTERVAL_MS: String(1000 * o.scale),
        POLL_MAX_PER_SECOND: '1000',
      }
    : {
        POLL_MIN_INTERVAL_MS: String(Math.round(base.config.jobs.pollMinIntervalMs * o.scale)),
        POLL_MAX_INTERVAL_MS: String(Math.round(base.config.jobs.pollMaxIntervalMs * o.scale)),
        POLL_MAX_PER_SECOND: String(Math.round(base.config.jobs.pollMaxPerSecond / o.scale)),
      };
  const loaded = loadConfig({
    ...process.env,
    DISCORD_TOKEN: discord.token,
    PPINFRA_API_KEY: api.apiKey,
    PPINFRA_BASE_URL: api.url,
    DISCORD_API_URL: discord.apiUrl,
    STORAGE_URL: `sqlite://${join(dir, 'bot.sqlite')}`,
    ...poll,
    PROGRESS_EDIT_INTERVAL_MS: String(Math.max(200, Math.round(base.config.jobs.progressEditIntervalMs * o.scale))),
    // The bench's members are one member asking many times: the limits for people refuse nobody here.
    API_IMAGES_PER_MINUTE: String(o.imagesPerMinute),
    USER_MAX_CONCURRENT: '50',
    USER_HOURLY_QUOTA: '10000',
    GUILD_DAILY_BUDGET: '1000000',
    QUEUE_MAX: '1000',
    // The model is measured on its own (bench/classifier.ts); here it would only add its CPU to both bots.
    NSFW_CLASSIFIER: 'off',
  });
  if (!loaded.ok) throw new Error(`bench: ${o.label}: ${loaded.problems.join('; ')}`);
  const estimator = o.baseline
    ? fixedInterval
    : o.scale === 1
      ? undefined
      : atScale(createDurationEstimator(), o.scale);
  const app = await startApp(loaded.config, silentLogger, estimator ? { estimator } : {});
  return {
    label: o.label,
    discord,
    api,
    async close() {
      await app.stop();
      await discord.stop();
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const delivered = (m: APIMessage) => m.attachments.length > 0;
const ended = (m: APIMessage) => delivered(m) || /^(❌|🔞)/.test(m.content);

/** A member runs /imagine; resolves when the image is in the channel, with the time it got there. */
async function imagine(rig: Rig, prompt: string, size: string): Promise<number> {
  const it = rig.discord.slash('imagine', { prompt, size: size.replace('*', 'x') });
  const m = await it.waitForOriginal(ended, { timeoutMs: 600_000 });
  const at = Date.now();
  if (!delivered(m))
    throw new Error(`bench: ${rig.label}: '${prompt}' ended without an image: ${m.content.slice(0, 200)}`);
  return at;
}

interface Sample {
  polls: number;
  /** Task done at the API -> image in the channel. */
  lagMs: number;
  /** /imagine -> image in the channel. */
  requestMs: number;
  /** The first poll after the task was done, after it was done: the schedule's share of the lag. */
  overshootMs: number;
  /** Between the last poll before completion and the first after (the gap the finish fell into); undefined with no poll before. */
  gapMs: number | undefined;
}

function sampleOf(rig: Rig, prompt: string, requestedAt: number, deliveredAt: number): Sample {
  const task = [...rig.api.tasks.values()].find((t) => t.prompt === prompt);
  if (!task) throw new Error(`bench: ${rig.label}: no task for '${prompt}'`);
  const polls = rig.api.requests.filter((r) => r.route === 'result' && r.query.task_id === task.id).map((r) => r.at);
  const before = polls.filter((t) => t < task.completedAt).at(-1);
  const after = polls.find((t) => t >= task.completedAt) ?? deliveredAt;
  if (process.env.BENCH_VERBOSE) {
    process.stderr.write(
      `${rig.label} '${prompt}' ${task.size}: done at ${task.completedAt - task.createdAt} ms, polled at ${polls.map((t) => t - task.createdAt).join(' ')}; delivered at ${deliveredAt - task.createdAt} ms\n`,
    );
  }
  return {
    polls: task.polls,
    lagMs: deliveredAt - task.completedAt,
    requestMs: deliveredAt - requestedAt,
    overshootMs: after - task.completedAt,
    gapMs: before === undefined ? undefined : after - before,
  };
}

const nearestRank = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

interface Stat {
  polls: number;
  lagP50: number;
  lagP95: number;
  requestP95: number;
  overshootP50: number;
  gapP50: number;
  /** Share of tasks whose first poll came after they were done (NaN: none polled before). */
  firstLate: number;
}
const stat = (s: Sample[]): Stat => ({
  polls: mean(s.map((x) => x.polls)),
  lagP50: nearestRank(
    s.map((x) => x.lagMs),
    50,
  ),
  lagP95: nearestRank(
    s.map((x) => x.lagMs),
    95,
  ),
  requestP95: nearestRank(
    s.map((x) => x.requestMs),
    95,
  ),
  overshootP50: nearestRank(
    s.map((x) => x.overshootMs),
    50,
  ),
  gapP50: nearestRank(
    s.flatMap((x) => (x.gapMs === undefined ? [] : [x.gapMs])),
    50,
  ),
  firstLate: s.filter((x) => x.gapMs === undefined).length / s.length,
});

export interface Result {
  workload: Workload;
  bot: Stat;
  baseline: Stat;
  ratios: { polls: number; lagP50: number; lagP95: number; requestP95: number };
  seconds: number;
}

async function runWorkload(w: Workload, scale: number, imagesPerMinute: number): Promise<Result> {
  const durations = new Map<string, number>();
  let load = 1;
  const t0 = Date.now();
  const [bot, baseline] = await Promise.all(
    (['bot', 'baseline'] as const).map((label) =>
      startRig({
        label: `${w.name}/${label}`,
        scale,
        imagesPerMinute,
        durations,
        load: () => load,
        baseline: label === 'baseline',
      }),
    ),
  );
  const rigs = [bot!, baseline!];
  try {
    // Warm-up through both bots, so each API has run the same tasks when the measured ones come.
    const warm: Promise<number>[] = [];
    for (const [k, p] of w.warmup.entries()) {
      if (w.waves && k > 0 && k % WAVE === 0) await sleep(WAVE_GAP_MS * scale);
      const prompt = `${w.name} warm-up #${k}`;
      durations.set(prompt, p.ms);
      for (const rig of rigs) warm.push(imagine(rig, prompt, p.size));
    }
    await Promise.all(warm);
    load = w.load;
    const runs: Promise<Sample>[][] = [[], []];
    for (const [k, p] of w.requests.entries()) {
      if (w.everyMs && k > 0) await sleep(w.everyMs * scale);
      const prompt = `${w.name} #${k}`;
      durations.set(prompt, p.ms);
      const requestedAt = Date.now();
      for (const [i, rig] of rigs.entries())
        runs[i]!.push(imagine(rig, prompt, p.size).then((at) => sampleOf(rig, prompt, requestedAt, at)));
    }
    const [b, n] = await Promise.all(runs.map((r) => Promise.all(r)));
    const sb = stat(b!);
    const sn = stat(n!);
    const seconds = (Date.now() - t0) / 1000;
    process.stderr.write(`family: ${w.name} done (${seconds.toFixed(0)} s)\n`);
    return {
      workload: w,
      bot: sb,
      baseline: sn,
      ratios: {
        polls: sb.polls / sn.polls,
        lagP50: sb.lagP50 / sn.lagP50,
        lagP95: sb.lagP95 / sn.lagP95,
        requestP95: sb.requestP95 / sn.requestP95,
      },
      seconds,
    };
  } finally {
    await Promise.all(rigs.map((r) => r.close()));
  }
}

// ---------------------------------------------------------------- the run and its judgement

type Metric = keyof Result['ratios'];
const METRICS: { key: Metric; label: string; worst: number; median?: number }[] = [
  { key: 'polls', label: 'polls/job', worst: 0.6, median: 0.5 },
  { key: 'lagP50', label: 'lag p50', worst: 0.75, median: 0.6 },
  { key: 'lagP95', label: 'lag p95', worst: 1.0 },
  { key: 'requestP95', label: 'request p95', worst: 1.05 },
];

export interface FamilyOptions {
  scale: number;
  imagesPerMinute: number;
  /** Workloads run at the same time (each is two bots). */
  parallel: number;
  /** Names to run (all when empty). */
  only: string[];
}

export async function runFamily(o: FamilyOptions): Promise<Check[]> {
  const unknown = o.only.filter((n) => !FAMILY.some((w) => w.name === n));
  if (unknown.length)
    throw new Error(
      `BENCH_WORKLOADS: no workload ${unknown.join(', ')} (known: ${FAMILY.map((w) => w.name).join(', ')})`,
    );
  const chosen = o.only.length ? FAMILY.filter((w) => o.only.includes(w.name)) : FAMILY;
  const t0 = Date.now();
  const results: Result[] = [];
  // Longest first, so the last pair does not leave one core idle while a long workload runs alone.
  const queue = [...chosen].sort((a, b) => weight(b) - weight(a));
  await Promise.all(
    Array.from({ length: Math.max(1, o.parallel) }, async () => {
      for (let w = queue.shift(); w; w = queue.shift()) results.push(await runWorkload(w, o.scale, o.imagesPerMinute));
    }),
  );
  results.sort((a, b) => chosen.indexOf(a.workload) - chosen.indexOf(b.workload));

  console.log(
    `\nfamily: ${results.length} workloads, each two whole bots (src/app.ts) on their own fake Discord and fake PPInfra, measured at the fake Discord; ` +
      `ratio = bot / baseline (the same bot polling every ${1000 * o.scale} ms from submission) in the same run; ${((Date.now() - t0) / 1000).toFixed(0)} s, ${o.parallel} at a time`,
  );
  const ms = (x: number) => (Number.isNaN(x) ? '-' : `${Math.round(x)}`);
  const head = [
    'workload',
    'polls/job',
    'ratio',
    'lag p50 ms',
    'ratio',
    'lag p95 ms',
    'ratio',
    'req p95 ms',
    'ratio',
    'overshoot p50',
    'gap p50',
    '1st late',
    'what',
  ];
  const rows = results.map((r) => [
    r.workload.name,
    `${r.bot.polls.toFixed(2)}/${r.baseline.polls.toFixed(2)}`,
    `${r.ratios.polls.toFixed(2)}x`,
    `${ms(r.bot.lagP50)}/${ms(r.baseline.lagP50)}`,
    `${r.ratios.lagP50.toFixed(2)}x`,
    `${ms(r.bot.lagP95)}/${ms(r.baseline.lagP95)}`,
    `${r.ratios.lagP95.toFixed(2)}x`,
    `${ms(r.bot.requestP95)}/${ms(r.baseline.requestP95)}`,
    `${r.ratios.requestP95.toFixed(2)}x`,
    `${ms(r.bot.overshootP50)}/${ms(r.baseline.overshootP50)}`,
    `${ms(r.bot.gapP50)}/${ms(r.baseline.gapP50)}`,
    `${Math.round(r.bot.firstLate * 100)}/${Math.round(r.baseline.firstLate * 100)} %`,
    r.workload.describe,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => (i === 0 || i === c.length - 1 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  console.log(line(head));
  for (const c of rows) console.log(line(c));
  console.log(
    '  (bot/baseline; overshoot: completion -> the first poll after it; gap: the last poll before completion -> the first after, ms, "-" when no task was polled before it was done; ' +
      '1st late: tasks whose first poll came only after they were done)',
  );

  const checks: Check[] = [];
  if (!results.length) return checks;
  const medianOf = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = s.length / 2;
    return s.length % 2 ? s[Math.floor(mid)]! : (s[mid - 1]! + s[mid]!) / 2;
  };
  for (const m of METRICS) {
    const worst = results.reduce((a, b) => (b.ratios[m.key] > a.ratios[m.key] ? b : a));
    const v = worst.ratios[m.key];
    const ok = v <= m.worst;
    checks.push({
      ok,
      text: `family worst ${m.label} ${v.toFixed(2)}x on ${worst.workload.name} (target <= ${m.worst}x)`,
    });
    console.log(
      `worst ${m.label}: ${worst.workload.name} ${v.toFixed(2)}x (target <= ${m.worst}x) ${ok ? 'OK' : 'MISS'}`,
    );
    if (m.median !== undefined) {
      const med = medianOf(results.map((r) => r.ratios[m.key]));
      const okM = med <= m.median;
      checks.push({ ok: okM, text: `family median ${m.label} ${med.toFixed(2)}x (target <= ${m.median}x)` });
      console.log(`median ${m.label}: ${med.toFixed(2)}x (target <= ${m.median}x) ${okM ? 'OK' : 'MISS'}`);
    }
  }
  return checks;
}

/** About how long a workload takes (full-scale ms), to order the queue. */
function weight(w: Workload): number {
  const longest = (ps: Plan[]) => Math.max(0, ...ps.map((p) => p.ms));
  const warm = (w.waves ? Math.ceil(w.warmup.length / WAVE) * WAVE_GAP_MS : 0) + longest(w.warmup);
  return warm + w.requests.length * w.everyMs + longest(w.requests) * w.load;
}
