/**
 * Polling by the distribution of durations (src/jobs/schedule.ts), the estimate a job in flight
 * follows, and the durations the estimator learns from polls (src/jobs/finish.ts).
 */
import { describe, expect, it } from 'vitest';
import { createDurationEstimator } from '../../src/jobs/estimator.ts';
import { observedDuration } from '../../src/jobs/observed.ts';
import { pollTask } from '../../src/jobs/poller.ts';
import {
  inFlightEstimate,
  inFlightPollDelay,
  lateAfter,
  logBandwidth,
  nextPollDelay,
  type Estimate,
} from '../../src/jobs/schedule.ts';
import type { TaskResult } from '../../src/ppinfra/parse.ts';

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
  it('polls first before the first tasks of that size are done, but not long before', () => {
    const first = delayAt(withDurations(narrow), 0);
    expect(first).toBeGreaterThan(0.6 * narrow[0]!);
    expect(first).toBeLessThan(narrow[0]!);
  });

  it('polls a size whose time varies a lot first earlier, while its shortest tasks may be done', () => {
    const first = delayAt(withDurations(wide), 0);
    expect(first).toBeLessThan(delayAt(withDurations(narrow), 0));
    expect(first).toBeLessThanOrEqual(wide[0]!);
    expect(first).toBeGreaterThan(0.6 * wide[0]!);
  });

  it('polls a size whose time hardly varies at the minimum spacing where its tasks finish', () => {
    for (const t of [9_600, 10_000, 10_400]) expect(delayAt(withDurations(narrow), t)).toBe(500);
  });

  it('spaces the polls of a size whose time varies a lot more widely, where fewer of its tasks finish at any moment', () => {
    const spacings = [4_000, 6_000, 9_000].map((t) => delayAt(withDurations(wide), t));
    for (const s of spacings) expect(s).toBeGreaterThan(600);
    for (const s of spacings) expect(s).toBeLessThan(1_500);
  });

  it('backs off once a task outlasts the durations seen, growing to the maximum', () => {
    const late = lateAfter(withDurations(narrow));
    expect(late).toBeGreaterThan(narrow.at(-1)!);
    expect(late).toBeLessThan(lateAfter(withDurations(wide)));
    expect(delayAt(withDurations(narrow), late - 1)).toBeLessThan(delayAt(withDurations(narrow), late));
    const gaps = [0, 8_000, 28_000, 78_000].map((after) => delayAt(withDurations(narrow), late + after));
    expect(gaps[0]).toBeGreaterThanOrEqual(2 * settings.minIntervalMs);
    expect([...gaps].sort((a, b) => a - b)).toEqual(gaps);
    expect(gaps[3]).toBe(settings.maxIntervalMs);
  });

  it('is what the estimator gives a size from its first task on, wider the fewer it has seen', async () => {
    // Started together (startedAt 0), so they say nothing about the API's load.
    const once = createDurationEstimator();
    await once.record('1024*1024', 8_000, 0);
    const one = once.estimate('1024*1024');
    expect(one).toMatchObject({ durations: [8_000], samples: 1 });
    expect(one.guess).toBeFalsy();
    const often = createDurationEstimator();
    const seen = [8_200, 7_900, 8_100, 7_800, 8_300, 8_000, 7_700, 8_400];
    for (const ms of seen) await often.record('1024*1024', ms, 0);
    const eight = often.estimate('1024*1024');
    expect(eight.durations).toEqual([...seen].sort((a, b) => a - b));
    expect(one.logWidth).toBeGreaterThan(eight.logWidth!);
    // Eight durations within +-5 % still leave room for the API's speed: wider than their own spread.
    expect(eight.logWidth).toBeGreaterThan(logBandwidth(seen));
    // What a member notices: one duration polls an 8 s task from earlier, hedging its spread.
    expect(delayAt(one, 0)).toBeLessThan(delayAt(eight, 0));
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

  it('is read before every poll: a job in flight polls through the region it was submitted with, and sees a task slowed after it started sooner than that estimate alone would', async () => {
    let clock = 0;
    const pollsAt: number[] = [];
    const atSubmit: Estimate = { expectedMs: 4_000, spreadMs: 400 };
    const finishesAt = 7_500;
    let estimate: Estimate = atSubmit;
    const getResult = async (taskId: string): Promise<TaskResult> => {
      pollsAt.push(clock);
      // Other tasks finishing meanwhile show the API running at half speed.
      estimate = { expectedMs: 8_000, spreadMs: 800 };
      const done = clock >= finishesAt;
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
    // Until it is late by what it was submitted with, the task may still finish where it was
    // expected to: no gap there is longer than that estimate's own schedule asks for.
    const times = [0, ...pollsAt];
    for (let i = 0; i + 1 < times.length && times[i]! < lateAfter(atSubmit); i++) {
      expect(times[i + 1]! - times[i]!).toBeLessThanOrEqual(delayAt(atSubmit, times[i]!) + 1e-6);
    }
    expect(
      pollsAt.filter(
        (t) => t >= atSubmit.expectedMs - atSubmit.spreadMs && t <= atSubmit.expectedMs + atSubmit.spreadMs,
      ).length,
    ).toBeGreaterThanOrEqual(2);
    // The slowdown adds polls where the task now finishes: seen sooner than by the submitted
    // estimate's back-off alone, and within about the minimum spacing.
    let alone = 0;
    while (alone < finishesAt) alone += delayAt(atSubmit, alone);
    expect(pollsAt.at(-1)!).toBeLessThan(alone);
    expect(pollsAt.at(-1)! - finishesAt).toBeLessThanOrEqual(1.1 * settings.minIntervalMs);
  });
});

describe('the polls of a job in flight (inFlightPollDelay)', () => {
  const atSubmit: Estimate = { expectedMs: 10_000, spreadMs: 1_000 };
  const input = (sinceSubmitMs: number) => ({ ...settings, sinceSubmitMs });
  const later: Estimate = { expectedMs: 16_000, spreadMs: 1_600 };
  const earlier: Estimate = { expectedMs: 8_000, spreadMs: 800 };
  const hint: Estimate = { expectedMs: 20_000, spreadMs: 10_000, guess: true };
  const times = Array.from({ length: 121 }, (_, i) => i * 500);

  it('polls by the live estimate when the job recorded none (an older record), or the same one', () => {
    const live: Estimate = { expectedMs: 13_000, spreadMs: 1_300 };
    for (const t of [0, 9_000, 12_000, 30_000]) {
      expect(inFlightPollDelay(undefined, live, input(t))).toBe(nextPollDelay({ ...live, ...input(t) }));
      expect(inFlightPollDelay(live, live, input(t))).toBe(nextPollDelay({ ...live, ...input(t) }));
    }
  });

  it.each([
    ['a later live estimate', later],
    ['an earlier live estimate', earlier],
    ['a later hint from other sizes', hint],
  ] as [string, Estimate][])(
    'never waits longer than either schedule, nor less than the minimum spacing, given %s',
    (_, live) => {
      for (const t of times) {
        const delay = inFlightPollDelay(atSubmit, live, input(t));
        expect(delay).toBeGreaterThanOrEqual(settings.minIntervalMs);
        expect(delay).toBeLessThanOrEqual(
          Math.max(settings.minIntervalMs, nextPollDelay({ ...atSubmit, ...input(t) })),
        );
        expect(delay).toBeLessThanOrEqual(Math.max(settings.minIntervalMs, nextPollDelay({ ...live, ...input(t) })));
      }
    },
  );

  it('does not leap past the region it was submitted with when the live estimate moves later', () => {
    // By the live estimate alone, the polls around the submitted estimate's finish would be sparse.
    for (const t of [9_250, 10_000, 11_900]) {
      expect(nextPollDelay({ ...later, ...input(t) })).toBeGreaterThan(2 * settings.minIntervalMs);
      expect(inFlightPollDelay(atSubmit, later, input(t))).toBe(settings.minIntervalMs);
    }
  });

  it('does not back off while a later live estimate, even a guess, still sees the task in its region', () => {
    const t = (lateAfter(atSubmit) + lateAfter(hint)) / 2;
    expect(nextPollDelay({ ...atSubmit, ...input(t) })).toBeGreaterThan(3_000);
    expect(inFlightPollDelay(atSubmit, hint, input(t))).toBeLessThan(nextPollDelay({ ...atSubmit, ...input(t) }) / 2);
    // Late by both, it backs off.
    const late = [0, 10_000, 30_000].map((after) => inFlightPollDelay(atSubmit, hint, input(lateAfter(hint) + after)));
    expect(late[0]).toBeGreaterThanOrEqual(2 * settings.minIntervalMs);
    expect(late[1]).toBeGreaterThan(late[0]!);
    expect(late[2]).toBeGreaterThan(late[1]!);
  });

  it('adds polls earlier when the live estimate is earlier, and keeps those of what it was submitted with', () => {
    expect(inFlightPollDelay(atSubmit, earlier, input(0))).toBeLessThan(nextPollDelay({ ...atSubmit, ...input(0) }));
    // Where the submitted estimate still expects the task to finish, its dense polls remain.
    for (const t of [12_000, 12_500, 13_000]) {
      const submitted = nextPollDelay({ ...atSubmit, ...input(t) });
      expect(nextPollDelay({ ...earlier, ...input(t) })).toBeGreaterThan(submitted);
      expect(inFlightPollDelay(atSubmit, earlier, input(t))).toBe(submitted);
    }
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
