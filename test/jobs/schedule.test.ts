import { describe, expect, it } from 'vitest';
import { lateAfter, nextPollDelay, type Estimate } from '../../src/jobs/schedule.ts';
import { createDurationEstimator, COLD_ESTIMATE } from '../../src/jobs/estimator.ts';
import { createRateLimiter } from '../../src/jobs/limiter.ts';
import { createMemoryKeyValue } from '../../src/storage/key-value.ts';
import { createLocalSharedState } from '../../src/storage/shared-state.ts';
import { pollTask } from '../../src/jobs/poller.ts';
import type { TaskResult } from '../../src/ppinfra/parse.ts';
import { mulberry32 } from '../fakes/random.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const base = { expectedMs: 10_000, spreadMs: 1_000, minIntervalMs: 500, maxIntervalMs: 5_000, random: () => 0.5 };

describe('nextPollDelay', () => {
  /** `base` is a tight estimate (+-10 %) around 10 s; this a loose one (+-40 %) with the same centre. */
  const loose = { ...base, spreadMs: 4_000 };
  const delay = (e: Estimate, sinceSubmitMs: number, random = () => 0.5, maxIntervalMs = base.maxIntervalMs) =>
    nextPollDelay({ ...e, minIntervalMs: base.minIntervalMs, maxIntervalMs, random, sinceSubmitMs, polls: 1 });

  it('does not poll before the task can plausibly be done, nor wait past its expected finish', () => {
    const first = delay(base, 0);
    expect(first).toBeGreaterThan(0.6 * base.expectedMs);
    expect(first).toBeLessThan(base.expectedMs);
    // Asked later, before any task could be done, it still polls first before the expected finish.
    expect(2_000 + delay(base, 2_000)).toBeLessThan(base.expectedMs);
  });
  it('hedges an API that has become faster unseen: a task done 40 % before a tight estimate is seen within a second', async () => {
    const { seenAfterMs } = await pollOnClock(base, 0.6 * base.expectedMs);
    expect(seenAfterMs).toBeLessThanOrEqual(1_000);
  });
  it('polls a loose estimate first earlier than a tight one with the same centre', () => {
    expect(delay(loose, 0)).toBeLessThan(delay(base, 0));
  });
  it('polls at the minimum spacing around the expected finish when the estimate is tight', () => {
    for (const since of [base.expectedMs, base.expectedMs + base.spreadMs, base.expectedMs + 2 * base.spreadMs])
      expect(delay(base, since)).toBe(base.minIntervalMs);
  });
  it('spaces its polls more widely where a loose estimate’s tasks finish, since fewer finish at any moment', () => {
    const tight = delay(base, base.expectedMs);
    const wide = delay(loose, loose.expectedMs);
    expect(wide).toBeGreaterThan(tight);
    expect(wide).toBeLessThan(2 * base.minIntervalMs);
  });
  it('polls ever more sparsely as the task outlives a tight estimate', () => {
    const gaps = [10_000, 12_000, 13_000, 14_000, 16_000, 20_000, 30_000].map((since) => delay(base, since));
    expect([...gaps].sort((a, b) => a - b)).toEqual(gaps);
    expect(gaps.at(-1)!).toBeGreaterThan(2 * gaps[0]!);
  });
  it('backs off once the task is late, from twice the minimum spacing up to the maximum', () => {
    const late = lateAfter(base);
    expect(late).toBeGreaterThan(base.expectedMs + 2 * base.spreadMs);
    const gaps = [0, 5_000, 15_000, 60_000].map((after) => delay(base, late + after));
    expect(gaps[0]).toBe(2 * base.minIntervalMs);
    expect(gaps[1]).toBeGreaterThan(gaps[0]!);
    expect([...gaps].sort((a, b) => a - b)).toEqual(gaps);
    expect(gaps[3]).toBe(base.maxIntervalMs);
  });
  it('may wait longer than the maximum before the first tasks are done, never after', () => {
    // A maximum shorter than the loose estimate's spacing where its tasks finish.
    const maxIntervalMs = 600;
    expect(delay(loose, 0, () => 0.5, maxIntervalMs)).toBeGreaterThan(maxIntervalMs);
    for (let since = loose.expectedMs; since < lateAfter(loose); since += 500) {
      for (const r of [0, 0.5, 1])
        expect(delay(loose, since, () => r, maxIntervalMs)).toBeLessThanOrEqual(maxIntervalMs);
    }
  });
  it('never goes below the minimum interval, whatever the jitter', () => {
    for (const e of [base, loose, COLD_ESTIMATE]) {
      for (let since = 0; since < 60_000; since += 250) {
        for (const r of [0, 0.25, 0.5, 1]) expect(delay(e, since, () => r)).toBeGreaterThanOrEqual(base.minIntervalMs);
      }
    }
  });
  it('jitters by at most a tenth either way', () => {
    for (const since of [0, 5_000, 13_000, 20_000]) {
      const middle = delay(base, since);
      for (const r of [0, 1])
        expect(Math.abs(delay(base, since, () => r) - middle)).toBeLessThanOrEqual(0.1 * middle + 1e-9);
    }
  });
  it('polls at the minimum spacing when nothing is expected (an estimate of zero)', () => {
    const nothing = { expectedMs: 0, spreadMs: 0 };
    for (const since of [0, 1_000, 30_000]) expect(delay(nothing, since)).toBe(base.minIntervalMs);
  });
});

/**
 * pollTask on a manual clock against a task that is done `durationMs` after submit, with the
 * intervals POLL_MIN_INTERVAL_MS 500, POLL_MAX_INTERVAL_MS 5000. Returns when
 * each poll came and how long after completion the image was seen.
 */
async function pollOnClock(estimate: Estimate, durationMs: number, random = () => 0.5) {
  let clock = 0;
  const pollsAt: number[] = [];
  const image = {
    url: 'https://example.test/i.jpeg',
    type: 'jpeg',
    ttlSeconds: null,
    nsfw: false,
    nsfwSignals: { hasNsfwContents: false, detectionResult: null },
  };
  const getResult = async (taskId: string): Promise<TaskResult> => {
    pollsAt.push(clock);
    const done = clock >= durationMs;
    const status = done ? 'succeed' : 'processing';
    return {
      taskId,
      status,
      rawStatus: `TASK_STATUS_${status.toUpperCase()}`,
      reason: '',
      etaSeconds: 0,
      progressPercent: 0,
      images: done ? [image] : [],
    };
  };
  await pollTask('task', {
    client: { getResult },
    submittedAt: 0,
    deadline: 120_000,
    estimate,
    minIntervalMs: 500,
    maxIntervalMs: 5_000,
    now: () => clock,
    sleep: async (ms) => {
      clock += ms;
    },
    random,
  });
  return { pollsAt, seenAfterMs: clock - durationMs };
}

describe('polling on a fresh install (no history)', () => {
  const cold = createDurationEstimator().estimate('1024*1024');
  const jitters = [0, 0.5, 1];

  it.each(jitters)(
    'sees a 3 s image within about a second of its completion, not at the 8 s it expects (random %s)',
    async (r) => {
      const { pollsAt, seenAfterMs } = await pollOnClock(cold, 3_000, () => r);
      expect(pollsAt[0]).toBeLessThan(cold.expectedMs / 2);
      expect(seenAfterMs).toBeLessThanOrEqual(1_000);
    },
  );

  // The guess is a distribution over 3-15 s: across the sizes a member waits less after the
  // image is done than with fixed one-second polling, for about as many polls.
  it.each([1, 2, 3])(
    'waits less after completion than fixed one-second polling on images of 3 to 15 s (seed %s)',
    async (seed) => {
      const draw = mulberry32(seed);
      const random = mulberry32(seed + 1_000);
      const durations = Array.from({ length: 40 }, () => 3_000 * 5 ** draw());
      const waits: number[] = [];
      let polls = 0;
      for (const ms of durations) {
        const { pollsAt, seenAfterMs } = await pollOnClock(cold, ms, random);
        polls += pollsAt.length;
        waits.push(seenAfterMs);
        expect(seenAfterMs).toBeLessThanOrEqual(1_500);
      }
      const fixedWaits = durations.map((ms) => Math.ceil(ms / 1_000) * 1_000 - ms);
      const fixedPolls = durations.reduce((n, ms) => n + Math.ceil(ms / 1_000), 0);
      expect(median(waits)).toBeLessThan(median(fixedWaits));
      expect(polls).toBeLessThan(1.2 * fixedPolls);
    },
  );

  it('keeps polling densely enough for every size in between', async () => {
    for (const ms of [4_000, 6_000, 8_000, 11_000]) {
      const { seenAfterMs } = await pollOnClock(cold, ms);
      expect(seenAfterMs).toBeLessThanOrEqual(ms / 4);
    }
  });

  it('stops guessing once one task has completed: a size learned to take 12 s is polled later and less', async () => {
    const est = createDurationEstimator();
    await est.record('1024*1024', 12_000);
    const learned = est.estimate('1024*1024');
    expect(learned.guess).toBeFalsy();
    const guessed = await pollOnClock(cold, 12_000);
    const { pollsAt, seenAfterMs } = await pollOnClock(learned, 12_000);
    expect(pollsAt[0]).toBeGreaterThan(guessed.pollsAt[0]!);
    expect(pollsAt.length).toBeLessThan(guessed.pollsAt.length);
    expect(seenAfterMs).toBeLessThanOrEqual(1_000);
  });
});

describe('duration estimator', () => {
  it('starts cold, then learns a size from what it observed', async () => {
    const est = createDurationEstimator();
    expect(est.estimate('1024*1024')).toMatchObject({ ...COLD_ESTIMATE, samples: 0 });
    for (const ms of [6_000, 6_200, 5_800, 6_100, 30_000]) await est.record('1024*1024', ms);
    const e = est.estimate('1024*1024');
    expect(e.expectedMs).toBe(6_100);
    expect(e.spreadMs).toBeLessThan(1_000);
    // Another size borrows the hint with a wider spread.
    expect(est.estimate('1536*864').spreadMs).toBeGreaterThanOrEqual(3_000);
  });
  it('persists samples through its store', async () => {
    const store = createLocalSharedState(createMemoryKeyValue());
    const first = createDurationEstimator({ store });
    await first.record('512*512', 4_000);
    const second = createDurationEstimator({ store });
    await second.load();
    expect(second.estimate('512*512')).toMatchObject({ expectedMs: 4_000, samples: 1 });
  });
});

describe('rate limiter', () => {
  it('spaces acquisitions across all callers', async () => {
    let clock = 0;
    const waits: number[] = [];
    const limiter = createRateLimiter({ perSecond: 4, now: () => clock, sleep: async (ms) => void waits.push(ms) });
    await Promise.all([limiter.acquire(), limiter.acquire(), limiter.acquire()]);
    expect(waits).toEqual([250, 500]);
    clock = 10_000;
    await limiter.acquire();
    expect(waits).toEqual([250, 500]);
  });
});
