// The end of a job as the finisher sees it: every image goes past moderation's verdict, with its
// bytes, before anything is published.
import { describe, expect, it } from 'vitest';
import { createDurationEstimator } from '../../src/jobs/estimator.ts';
import { createFinisher } from '../../src/jobs/finish.ts';
import { createJobStore, type JobStore } from '../../src/jobs/store.ts';
import { createLocalSharedState } from '../../src/storage/shared-state.ts';
import type { DeliveredImage, Delivery, Job, Moderation, Verdict } from '../../src/domain/job.ts';
import { silentLogger } from '../../src/logger.ts';
import { PORN_SCORES } from '../fakes/classifier.ts';
import { createMemoryKeyValue } from '../../src/storage/key-value.ts';
import type { PolledResult } from '../../src/jobs/observed.ts';

const BYTES = new Uint8Array([0xff, 0xd8, 0x01, 0x02, 0xff, 0xd9]);

const polling = (id: string): Job => ({
  id,
  prompt: 'a lighthouse',
  size: '1024*1024',
  userId: '1',
  userName: 'alice',
  guildId: '2',
  channelId: '3',
  channelNsfw: false,
  locale: 'en-US',
  state: 'polling',
  taskId: `task-${id}`,
  submittedAt: 1_000,
  reply: { applicationId: '4', token: 'tok', createdAt: 1 },
  createdAt: 1,
  polls: 0,
});

const result = (nsfw: boolean): PolledResult => ({
  taskId: 'task',
  status: 'succeed',
  rawStatus: 'TASK_STATUS_SUCCEED',
  reason: '',
  etaSeconds: 0,
  progressPercent: 100,
  polls: 2,
  images: [
    {
      url: 'https://cdn.example/a.jpeg',
      type: 'jpeg',
      ttlSeconds: null,
      nsfw,
      nsfwSignals: { hasNsfwContents: nsfw ? true : null, detectionResult: null },
    },
  ],
});

/** A finisher whose moderation answers `verdict`, adding scores as the review service does. */
async function setup(verdict: Verdict, options: { claims?: boolean; store?: (store: JobStore) => JobStore } = {}) {
  const base = createJobStore(createMemoryKeyValue());
  const store = options.store ? options.store(base) : base;
  const asked: { nsfw: Job['nsfw']; image: DeliveredImage }[] = [];
  const held: string[] = [];
  const published: { jobId: string; spoiler: boolean }[] = [];
  const moderation: Moderation = {
    async verdict(job, image) {
      asked.push({ nsfw: structuredClone(job.nsfw), image });
      job.nsfw = {
        ...job.nsfw!,
        classifier: 'ok',
        scores: PORN_SCORES,
        reasons: verdict === 'deliver' ? [] : ['classifier'],
      };
      return verdict;
    },
    async hold(job) {
      held.push(job.id);
      job.state = 'held';
      await store.save(job);
      return 'held';
    },
  };
  const delivery: Delivery = {
    progress: async () => undefined,
    async deliver(job, _image, options) {
      published.push({ jobId: job.id, spoiler: options?.spoiler ?? false });
      return 'delivered';
    },
    notice: async () => undefined,
    fail: async () => undefined,
  };
  const finisher = createFinisher({
    client: { download: async () => ({ bytes: BYTES, contentType: 'image/jpeg' }) },
    store,
    delivery,
    moderation,
    estimator: createDurationEstimator(),
    imageMaxBytes: 1_000_000,
    now: () => 5_000,
    ...(options.claims ? { claims: createLocalSharedState(createMemoryKeyValue()) } : {}),
  });
  const run = async (id: string, flagged: boolean) => {
    const job = polling(id);
    await store.save(job);
    await finisher.complete(job, result(flagged), silentLogger);
    return store.get(id);
  };
  return { run, asked, held, published, finisher, store: base };
}

describe('the finisher and moderation', () => {
  it('asks for a verdict on an image the provider did not flag, with its bytes and the provider’s signals', async () => {
    const { run, asked, published } = await setup('deliver');
    const saved = await run('clean', false);
    expect(asked).toEqual([
      {
        nsfw: { flagged: false, hasNsfwContents: null, detectionResult: null },
        image: { bytes: BYTES, contentType: 'image/jpeg', extension: 'jpeg' },
      },
    ]);
    expect(published).toEqual([{ jobId: 'clean', spoiler: false }]);
    // What the verdict added (the classifier's scores) is on the delivered record.
    expect(saved).toMatchObject({
      state: 'delivered',
      nsfw: { flagged: false, classifier: 'ok', scores: PORN_SCORES, reasons: [] },
    });
  });

  it('holds an image the verdict sends to review though the provider did not flag it, and publishes nothing', async () => {
    const { run, held, published } = await setup('review');
    const saved = await run('held', false);
    expect(held).toEqual(['held']);
    expect(published).toEqual([]);
    expect(saved).toMatchObject({
      state: 'held',
      nsfw: { flagged: false, scores: PORN_SCORES, reasons: ['classifier'] },
    });
  });

  it('publishes behind a spoiler when the verdict says so', async () => {
    const { run, published } = await setup('spoiler');
    await run('spoiler', true);
    expect(published).toEqual([{ jobId: 'spoiler', spoiler: true }]);
  });

  it('keeps the verdict on the record when a run again finds the image delivered and only finishes the bookkeeping', async () => {
    // The final save fails once, after Discord took the image: the step runs again.
    let failOnce = true;
    const { finisher, store, published, asked } = await setup('deliver', {
      claims: true,
      store: (base) => ({
        ...base,
        async save(job) {
          if (job.state === 'delivered' && failOnce) {
            failOnce = false;
            throw new Error('storage lost');
          }
          return base.save(job);
        },
      }),
    });
    const job = polling('rerun');
    await store.save(job);
    await expect(finisher.complete(job, result(false), silentLogger)).rejects.toThrow(
      'delivered but the job could not be recorded',
    );
    const again = (await store.get('rerun'))!;
    expect(again.state).toBe('delivering');
    await finisher.complete(again, result(false), silentLogger);
    expect(published).toHaveLength(1);
    expect(asked).toHaveLength(1);
    expect(await store.get('rerun')).toMatchObject({
      state: 'delivered',
      nsfw: { classifier: 'ok', scores: PORN_SCORES, reasons: [] },
    });
  });
});
