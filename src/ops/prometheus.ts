import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { CLASSIFIER_FAILURES, HOLD_REASONS } from '../domain/moderation.ts';
import {
  CLASSIFIER_STATUSES,
  DECISIONS,
  FAILURE_KINDS,
  METRIC_PREFIX,
  RECOVERY_REASONS,
  type Metrics,
  type MetricName,
  type ScrapeSources,
} from './metrics.ts';

/**
 * The Metrics recorders on prom-client: every metric registers on the Registry handed in, with its
 * label combinations pre-initialised so a scrape shows zeros rather than nothing.
 */
export interface MetricsOptions {
  registry: Registry;
  /** Node's process metrics (CPU, memory, event loop, GC) on the same registry; default true. */
  defaultMetrics?: boolean;
  /** How long a scrape waits for one source (Redis counts, shared state); default 2 s. */
  sourceTimeoutMs?: number;
}

const name = (n: string) => `${METRIC_PREFIX}${n}` as MetricName;

export function createMetrics(options: MetricsOptions): Metrics {
  const registers = [options.registry];
  const sourceTimeoutMs = options.sourceTimeoutMs ?? 2_000;
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: options.registry });
  let sources: ScrapeSources = {};

  /** A scrape never hangs on a source (a Redis that is down queues commands until it is back). */
  async function read<T>(source: (() => T | Promise<T>) | undefined): Promise<T | undefined> {
    if (!source) return undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        Promise.resolve().then(source),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), sourceTimeoutMs);
          timer.unref();
        }),
      ]);
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A gauge set at scrape time from `value`; left as it was while its source is absent or silent. */
  const scrapedGauge = (metric: string, help: string, value: () => number | undefined | Promise<number | undefined>) =>
    new Gauge({
      name: name(metric),
      help,
      registers,
      async collect() {
        const v = await value();
        if (v !== undefined) this.set(v);
      },
    });

  const finished = new Counter({
    name: name('jobs_finished_total'),
    help: 'Jobs that reached an end: delivered, failed (error_kind says why) or held for a moderator. error_kind is "none" unless failed.',
    labelNames: ['outcome', 'error_kind'] as const,
    registers,
  });
  finished.inc({ outcome: 'delivered', error_kind: 'none' }, 0);
  finished.inc({ outcome: 'held', error_kind: 'none' }, 0);
  for (const kind of FAILURE_KINDS) finished.inc({ outcome: 'failed', error_kind: kind }, 0);

  // One collect reads the scheduler once for both job gauges.
  let jobCounts: Promise<{ queued: number; inFlight: number } | undefined> | undefined;
  const jobsGauge = (metric: string, help: string, pick: (c: { queued: number; inFlight: number }) => number) =>
    new Gauge({
      name: name(metric),
      help,
      registers,
      async collect() {
        jobCounts ??= read(sources.jobs).finally(() => setImmediate(() => (jobCounts = undefined)));
        const counts = await jobCounts;
        if (counts) this.set(pick(counts));
      },
    });
  jobsGauge(
    'jobs_in_flight',
    'Jobs being submitted or submitted and not finished. On Redis (BullMQ) this is the queue count for every process together: aggregate with max(), not sum().',
    (c) => c.inFlight,
  );
  jobsGauge(
    'jobs_queued',
    'Jobs waiting to be submitted. On Redis (BullMQ) this is the queue count for every process together: aggregate with max(), not sum().',
    (c) => c.queued,
  );

  const submissions = new Counter({
    name: name('submissions_total'),
    help: 'Submissions to the API as the scheduler saw them (after the client’s own retries): accepted, rate_limited (429; the job goes back to the queue) or error.',
    labelNames: ['result'] as const,
    registers,
  });
  for (const result of ['accepted', 'rate_limited', 'error'] as const) submissions.inc({ result }, 0);

  scrapedGauge('ipm_limit', 'The configured images-per-minute budget (API_IMAGES_PER_MINUTE).', () =>
    sources.ipmLimit?.(),
  );
  scrapedGauge(
    'ipm_budget_remaining',
    'Submissions still possible in the current 60-second window (0 while paused after a 429). On Redis the window is shared by every process.',
    () => read(sources.ipmBudgetRemaining),
  );

  const apiDuration = new Histogram({
    name: name('api_request_duration_seconds'),
    help: 'One HTTP request to the image API or an image download (each retry counts), by endpoint and HTTP status (or network / timeout).',
    labelNames: ['endpoint', 'status'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const polls = new Histogram({
    name: name('polls_per_job'),
    help: 'Task-result looks a finished task took.',
    buckets: [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30],
    registers,
  });
  const requestToDelivery = new Histogram({
    name: name('request_to_delivery_seconds'),
    help: 'From the member’s /imagine to the image in the channel (delivered jobs).',
    buckets: [2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600],
    registers,
  });
  const completionToDelivery = new Histogram({
    name: name('completion_to_delivery_seconds'),
    help: 'From the task seen completed to the image in the channel: download and upload (delivered jobs).',
    buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60],
    registers,
  });
  const restErrors = new Counter({
    name: name('discord_rest_errors_total'),
    help: 'Discord REST answers with HTTP >= 400 (429s included), by route template and Discord’s JSON error code (the HTTP status when it has none).',
    labelNames: ['route', 'code'] as const,
    registers,
  });
  const flagged = new Counter({
    name: name('flagged_results_total'),
    help: 'Images withheld from a plain post: held for a moderator, or published behind a spoiler (age-restricted channel). Why: qwen_imagine_images_held_total.',
    labelNames: ['action'] as const,
    registers,
  });
  for (const action of ['held', 'spoiler'] as const) flagged.inc({ action }, 0);
  const held = new Counter({
    name: name('images_held_total'),
    help: 'Images held for a moderator, by the reason that decided it: provider (the API flagged it), classifier (the local classifier’s scores passed the guild’s thresholds), classifier_failed (it could not be checked: held unchecked), input (the member’s own picture an edit started from was flagged) or review_all (the guild reviews every image).',
    labelNames: ['reason'] as const,
    registers,
  });
  for (const reason of HOLD_REASONS) held.inc({ reason }, 0);
  const decisions = new Counter({
    name: name('moderation_decisions_total'),
    help: 'Moderator decisions carried out: approve / reject (flagged images), remove / keep (reports).',
    labelNames: ['decision'] as const,
    registers,
  });
  for (const decision of DECISIONS) decisions.inc({ decision }, 0);
  const recovered = new Counter({
    name: name('jobs_recovered_total'),
    help: 'Unfinished jobs the reconciler found with nothing moving them on (a lost step, a step that failed for good), then re-queued or ended; by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  for (const reason of RECOVERY_REASONS) recovered.inc({ reason }, 0);
  const classificationSeconds = new Histogram({
    name: name('classification_seconds'),
    help: 'Local NSFW classifications that gave scores: from the ask to the scores, waiting in the classifier thread’s queue included.',
    buckets: [0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const classifications = new Counter({
    name: name('classifications_total'),
    help: 'Local NSFW classifications by outcome: ok, or failed with a reason (unavailable, timeout, decode, crashed); a failed one holds the image. reason is "none" when ok.',
    labelNames: ['outcome', 'reason'] as const,
    registers,
  });
  classifications.inc({ outcome: 'ok', reason: 'none' }, 0);
  for (const reason of CLASSIFIER_FAILURES) classifications.inc({ outcome: 'failed', reason }, 0);
  const classifierStatus = new Gauge({
    name: name('classifier_status'),
    help: 'The local NSFW classifier’s state: 1 for the current one of off, loading, ready, failed (failed: images it should classify are held).',
    labelNames: ['status'] as const,
    registers,
    collect() {
      const current = sources.classifierStatus?.();
      if (current === undefined) return;
      for (const status of CLASSIFIER_STATUSES) this.set({ status }, Number(status === current));
    },
  });
  for (const status of CLASSIFIER_STATUSES) classifierStatus.set({ status }, 0);
  scrapedGauge(
    'reviews_pending',
    'Flagged and reported images waiting for a moderator, in every guild (shared by every process on Redis: aggregate with max()).',
    () => read(sources.reviewsPending),
  );
  scrapedGauge(
    'gateway_up',
    '1 when this process is connected to the Discord gateway (every shard it runs ready), else 0.',
    () => (sources.gatewayUp ? Number(sources.gatewayUp()) : undefined),
  );
  scrapedGauge('storage_up', '1 when the store (STORAGE_URL) answers, else 0.', () =>
    sources.storageUp ? Number(sources.storageUp()) : undefined,
  );

  return {
    jobFinished: (outcome, errorKind) => finished.inc({ outcome, error_kind: errorKind }),
    submission: (result) => submissions.inc({ result }),
    apiRequest: (endpoint, status, seconds) => apiDuration.observe({ endpoint, status }, seconds),
    pollsPerJob: (n) => polls.observe(n),
    requestToDelivery: (s) => requestToDelivery.observe(Math.max(0, s)),
    completionToDelivery: (s) => completionToDelivery.observe(Math.max(0, s)),
    discordRestError: (route, code) => restErrors.inc({ route, code }),
    flaggedResult: (action) => flagged.inc({ action }),
    imageHeld: (reason) => held.inc({ reason }),
    jobRecovered: (reason) => recovered.inc({ reason }),
    moderationDecision: (decision) => decisions.inc({ decision }),
    classification(outcome, reason, seconds) {
      classifications.inc({ outcome, reason });
      if (outcome === 'ok') classificationSeconds.observe(Math.max(0, seconds));
    },
    watch(next) {
      sources = { ...sources, ...next };
    },
  };
}
