/**
 * `npm run bench`: adaptive polling (src/jobs/poller.ts) against the baseline of fixed 1-second
 * polling, side by side in one run, on the fake PPInfra server with tasks of 3-15 s.
 *
 * Both strategies get the same workload at the same time: every round submits one task per
 * (size, strategy) pair, and each size has its own typical duration with +-10 % noise, as
 * Qwen-Image's generation time mostly depends on the pixel count. The adaptive side learns
 * durations as the bot does (its estimator persists across restarts), so round 1 is its cold
 * start and is included in the figures.
 *
 * Printed: task-result requests per job and completion-to-delivery delay (task done at the API
 * -> image bytes in hand), with ratios adaptive / fixed. Targets: polls <= 0.5x, p50 delay <= 1x.
 * BENCH_ROUNDS (default 6) and BENCH_SCALE (default 1; 0.25 runs four times faster with every
 * duration and interval scaled alike) tune the run.
 */
import { startFakePpinfra } from '../test/fakes/ppinfra.ts';
import { createPpinfraClient, type PpinfraClient } from '../src/ppinfra/client.ts';
import { COLD_ESTIMATE, createDurationEstimator } from '../src/jobs/estimator.ts';
import { pollTask } from '../src/jobs/poller.ts';
import { sleep } from '../src/ppinfra/retry.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const FIXED_INTERVAL_MS = 1000 * SCALE;
/** Typical generation time per size, spanning the 3-15 s range. */
const SIZES: Record<string, number> = { '512*512': 3_000, '768*768': 5_000, '1024*1024': 8_000, '1328*1328': 11_000, '1536*1024': 15_000 };

/** A seeded generator, so every run draws the same workload. */
let seed = 42;
const random = () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
  return seed / 2 ** 31;
};

type Sample = { polls: number; delayMs: number };

const fake = await startFakePpinfra({
  script: ({ size, prompt }) => {
    const base = SIZES[size] ?? 8_000;
    // The noise is keyed by the prompt so both strategies see the same durations.
    const noise = 0.9 + 0.2 * (Number(prompt.split('#')[1]) % 100) / 100;
    return { queuedMs: 300 * SCALE, processingMs: (base * noise - 300) * SCALE };
  },
});
const client = createPpinfraClient({ baseUrl: fake.url, apiKey: fake.apiKey });
const estimator = createDurationEstimator();

async function fixed(c: PpinfraClient, taskId: string): Promise<number> {
  for (let polls = 1; ; polls++) {
    await sleep(FIXED_INTERVAL_MS);
    const r = await c.getResult(taskId);
    if (r.status === 'succeed') {
      await c.download(r.images[0]!.url, { maxBytes: 10_000_000 });
      return polls;
    }
  }
}

/** The cold-start estimate is in real seconds; scale it with the workload. */
const scaled = (e: ReturnType<typeof estimator.estimate>) => (e.samples || e.expectedMs !== COLD_ESTIMATE.expectedMs ? e : { ...e, expectedMs: e.expectedMs * SCALE, spreadMs: e.spreadMs * SCALE });

async function adaptive(c: PpinfraClient, taskId: string, size: string, submittedAt: number): Promise<number> {
  const result = await pollTask(taskId, {
    client: c,
    submittedAt,
    deadline: submittedAt + 120_000 * SCALE,
    estimate: scaled(estimator.estimate(size)),
    minIntervalMs: 500 * SCALE,
    maxIntervalMs: 5000 * SCALE,
  });
  await c.download(result.images[0]!.url, { maxBytes: 10_000_000 });
  await estimator.record(size, Date.now() - submittedAt);
  return result.polls;
}

async function runOne(strategy: 'fixed' | 'adaptive', size: string, n: number): Promise<Sample> {
  const taskId = await client.submit({ prompt: `bench #${n}`, size });
  const submittedAt = Date.now();
  const polls = strategy === 'fixed' ? await fixed(client, taskId) : await adaptive(client, taskId, size, submittedAt);
  const deliveredAt = Date.now();
  const task = fake.tasks.get(taskId)!;
  if (process.env.BENCH_VERBOSE) process.stderr.write(`${strategy} ${size} took ${task.completedAt - task.createdAt} ms: ${polls} polls, delay ${deliveredAt - task.completedAt} ms\n`);
  return { polls, delayMs: deliveredAt - task.completedAt };
}

const results: Record<'fixed' | 'adaptive', Sample[]> = { fixed: [], adaptive: [] };
const started = Date.now();
for (let round = 0; round < ROUNDS; round++) {
  const jobs = Object.keys(SIZES).flatMap((size, i) => {
    const n = Math.floor(random() * 100) + i;
    return (['fixed', 'adaptive'] as const).map((s) => runOne(s, size, n).then((sample) => results[s].push(sample)));
  });
  await Promise.all(jobs);
  process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const stats = (s: Sample[]) => ({ polls: mean(s.map((x) => x.polls)), p50: pct(s.map((x) => x.delayMs), 50), p95: pct(s.map((x) => x.delayMs), 95) });
const f = stats(results.fixed);
const a = stats(results.adaptive);

console.log(`\nPolling benchmark: ${results.fixed.length} jobs per strategy, tasks 3-15 s x ${SCALE}, ${((Date.now() - started) / 1000).toFixed(0)} s wall time`);
console.log('strategy        polls/job   delay p50   delay p95');
for (const [name, s] of [['fixed 1 s', f], ['adaptive', a]] as const) {
  console.log(`${name.padEnd(15)} ${s.polls.toFixed(2).padStart(9)} ${`${s.p50} ms`.padStart(11)} ${`${s.p95} ms`.padStart(11)}`);
}
const pollRatio = a.polls / f.polls;
const delayRatio = a.p50 / f.p50;
console.log(`\nratio adaptive/fixed: polls ${pollRatio.toFixed(2)} (target <= 0.50) ${pollRatio <= 0.5 ? 'OK' : 'MISSED'}; delay p50 ${delayRatio.toFixed(2)} (target <= 1.00) ${delayRatio <= 1 ? 'OK' : 'MISSED'}`);

await client.close();
await fake.close();
