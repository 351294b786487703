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
import { figures, gapsOf, runWorkload, workloads, type Polled } from './workloads.ts';

describe('the polls of a task in flight', () => {
  const cases = workloads([1, 2, 3]);

  it.each(cases)('leave no gap in the submitted estimate’s region (seed $seed: warm-up $warmup, load shift $shift, $phase)', async (w) => {
    const tasks = await runWorkload(w);
    expect(tasks).toHaveLength(7 * w.warmup + 20);
    const gaps = tasks.flatMap(gapsOf).map((g) => ({ ...g, from: Math.round(g.from), to: Math.round(g.to), allowed: Math.round(g.allowed), durationMs: Math.round(g.durationMs) }));
    expect(gaps).toEqual([]);
  });

  it('cost fewer polls than fixed one-second polling, and keep the wait after completion near it', async () => {
    const measured: Polled[] = [];
    for (const w of cases) measured.push(...(await runWorkload(w)).filter((p) => p.measured));
    const f = figures(measured);
    if (process.env.POLL_FIGURES) console.log(JSON.stringify(f));
    expect(f.pollsVsFixed).toBeLessThan(1);
    expect(f.lagP50VsFixed).toBeLessThan(1.5);
    expect(f.lagP95VsFixed).toBeLessThan(2);
  });
});
