/**
 * Polling by the distribution of durations (src/jobs/schedule.ts), the estimate a job in flight
 * follows, and the durations the estimator learns from polls (src/jobs/observed.ts).
 */
import { describe, expect, it } from 'vitest';
import { createDurationEstimator, HAZARD_MIN_SAMPLES } from '../../src/jobs/estimator.ts';
import { pollTask } from '../../src/jobs/poller.ts';
import {
  hazardSpacing,
  inFlightEstimate,
  inFlightPollDelay,
  nextPollDelay,
  type Estimate,
} from '../../src/jobs/schedule.ts';
import type { TaskResult } from '../../src/ppinfra/parse.ts';
import { observedDuration } from '../../src/jobs/observed.ts';

const settings = { minIntervalMs: 500, maxIntervalMs: 5_000, polls: 1, random: () => 0.5 };
/** 20 durations around 10 s, +-5 %: a size whose time hardly varies. */
const narrow = Array.from({ length: 20 }, (_, i) => 9_500 + i * 50);
/** 20 durations spread evenly on a log scale over 3-15 s: a size whose time varies a lot. */
const wide = Array.from({ length: 20 }, (_, i) => Math.round(3_000 * 5 ** ((i + 0.5) / 20)));
const withDurations = (durations: number[]): Estimate => ({
  expectedMs: durations[durations.length >> 1]!,
  spreadMs: 1_000,
  durations,
});
const delayAt = (e: Estimate, sinceSubmitMs: number) => nextPollDelay({ ...e, ...settings, sinceSubmitMs });

describe('polling by the distribution of durations', () => {
  it('polls first when about one task in twenty of that size is done', () => {
    expect(delayAt(withDurations(narrow), 0)).toBe(9_550);
    expect(delayAt(withDurations(wide), 1_000)).toBe(wide[1]! - 1_000);
  });

  it('polls a size whose time hardly varies at the minimum spacing where its tasks finish', () => {
    for (const t of [9_600, 10_000, 10_400]) expect(delayAt(withDurations(narrow), t)).toBe(500);
  });

  it('spaces the polls of a size whose time varies a lot more widely, where fewer of its tasks finish at any moment', () => {
    const spacings = [4_000, 6_000, 9_000].map((t) => delayAt(withDurations(wide), t));
    for (const s of spacings) expect(s).toBeGreaterThan(600);
    for (const s of spacings) expect(s).toBeLessThan(1_500);
  });

  it('backs off once a task outlasts every duration seen, growing to the maximum', () => {
    expect(hazardSpacing(narrow, 12_000)).toBeUndefined();
    const late = [12_000, 20_000, 40_000, 90_000].map((t) => delayAt(withDurations(narrow), t));
    expect(late[0]).toBeGreaterThanOrEqual(1_000);
    expect([...late].sort((a, b) => a - b)).toEqual(late);
    expect(late[3]).toBe(5_000);
  });

  it('is what the estimator gives a size once it has seen enough of its tasks', async () => {
    // Started together (startedAt 0), so they say nothing about the API's load.
    const estimator = createDurationEstimator();
    for (let i = 0; i < HAZARD_MIN_SAMPLES - 1; i++) await estimator.record('1024*1024', 8_000 + i * 100, 0);
    expect(estimator.estimate('1024*1024').durations).toBeUndefined();
    await estimator.record('1024*1024', 7_000, 0);
    expect(estimator.estimate('1024*1024').durations).toEqual([7_000, 8_000, 8_100, 8_200, 8_300, 8_400, 8_500, 8_600]);
  });
});

describe('the estimate a job in flight follows', () => {
  const atSubmit: Estimate = { expectedMs: 10_000, spreadMs: 1_000 };
  it.each([
    [
      'an earlier live estimate (the short tasks of its own burst finished first)',
      { expectedMs: 8_000, spreadMs: 800 },
      atSubmit,
    ],
    [
      'a later live estimate (the API is slower this hour)',
      { expectedMs: 13_000, spreadMs: 1_300 },
      { expectedMs: 13_000, spreadMs: 1_300 },
    ],
    ['a later hint from other sizes', { expectedMs: 30_000, spreadMs: 15_000, guess: true }, atSubmit],
  ] as [string, Estimate, Estimate][])('given %s, polls by the right one', (_, live, expected) => {
    expect(inFlightEstimate(atSubmit, live)).toEqual(expected);
  });

  it('keeps a measured distribution, and follows the live estimate when the job recorded none (an older record)', () => {
    const measured = withDurations(narrow);
    expect(inFlightEstimate(measured, { expectedMs: 20_000, spreadMs: 2_000 })).toBe(measured);
    expect(inFlightEstimate(undefined, atSubmit)).toBe(atSubmit);
  });

  it('is read before every poll: a job in flight polls through the region it was submitted with, then waits for a slowdown learned after it started', async () => {
    let clock = 0;
    const pollsAt: number[] = [];
    const atSubmit: Estimate = { expectedMs: 4_000, spreadMs: 400 };
    let estimate: Estimate = atSubmit;
    const getResult = async (taskId: string): Promise<TaskResult> => {
      pollsAt.push(clock);
      // Other tasks finishing meanwhile show the API running at half speed.
      estimate = { expectedMs: 8_000, spreadMs: 800 };
      const done = clock >= 7_500;
      return {
        taskId,
        status: done ? 'succeed' : 'processing',
        rawStatus: '',
        reason: '',
        etaSeconds: 0,
        progressPercent: 0,
        images: [],
      };
    };
    await pollTask('task', {
      client: { getResult },
      submittedAt: 0,
      deadline: 60_000,
      estimate: () => estimate,
      atSubmit,
      minIntervalMs: 500,
      maxIntervalMs: 5_000,
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
      random: () => 0.5,
    });
    // Until 4.8 s (late by what it was submitted with) the task may still finish where it was
    // expected to: it is polled there as densely as then, not left until 7 s.
    expect(pollsAt.slice(0, 4)).toEqual([3_500, 4_000, 4_500, 5_000]);
    // Late, it backs off gently until the new estimate's start, and is polled densely from there.
    expect(pollsAt.slice(-2)).toEqual([7_000, 7_500]);
    expect(pollsAt).toHaveLength(7);
  });
});

describe('the polls of a job in flight (inFlightPollDelay)', () => {
  const atSubmit: Estimate = { expectedMs: 10_000, spreadMs: 1_000 };
  const input = (sinceSubmitMs: number) => ({ ...settings, sinceSubmitMs });

  it('polls by the live estimate when the job recorded none (an older record)', () => {
    const live: Estimate = { expectedMs: 13_000, spreadMs: 1_300 };
    for (const t of [0, 9_000, 12_000, 30_000])
      expect(inFlightPollDelay(undefined, live, input(t))).toBe(nextPollDelay({ ...live, ...input(t) }));
  });

  it('does not leap past the region it was submitted with when the live estimate moves later', () => {
    const live: Estimate = { expectedMs: 16_000, spreadMs: 1_600 };
    // By the live estimate alone, the next poll after one at 9.25 s would be at 14 s.
    expect(nextPollDelay({ ...live, ...input(9_250) })).toBe(4_750);
    for (const t of [9_250, 10_000, 11_900]) expect(inFlightPollDelay(atSubmit, live, input(t))).toBe(500);
    // Late by what it was submitted with, it waits for the live estimate, no longer than its back-off.
    expect(inFlightPollDelay(atSubmit, live, input(12_100))).toBe(nextPollDelay({ ...atSubmit, ...input(12_100) }));
    expect(inFlightPollDelay(atSubmit, live, input(12_100))).toBeLessThan(1_100);
    expect(inFlightPollDelay(atSubmit, live, input(15_000))).toBe(500);
  });

  it('does not back off while a later live estimate, even a guess, still sees the task in its region', () => {
    const hint: Estimate = { expectedMs: 20_000, spreadMs: 10_000, guess: true };
    expect(nextPollDelay({ ...atSubmit, ...input(30_000) })).toBeGreaterThan(3_000);
    expect(inFlightPollDelay(atSubmit, hint, input(30_000))).toBe(1_000);
    // Past its region too, it backs off.
    expect(inFlightPollDelay(atSubmit, hint, input(41_000))).toBe(nextPollDelay({ ...atSubmit, ...input(41_000) }));
  });

  it('keeps to what it was submitted with when the live estimate is earlier', () => {
    const live: Estimate = { expectedMs: 8_000, spreadMs: 800 };
    for (const t of [0, 9_500, 12_500])
      expect(inFlightPollDelay(atSubmit, live, input(t))).toBe(nextPollDelay({ ...atSubmit, ...input(t) }));
  });
});

describe('the duration the estimator learns from the polls', () => {
  it('is the midpoint between the last poll that found the task pending and the one that found it done', () => {
    expect(observedDuration(1_000, 9_000, 8_500)).toBe(7_750);
  });
  it('corrects by at most half a second when the polls were far apart', () => {
    expect(observedDuration(0, 20_000, 10_000)).toBe(19_500);
  });
  it('is the time it was seen done when the first poll found it done', () => {
    expect(observedDuration(0, 3_200)).toBe(3_200);
  });
});
