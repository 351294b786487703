/**
 * The review service shared by several bot processes: each runs `resume()` when it starts, and
 * a held image must reach the review channel once. The desk and delivery are doubles that count
 * what they were asked to do; storage is the real one (memory for one process, a real Redis for
 * several).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobStore, createMemoryKeyValue, type KeyValue } from '../../src/jobs/store.ts';
import type { DeliveredImage, Delivery, Job } from '../../src/jobs/types.ts';
import { silentLogger } from '../../src/logger.ts';
import { createImageStash, createReviewService, type ReviewDesk } from '../../src/moderation/review.ts';
import { createGuildSettingsStore } from '../../src/moderation/settings.ts';
import { createLocalSharedState, type SharedState } from '../../src/shared-state.ts';
import { openSharedState, openStorage } from '../../src/storage.ts';
import { skipWithoutRedis, startRedis } from '../fakes/redis.ts';

const GUILD = '2';
const REVIEW_CHANNEL = '900';
const IMAGE: DeliveredImage = { bytes: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]), contentType: 'image/jpeg', extension: 'jpeg' };

const flagged = (id: string): Job => ({
  id,
  prompt: 'a lighthouse',
  size: '1024*1024',
  userId: '1',
  userName: 'alice',
  guildId: GUILD,
  channelId: '3',
  channelNsfw: false,
  locale: 'en-US',
  state: 'delivering',
  reply: { applicationId: '4', token: 'tok', createdAt: 1 },
  createdAt: 1,
  polls: 3,
  nsfw: { flagged: true, hasNsfwContents: true, detectionResult: null },
});

/** The review channel as Discord holds it: what it was asked to post, by either process. */
interface Channel {
  posted: { channelId: string; jobId: string }[];
  /** How many posts it refuses first (a permission missing, then granted). */
  refusals: number;
}

/** One bot process's review service over storage and a review channel it shares with the others. */
function botProcess(storage: { state: SharedState; kv: (ns: string) => KeyValue }, channel: Channel) {
  let posting: () => void = () => undefined;
  const self = {
    /** Resolves when this process asks the desk to post. */
    posting: new Promise<void>((resolve) => {
      posting = resolve;
    }),
    /** What a post waits for before Discord answers it (nothing unless a test says). */
    answerAfter: (): Promise<unknown> => Promise.resolve(),
  };
  const desk: ReviewDesk = {
    async post(channelId, job) {
      posting();
      await self.answerAfter();
      if (channel.refusals-- > 0) throw new Error('Missing Access');
      channel.posted.push({ channelId, jobId: job.id });
      return `message-${job.id}-${channel.posted.length}`;
    },
    showReporters: async () => undefined,
    retract: async () => undefined,
  };
  const delivery: Delivery = {
    progress: async () => undefined,
    deliver: async () => 'delivered',
    notice: async () => undefined,
    fail: async () => undefined,
  };
  const settings = createGuildSettingsStore(storage.kv('settings'), { reviewChannelId: undefined, userHourlyQuota: 20, guildDailyBudget: 200 });
  const review = createReviewService({
    store: createJobStore(storage.kv('jobs')),
    state: storage.state,
    stash: createImageStash(storage.kv('images')),
    settings,
    desk,
    delivery,
    fetchImage: () => Promise.reject(new Error('no attachment in these tests')),
    logger: silentLogger,
  });
  return Object.assign(self, { review, settings });
}
type BotProcess = ReturnType<typeof botProcess>;

/**
 * Both processes run `resume()` at once, as two shards starting together do, with the most
 * overlap there can be: a process asking for a post gets Discord's answer only once the other
 * process has asked for one too, or has finished resuming without asking.
 */
async function resumeTogether(one: BotProcess, two: BotProcess) {
  const resumed: Promise<number>[] = [];
  one.answerAfter = () => Promise.race([two.posting, resumed[1]]);
  two.answerAfter = () => Promise.race([one.posting, resumed[0]]);
  resumed.push(one.review.resume(), two.review.resume());
  try {
    return await Promise.all(resumed);
  } finally {
    one.answerAfter = two.answerAfter = () => Promise.resolve();
  }
}

type Storage = () => { state: SharedState; kv: (ns: string) => KeyValue };

function describeResume(name: string, storageOf: (test: string) => [Storage, Storage]) {
  describe(`review resume in two processes: ${name}`, () => {
    /** An image held while the guild had no review channel, and the channel chosen since. */
    async function heldWithoutChannel(test: string, refusals = 0) {
      const channel: Channel = { posted: [], refusals };
      const [one, two] = storageOf(test).map((storage) => botProcess(storage(), channel)) as [BotProcess, BotProcess];
      await one.review.hold(flagged(`${test}-job`), IMAGE);
      expect(channel.posted).toEqual([]);
      await one.settings.update(GUILD, { reviewChannelId: REVIEW_CHANNEL });
      return { one, two, channel };
    }

    it('posts a held image to the review channel once when both processes start together', async () => {
      const { one, two, channel } = await heldWithoutChannel('together');
      const routed = await resumeTogether(one, two);
      expect(channel.posted).toEqual([{ channelId: REVIEW_CHANNEL, jobId: 'together-job' }]);
      expect(routed.sort((a, b) => a - b)).toEqual([0, 1]);
      // Started again later, neither posts it a second time.
      expect(await resumeTogether(one, two)).toEqual([0, 0]);
      expect(channel.posted).toHaveLength(1);
      const [pending] = await two.review.pending(GUILD);
      expect(pending).toMatchObject({ channelId: REVIEW_CHANNEL, messageId: 'message-together-job-1' });
    });

    it('leaves an image the review channel refused for the next attempt, by either process', async () => {
      const { one, two, channel } = await heldWithoutChannel('refused', 1);
      expect(await resumeTogether(one, two)).toEqual([0, 0]);
      expect(channel.posted).toEqual([]);
      expect(await two.review.resume()).toBe(1);
      expect(channel.posted).toEqual([{ channelId: REVIEW_CHANNEL, jobId: 'refused-job' }]);
    });
  });
}

describeResume('one process, two services', () => {
  const kvs = new Map<string, KeyValue>();
  const kv = (ns: string) => kvs.get(ns) ?? kvs.set(ns, createMemoryKeyValue()).get(ns)!;
  const state = createLocalSharedState(createMemoryKeyValue());
  const storage = () => ({ state, kv });
  return [storage, storage];
});

describe.skipIf(skipWithoutRedis)('redis', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  const closing: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(closing.map((close) => close()));
    await redis.stop();
  });
  describeResume('two processes on one Redis', (test) => {
    // Each test its own keys, each process its own connections.
    const storage = () => {
      const state = openSharedState(redis.url);
      closing.push(() => state.close());
      const kv = (ns: string) => {
        const opened = openStorage(redis.url, `${test}-${ns}`);
        closing.push(() => opened.disconnect());
        return opened;
      };
      return { state, kv };
    };
    return [storage, storage];
  });
});

describe('a hold cut short', () => {
  it('leaves a held image that resume() routes, when listing it as pending fails after the held record is saved', async () => {
    const kvs = new Map<string, KeyValue>();
    const kv = (ns: string) => kvs.get(ns) ?? kvs.set(ns, createMemoryKeyValue()).get(ns)!;
    const shared = createLocalSharedState(createMemoryKeyValue());
    // The shared state refuses one write (a dropped Redis connection) just after the held record is saved.
    let refuse = true;
    const state: SharedState = {
      ...shared,
      async add(set, member) {
        if (refuse && set.startsWith('reviews:pending:')) {
          refuse = false;
          throw new Error('connection lost');
        }
        return shared.add(set, member);
      },
    };
    const channel: Channel = { posted: [], refusals: 0 };
    const bot = botProcess({ state, kv }, channel);
    await bot.settings.update(GUILD, { reviewChannelId: REVIEW_CHANNEL });
    await expect(bot.review.hold(flagged('cut-job'), IMAGE)).rejects.toThrow('connection lost');
    expect(await createJobStore(kv('jobs')).get('cut-job')).toMatchObject({ state: 'held', review: { status: 'pending' } });
    expect(channel.posted).toEqual([]);

    expect(await bot.review.resume()).toBe(1);
    expect(channel.posted).toEqual([{ channelId: REVIEW_CHANNEL, jobId: 'cut-job' }]);
    const [pending] = await bot.review.pending(GUILD);
    expect(pending).toMatchObject({ job: { id: 'cut-job' }, channelId: REVIEW_CHANNEL, messageId: 'message-cut-job-1' });
    expect(await bot.review.pendingCount()).toBe(1);
  });
});
