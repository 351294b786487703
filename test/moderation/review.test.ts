/**
 * The review service shared by several bot processes: each runs `resume()` when it starts, and
 * a held image must reach the review channel once. The desk and delivery are doubles that count
 * what they were asked to do; storage is the real one (memory for one process, a real Redis for
 * several).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRedisJobStore } from '../../src/jobs/bullmq/store.ts';
import { createJobStore, HELD_TTL_MS, recordTtl, updateJob, type JobStore } from '../../src/jobs/store.ts';
import type { DeliveredImage, Delivery, Job, NsfwScores } from '../../src/domain/job.ts';
import { silentLogger } from '../../src/logger.ts';
import { createReportLimit } from '../../src/moderation/report-limit.ts';
import { createLogger, type Logger } from '../../src/logger.ts';
import { classifierOff } from '../../src/moderation/classifier.ts';
import { createReviewService } from '../../src/moderation/review.ts';
import type { HoldReason, Verdict } from '../../src/domain/job.ts';
import { Writable } from 'node:stream';
import { CLEAN_SCORES, fakeClassifier, PORN_SCORES, type FakeClassifier } from '../fakes/classifier.ts';
import { createGuildSettingsStore } from '../../src/moderation/settings.ts';
import { createLocalSharedState, createRedisSharedState, type SharedState } from '../../src/storage/shared-state.ts';
import { openSharedState, openStorage } from '../../src/storage/open.ts';
import { skipWithoutRedis, startRedis } from '../fakes/redis.ts';
import { createMemoryKeyValue, type KeyValue } from '../../src/storage/key-value.ts';
import { createImageStash } from '../../src/moderation/image-stash.ts';
import type { ReviewDesk, ReviewServiceDeps } from '../../src/moderation/review-types.ts';

const GUILD = '2';
const REVIEW_CHANNEL = '900';
const IMAGE: DeliveredImage = {
  bytes: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]),
  contentType: 'image/jpeg',
  extension: 'jpeg',
};

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
  options: Partial<ReviewServiceDeps> = {},
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
      job.published = {
        channelId: job.channelId,
        messageId: `published-${job.id}`,
        spoiler: options?.spoiler ?? false,
      };
      return 'delivered';
    },
    notice: async () => undefined,
    fail: async (job, error) => void self.failed.push(`${job.id}:${error.kind}`),
  };
  const settings = createGuildSettingsStore(storage.kv('settings'), {
    reviewChannelId: undefined,
    userHourlyQuota: 20,
    guildDailyBudget: 200,
  });
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
      expect(await store.get('route-job')).toMatchObject({
        state: 'held',
        finishedAt: 42,
        review: { status: 'pending', messageId: 'message-route-job-1' },
      });
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
      const approve = {
        jobId: 'approve-job',
        kind: 'flag',
        decision: 'approve',
        moderator: MOD,
        imageUrl: 'https://cdn.example/review.jpeg',
      } as const;
      expect(await bot.review.decide(approve)).toMatchObject({
        outcome: 'done',
        job: { state: 'delivered', finishedAt: 42 },
      });
      expect(bot.delivered).toEqual(['approve-job']);
      expect(await store.get('approve-job')).toMatchObject({
        state: 'delivered',
        finishedAt: 42,
        fileName: 'approve-job.jpeg',
        published: { messageId: 'published-approve-job' },
        review: {
          status: 'decided',
          messageId: 'message-approve-job-1',
          decision: { decision: 'approve', moderatorId: MOD.id },
        },
      });
      expect(await bot.review.decide({ ...approve, moderator: RITA })).toMatchObject({
        outcome: 'already',
        record: { moderatorId: MOD.id },
      });
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
      const image = {
        attachmentId: 'att-1',
        fileName: 'qwen-image-a-lighthouse-report-job.jpeg',
        url: 'https://cdn.example/report-job.jpeg',
        spoiler: false,
      };
      const message = { channelId: '3', messageId: 'reply-1', images: [image] };
      expect(await bot.review.report({ jobId: 'report-job', reporter: BOB, message })).toEqual({
        outcome: 'sent',
        images: 1,
      });
      expect(channel.posted).toEqual([{ channelId: REVIEW_CHANNEL, jobId: 'report-job' }]);
      expect(await store.get('report-job')).toMatchObject({
        state: 'delivered',
        finishedAt: 42,
        published: { channelId: '3', messageId: 'reply-1' },
        report: { status: 'pending', channelId: REVIEW_CHANNEL, messageId: 'message-report-job-1' },
      });
      expect(await bot.review.report({ jobId: 'report-job', reporter: RITA, message })).toEqual({
        outcome: 'added',
        images: 1,
      });
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
        report: {
          status: 'decided',
          messageId: 'message-report-job-1',
          decision: { decision: 'remove', moderatorId: MOD.id },
        },
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
    expect(await createJobStore(kv('jobs')).get('cut-job')).toMatchObject({
      state: 'held',
      review: { status: 'pending' },
    });
    expect(channel.posted).toEqual([]);

    expect(await bot.review.resume()).toBe(1);
    expect(channel.posted).toEqual([{ channelId: REVIEW_CHANNEL, jobId: 'cut-job' }]);
    const [pending] = await bot.review.pending(GUILD);
    expect(pending).toMatchObject({
      job: { id: 'cut-job' },
      channelId: REVIEW_CHANNEL,
      messageId: 'message-cut-job-1',
    });
    expect(await bot.review.pendingCount()).toBe(1);
  });
});

describe('the verdict on a finished image', () => {
  /** One process on memory storage, with the classifier, log lines and metrics a test can read. */
  async function setup(classifier: FakeClassifier | typeof classifierOff, extra: Partial<ReviewServiceDeps> = {}) {
    const kvs = new Map<string, KeyValue>();
    const kv = (ns: string) => kvs.get(ns) ?? kvs.set(ns, createMemoryKeyValue()).get(ns)!;
    const lines: Record<string, unknown>[] = [];
    const logger: Logger = createLogger({
      level: 'debug',
      format: 'json',
      secrets: [],
      destination: new Writable({
        write(chunk, _enc, done) {
          lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
          done();
        },
      }),
    });
    const held: HoldReason[] = [];
    const spoilered: number[] = [];
    const metrics = {
      flaggedResult: (action: string) => action === 'spoiler' && spoilered.push(1),
      imageHeld: (reason: HoldReason) => held.push(reason),
      moderationDecision: () => undefined,
    };
    const channel: Channel = { posted: [], refusals: 0 };
    const bot = botProcess({ state: createLocalSharedState(createMemoryKeyValue()), kv }, channel, {
      classifier,
      logger,
      metrics,
      ...extra,
    });
    await bot.settings.update(GUILD, { reviewChannelId: REVIEW_CHANNEL });
    /** A finished image as the finisher hands it over: the provider's flag already on the job. */
    const finished = (id: string, over: Partial<Job> = {}): Job => ({
      ...flagged(id),
      nsfw: { flagged: false, hasNsfwContents: null, detectionResult: null },
      ...over,
    });
    /** What the finisher does with the verdict: hold the image, or not. */
    const finish = async (job: Job): Promise<Verdict> => {
      const verdict = await bot.review.verdict(job, IMAGE);
      if (verdict === 'review') await bot.review.hold(job, IMAGE);
      return verdict;
    };
    return { bot, channel, lines, held, spoilered, finished, finish, store: createJobStore(kv('jobs')) };
  }

  it('holds an image the provider did not flag when the classifier scores it explicit, with both signals on the record', async () => {
    const classifier = fakeClassifier(PORN_SCORES);
    const { finish, finished, channel, held, store } = await setup(classifier);
    expect(await finish(finished('porn'))).toBe('review');
    expect(classifier.seen).toEqual([IMAGE.bytes]);
    expect(channel.posted).toEqual([{ channelId: REVIEW_CHANNEL, jobId: 'porn' }]);
    expect((await store.get('porn'))?.nsfw).toEqual({
      flagged: false,
      hasNsfwContents: null,
      detectionResult: null,
      classifier: 'ok',
      scores: PORN_SCORES,
      reasons: ['classifier'],
    });
    expect(held).toEqual(['classifier']);
  });

  it('shows a clean image, and keeps the scores it was shown with', async () => {
    const { bot, finished, channel, held } = await setup(fakeClassifier(CLEAN_SCORES));
    const job = finished('clean');
    expect(await bot.review.verdict(job, IMAGE)).toBe('deliver');
    expect(job.nsfw).toEqual({
      flagged: false,
      hasNsfwContents: null,
      detectionResult: null,
      classifier: 'ok',
      scores: CLEAN_SCORES,
      reasons: [],
    });
    expect(channel.posted).toEqual([]);
    expect(held).toEqual([]);
  });

  it.each([
    ['rejects', new Error('the worker exited')],
    ['never answers', 'hang' as const],
  ])(
    'fails closed when the classifier %s: the image is held unchecked, with a warning for the operator',
    async (_name, answer) => {
      const { finish, finished, channel, lines, held, store } = await setup(fakeClassifier(answer), {
        classifyTimeoutMs: 50,
      });
      expect(await finish(finished('broken'))).toBe('review');
      expect(channel.posted).toEqual([{ channelId: REVIEW_CHANNEL, jobId: 'broken' }]);
      expect((await store.get('broken'))?.nsfw).toMatchObject({ classifier: 'failed', reasons: ['classifier_failed'] });
      expect((await store.get('broken'))?.nsfw?.scores).toBeUndefined();
      const warning = lines.find((l) => String(l.msg).startsWith('the NSFW classifier could not check an image'));
      expect(warning).toMatchObject({ level: 40, jobId: 'broken' });
      expect(held).toEqual(['classifier_failed']);
    },
  );

  it.each([
    ['all zero (classes it did not recognise)', { drawing: 0, hentai: 0, neutral: 0, porn: 0, sexy: 0 }],
    ['NaN', { ...PORN_SCORES, porn: Number.NaN }],
    ['missing a class', { drawing: 0.5, neutral: 0.5 }],
    ['out of range', { ...CLEAN_SCORES, neutral: 1.5, porn: -0.5 }],
  ])(
    'fails closed when the classifier answers scores that are not probabilities (%s): held unchecked, never shown',
    async (_name, scores) => {
      const { finish, finished, held, lines, store } = await setup(fakeClassifier(scores as NsfwScores));
      expect(await finish(finished('garbage'))).toBe('review');
      expect((await store.get('garbage'))?.nsfw).toMatchObject({
        classifier: 'failed',
        reasons: ['classifier_failed'],
      });
      expect(held).toEqual(['classifier_failed']);
      expect(lines.find((l) => String(l.msg).startsWith('the NSFW classifier could not check an image'))).toMatchObject(
        { level: 40, jobId: 'garbage' },
      );
    },
  );

  it('holds even in an age-restricted channel whose guild chose spoilers when the classifier failed', async () => {
    const { bot, finished } = await setup(fakeClassifier(new Error('no model')), {
      channelAgeRestricted: async () => true,
    });
    expect(await bot.review.verdict(finished('nsfw-channel', { channelNsfw: true }), IMAGE)).toBe('review');
  });

  it('counts only the provider’s flag when the operator turned the classifier off, and never asks it', async () => {
    const off = { ...classifierOff, classify: () => Promise.reject(new Error('asked while off')) };
    const { bot, finished, lines } = await setup(off);
    const clean = finished('off-clean');
    expect(await bot.review.verdict(clean, IMAGE)).toBe('deliver');
    expect(clean.nsfw).toMatchObject({ classifier: 'off', reasons: [] });
    expect(
      await bot.review.verdict(
        finished('off-flagged', { nsfw: { flagged: true, hasNsfwContents: true, detectionResult: null } }),
        IMAGE,
      ),
    ).toBe('review');
    expect(lines.filter((l) => l.level === 40)).toEqual([]);
  });

  it('holds a clean image when the guild reviews every image, and publishes it approved without a spoiler', async () => {
    const { bot, finish, finished, held, channel, store } = await setup(fakeClassifier(CLEAN_SCORES));
    await bot.settings.update(GUILD, { reviewAll: true });
    expect(await finish(finished('all'))).toBe('review');
    expect(held).toEqual(['review_all']);
    expect(channel.posted).toHaveLength(1);
    await bot.review.decide({
      jobId: 'all',
      kind: 'flag',
      decision: 'approve',
      moderator: MOD,
      imageUrl: 'https://cdn.discordapp.com/attachments/1/2/SPOILER_all.jpeg',
    });
    expect(bot.delivered).toEqual(['all']);
    expect((await store.get('all'))?.published).toMatchObject({ spoiler: false });
  });

  it('reads the guild’s sensitivity: a borderline image is held on a strict server, shown on a relaxed one', async () => {
    const borderline = { ...CLEAN_SCORES, neutral: 0.45, porn: 0.5 };
    const { bot, finished } = await setup(fakeClassifier(borderline));
    await bot.settings.update(GUILD, { sensitivity: 'strict' });
    expect(await bot.review.verdict(finished('strict'), IMAGE)).toBe('review');
    await bot.settings.update(GUILD, { sensitivity: 'relaxed' });
    expect(await bot.review.verdict(finished('relaxed'), IMAGE)).toBe('deliver');
  });

  it('spoilers an image the classifier flags in an age-restricted channel whose guild chose spoilers', async () => {
    const { bot, finished, spoilered } = await setup(fakeClassifier(PORN_SCORES), {
      channelAgeRestricted: async () => true,
    });
    expect(await bot.review.verdict(finished('spoiler', { channelNsfw: true }), IMAGE)).toBe('spoiler');
    expect(spoilered).toHaveLength(1);
  });

  it('uses the operator’s thresholds', async () => {
    const { bot, finished } = await setup(fakeClassifier(PORN_SCORES), { thresholds: { porn: 0.95, sexy: 0.99 } });
    expect(await bot.review.verdict(finished('lenient-operator'), IMAGE)).toBe('deliver');
  });
});

/** One process on memory storage, its clock in the test's hands. */
function localBot(options: Parameters<typeof botProcess>[2] = {}) {
  const kvs = new Map<string, KeyValue>();
  const kv = (ns: string) => kvs.get(ns) ?? kvs.set(ns, createMemoryKeyValue()).get(ns)!;
  const state = createLocalSharedState(createMemoryKeyValue());
  const clock = { now: 1_000_000 };
  // The store on the test's clock too: a held record's TTL runs from its save time, and one
  // stamped by the real clock, millions of seconds after its hold on the test's, got a TTL of
  // 1 ms, so whether it was still there for the next read depended on the machine's speed.
  const store = createJobStore(kv('jobs'), { now: () => clock.now });
  const bot = botProcess({ state, kv, store }, { posted: [], refusals: 0 }, { now: () => clock.now, ...options });
  return { bot, state, kv, clock, store };
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

  it('keeps a held record, in the storage, for as long as the hold lasts', async () => {
    const { bot, kv } = localBot();
    await bot.review.hold(heldBy('kept', '1'), IMAGE);
    // What the storage was told: the record's lifetime from its save, not a millisecond.
    const saved = (await kv('jobs').get('job:kept')) as Job;
    expect(recordTtl(saved)).toBe(HELD_TTL_MS);
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
    for (const set of [
      `held:member:${GUILD}:1`,
      `held:guild:${GUILD}`,
      `reviews:pending:${GUILD}`,
      'reviews:pending:all',
      'reviews:unrouted',
    ]) {
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
    expect(
      recordTtl({ ...held, review: { ...held.review, status: 'decided' }, state: 'delivered', updatedAt: 5 }),
    ).toBe(7 * 24 * 3600_000);
  });
});

describe('an image over the upload limit', () => {
  it('is not held: nothing stored, nothing listed or counted, and the requester is told it is too large', async () => {
    const { bot, state, kv, store } = localBot({
      uploadLimit: () => IMAGE.bytes.length - 1,
      caps: { heldPerMember: 1, heldPerGuild: 1 },
    });
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
    await bot.review.decide({
      jobId: 'approve',
      kind: 'flag',
      decision: 'approve',
      moderator: MOD,
      imageUrl: 'https://cdn.example/review.jpeg',
    });
    expect((await store.get('approve'))?.published?.spoiler).toBe(spoiler);
    // Read past any cache: the moderator may have changed the channel a moment ago.
    expect(channel.reads).toEqual([{ channelId: '3', fresh: true }]);
  });

  it.each([
    [false, true, 'spoiler'],
    [true, false, 'review'],
  ] as const)(
    'decides a flagged image on the channel as it is now (at request: %s, now: %s -> %s)',
    async (atRequest, now, verdict) => {
      const { check } = channelState(now);
      const { bot } = localBot({ channelAgeRestricted: check });
      expect(await bot.review.verdict({ ...flagged('v'), channelNsfw: atRequest }, IMAGE)).toBe(verdict);
    },
  );

  it('does not look at the channel for a clean image', async () => {
    const { channel, check } = channelState(false);
    const { bot } = localBot({ channelAgeRestricted: check });
    expect(
      await bot.review.verdict(
        { ...flagged('clean'), nsfw: { flagged: false, hasNsfwContents: [], detectionResult: null } },
        IMAGE,
      ),
    ).toBe('deliver');
    expect(channel.reads).toEqual([]);
  });
});

const HOUR_MS = 3600_000;

/** One bot process's review service on memory storage, with the review desk a double and the clock in the test's hands. */
function reportDesk(options: { reportsPerHour?: number; state?: SharedState } = {}) {
  const kvs = new Map<string, KeyValue>();
  const kv = (ns: string) => kvs.get(ns) ?? kvs.set(ns, createMemoryKeyValue()).get(ns)!;
  const state = options.state ?? createLocalSharedState(createMemoryKeyValue());
  const clock = { now: 1_700_000_000_000 };
  const now = () => clock.now;
  const store = createJobStore(kv('jobs'), { now });
  const posted: { jobId: string; reporters: string[]; spoiler: boolean }[] = [];
  const shown: { jobId: string; reporters: string[] }[] = [];
  const retracted: { jobId: string; attachmentId?: string }[] = [];
  const desk: ReviewDesk = {
    async post(_channelId, job, _image, _kind, reporters) {
      posted.push({ jobId: job.id, reporters, spoiler: job.published?.spoiler ?? false });
      return `review-${job.id}`;
    },
    async showReporters(job, reporters) {
      shown.push({ jobId: job.id, reporters });
    },
    async retract(job) {
      retracted.push({ jobId: job.id, attachmentId: job.published?.attachmentId });
    },
  };
  const settings = createGuildSettingsStore(kv('settings'), {
    reviewChannelId: REVIEW_CHANNEL,
    userHourlyQuota: 20,
    guildDailyBudget: 200,
  });
  const review = createReviewService({
    store,
    state,
    stash: createImageStash(kv('images')),
    settings,
    desk,
    delivery: {
      progress: async () => undefined,
      deliver: async () => 'delivered',
      notice: async () => undefined,
      fail: async () => undefined,
    },
    fetchImage: async () => IMAGE,
    logger: silentLogger,
    channelAgeRestricted: async () => false,
    uploadLimit: () => 10 * 1024 * 1024,
    caps: { heldPerMember: 5, heldPerGuild: 50 },
    now,
    ...(options.reportsPerHour
      ? { reportLimit: createReportLimit({ state, perHour: options.reportsPerHour, now }) }
      : {}),
  });
  return { review, store, state, clock, posted, shown, retracted };
}

/** A delivered image, alone in its message. */
const delivered = (id: string): Job => ({
  ...flagged(id),
  nsfw: undefined,
  state: 'delivered',
  fileName: `qwen-image-a-lighthouse-${id}.jpeg`,
  published: { channelId: '3', messageId: `message-${id}`, spoiler: false },
});
const alone = (id: string) => ({
  channelId: '3',
  messageId: `message-${id}`,
  images: [
    {
      attachmentId: `att-${id}`,
      fileName: `qwen-image-a-lighthouse-${id}.jpeg`,
      url: `https://cdn.example/${id}.jpeg`,
      spoiler: false,
    },
  ],
});

describe('a report on a batch message', () => {
  const IDS = ['batch0', 'batch1', 'batch2', 'batch3'];
  const file = (id: string) => `qwen-image-a-lighthouse-${id}.jpeg`;
  /** `/imagine count:4`, all four shown in one message; the last image's record not saved since (a report that comes at once). */
  async function batchOfFour(store: JobStore) {
    for (const [index, id] of IDS.entries()) {
      const job: Job = { ...delivered(id), batch: { id: IDS[0]!, index, count: 4, jobIds: IDS } };
      job.published = { channelId: '3', messageId: 'batch-message', spoiler: index === 1, attachmentId: `att-${id}` };
      if (index === 3) {
        job.state = 'delivering';
        delete job.fileName;
        delete job.published;
      }
      await store.save(job);
    }
    const images = IDS.map((id, i) => ({
      attachmentId: `att-${id}`,
      fileName: i === 1 ? `SPOILER_${file(id)}` : file(id),
      url: `https://cdn.example/${id}.jpeg`,
      spoiler: i === 1,
    }));
    return { channelId: '3', messageId: 'batch-message', images };
  }

  it('sends every image of the message to its own review, and decides each on its own', async () => {
    const { review, store, posted, shown, retracted } = reportDesk();
    const message = await batchOfFour(store);
    // The button names the batch: its first job.
    expect(await review.report({ jobId: IDS[0]!, reporter: BOB, message })).toEqual({ outcome: 'sent', images: 4 });
    expect(posted.map((p) => p.jobId)).toEqual(IDS);
    expect(posted.map((p) => p.spoiler)).toEqual([false, true, false, false]);
    for (const [i, id] of IDS.entries()) {
      expect(await store.get(id)).toMatchObject({
        published: { messageId: 'batch-message', attachmentId: `att-${id}`, spoiler: i === 1 },
        report: { status: 'pending', messageId: `review-${id}` },
      });
    }
    expect((await review.pending(GUILD)).map((p) => p.job.id).sort()).toEqual(IDS);

    // Remove on the third image takes that one alone; the others wait for their own decision.
    const remove = { jobId: 'batch2', kind: 'report', decision: 'remove', moderator: MOD } as const;
    expect(await review.decide(remove)).toMatchObject({
      outcome: 'done',
      record: { jobId: 'batch2', decision: 'remove' },
    });
    expect(retracted).toEqual([{ jobId: 'batch2', attachmentId: 'att-batch2' }]);
    expect(await review.decide({ ...remove, moderator: RITA })).toMatchObject({
      outcome: 'already',
      record: { jobId: 'batch2', moderatorId: MOD.id },
    });
    expect(await review.decide({ jobId: 'batch0', kind: 'report', decision: 'keep', moderator: RITA })).toMatchObject({
      outcome: 'done',
      record: { jobId: 'batch0', decision: 'keep' },
    });
    expect(retracted).toHaveLength(1);
    expect((await review.pending(GUILD)).map((p) => p.job.id).sort()).toEqual(['batch1', 'batch3']);

    // A later report on the message (the removed image gone from it) reaches the two undecided images, on their open reviews.
    const after = { ...message, images: message.images.filter((i) => i.attachmentId !== 'att-batch2') };
    expect(await review.report({ jobId: IDS[0]!, reporter: RITA, message: after })).toEqual({
      outcome: 'added',
      images: 2,
    });
    expect(posted).toHaveLength(4);
    expect(shown).toEqual([
      { jobId: 'batch1', reporters: [BOB.id, RITA.id] },
      { jobId: 'batch3', reporters: [BOB.id, RITA.id] },
    ]);
    expect(await review.report({ jobId: IDS[0]!, reporter: BOB, message: after })).toEqual({
      outcome: 'already_reported',
      images: 2,
    });

    for (const id of ['batch1', 'batch3'])
      await review.decide({ jobId: id, kind: 'report', decision: 'keep', moderator: MOD });
    const all = await review.report({ jobId: IDS[0]!, reporter: { id: '10', name: 'carol' }, message: after });
    expect(all).toMatchObject({ outcome: 'already_decided', images: 3 });
    expect(all.outcome === 'already_decided' && all.records.map((r) => `${r.jobId}:${r.decision}`)).toEqual([
      'batch0:keep',
      'batch1:keep',
      'batch3:keep',
    ]);
    expect(posted).toHaveLength(4);
  });

  it('a message whose first image alone was reported and decided before (as older versions did) sends the other three', async () => {
    const { review, store, state, posted } = reportDesk();
    const message = await batchOfFour(store);
    await state.add('reporters:batch0', BOB.id);
    await state.claim('report-open:batch0', BOB.id);
    await state.claim('decision:batch0:report', {
      jobId: 'batch0',
      guildId: GUILD,
      review: 'report',
      decision: 'keep',
      moderatorId: MOD.id,
      moderatorName: MOD.name,
      at: 1,
    });
    expect(await review.report({ jobId: IDS[0]!, reporter: RITA, message })).toEqual({ outcome: 'sent', images: 3 });
    expect(posted.map((p) => p.jobId)).toEqual(['batch1', 'batch2', 'batch3']);
  });

  it('keeps one review per image however many report it, even when they report at once', async () => {
    const { review, store, posted } = reportDesk();
    const message = await batchOfFour(store);
    const reporters = [BOB, RITA, MOD, { id: '10', name: 'carol' }];
    const results = await Promise.all(
      reporters.map((reporter) => review.report({ jobId: IDS[0]!, reporter, message })),
    );
    // Each may be first on some image and second on others: every one reached the moderators.
    expect(results.map((r) => r.outcome).every((o) => o === 'sent' || o === 'added')).toBe(true);
    expect(posted.map((p) => p.jobId).sort()).toEqual(IDS);
    for (const id of IDS)
      expect(await store.get(id)).toMatchObject({ report: { status: 'pending', messageId: `review-${id}` } });
  });

  it('a single-image message of a batch (an approved image posted on its own) is reported alone', async () => {
    const { review, store, posted } = reportDesk();
    await batchOfFour(store);
    const own = {
      channelId: '3',
      messageId: 'approved-1',
      images: [
        {
          attachmentId: 'att-x',
          fileName: `SPOILER_${file('batch1')}`,
          url: 'https://cdn.example/x.jpeg',
          spoiler: true,
        },
      ],
    };
    expect(await review.report({ jobId: 'batch1', reporter: BOB, message: own })).toEqual({
      outcome: 'sent',
      images: 1,
    });
    expect(posted.map((p) => p.jobId)).toEqual(['batch1']);
    // Alone in its message: a removal takes the message down, as for any single image.
    expect(await store.get('batch1')).toMatchObject({ published: { messageId: 'approved-1', spoiler: true } });
    expect((await store.get('batch1'))?.published?.attachmentId).toBeUndefined();
  });
});

describe('the report limit', () => {
  it('refuses a member’s report past REPORTS_PER_HOUR, says when the oldest frees, and counts none that came to nothing', async () => {
    const { review, store, clock, state, posted } = reportDesk({ reportsPerHour: 2 });
    for (const id of ['one', 'two', 'three', 'four']) await store.save(delivered(id));
    const first = clock.now;
    expect(await review.report({ jobId: 'one', reporter: BOB, message: alone('one') })).toMatchObject({
      outcome: 'sent',
    });
    // Reporting again what they reported already, or what was decided, does not use up their hour.
    expect(await review.report({ jobId: 'one', reporter: BOB, message: alone('one') })).toMatchObject({
      outcome: 'already_reported',
    });
    await state.claim('decision:two:report', {
      jobId: 'two',
      guildId: GUILD,
      review: 'report',
      decision: 'keep',
      moderatorId: MOD.id,
      moderatorName: MOD.name,
      at: first,
    });
    expect(await review.report({ jobId: 'two', reporter: BOB, message: alone('two') })).toMatchObject({
      outcome: 'already_decided',
    });
    clock.now += 10 * 60_000;
    const second = clock.now;
    expect(await review.report({ jobId: 'three', reporter: BOB, message: alone('three') })).toMatchObject({
      outcome: 'sent',
    });

    clock.now += 10 * 60_000;
    expect(await review.report({ jobId: 'four', reporter: BOB, message: alone('four') })).toEqual({
      outcome: 'limited',
      limit: 2,
      retryAt: first + HOUR_MS,
    });
    expect(posted.map((p) => p.jobId)).toEqual(['one', 'three']);
    // Another member has an hour of their own.
    expect(await review.report({ jobId: 'four', reporter: RITA, message: alone('four') })).toMatchObject({
      outcome: 'sent',
    });

    // An hour after the first report, one more fits; then the second is the one to wait for.
    clock.now = first + HOUR_MS;
    expect(await review.report({ jobId: 'four', reporter: BOB, message: alone('four') })).toMatchObject({
      outcome: 'added',
    });
    expect(await review.report({ jobId: 'three', reporter: MOD, message: alone('three') })).toMatchObject({
      outcome: 'added',
    });
    await store.save(delivered('five'));
    expect(await review.report({ jobId: 'five', reporter: BOB, message: alone('five') })).toEqual({
      outcome: 'limited',
      limit: 2,
      retryAt: second + HOUR_MS,
    });
  });

  it('counts a batch message as one report', async () => {
    const { review, store, posted } = reportDesk({ reportsPerHour: 1 });
    const ids = ['b0', 'b1'];
    for (const [index, id] of ids.entries())
      await store.save({
        ...delivered(id),
        batch: { id: 'b0', index, count: 2, jobIds: ids },
        published: { channelId: '3', messageId: 'm', spoiler: false, attachmentId: `att-${id}` },
      });
    const message = {
      channelId: '3',
      messageId: 'm',
      images: ids.map((id) => ({
        attachmentId: `att-${id}`,
        fileName: `x-${id}.jpeg`,
        url: `https://cdn.example/${id}`,
        spoiler: false,
      })),
    };
    expect(await review.report({ jobId: 'b0', reporter: BOB, message })).toEqual({ outcome: 'sent', images: 2 });
    expect(posted).toHaveLength(2);
    await store.save(delivered('other'));
    expect(await review.report({ jobId: 'other', reporter: BOB, message: alone('other') })).toMatchObject({
      outcome: 'limited',
    });
  });
});

function describeReportLimitAcrossProcesses(name: string, states: () => [SharedState, SharedState]) {
  it(`hands out exactly REPORTS_PER_HOUR reports to one member reporting from two processes at once: ${name}`, async () => {
    const [one, two] = states().map((state) => createReportLimit({ state, perHour: 5 }));
    const takes = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? one! : two!).take(GUILD, BOB.id)));
    expect(takes.filter((t) => t.allowed)).toHaveLength(5);
    // One given back is one more for the member, from either process.
    const given = takes.find((t) => t.allowed);
    if (given?.allowed) await given.giveBack();
    expect((await one!.take(GUILD, BOB.id)).allowed).toBe(true);
    expect((await two!.take(GUILD, BOB.id)).allowed).toBe(false);
  });
}

describeReportLimitAcrossProcesses('one local state', () => {
  const state = createLocalSharedState(createMemoryKeyValue());
  return [state, state];
});

describe.skipIf(skipWithoutRedis)('the report limit on Redis', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  const opened: SharedState[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(opened.map((state) => state.close()));
    await redis.stop();
  });
  describeReportLimitAcrossProcesses('two processes on one Redis', () => {
    const pair = [createRedisSharedState(redis.url), createRedisSharedState(redis.url)] as [SharedState, SharedState];
    opened.push(...pair);
    return pair;
  });
});

/**
 * A button's custom id is what the client sends: the job it names is checked against the message
 * the button is on, so a moderator of their own guild, or any member, cannot act on another job.
 */
describe('a button naming a job its message is not about', () => {
  it('decides nothing for a moderator of another guild, or from a message that is not the job’s review', async () => {
    const { bot, store } = localBot();
    await bot.settings.update(GUILD, { reviewChannelId: REVIEW_CHANNEL });
    await bot.review.hold(flagged('held'), IMAGE);
    const reviewId = (await store.get('held'))!.review!.messageId!;
    const approve = {
      jobId: 'held',
      kind: 'flag',
      decision: 'approve',
      moderator: MOD,
      imageUrl: 'https://cdn.example/theirs.jpeg',
    } as const;
    // Their own guild, their own message: its file names some other job.
    const elsewhere = {
      guildId: 'their-guild',
      messageId: 'their-message',
      fileNames: ['SPOILER_qwen-image-x-theirjob.jpeg'],
    };
    expect(await bot.review.decide({ ...approve, message: elsewhere })).toEqual({ outcome: 'unknown' });
    // The right guild is not enough either: the message must be the job's review.
    expect(await bot.review.decide({ ...approve, message: { ...elsewhere, guildId: GUILD } })).toEqual({
      outcome: 'unknown',
    });
    // Even the job's own review message does not count from another guild.
    expect(
      await bot.review.decide({ ...approve, message: { guildId: 'their-guild', messageId: reviewId, fileNames: [] } }),
    ).toEqual({ outcome: 'unknown' });
    expect(bot.delivered).toEqual([]);
    expect((await store.get('held'))?.review?.status).toBe('pending');

    // The review message itself decides, by its id or by its image's name.
    expect(
      await bot.review.decide({
        ...approve,
        message: { guildId: GUILD, messageId: 'unrecorded', fileNames: ['SPOILER_qwen-image-a-lighthouse-held.jpeg'] },
      }),
    ).toMatchObject({
      outcome: 'done',
    });
    expect(bot.delivered).toEqual(['held']);
  });

  it('reports nothing, and takes nothing from the member’s hour, for a message that does not show the job', async () => {
    const { review, store, posted } = reportDesk({ reportsPerHour: 1 });
    await store.save(delivered('victim'));
    await store.save(delivered('mine'));
    // Their own message, another job's id: the moderators would see their image under that job.
    expect(await review.report({ jobId: 'victim', reporter: BOB, message: alone('mine') })).toEqual({
      outcome: 'unknown',
      images: 0,
    });
    // The job's message, clicked from another guild (the ids the client sent do not agree).
    expect(
      await review.report({ jobId: 'victim', reporter: BOB, message: { ...alone('victim'), guildId: 'their-guild' } }),
    ).toEqual({ outcome: 'unknown', images: 0 });
    expect(posted).toEqual([]);
    expect((await store.get('victim'))?.published?.messageId).toBe('message-victim');
    // The real message is reported, and the member's one report of the hour is still theirs.
    expect(
      await review.report({ jobId: 'victim', reporter: BOB, message: { ...alone('victim'), guildId: GUILD } }),
    ).toEqual({ outcome: 'sent', images: 1 });
  });

  it('a held image, never published, cannot be reported from a message of the member’s', async () => {
    const { review, store, posted, clock } = reportDesk();
    await store.save({ ...flagged('held'), state: 'held', review: { status: 'pending', createdAt: clock.now } });
    await store.save(delivered('mine'));
    expect((await store.get('held'))?.state).toBe('held');
    expect(await review.report({ jobId: 'held', reporter: BOB, message: alone('mine') })).toEqual({
      outcome: 'unknown',
      images: 0,
    });
    expect(posted).toEqual([]);
  });
});
