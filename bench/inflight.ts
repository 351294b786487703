/**
 * Child process of `npm run bench` (bench/measured.ts): the bot's job path with 1,000 jobs in
 * flight, alone in its process so its RSS and event-loop delay are the bot's, not the fake
 * API's (which runs in the parent). Reserves and starts BENCH_JOBS jobs at once against long
 * tasks, waits until every one has its task, then samples RSS and the event-loop delay
 * (node:perf_hooks monitorEventLoopDelay, default 10 ms resolution) while they poll.
 *
 * In:  BENCH_FAKE_URL, BENCH_FAKE_KEY, BENCH_JOBS, BENCH_WINDOW_MS (+ the bot's own variables).
 * Out: one JSON line on stdout (`InflightReport`).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { sleep } from '../src/ppinfra/retry.ts';
import { createBenchBot, memberRequest } from './bot.ts';

export interface InflightReport {
  jobs: number;
  pollMaxPerSecond: number;
  rssBeforeMb: number;
  rssMaxMb: number;
  heapMaxMb: number;
  heapTotalMaxMb: number;
  eldIdleP99Ms: number;
  eldP99Ms: number;
  eldMaxMs: number;
  submitAllMs: number;
  windowStart: number;
  windowEnd: number;
  /** Jobs no longer in flight at the end of the window (should be 0: the tasks are long). */
  ended: number;
}

const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`bench/inflight.ts: ${name} is required (run it through npm run bench)`);
  return v;
};
const JOBS = Number(env('BENCH_JOBS'));
const WINDOW_MS = Number(env('BENCH_WINDOW_MS'));
const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

const bot = await createBenchBot({
  baseUrl: env('BENCH_FAKE_URL'),
  apiKey: env('BENCH_FAKE_KEY'),
  scale: 1,
  imagesPerMinute: Math.max(1000, JOBS),
  maxJobsInFlight: JOBS,
});

// The idle loop, for reference (the histogram counts the 10 ms sampling interval itself, and a
// busy machine shows here): after start-up has settled.
await sleep(500);
const idle = monitorEventLoopDelay();
idle.enable();
await sleep(1000);
idle.disable();
const rssBefore = process.memoryUsage().rss;

const t0 = Date.now();
const jobs = await Promise.all(
  Array.from({ length: JOBS }, (_, i) => bot.request(memberRequest(`member-${i}`, `in flight #${i}`, '1024*1024'))),
);
for (;;) {
  const states = await Promise.all(jobs.map((j) => bot.jobs.get(j.id)));
  if (states.every((s) => s?.taskId)) break;
  if (Date.now() - t0 > 120_000) throw new Error('bench/inflight.ts: jobs were not all submitted within 2 minutes');
  await sleep(100);
}
const submitAllMs = Date.now() - t0;
// Fresh install: the first polls come about 1.25 s after submission; start once they have.
await sleep(2000);

const eld = monitorEventLoopDelay();
let rssMax = 0;
let heapMax = 0;
let heapTotalMax = 0;
const sample = () => {
  const m = process.memoryUsage();
  rssMax = Math.max(rssMax, m.rss);
  heapMax = Math.max(heapMax, m.heapUsed);
  heapTotalMax = Math.max(heapTotalMax, m.heapTotal);
};
const windowStart = Date.now();
eld.enable();
sample();
const sampler = setInterval(sample, 100);
await sleep(WINDOW_MS);
clearInterval(sampler);
sample();
eld.disable();
const windowEnd = Date.now();
const ended = bot.delivery.delivered.size + bot.delivery.failed.size;
await bot.close();

const report: InflightReport = {
  jobs: JOBS,
  pollMaxPerSecond: bot.config.jobs.pollMaxPerSecond,
  rssBeforeMb: mb(rssBefore),
  rssMaxMb: mb(rssMax),
  heapMaxMb: mb(heapMax),
  heapTotalMaxMb: mb(heapTotalMax),
  eldIdleP99Ms: idle.percentile(99) / 1e6,
  eldP99Ms: eld.percentile(99) / 1e6,
  eldMaxMs: eld.max / 1e6,
  submitAllMs,
  windowStart,
  windowEnd,
  ended,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
