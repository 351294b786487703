/**
 * A task in flight is never left unpolled across the time it may finish. Whatever the live
 * estimate does while the task runs (the load learned from the first tasks of a burst moving
 * it later, a guess replaced by a measurement), until the task is late by the estimate it was
 * submitted with, no two polls are further apart than that estimate's own schedule asks for.
 *
 * Checked over seeded workloads (test/jobs/workloads.ts) run through the real estimator and
 * poller on a virtual clock: sizes 512²-1536² and one of 3-15 s, a warm-up of 0, 3 or 8 tasks
 * per size, then twenty members at once or one every ~2 s while the API runs 20 % faster, as
 * fast, 30 % or 60 % slower.
 */
import { describe, expect, it } from 'vitest';
import { figures, gapsOf, runWorkload, workloads, type Gap, type Polled } from './workloads.ts';

describe('the polls of a task in flight', () => {
  const cases = workloads([1, 2, 3]);

  it.each(cases)(
    'leave no gap in the submitted estimate’s region, nor a longer one than its back-off after it (seed $seed: warm-up $warmup, load shift $shift, $phase)',
    async (w) => {
      const tasks = await runWorkload(w);
      expect(tasks).toHaveLength(7 * w.warmup + 20);
      const rounded = (g: Gap) => ({
        ...g,
        from: Math.round(g.from),
        to: Math.round(g.to),
        allowed: Math.round(g.allowed),
        durationMs: Math.round(g.durationMs),
      });
      expect(tasks.flatMap((p) => gapsOf(p, 'region')).map(rounded)).toEqual([]);
      // Late by it, a later estimate may add polls, but the task waits no longer than its back-off.
      expect(tasks.flatMap((p) => gapsOf(p, 'life')).map(rounded)).toEqual([]);
    },
  );

  // The schedule spends about as many polls as fixed one-second polling, placed where tasks
  // finish, and buys a shorter wait with them: the median member sees the image well sooner,
  // and even the slowest twentieth waits no longer than with fixed polling.
  it('see images sooner after completion than fixed one-second polling, for about as many polls', async () => {
    const measured: Polled[] = [];
    for (const w of cases) measured.push(...(await runWorkload(w)).filter((p) => p.measured));
    const f = figures(measured);
    expect(f.lagP50VsFixed).toBeLessThan(0.8);
    expect(f.lagP95VsFixed).toBeLessThan(1);
    expect(f.pollsVsFixed).toBeLessThan(1.2);
  });

  // Five sizes, three tasks each to learn from, then twenty members at once with the API 30 %
  // slower: the burst's first tasks teach the estimator the load while the large ones run.
  it('see the tasks of a burst into a slower API as soon as fixed one-second polling would', async () => {
    const measured: Polled[] = [];
    for (const w of cases.filter((w) => w.warmup === 3 && w.shift === 0.3 && w.phase === 'burst'))
      measured.push(...(await runWorkload(w)).filter((p) => p.measured));
    const f = figures(measured);
    expect(f.lagP95VsFixed).toBeLessThan(1);
    expect(f.pollsVsFixed).toBeLessThan(1.3);
  });
});
