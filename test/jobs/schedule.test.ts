import { describe, expect, it } from 'vitest';
import { nextPollDelay, type Estimate } from '../../src/jobs/schedule.ts';
import { createDurationEstimator, COLD_ESTIMATE } from '../../src/jobs/estimator.ts';
import { createRateLimiter } from '../../src/jobs/limiter.ts';
import { createLocalSharedState } from '../../src/storage/shared-state.ts';
import { pollTask } from '../../src/jobs/poller.ts';
import type { TaskResult } from '../../src/ppinfra/parse.ts';
import { createMemoryKeyValue } from '../../src/storage/key-value.ts';

const base = { expectedMs: 10_000, spreadMs: 1_000, minIntervalMs: 500, maxIntervalMs: 5_000, random: () => 0.5 };

describe('nextPollDelay', () => {
  it('does not poll before the task can plausibly be done', () => {
    expect(nextPollDelay({ ...base, sinceSubmitMs: 0, polls: 0 })).toBe(8_750);
    expect(nextPollDelay({ ...base, sinceSubmitMs: 2_000, polls: 0 })).toBe(6_750);
  });
  it('polls at the minimum spacing around the expected finish when the estimate is tight', () => {
    for (const since of [8_750, 10_000, 11_900])
      expect(nextPollDelay({ ...base, sinceSubmitMs: since, polls: 1 })).toBe(500);
  });
  it('polls at twice the minimum spacing when the estimate is loose', () => {
    const loose = { ...base, spreadMs: 4_000 };
    expect(nextPollDelay({ ...loose, sinceSubmitMs: 0, polls: 0 })).toBe(5_000);
    for (const since of [5_000, 10_000, 17_900])
      expect(nextPollDelay({ ...loose, sinceSubmitMs: since, polls: 1 })).toBe(1_000);
  });
  it('backs off when the task runs late, up to the maximum', () => {
    const late = [13_000, 18_000, 25_000, 60_000].map((since) =>
      nextPollDelay({ ...base, sinceSubmitMs: since, polls: 3 }),
    );
    expect(late[0]).toBeGreaterThanOrEqual(1_000);
    expect(late[1]).toBeGreaterThan(late[0]!);
    expect([...late].sort((a, b) => a - b)).toEqual(late);
    expect(late[3]).toBe(5_000);
  });
  it('never goes below the minimum interval once polling has begun', () => {
    for (const r of [0, 0.25, 0.5, 1])
      expect(nextPollDelay({ ...base, sinceSubmitMs: 9_250, polls: 1, random: () => r })).toBeGreaterThanOrEqual(500);
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
    'polls a 3 s image first at about 3.2 s and sees it right then, not at 4 s (random %s)',
    async (r) => {
      const { pollsAt, seenAfterMs } = await pollOnClock(cold, 3_000, () => r);
      expect(pollsAt[0]).toBeLessThanOrEqual(3_200);
      expect(seenAfterMs).toBeLessThanOrEqual(200);
    },
  );

  // The guess is a distribution over 3-15 s: across the sizes it costs fewer polls than fixed
  // one-second polling, and no image waits long for its poll.
  it.each([1, 2, 3])(
    'spends fewer polls than fixed one-second polling on images of 3 to 15 s (jitter seed %s)',
    async (seed) => {
      let state = seed;
      const random = () => {
        state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
        return state / 2 ** 31;
      };
      let polls = 0;
      let naive = 0;
      for (const ms of [3_400, 5_200, 7_800, 11_700, 15_000]) {
        const { pollsAt, seenAfterMs } = await pollOnClock(cold, ms, random);
        polls += pollsAt.length;
        naive += Math.ceil(ms / 1_000);
        expect(seenAfterMs).toBeLessThanOrEqual(1_500);
      }
      expect(polls).toBeLessThan(naive);
    },
  );

  it('keeps polling densely enough for every size in between', async () => {
    for (const ms of [4_000, 6_000, 8_000, 11_000]) {
      const { seenAfterMs } = await pollOnClock(cold, ms);
      expect(seenAfterMs).toBeLessThanOrEqual(ms / 4);
    }
  });

  it('stops guessing once one task has completed', async () => {
    const est = createDurationEstimator();
    await est.record('1024*1024', 3_000);
    const { pollsAt } = await pollOnClock(est.estimate('1024*1024'), 3_000);
    expect(pollsAt[0]).toBeGreaterThanOrEqual(2_000);
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
