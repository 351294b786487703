import type { Interaction } from 'discord.js';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { createBot } from './discord/bot.ts';
import { createChannelAgeCheck } from './discord/channels.ts';
import { createBatchEdits } from './discord/batch-edits.ts';
import { createDiscordDelivery, uploadLimitForTier } from './discord/delivery.ts';
import { loadCommands } from './discord/loader.ts';
import { createRouter } from './discord/router.ts';
import { createDurationEstimator, type DurationEstimator } from './jobs/estimator.ts';
import { createScheduler, openJobStore, usesQueueEngine } from './jobs/scheduler.ts';
import { createHistory } from './usage/history.ts';
import { createReportLimit } from './moderation/report-limit.ts';
import { classifierOff, type ImageClassifier } from './moderation/classifier.ts';
import { createReviewService } from './moderation/review.ts';
import { createReadyBy } from './jobs/eta.ts';
import { createGuildSettingsStore } from './moderation/settings.ts';
import { createDiscordReviewDesk } from './discord/review-desk.ts';
import { createPpinfraClient } from './ppinfra/client.ts';
import { openSharedState, openStorage } from './storage/open.ts';
import { Registry } from 'prom-client';
import { watchRestErrors } from './discord/rest-metrics.ts';
import { startOpsServer, type OpsServer } from './ops/http.ts';
import { noopMetrics } from './ops/metrics.ts';
import { createUsageLedger } from './usage/ledger.ts';
import { startStorageHealth } from './storage/start.ts';
import { createMetrics } from './ops/prometheus.ts';
import { createNsfwClassifier } from './moderation/nsfw-classifier.ts';
import { createImageStash } from './moderation/image-stash.ts';

/** Pieces a caller may hand in instead of the ones built from the configuration. */
export interface AppOptions {
  /** A local NSFW classifier in place of the one `NSFW_CLASSIFIER` would build. Its maker closes it. */
  classifier?: ImageClassifier;
  /**
   * The duration estimator in place of the one kept in storage: the bench hands in one seen
   * through its time compression, and for its baseline one that makes the schedule poll at a
   * fixed interval, so both measure the whole bot and differ only in when it polls.
   */
  estimator?: DurationEstimator;
}

/**
 * The composition root: the only place concrete pieces meet. `main.ts` calls it with the
 * validated configuration; end-to-end tests call it with the fakes' URLs.
 */
export async function startApp(config: Config, logger: Logger, options: AppOptions = {}) {
  const jobsKv = openStorage(config.storageUrl, 'jobs');
  const statsKv = openStorage(config.storageUrl, 'stats');
  const settingsKv = openStorage(config.storageUrl, 'settings');
  const imagesKv = openStorage(config.storageUrl, 'images');
  const shared = openSharedState(config.storageUrl);
  // Storage that cannot be opened or reached stops the start here with
  // a clear StorageUnavailableError; lost while running, new requests pause and the writes of jobs
  // in progress are kept in memory until it answers again.
  const storage = await startStorageHealth({
    storageUrl: config.storageUrl,
    namespaces: [jobsKv, statsKv, settingsKv, imagesKv],
    shared,
    logger,
  });
  const stats = storage.keep(statsKv, 'stats');
  // On Redis the records are compare-and-set by every process, so a write is never kept in one
  // process's memory for later: a step waits for Redis, or fails and is retried.
  const { store, redis: queueRedis } = await openJobStore(
    config.storageUrl,
    usesQueueEngine(config.storageUrl) ? jobsKv : storage.keep(jobsKv, 'jobs'),
    logger,
  );
  const settings = createGuildSettingsStore(settingsKv, {
    reviewChannelId: config.reviewChannelId,
    userHourlyQuota: config.limits.userHourlyQuota,
    guildDailyBudget: config.limits.guildDailyBudget,
  });
  // Durations go to the shared state, where processes append to them rather than overwrite each
  // other; `stats` still holds what older versions stored whole, read once as a seed.
  const estimator =
    options.estimator ??
    createDurationEstimator({ store: shared, legacy: stats, logger: logger.child({ component: 'estimator' }) });
  await estimator.load();
  // [ops: health and metrics] Only with METRICS_PORT: its own registry, never prom-client's global one.
  const registry = new Registry();
  const metrics = config.ops ? createMetrics({ registry }) : noopMetrics;
  const client = createPpinfraClient({ ...config.ppinfra, logger: logger.child({ component: 'ppinfra' }), metrics });
  // The model loads in its own thread while the bot logs in: nothing here waits for it.
  const owned = !options.classifier;
  const classifier =
    options.classifier ??
    (config.classifier.enabled
      ? createNsfwClassifier({
          logger: logger.child({ component: 'classifier' }),
          metrics,
          timeoutMs: config.classifier.timeoutMs,
        })
      : classifierOff);
  const commands = await loadCommands();

  // The router needs the job service, which needs the delivery, which needs the client's REST:
  // the client is built first and the router plugged in once it exists (before login).
  let route: (interaction: Interaction) => Promise<void> = async () => undefined;
  const bot = createBot({
    token: config.discordToken,
    apiUrl: config.discordApiUrl,
    loginTimeoutMs: config.discordLoginTimeoutMs,
    logger,
    onInteraction: (i) => route(i),
  });
  const uploadLimit = (guildId: string | null) =>
    uploadLimitForTier(guildId ? bot.client.guilds.cache.get(guildId)?.premiumTier : undefined);
  // The jobs of a batch share one message; on Redis its edits are locked
  // across processes. A moderator removing one of its images edits it too, in the same queue.
  const batchEdits = createBatchEdits({
    ...(usesQueueEngine(config.storageUrl) ? { lock: shared } : {}),
    logger: logger.child({ component: 'delivery' }),
  });
  // Held images, and those of jobs that reached nobody (/imagine-history gives them back).
  const stash = createImageStash(storage.keep(imagesKv, 'images'));
  const delivery = createDiscordDelivery({
    rest: bot.client.rest,
    uploadLimit,
    logger: logger.child({ component: 'delivery' }),
    jobs: (ids) => Promise.all(ids.map((id) => store.get(id).catch(() => undefined))),
    edits: batchEdits,
    stash,
  });
  const review = createReviewService({
    store,
    state: shared,
    stash,
    settings,
    desk: createDiscordReviewDesk({
      rest: bot.client.rest,
      guildLocale: (guildId) => (guildId && bot.client.guilds.cache.get(guildId)?.preferredLocale) || 'en-US',
      logger: logger.child({ component: 'review' }),
      edits: batchEdits,
    }),
    delivery,
    // Discord's CDN, with the same byte cap and retries as the API's images (and no API key).
    fetchImage: async (url) => {
      const { bytes, contentType } = await client.download(url, { maxBytes: config.generation.imageMaxBytes });
      return { bytes, contentType, extension: /^image\/(\w+)/.exec(contentType)?.[1] ?? 'jpeg' };
    },
    logger: logger.child({ component: 'review' }),
    metrics,
    classifier,
    channelAgeRestricted: createChannelAgeCheck({
      rest: bot.client.rest,
      logger: logger.child({ component: 'channels' }),
    }),
    uploadLimit,
    caps: config.review,
    // In the shared state, so the limit holds however many processes serve the guild.
    reportLimit: createReportLimit({ state: shared, perHour: config.reports.perHour }),
    thresholds: config.nsfwThresholds,
    dmNsfw: config.userInstall.dmNsfw,
    // A backstop only: the classifier gives up at its own timeout, queue included, and says why.
    classifyTimeoutMs: config.classifier.timeoutMs + 5_000,
  });
  // What the operator pays: counted once per job at its end, in the shared state.
  const usage = createUsageLedger(shared);
  const scheduler = await createScheduler({
    config,
    client,
    store,
    delivery,
    moderation: review,
    estimator,
    stats,
    logger,
    metrics,
    usage,
    claims: shared,
    redis: queueRedis,
  });
  const { jobs } = scheduler;
  const history = createHistory({ state: shared, jobs: store });
  route = createRouter({
    commands,
    ctx: {
      jobs,
      review,
      settings,
      history,
      stash,
      logger,
      generation: config.generation,
      storage,
      usage: { ledger: usage, price: config.price },
      userInstall: { enabled: config.userInstall.enabled },
      readyBy: createReadyBy({
        jobs,
        estimator,
        maxInFlight: config.limits.maxJobsInFlight,
        imagesPerMinute: config.jobs.imagesPerMinute,
      }),
      tools: config.tools,
    },
    logger: logger.child({ component: 'router' }),
  });

  const stopWatchingRest = config.ops ? watchRestErrors(bot.client.rest, metrics) : () => undefined;
  metrics.watch({
    jobs: () => jobs.counts(),
    ipmLimit: () => config.jobs.imagesPerMinute,
    ipmBudgetRemaining: () => scheduler.budgetRemaining(),
    reviewsPending: () => review.pendingCount(),
    gatewayUp: () => bot.connected(),
    storageUp: () => storage.healthy(),
    classifierStatus: () => classifier.status(),
  });

  /** What the stop is waiting for, so a stop that overruns can say which part hung. */
  let closing: string | undefined;
  const step = async (name: string, close: () => unknown) => {
    closing = name;
    await close();
  };
  /** Discord, HTTP and storage, closed in order (jobs paused first). */
  const closeAll = async () => {
    await step('jobs', () => jobs.shutdown());
    stopWatchingRest();
    await step('discord', () => bot.destroy());
    await step('api client', () => client.close());
    await step('job queue', () => scheduler.close());
    if (owned) await step('classifier', () => classifier.close());
    await step('storage health', () => storage.stop());
    await step('stores', () =>
      Promise.all([
        jobsKv.disconnect(),
        statsKv.disconnect(),
        settingsKv.disconnect(),
        imagesKv.disconnect(),
        shared.close(),
      ]),
    );
    closing = undefined;
  };

  await bot.login();
  let ops: OpsServer | undefined;
  if (config.ops) {
    try {
      ops = await startOpsServer({
        ...config.ops,
        registry,
        health: {
          gatewayUp: () => bot.connected(),
          storageUp: () => storage.healthy(),
          classifier: () => classifier.status(),
        },
        logger: logger.child({ component: 'ops' }),
      });
    } catch (err) {
      // A port in use is a configuration problem: nothing has started yet, so close and report it.
      await closeAll().catch(() => undefined);
      throw err;
    }
  }
  const resumed = await jobs.resume();
  const reviewsRouted = await review.resume();
  logger.info(
    { commands: [...commands.keys()], resumed, reviewsRouted, storage: config.storageUrl.split(':')[0] },
    'qwen-imagine is running',
  );

  return {
    bot,
    jobs,
    review,
    settings,
    shared,
    store,
    /** The local NSFW classifier (`classifierOff` with NSFW_CLASSIFIER=off). */
    classifier,
    /** Where /healthz and /metrics listen (METRICS_PORT=0 picks a free port); undefined when off. */
    opsAddress: ops?.address,
    /** Pauses jobs (they resume on the next start), then closes the ops endpoint, Discord, HTTP and storage. */
    async stop() {
      await step('ops endpoint', () => ops?.close());
      await closeAll();
    },
    /** The part a stop in progress is waiting for (undefined when none). */
    closing: () => closing,
  };
}
