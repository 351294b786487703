/**
 * The duration estimator under the API's load: every size slower (or faster) at once. Durations
 * are injected, the clock is manual, and the store is the shared state over an in-memory map that
 * copies values the way a Keyv backend serialises them; a real Redis stands in for several
 * processes sharing one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDurationEstimator, type DurationEstimator } from '../../src/jobs/estimator.ts';
import { nextPollDelay, type Estimate } from '../../src/jobs/schedule.ts';
import { createMemoryKeyValue } from '../../src/storage/key-value.ts';
import { createLocalSharedState, createRedisSharedState, type SharedState } from '../../src/storage/shared-state.ts';
import { skipWithoutRedis, startRedis } from '../fakes/redis.ts';

const SMALL = '512*512';
const MEDIUM = '1024*1024';
const LARGE = '1536*1024';
const USUAL: Record<string, number> = { [SMALL]: 3_000, [MEDIUM]: 8_000, [LARGE]: 15_000 };
const MINUTE = 60_000;

/** A little noise (+-3 %), deterministic. */
const noise = (i: number) => 0.97 + (0.06 * (i % 5)) / 4;

function setup() {
  let clock = 0;
  /** What an older version of the bot stored, whole, in its `stats` namespace. */
  const legacy = new Map<string, unknown>();
  const store = createLocalSharedState(createMemoryKeyValue());
  const open = () =>
    createDurationEstimator({ store, legacy: { get: async (k) => structuredClone(legacy.get(k)) }, now: () => clock });
  return {
    legacy,
    open,
    est: open(),
    advance(ms: number) {
      clock += ms;
    },
    /** `tasks` completed tasks over the given sizes, taking `factor` times their usual duration, a minute apart. */
    async run(est: DurationEstimator, factor: number, sizes: string[], tasks: number) {
      for (let i = 0; i < tasks; i++) {
        const size = sizes[i % sizes.length]!;
        clock += MINUTE;
        await est.record(size, USUAL[size]! * factor * noise(i));
      }
    },
  };
}

/** Ten ordinary tasks of every size: what the bot knows before the hour under test. */
async function withHistory() {
  const s = setup();
  await s.run(s.est, 1, [SMALL, MEDIUM, LARGE], 30);
  return s;
}

/** The spacing the poller would use at `sinceSubmitMs` with this estimate and the default intervals. */
const spacingAt = (e: Estimate, sinceSubmitMs: number) =>
  nextPollDelay({ ...e, sinceSubmitMs, polls: 3, minIntervalMs: 500, maxIntervalMs: 5_000, random: () => 0.5 });

/** When the poller would first look at a task just submitted with this estimate. */
const firstPoll = (e: Estimate) =>
  nextPollDelay({ ...e, sinceSubmitMs: 0, polls: 0, minIntervalMs: 500, maxIntervalMs: 5_000, random: () => 0.5 });

describe('duration estimator under the API load', () => {
  it('expects a size seen only before a busy hour to run 30 % slower when every other size does', async () => {
    const s = await withHistory();
    const before = s.est.estimate(LARGE);
    expect(before.expectedMs).toBeCloseTo(15_000, -3);

    await s.run(s.est, 1.3, [SMALL, MEDIUM], 8);
    const after = s.est.estimate(LARGE);
    expect(after.expectedMs / before.expectedMs).toBeCloseTo(1.3, 1);
    expect(after.spreadMs / before.spreadMs).toBeCloseTo(1.3, 1);
    expect(s.est.estimate(MEDIUM).expectedMs).toBeCloseTo(8_000 * 1.3, -3);
    // Every duration it expects moves 30 % later, and its polls with them: the first comes later.
    expect(after.durations).toHaveLength(before.durations!.length);
    for (const [i, ms] of after.durations!.entries()) expect(ms / before.durations![i]!).toBeCloseTo(1.3, 1);
    expect(firstPoll(after)).toBeGreaterThan(1.15 * firstPoll(before));
    // What that changes for a 19.5 s task of the large size: with the old estimate it completes
    // past every duration seen, where polls thin out; now it is where they are densest.
    expect(19_500).toBeGreaterThan(Math.max(...before.durations!));
    expect(spacingAt(after, 19_500)).toBeLessThan(spacingAt(before, 19_500));
    expect(spacingAt(after, 19_500)).toBeLessThanOrEqual(
      Math.min(...[16_000, 18_000, 21_000, 23_000].map((t) => spacingAt(after, t))),
    );
  });

  it('expects a quicker task in a quiet hour, so the first poll comes earlier', async () => {
    const s = await withHistory();
    const before = s.est.estimate(LARGE);
    await s.run(s.est, 0.75, [SMALL, MEDIUM], 8);
    const after = s.est.estimate(LARGE);
    expect(after.expectedMs / before.expectedMs).toBeCloseTo(0.75, 1);
    expect(firstPoll(after)).toBeLessThan(0.8 * firstPoll(before));
  });

  it('compares a burst of one size with what was known when it started, not with its own shorter tasks', async () => {
    // The same history and the same burst (twenty at once, coming back shortest first), told
    // when the burst started, or not.
    const estimateAfterBurst = async (told: boolean) => {
      const t = setup();
      const spread = [4_000, 6_000, 8_000, 10_000, 12_000];
      for (const d of spread) {
        t.advance(MINUTE);
        await t.est.record(MEDIUM, d);
      }
      t.advance(MINUTE);
      const startedAt = 6 * MINUTE;
      const burst = Array.from({ length: 20 }, (_, i) => spread[i % 5]!).sort((a, b) => a - b);
      for (const d of burst) {
        t.advance(d / 20);
        await t.est.record(MEDIUM, d, told ? startedAt : undefined);
      }
      return t.est.estimate(MEDIUM).expectedMs;
    };
    const honest = await estimateAfterBurst(true);
    const fooled = await estimateAfterBurst(false);
    // The API ran as usual: the honest estimate stays nearer the typical 8 s.
    expect(honest).toBeLessThan(fooled);
    expect(Math.abs(honest - 8_000)).toBeLessThan(Math.abs(fooled - 8_000));
  });

  it('is not moved by one odd task', async () => {
    const s = await withHistory();
    const before = s.est.estimate(LARGE).expectedMs;
    s.advance(MINUTE);
    await s.est.record(MEDIUM, 3 * USUAL[MEDIUM]!);
    // The median moves by one rank of the ordinary noise (+-3 %); a mean of eight would move 25 %.
    expect(Math.abs(s.est.estimate(LARGE).expectedMs / before - 1)).toBeLessThan(0.02);
    expect(s.est.estimate(SMALL).expectedMs).toBeCloseTo(3_000, -2);
  });

  it('is not moved by fewer than three recent tasks', async () => {
    const s = setup();
    await s.run(s.est, 1, [SMALL, MEDIUM, LARGE], 9);
    const before = s.est.estimate(LARGE).expectedMs;
    await s.run(s.est, 1.5, [SMALL, MEDIUM], 2);
    expect(s.est.estimate(LARGE).expectedMs).toBe(before);
  });

  it('returns to the usual durations when the API does', async () => {
    const s = await withHistory();
    await s.run(s.est, 1.3, [SMALL, MEDIUM], 8);
    await s.run(s.est, 1, [SMALL, MEDIUM], 8);
    expect(s.est.estimate(LARGE).expectedMs / 15_000).toBeCloseTo(1, 1);
  });

  it('forgets a slowdown after an hour without tasks', async () => {
    const s = await withHistory();
    await s.run(s.est, 1.3, [SMALL, MEDIUM], 8);
    s.advance(2 * 60 * MINUTE);
    expect(s.est.estimate(LARGE).expectedMs / 15_000).toBeCloseTo(1, 1);
  });

  it('scales at most threefold, however slow the recent tasks', async () => {
    const s = await withHistory();
    await s.run(s.est, 10, [SMALL, MEDIUM], 8);
    expect(s.est.estimate(LARGE).expectedMs).toBeLessThanOrEqual(3 * 15_000 * 1.03);
  });

  it('keeps the slowdown across a restart', async () => {
    const s = await withHistory();
    await s.run(s.est, 1.3, [SMALL, MEDIUM], 8);
    const restarted = s.open();
    await restarted.load();
    expect(restarted.estimate(LARGE).expectedMs / 15_000).toBeCloseTo(1.3, 1);
  });

  it('keeps the durations an older version stored, once, however often the bot restarts', async () => {
    const s = setup();
    s.legacy.set('durations', { [MEDIUM]: [8_000, 8_200, 7_800], [SMALL]: [3_000, 3_100, 2_900] });
    await s.est.load();
    expect(s.est.estimate(MEDIUM)).toMatchObject({ expectedMs: 8_000, samples: 3 });
    expect(s.est.estimate(SMALL)).toMatchObject({ expectedMs: 3_000, samples: 3 });
    await s.est.record(MEDIUM, 8_100);
    // The older record is still there; it is not counted again.
    for (let restart = 0; restart < 2; restart++) {
      const restarted = s.open();
      await restarted.load();
      expect(restarted.estimate(MEDIUM)).toMatchObject({ expectedMs: 8_050, samples: 4 });
      expect(restarted.estimate(SMALL)).toMatchObject({ expectedMs: 3_000, samples: 3 });
    }
  });

  it('keeps the slowdown an older version stored', async () => {
    const s = setup();
    s.legacy.set('durations', { [LARGE]: [15_000, 15_000, 15_000] });
    s.legacy.set(
      'durations:load',
      Array.from({ length: 8 }, () => ({ at: 0, ratio: 1.3 })),
    );
    await s.est.load();
    expect(s.est.estimate(LARGE).expectedMs).toBeCloseTo(15_000 * 1.3, -2);
  });

  it('learns a task the store could not take, without failing it', async () => {
    const shared = createLocalSharedState(createMemoryKeyValue());
    const warnings: unknown[] = [];
    const est = createDurationEstimator({
      store: { ...shared, append: () => Promise.reject(new Error('the connection is lost')) },
      logger: { warn: (obj: unknown) => void warnings.push(obj) },
    });
    await est.record(MEDIUM, 8_000);
    expect(est.estimate(MEDIUM)).toMatchObject({ expectedMs: 8_000, samples: 1 });
    expect(warnings).toHaveLength(1);
  });

  it('ignores a malformed load record', async () => {
    const s = setup();
    s.legacy.set('durations', { [MEDIUM]: [8_000, 8_200, 7_800] });
    s.legacy.set('durations:load', [null, 'x', { at: 0 }, { at: 0, ratio: -1 }, 5]);
    await s.est.load();
    expect(s.est.estimate(MEDIUM).expectedMs).toBe(8_000);
  });
});

describe('duration estimator for a size it has not seen', () => {
  const pixels = (size: string) =>
    size
      .split('*')
      .map(Number)
      .reduce((a, b) => a * b, 1);
  /** Three tasks each of the small and the medium size, started together (no load to learn). */
  async function twoSizes() {
    const est = createDurationEstimator();
    for (let i = 0; i < 3; i++) for (const size of [SMALL, MEDIUM]) await est.record(size, USUAL[size]!, 0);
    return est;
  }
  /** The line through the small and the medium size's durations, by pixel count. */
  const line = (size: string) =>
    USUAL[SMALL]! +
    ((USUAL[MEDIUM]! - USUAL[SMALL]!) * (pixels(size) - pixels(SMALL))) / (pixels(MEDIUM) - pixels(SMALL));

  it('expects a size between two known ones to take time along their line by pixel count', async () => {
    const est = await twoSizes();
    const between = est.estimate('1024*768');
    expect(between.expectedMs).toBeGreaterThan(USUAL[SMALL]!);
    expect(between.expectedMs).toBeLessThan(USUAL[MEDIUM]!);
    expect(between.expectedMs).toBeCloseTo(line('1024*768'), -1);
    expect(between).toMatchObject({ guess: true, durations: [between.expectedMs], samples: 0 });
    // And beyond them, along the same line (a fixed part plus time per pixel, not proportional).
    expect(est.estimate(LARGE).expectedMs).toBeCloseTo(line(LARGE), -1);
  });

  it('polls such a size between the two known ones, and more loosely than either', async () => {
    const est = await twoSizes();
    const small = est.estimate(SMALL);
    const between = est.estimate('1024*768');
    const medium = est.estimate(MEDIUM);
    expect(between.logWidth).toBeGreaterThan(Math.max(small.logWidth!, medium.logWidth!));
    expect(firstPoll(between)).toBeGreaterThan(firstPoll(small));
    expect(firstPoll(between)).toBeLessThan(firstPoll(medium));
  });

  it('scales a single known size by the pixel count, and trusts that hint less than one from two sizes', async () => {
    const one = createDurationEstimator();
    await one.record(MEDIUM, USUAL[MEDIUM]!, 0);
    const small = one.estimate(SMALL);
    expect(small.expectedMs).toBeCloseTo((USUAL[MEDIUM]! * pixels(SMALL)) / pixels(MEDIUM), -1);
    expect(small.guess).toBe(true);
    const two = await twoSizes();
    expect(small.logWidth).toBeGreaterThan(two.estimate('1024*768').logWidth!);
  });
});

/**
 * Two bot processes sharing one store, and a third one starting later. `processes` gives each
 * test a store of its own, seen through three instances.
 */
function describeProcesses(name: string, processes: (test: string) => [SharedState, SharedState, SharedState]) {
  describe(`durations from several processes: ${name}`, () => {
    it('keeps what each process observed of one size, and a process starting later learns all of it', async () => {
      const states = processes('samples');
      const [one, two] = [createDurationEstimator({ store: states[0] }), createDurationEstimator({ store: states[1] })];
      await Promise.all([one.load(), two.load()]);
      await Promise.all([one.record(MEDIUM, 7_000), two.record(MEDIUM, 9_000)]);
      await one.record(MEDIUM, 8_000);
      // The first process learnt the second one's task when it recorded its own.
      expect(one.estimate(MEDIUM)).toMatchObject({ expectedMs: 8_000, samples: 3 });

      const later = createDurationEstimator({ store: states[2] });
      await later.load();
      expect(later.estimate(MEDIUM)).toMatchObject({ expectedMs: 8_000, samples: 3 });
    });

    it('scales its estimates by a slowdown the other process saw', async () => {
      const states = processes('load');
      const [one, two] = [createDurationEstimator({ store: states[0] }), createDurationEstimator({ store: states[1] })];
      for (const size of [MEDIUM, SMALL]) for (let i = 0; i < 3; i++) await one.record(size, USUAL[size]!);
      await two.load();
      // A busy hour: the second process sees three slow tasks, the first one only its next.
      for (let i = 0; i < 3; i++) await two.record(SMALL, USUAL[SMALL]! * 1.3);
      await one.record(SMALL, USUAL[SMALL]! * 1.3);
      expect(one.estimate(MEDIUM).expectedMs).toBeCloseTo(USUAL[MEDIUM]! * 1.3, -2);
    });
  });
}

describeProcesses('one process, two estimators', () => {
  const state = createLocalSharedState(createMemoryKeyValue());
  return [state, state, state];
});

describe.skipIf(skipWithoutRedis)('redis', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  const opened: SharedState[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(opened.map((state) => state.close()));
    await redis.stop();
  });
  describeProcesses('three processes on one Redis', (test) => {
    const open = () => createRedisSharedState(redis.url, `qi-${test}:`);
    const states: [SharedState, SharedState, SharedState] = [open(), open(), open()];
    opened.push(...states);
    return states;
  });
});
