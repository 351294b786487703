/**
 * The polling schedule on the workload family of bench/family.ts, and five more it is not judged
 * on, on a virtual clock: the real estimator and the real poller (src/jobs), no Discord, no HTTP,
 * no real time, so a change to the schedule can be tried on every workload over several seeds in
 * a second (`node bench/virtual-family.ts`; SEEDS=n, ONLY=a,b, TRACE=workload prints each task's
 * polls). Ratios are to fixed 1-second polling of the same tasks, with OVERHEAD ms (150) added to
 * both waits for the download and the upload after the poll that finds the task done. It guides;
 * `npm run bench` (two whole bots, measured at the fake Discord) judges.
 */
import { createDurationEstimator, estimateAtSubmit } from '../src/jobs/estimator.ts';
import { observedDuration } from '../src/jobs/observed.ts';
import { pollTask } from '../src/jobs/poller.ts';
import type { TaskResult } from '../src/ppinfra/parse.ts';
import { mulberry32 } from '../test/fakes/random.ts';
import { createVirtualClock } from '../test/fakes/virtual-clock.ts';

const SIZES = ['512*512', '768*768', '1024*1024', '1328*1328', '1536*1536'];
const px = (s: string) =>
  s
    .split('*')
    .map(Number)
    .reduce((a, b) => a * b, 1);
const typical = (s: string) => 2000 + 5.5e-3 * px(s);
interface Axes {
  sizes: 'mixed' | 'wide';
  depth: number;
  waves: boolean;
  shift: number;
  trickle: boolean;
}
const BASE: Axes = { sizes: 'mixed', depth: 3, waves: false, shift: 0, trickle: false };
const FAMILY: [string, Axes][] = [
  ['base', BASE],
  ['cold', { ...BASE, depth: 0 }],
  ['deep', { ...BASE, depth: 8 }],
  ['waves', { ...BASE, waves: true }],
  ['faster20', { ...BASE, shift: -0.2 }],
  ['slower30', { ...BASE, shift: 0.3 }],
  ['slower60', { ...BASE, shift: 0.6 }],
  ['trickle', { ...BASE, trickle: true }],
  ['wide', { ...BASE, sizes: 'wide' }],
  ['deep-waves-slower60', { ...BASE, depth: 8, waves: true, shift: 0.6 }],
  ['deep-waves-faster20', { ...BASE, depth: 8, waves: true, shift: -0.2 }],
  ['cold-trickle', { ...BASE, depth: 0, trickle: true }],
  ['wide-cold', { ...BASE, sizes: 'wide', depth: 0 }],
  ['wide-slower60', { ...BASE, sizes: 'wide', shift: 0.6 }],
  ['wide-deep', { ...BASE, sizes: 'wide', depth: 8 }],
  ['wide-trickle', { ...BASE, sizes: 'wide', trickle: true }],
  ['deep-faster20', { ...BASE, depth: 8, shift: -0.2 }],
  ['cold-slower60', { ...BASE, depth: 0, shift: 0.6 }],
  ['cold-faster20', { ...BASE, depth: 0, shift: -0.2 }],
];
const OVERHEAD = Number(process.env.OVERHEAD ?? 150);
async function run(a: Axes, seed: number) {
  const random = mulberry32(seed);
  const jitter = mulberry32(seed ^ 0x5eed);
  const { now, sleep, run } = createVirtualClock();
  const estimator = createDurationEstimator({ now });
  let load = 1;
  const out: { size: string; d: number; polls: number[]; measured: boolean }[] = [];
  const draw = (size: string) =>
    a.sizes === 'wide' ? 3000 * 5 ** random() : typical(size) * (1 + 0.12 * (2 * random() - 1));
  async function job(size: string, measured: boolean) {
    const d = draw(size) * load;
    const submittedAt = now();
    const atSubmit = estimateAtSubmit(estimator, size);
    const polls: number[] = [];
    const getResult = async (taskId: string): Promise<TaskResult> => {
      polls.push(now() - submittedAt);
      return {
        taskId,
        status: now() - submittedAt >= d ? 'succeed' : 'processing',
        rawStatus: '',
        reason: '',
        etaSeconds: 0,
        progressPercent: 0,
        images: [],
      };
    };
    const r = await pollTask(size, {
      client: { getResult },
      submittedAt,
      deadline: submittedAt + 600_000,
      estimate: () => estimator.estimate(size),
      atSubmit,
      minIntervalMs: Number(process.env.XMIN ?? 400),
      maxIntervalMs: 5000,
      now,
      sleep,
      random: jitter,
    });
    await estimator.record(size, observedDuration(submittedAt, now(), r.pendingAt), submittedAt);
    out.push({ size, d, polls, measured });
  }
  const sizes = a.sizes === 'wide' ? ['1024*1024'] : SIZES;
  async function scenario() {
    const warm = sizes.flatMap((s) => Array.from({ length: a.depth }, () => s)).sort(() => random() - 0.5);
    if (a.waves) {
      for (let i = 0; i < warm.length; i += 5) {
        const w = Promise.all(warm.slice(i, i + 5).map((s) => job(s, false)));
        if (i + 5 < warm.length) await sleep(4000);
        else await w;
      }
    }
    if (!a.waves) await Promise.all(warm.map((s) => job(s, false)));
    // Every warm-up task done before the measured ones, as in bench/family.ts.
    while (out.length < warm.length) await sleep(100);
    load = 1 + a.shift;
    const n = a.trickle ? 30 : 20;
    await Promise.all(
      Array.from({ length: n }, (_, k) =>
        sleep(a.trickle ? k * 2000 : 0).then(() => job(sizes[k % sizes.length]!, true)),
      ),
    );
  }
  await run(scenario);
  return out.filter((o) => o.measured);
}
const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)]!;
};
const seeds = Number(process.env.SEEDS ?? 5);
const rows: { name: string; polls: number; p50: number; p95: number }[] = [];
const only = process.env.ONLY?.split(',');
for (const [name, a] of FAMILY) {
  if (only && !only.includes(name)) continue;
  const all: { size: string; d: number; polls: number[] }[] = [];
  for (let s = 1; s <= seeds; s++) all.push(...(await run(a, s * 7919 + name.length)));
  const lag = all.map((t) => t.polls.at(-1)! - t.d + OVERHEAD);
  const fl = all.map((t) => Math.ceil(t.d / 1000) * 1000 - t.d + OVERHEAD);
  const polls = all.reduce((n, t) => n + t.polls.length, 0) / all.reduce((n, t) => n + Math.ceil(t.d / 1000), 0);
  const r = { name, polls, p50: q(lag, 0.5) / q(fl, 0.5), p95: q(lag, 0.95) / q(fl, 0.95) };
  rows.push(r);
  if (process.env.TRACE === name)
    for (const t of all.slice(0, 40)) console.log(t.size, Math.round(t.d), t.polls.map(Math.round).join(' '));
  console.log(
    `${name.padEnd(22)} polls ${polls.toFixed(2)}x  lag p50 ${r.p50.toFixed(2)}x  p95 ${r.p95.toFixed(2)}x   (${Math.round(q(lag, 0.5))}/${Math.round(q(lag, 0.95))} ms)`,
  );
}
const med = (k: 'polls' | 'p50' | 'p95') =>
  q(
    rows.map((r) => r[k]),
    0.5,
  );
const worst = (k: 'polls' | 'p50' | 'p95') => rows.reduce((a, b) => (b[k] > a[k] ? b : a));
for (const k of ['polls', 'p50', 'p95'] as const)
  console.log(`worst ${k}: ${worst(k).name} ${worst(k)[k].toFixed(2)}x   median ${med(k).toFixed(2)}x`);
