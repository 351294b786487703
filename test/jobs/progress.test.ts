// The throttled progress edits of the in-process engine, and the one notice before the
// interaction token expires where only the token answers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Delivery, Job, ProgressView } from '../../src/domain/job.ts';
import type { Logger } from '../../src/logger.ts';
import { createProgressReporter } from '../../src/jobs/progress.ts';

const logger = { warn: () => undefined } as unknown as Logger;

function reporter(noticeAt?: number) {
  const shown: ProgressView[] = [];
  const delivery = {
    progress: async (_job: Job, view: ProgressView) => {
      shown.push(view);
      return undefined;
    },
  } as unknown as Delivery;
  const progress = createProgressReporter({
    job: {} as Job,
    delivery,
    intervalMs: 1_000,
    logger,
    ...(noticeAt === undefined ? {} : { noticeAt }),
  });
  return { progress, shown };
}

describe('progress reporter', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it('says once, at its time, that the image will come by DM, and shows nothing after it', async () => {
    const { progress, shown } = reporter(10_000);
    progress.show({ phase: 'generating', expectedAt: 5_000 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(shown).toEqual([{ phase: 'generating', expectedAt: 5_000 }, { phase: 'expiring' }]);
    progress.show({ phase: 'late' });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(shown.at(-1)).toEqual({ phase: 'expiring' });
    await progress.stop();
  });

  it('keeps the edit interval: a notice due right after an edit waits for it', async () => {
    const { progress, shown } = reporter(10_000);
    await vi.advanceTimersByTimeAsync(9_800);
    progress.show({ phase: 'late' });
    await vi.advanceTimersByTimeAsync(200);
    expect(shown).toEqual([{ phase: 'late' }]);
    await vi.advanceTimersByTimeAsync(800);
    expect(shown).toEqual([{ phase: 'late' }, { phase: 'expiring' }]);
    await progress.stop();
  });

  it('says nothing for a job that ended first, or without a notice time', async () => {
    const ended = reporter(10_000);
    await ended.progress.stop();
    const none = reporter();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(ended.shown).toEqual([]);
    expect(none.shown).toEqual([]);
  });
});
