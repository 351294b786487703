/**
 * Seeded workloads of Qwen-Image tasks polled by the real estimator and the real poller on a
 * virtual clock: the job path of src/jobs/in-process/run.ts without Discord, the queue or the store.
 * Each task's polls are recorded, so tests can check what a member waited for and how often the
 * bot asked. No real time passes: every sleep is a timer on the virtual clock, run in order.
 */
import { createDurationEstimator, estimateAtSubmit } from '../../src/jobs/estimator.ts';
import { observedDuration } from '../../src/jobs/observed.ts';
import { pollTask } from '../../src/jobs/poller.ts';
import { lateAfter, nextPollDelay, type Estimate } from '../../src/jobs/schedule.ts';
import type { TaskResult } from '../../src/ppinfra/parse.ts';
import { mulberry32 } from '../fakes/random.ts';
import { createVirtualClock } from '../fakes/virtual-clock.ts';

/** Sizes from 512² to 1536², their time roughly linear in the pixel count, and one whose time varies over 3-15 s. */
export const SIZES = ['512*512', '768*768', '1024*1024', '1328*1328', '1536*864', '1536*1536'] as const;
export const WIDE = '1280*720';

export interface Workload {
  seed: number;
  /** Completed tasks per size before the measured phase, submitted in waves of five. */
  warmup: 0 | 3 | 8;
  /** How much slower (+) or faster (-) the API runs in the measured phase than in the warm-up. */
  shift: number;
  /** Twenty members at once, or one every couple of seconds. */
  phase: 'burst' | 'trickle';
}

export interface Polled {
  size: string;
  durationMs: number;
  /** What the job recorded at submission (`Job.estimate`). */
  atSubmit: Estimate;
  /** Each poll, ms after the submission; the last one found the task done. */
  pollsAt: number[];
  /** In the measured phase (after the warm-up). */
  measured: boolean;
}

const MIN_INTERVAL_MS = 400;
const MAX_INTERVAL_MS = 5_000;
export const POLL_SETTINGS = { minIntervalMs: MIN_INTERVAL_MS, maxIntervalMs: MAX_INTERVAL_MS };

function durationOf(size: string, random: () => number): number {
  if (size === WIDE) return 3_000 * 5 ** random();
  const [w, h] = size.split('*').map(Number) as [number, number];
  // About 3 s at 512², 7.5 s at 1024², 15 s at 1536², with a little log-normal noise (~8 %).
  const typical = 1_500 + (6_000 * w * h) / 1024 ** 2;
  const gauss = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  return typical * Math.exp(0.08 * gauss);
}

/** Runs `w` and returns every task's polls. */
export async function runWorkload(w: Workload): Promise<Polled[]> {
  const random = mulberry32(w.seed);
  const jitter = mulberry32(w.seed ^ 0x5eed);
  const { now, sleep, run } = createVirtualClock();
  const estimator = createDurationEstimator({ now });
  const out: Polled[] = [];
  let load = 1;

  async function job(size: string, measured: boolean) {
    const durationMs = durationOf(size, random) * load;
    const submittedAt = now();
    const atSubmit = estimateAtSubmit(estimator, size);
    const pollsAt: number[] = [];
    const getResult = async (taskId: string): Promise<TaskResult> => {
      pollsAt.push(now() - submittedAt);
      const status = now() - submittedAt >= durationMs ? 'succeed' : 'processing';
      return { taskId, status, rawStatus: '', reason: '', etaSeconds: 0, progressPercent: 0, images: [] };
    };
    const result = await pollTask(size, {
      client: { getResult },
      submittedAt,
      deadline: submittedAt + 600_000,
      ...pollEstimate(atSubmit, () => estimator.estimate(size)),
      ...POLL_SETTINGS,
      now,
      sleep,
      random: jitter,
    });
    // What the finisher records (src/jobs/finish.ts).
    await estimator.record(size, observedDuration(submittedAt, now(), result.pendingAt), submittedAt);
    out.push({ size, durationMs, atSubmit, pollsAt, measured });
  }

  const sizes = [...SIZES, WIDE];
  const pick = () => sizes[Math.floor(random() * sizes.length)]!;
  async function scenario() {
    const warm = sizes.flatMap((s) => Array.from({ length: w.warmup }, () => s)).sort(() => random() - 0.5);
    for (let i = 0; i < warm.length; i += 5) await Promise.all(warm.slice(i, i + 5).map((s) => job(s, false)));
    load = 1 + w.shift;
    const members = Array.from({ length: 20 }, pick);
    if (w.phase === 'burst') await Promise.all(members.map((s) => job(s, true)));
    else {
      let at = 0;
      await Promise.all(
        members.map((s) => {
          at += -2_000 * Math.log(1 - random());
          const start = at;
          return sleep(start).then(() => job(s, true));
        }),
      );
    }
  }

  await run(scenario);
  return out;
}

/** What the job path hands the poller (src/jobs/in-process/run.ts). */
function pollEstimate(atSubmit: Estimate, live: () => Estimate) {
  return { estimate: live, atSubmit };
}

export const workloads = (seeds: number[]): Workload[] =>
  seeds.flatMap((seed) =>
    ([0, 3, 8] as const).flatMap((warmup) =>
      [-0.2, 0, 0.3, 0.6].flatMap((shift) =>
        (['burst', 'trickle'] as const).map((phase) => ({
          seed: seed * 1_000 + warmup * 100 + Math.round(shift * 10) * 3 + (phase === 'burst' ? 1 : 2),
          warmup,
          shift,
          phase,
        })),
      ),
    ),
  );

/** Past this (ms after submit) the task is late by `e`, and its schedule backs off. */
const lateBy = (e: Estimate, t: number) => t >= lateAfter(e);

/**
 * The longest wait after a poll at `t` that the submitted estimate's schedule allows: its next
 * delay with the largest jitter (+10 %), and never less than the minimum interval. Before the
 * estimate's first poll, that is the wait until it.
 */
const allowedAfter = (atSubmit: Estimate, t: number, polls: number) =>
  Math.max(
    POLL_SETTINGS.minIntervalMs,
    nextPollDelay({ ...atSubmit, ...POLL_SETTINGS, sinceSubmitMs: t, polls, random: () => 1 }),
  );

export interface Gap {
  size: string;
  from: number;
  to: number;
  allowed: number;
  durationMs: number;
}

/**
 * Gaps, from the submission (t = 0) on, longer than the submitted estimate's schedule allows:
 * those that start before the task is late by that estimate (`through: 'region'`), or any
 * (`'life'`: late, the back-off it would have followed bounds the wait for a later estimate).
 */
export function gapsOf(p: Polled, through: 'region' | 'life' = 'region'): Gap[] {
  const times = [0, ...p.pollsAt];
  const gaps: Gap[] = [];
  for (let i = 0; i + 1 < times.length; i++) {
    const from = times[i]!;
    if (through === 'region' && lateBy(p.atSubmit, from)) break;
    const allowed = allowedAfter(p.atSubmit, from, i);
    // 1 ms: rounding in the virtual clock.
    if (times[i + 1]! - from > allowed + 1)
      gaps.push({ size: p.size, from, to: times[i + 1]!, allowed, durationMs: p.durationMs });
  }
  return gaps;
}

const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

/** Polls per task and completion-to-seen waits, against fixed one-second polling of the same tasks. */
export function figures(tasks: Polled[]) {
  const lag = tasks.map((p) => p.pollsAt.at(-1)! - p.durationMs);
  const fixedLag = tasks.map((p) => Math.ceil(p.durationMs / 1_000) * 1_000 - p.durationMs);
  const polls = tasks.reduce((n, p) => n + p.pollsAt.length, 0);
  const fixedPolls = tasks.reduce((n, p) => n + Math.ceil(p.durationMs / 1_000), 0);
  return {
    pollsVsFixed: polls / fixedPolls,
    lagP50: quantile(lag, 0.5),
    lagP95: quantile(lag, 0.95),
    lagP50VsFixed: quantile(lag, 0.5) / quantile(fixedLag, 0.5),
    lagP95VsFixed: quantile(lag, 0.95) / quantile(fixedLag, 0.95),
  };
}
