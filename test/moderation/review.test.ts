/**
 * The review service shared by several bot processes: each runs `resume()` when it starts, and
 * a held image must reach the review channel once. The desk and delivery are doubles that count
 * what they were asked to do; storage is the real one (memory for one process, a real Redis for
 * several).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRedisJobStore } from '../../src/jobs/redis-store.ts';
import { createJobStore, createMemoryKeyValue, HELD_TTL_MS, recordTtl, updateJob, type JobStore, type KeyValue } from '../../src/jobs/store.ts';
import type { DeliveredImage, Delivery, Job } from '../../src/jobs/types.ts';
import { silentLogger } from '../../src/logger.ts';
import { createImageStash, createReviewService, type ReviewDesk, type ReviewServiceDeps } from '../../src/moderation/review.ts';
import { createGuildSettingsStore } from '../../src/moderation/settings.ts';
import { createLocalSharedState, createRedisSharedState, type SharedState } from '../../src/shared-state.ts';
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
function botProcess(
  storage: { state: SharedState; kv: (ns: string) => KeyValue; store?: JobStore },
  channel: Channel,
  options: Partial<Pick<ReviewServiceDeps, 'channelAgeRestricted' | 'uploadLimit' | 'caps' | 'now'>> = {},
) {
  let posting: () => void = () => undefined;
  const self = {
    /** Resolves when this process asks the desk to post. */
    posting: new Promise<void>((resolve) => {
      posting = resolve;
    }),
    /** What a call to Discord (post, publish, retract) waits for before Discord answers it (nothing unless a test says). */
    answerAfter: (): Promise<unknown> => Promise.resolve(),
    /** Images published for their requester, and published images taken down, by job id. */
    delivered: [] as string[],
    retracted: [] as string[],
    /** What the requester was told of a failure, as `jobId:kind`. */
    failed: [] as string[],
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
    async retract(job) {
      await self.answerAfter();
      self.retracted.push(job.id);
    },
  };
  const delivery: Delivery = {
    progress: async () => undefined,
    // As the Discord delivery does, it records on the job what it published.
    async deliver(job, image, options) {
      await self.answerAfter();
      self.delivered.push(job.id);
      job.fileName = `${job.id}.${image.extension}`;
      job.published = { channelId: job.channelId, messageId: `published-${job.id}`, spoiler: options?.spoiler ?? false };
      return 'delivered';
    },
    notice: async () => undefined,
    fail: async (job, error) => void self.failed.push(`${job.id}:${error.kind}`),
  };
  const settings = createGuildSettingsStore(storage.kv('settings'), { reviewChannelId: undefined, userHourlyQuota: 20, guildDailyBudget: 200 });
  const review = createReviewService({
    store: storage.store ?? createJobStore(storage.kv('jobs')),
    state: storage.state,
    stash: createImageStash(storage.kv('images')),
    settings,
    desk,
    delivery,
    // The review message's attachment, as Discord serves it.
    fetchImage: async () => IMAGE,
    logger: silentLogger,
    channelAgeRestricted: async () => false,
    uploadLimit: () => 10 * 1024 * 1024,
    caps: { heldPerMember: 5, heldPerGuild: 50 },
    ...options,
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

const MOD = { id: '7', name: 'mod' };
const RITA = { id: '8', name: 'rita' };
const BOB = { id: '9', name: 'bob' };

type StaleStorage = (test: string) => { state: SharedState; kv: (ns: string) => KeyValue; store: () => JobStore };

/**
 * A decision or a report reads the job, acts on Discord, then saves what it did. Whoever saved the
 * job meanwhile (the job's own last save, another process) must not cost the record its decision,
 * nor the moderator a second effect.
 */
function describeStaleSaves(name: string, storageOf: StaleStorage) {
  describe(`decisions and reports on a record saved meanwhile: ${name}`, () => {
    async function setup(test: string) {
      const storage = storageOf(test);
      const channel: Channel = { posted: [], refusals: 0 };
      const bot = botProcess({ ...storage, store: storage.store() }, channel);
      await bot.settings.update(GUILD, { reviewChannelId: REVIEW_CHANNEL });
      const other = storage.store();
      const store = storage.store();
      /** Discord answers the bot's next call only once another writer has saved the job. */
      const savedMeanwhile = (jobId: string, change: (job: Job) => void) => {
        bot.answerAfter = async () => {
          bot.answerAfter = () => Promise.resolve();
          await updateJob(other, jobId, (job) => {
            change(job);
            return true;
          });
        };
      };
      return { bot, channel, store, savedMeanwhile };
    }

    it('records the review message of a held image whose record was saved while it was posted', async () => {
      const { bot, channel, store, savedMeanwhile } = await setup('route');
      savedMeanwhile('route-job', (job) => {
        job.finishedAt = 42;
      });
      await bot.review.hold(flagged('route-job'), IMAGE);
      expect(channel.posted).toEqual([{ channelId: REVIEW_CHANNEL, jobId: 'route-job' }]);
      expect(await store.get('route-job')).toMatchObject({ state: 'held', finishedAt: 42, review: { status: 'pending', messageId: 'message-route-job-1' } });
      // Recorded, so no later start posts it again.
      expect(await bot.review.resume()).toBe(0);
      expect(channel.posted).toHaveLength(1);
    });

    it('records an approval, published once, when the held record was saved between the read and the save', async () => {
      const { bot, channel, store, savedMeanwhile } = await setup('approve');
      await bot.review.hold(flagged('approve-job'), IMAGE);
      expect(channel.posted).toHaveLength(1);

      savedMeanwhile('approve-job', (job) => {
        job.finishedAt = 42;
      });
      const approve = { jobId: 'approve-job', kind: 'flag', decision: 'approve', moderator: MOD, imageUrl: 'https://cdn.example/review.jpeg' } as const;
      expect(await bot.review.decide(approve)).toMatchObject({ outcome: 'done', job: { state: 'delivered', finishedAt: 42 } });
      expect(bot.delivered).toEqual(['approve-job']);
      expect(await store.get('approve-job')).toMatchObject({
        state: 'delivered',
        finishedAt: 42,
        fileName: 'approve-job.jpeg',
        published: { messageId: 'published-approve-job' },
        review: { status: 'decided', messageId: 'message-approve-job-1', decision: { decision: 'approve', moderatorId: MOD.id } },
      });
      expect(await bot.review.decide({ ...approve, moderator: RITA })).toMatchObject({ outcome: 'already', record: { moderatorId: MOD.id } });
      expect(bot.delivered).toHaveLength(1);
      expect(await bot.review.pendingCount()).toBe(0);
    });

    it('records a report, and its removal, when the job was saved between the read and the save of each', async () => {
      const { bot, channel, store, savedMeanwhile } = await setup('report');
      // The image is out; the job's last save (delivered) has not landed yet.
      await store.save({ ...flagged('report-job'), nsfw: undefined, messageId: 'reply-1' });
      savedMeanwhile('report-job', (job) => {
        Object.assign(job, { state: 'delivered', finishedAt: 42, fileName: 'report-job.jpeg' });
      });
      const message = { channelId: '3', messageId: 'reply-1', imageUrl: 'https://cdn.example/report-job.jpeg', spoiler: false };
      expect(await bot.review.report({ jobId: 'report-job', reporter: BOB, message })).toEqual({ outcome: 'sent' });
      expect(channel.posted).toEqual([{ channelId: REVIEW_CHANNEL, jobId: 'report-job' }]);
      expect(await store.get('report-job')).toMatchObject({
        state: 'delivered',
        finishedAt: 42,
        published: { channelId: '3', messageId: 'reply-1' },
        report: { status: 'pending', channelId: REVIEW_CHANNEL, messageId: 'message-report-job-1' },
      });
      expect(await bot.review.report({ jobId: 'report-job', reporter: RITA, message })).toEqual({ outcome: 'added' });
      expect(channel.posted).toHaveLength(1);

      savedMeanwhile('report-job', (job) => {
        job.polls = 99;
      });
      const remove = { jobId: 'report-job', kind: 'report', decision: 'remove', moderator: MOD } as const;
      expect(await bot.review.decide(remove)).toMatchObject({ outcome: 'done' });
      expect(bot.retracted).toEqual(['report-job']);
      expect(await store.get('report-job')).toMatchObject({
        state: 'delivered',
        polls: 99,
        report: { status: 'decided', messageId: 'message-report-job-1', decision: { decision: 'remove', moderatorId: MOD.id } },
      });
      expect(await bot.review.decide({ ...remove, moderator: RITA })).toMatchObject({ outcome: 'already' });
      expect(bot.retracted).toHaveLength(1);
      expect(await bot.review.pendingCount()).toBe(0);
    });
  });
}

describeStaleSaves('local store', () => {
  const kvs = new Map<string, KeyValue>();
  const kv = (ns: string) => kvs.get(ns) ?? kvs.set(ns, createMemoryKeyValue()).get(ns)!;
  return { state: createLocalSharedState(createMemoryKeyValue()), kv, store: () => createJobStore(kv('jobs')) };
});

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
  it('counts held images across processes: what one holds, another refuses, until a moderator decides', async () => {
    const storage = () => {
      const state = createRedisSharedState(redis.url, 'caps:');
      const kv = (ns: string) => {
        const opened = openStorage(redis.url, `caps-${ns}`);
        closing.push(() => opened.disconnect());
        return opened;
      };
      closing.push(() => state.close());
      return { state, kv };
    };
    const channel: Channel = { posted: [], refusals: 0 };
    const caps = { heldPerMember: 2, heldPerGuild: 50 };
    const [one, two] = [botProcess(storage(), channel, { caps }), botProcess(storage(), channel, { caps })];
    await one.review.hold(heldBy('caps-1', '1'), IMAGE);
    expect(await two.review.heldRefusal('1', GUILD)).toBeNull();
    await two.review.hold(heldBy('caps-2', '1'), IMAGE);
    expect(await one.review.heldRefusal('1', GUILD)).toEqual({ kind: 'held_member', limit: 2, held: 2 });
    expect(await two.review.heldRefusal('1', GUILD)).toEqual({ kind: 'held_member', limit: 2, held: 2 });
    await two.review.decide({ jobId: 'caps-1', kind: 'flag', decision: 'reject', moderator: MOD });
    expect(await one.review.heldRefusal('1', GUILD)).toBeNull();
  });
  describeStaleSaves('Redis job store', (test) => {
    // Its own prefix, so what it counts as pending is this test's alone.
    const state = createRedisSharedState(redis.url, `${test}:`);
    const kv = (ns: string) => {
      const opened = openStorage(redis.url, `${test}-${ns}`);
      closing.push(() => opened.disconnect());
      return opened;
    };
    // Each writer its own connection, as each process has.
    const store = () => {
      const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
      closing.push(() => connection.quit());
      return createRedisJobStore(connection, { prefix: `${test}:` });
    };
    closing.push(() => state.close());
    return { state, kv, store };
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

/** One process on memory storage, its clock in the test's hands. */
function localBot(options: Parameters<typeof botProcess>[2] = {}) {
  const kvs = new Map<string, KeyValue>();
  const kv = (ns: string) => kvs.get(ns) ?? kvs.set(ns, createMemoryKeyValue()).get(ns)!;
  const state = createLocalSharedState(createMemoryKeyValue());
  const clock = { now: 1_000_000 };
  const bot = botProcess({ state, kv }, { posted: [], refusals: 0 }, { now: () => clock.now, ...options });
  return { bot, state, kv, clock, store: createJobStore(kv('jobs')) };
}
const heldBy = (id: string, userId: string): Job => ({ ...flagged(id), userId });

describe('caps on held images', () => {
  it('refuses a member with HELD_PER_MEMBER images waiting, and only that member, until a moderator decides', async () => {
    const { bot } = localBot({ caps: { heldPerMember: 2, heldPerGuild: 50 } });
    await bot.settings.update(GUILD, { reviewChannelId: REVIEW_CHANNEL });
    await bot.review.hold(heldBy('a1', '1'), IMAGE);
    expect(await bot.review.heldRefusal('1', GUILD)).toBeNull();
    await bot.review.hold(heldBy('a2', '1'), IMAGE);
    expect(await bot.review.heldRefusal('1', GUILD)).toEqual({ kind: 'held_member', limit: 2, held: 2 });
    // Another member, and the same member in another guild, are not held back by it.
    expect(await bot.review.heldRefusal('2', GUILD)).toBeNull();
    expect(await bot.review.heldRefusal('1', 'another-guild')).toBeNull();

    await bot.review.decide({ jobId: 'a1', kind: 'flag', decision: 'reject', moderator: MOD });
    expect(await bot.review.heldRefusal('1', GUILD)).toBeNull();
  });

  it('refuses everyone in a guild with HELD_PER_GUILD images waiting', async () => {
    const { bot } = localBot({ caps: { heldPerMember: 5, heldPerGuild: 3 } });
    for (const [i, user] of ['1', '2', '3'].entries()) await bot.review.hold(heldBy(`g${i}`, user), IMAGE);
    expect(await bot.review.heldRefusal('4', GUILD)).toEqual({ kind: 'held_guild', limit: 3, held: 3 });
    expect(await bot.review.heldRefusal('4', 'another-guild')).toBeNull();
  });

  it('stops counting a hold once it expires, and drops it from the pending lists and the metric', async () => {
    const { bot, state, clock } = localBot({ caps: { heldPerMember: 1, heldPerGuild: 50 } });
    await bot.review.hold(heldBy('old', '1'), IMAGE);
    expect(await bot.review.heldRefusal('1', GUILD)).toMatchObject({ kind: 'held_member' });
    clock.now += HELD_TTL_MS - 1;
    expect(await bot.review.heldRefusal('1', GUILD)).toMatchObject({ kind: 'held_member' });
    expect(await bot.review.pending(GUILD)).toHaveLength(1);

    clock.now += 1;
    expect(await bot.review.heldRefusal('1', GUILD)).toBeNull();
    expect(await bot.review.pending(GUILD)).toEqual([]);
    expect(await bot.review.pendingCount()).toBe(0);
    for (const set of [`held:member:${GUILD}:1`, `held:guild:${GUILD}`, `reviews:pending:${GUILD}`, 'reviews:pending:all', 'reviews:unrouted']) {
      expect({ set, members: await state.members(set) }).toEqual({ set, members: [] });
    }
  });

  it('does not count a hold whose record is gone (expired in the storage, never saved)', async () => {
    const { bot, state, kv } = localBot({ caps: { heldPerMember: 1, heldPerGuild: 50 } });
    await bot.review.hold(heldBy('gone', '1'), IMAGE);
    await state.add(`held:member:${GUILD}:1`, 'never-saved');
    await kv('jobs').delete('job:gone');
    expect(await bot.review.heldRefusal('1', GUILD)).toBeNull();
    expect(await state.members(`held:member:${GUILD}:1`)).toEqual([]);
    expect(await bot.review.sweep()).toBe(1);
    expect(await bot.review.pendingCount()).toBe(0);
    expect(await bot.review.pending(GUILD)).toEqual([]);
    expect(await state.members(`reviews:pending:${GUILD}`)).toEqual([]);
  });

  it('counts holds from before the caps once a start has swept them', async () => {
    const { bot, state } = localBot({ caps: { heldPerMember: 1, heldPerGuild: 50 } });
    await bot.review.hold(heldBy('legacy', '1'), IMAGE);
    await state.remove(`held:member:${GUILD}:1`, 'legacy');
    expect(await bot.review.heldRefusal('1', GUILD)).toBeNull();
    await bot.review.resume();
    expect(await bot.review.heldRefusal('1', GUILD)).toMatchObject({ kind: 'held_member', held: 1 });
  });

  it('gives a held record, its stashed image and its listing the same end, whenever the record was last saved', () => {
    const held = { ...flagged('ttl'), state: 'held', review: { status: 'pending', createdAt: 1_000 } } as const;
    expect(recordTtl({ ...held, updatedAt: 1_000 })).toBe(HELD_TTL_MS);
    expect(recordTtl({ ...held, updatedAt: 1_000 + 3600_000 })).toBe(HELD_TTL_MS - 3600_000);
    expect(recordTtl({ ...held, updatedAt: 1_000 + HELD_TTL_MS * 2 })).toBe(1);
    expect(recordTtl({ ...held, review: { ...held.review, status: 'decided' }, state: 'delivered', updatedAt: 5 })).toBe(7 * 24 * 3600_000);
  });
});

describe('an image over the upload limit', () => {
  it('is not held: nothing stored, nothing listed or counted, and the requester is told it is too large', async () => {
    const { bot, state, kv, store } = localBot({ uploadLimit: () => IMAGE.bytes.length - 1, caps: { heldPerMember: 1, heldPerGuild: 1 } });
    await bot.settings.update(GUILD, { reviewChannelId: REVIEW_CHANNEL });
    expect(await bot.review.hold(flagged('big'), IMAGE)).toBe('over_upload_limit');
    expect(await createImageStash(kv('images')).get('big')).toBeUndefined();
    expect(await store.get('big')).toBeUndefined();
    expect(await state.members('reviews:pending:all')).toEqual([]);
    expect(await bot.review.heldRefusal('1', GUILD)).toBeNull();
    expect(bot.failed).toEqual(['big:upload_limit']);
  });

  it('fits exactly at the limit', async () => {
    const { bot } = localBot({ uploadLimit: () => IMAGE.bytes.length });
    expect(await bot.review.hold(flagged('fits'), IMAGE)).toBe('held');
  });
});

describe('the channel’s age restriction, read when the image is published', () => {
  /** A channel whose age restriction a test changes, and the reads the service made of it. */
  function channelState(ageRestricted: boolean) {
    const channel = { ageRestricted, reads: [] as { channelId: string; fresh: boolean }[] };
    const check: ReviewServiceDeps['channelAgeRestricted'] = async (channelId, options) => {
      channel.reads.push({ channelId, fresh: options?.fresh ?? false });
      return channel.ageRestricted;
    };
    return { channel, check };
  }

  it.each([
    ['made age-restricted after the request', false, true, false],
    ['no longer age-restricted', true, false, true],
    ['unknown (read as not age-restricted)', true, false, true],
  ])('approves into a channel %s: spoiler %s -> %s', async (_name, before, after, spoiler) => {
    const { channel, check } = channelState(before);
    const { bot, store } = localBot({ channelAgeRestricted: check });
    await bot.settings.update(GUILD, { reviewChannelId: REVIEW_CHANNEL });
    await bot.review.hold({ ...flagged('approve'), channelNsfw: before }, IMAGE);
    channel.ageRestricted = after;
    await bot.review.decide({ jobId: 'approve', kind: 'flag', decision: 'approve', moderator: MOD, imageUrl: 'https://cdn.example/review.jpeg' });
    expect((await store.get('approve'))?.published?.spoiler).toBe(spoiler);
    // Read past any cache: the moderator may have changed the channel a moment ago.
    expect(channel.reads).toEqual([{ channelId: '3', fresh: true }]);
  });

  it.each([
    [false, true, 'spoiler'],
    [true, false, 'review'],
  ] as const)('decides a flagged image on the channel as it is now (at request: %s, now: %s -> %s)', async (atRequest, now, verdict) => {
    const { check } = channelState(now);
    const { bot } = localBot({ channelAgeRestricted: check });
    expect(await bot.review.verdict({ ...flagged('v'), channelNsfw: atRequest })).toBe(verdict);
  });

  it('does not look at the channel for a clean image', async () => {
    const { channel, check } = channelState(false);
    const { bot } = localBot({ channelAgeRestricted: check });
    expect(await bot.review.verdict({ ...flagged('clean'), nsfw: { flagged: false, hasNsfwContents: [], detectionResult: null } })).toBe('deliver');
    expect(channel.reads).toEqual([]);
  });
});
