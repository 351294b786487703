import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { HoldReason, ReviewDecision } from '../domain/job.ts';
import type { ApiEndpoint } from '../ppinfra/client.ts';
import { ERROR_KINDS } from '../ppinfra/errors.ts';
import type { FailureKind } from '../domain/failure.ts';
import { CLASSIFIER_FAILURES, HOLD_REASONS, type ClassifierFailure, type ClassifierStatus } from '../domain/moderation.ts';

/**
 * The bot's Prometheus metrics: one small object of typed recorders, passed down to the modules
 * that see the events (the API client, the finisher, the schedulers, moderation, the Discord
 * REST listener). Everything registers on the Registry handed in, never on prom-client's global
 * one, so tests and several apps in one process do not collide. Labels are bounded: never a
 * user id, a guild id, a prompt or a task id. `noopMetrics` is the default wherever none is given.
 */

export const METRIC_PREFIX = 'qwen_imagine_';

/** Every metric this module registers (the default process metrics aside), for dashboard checks. */
export const METRIC_NAMES = [
  'qwen_imagine_jobs_finished_total',
  'qwen_imagine_jobs_in_flight',
  'qwen_imagine_jobs_queued',
  'qwen_imagine_submissions_total',
  'qwen_imagine_ipm_limit',
  'qwen_imagine_ipm_budget_remaining',
  'qwen_imagine_api_request_duration_seconds',
  'qwen_imagine_polls_per_job',
  'qwen_imagine_request_to_delivery_seconds',
  'qwen_imagine_completion_to_delivery_seconds',
  'qwen_imagine_discord_rest_errors_total',
  'qwen_imagine_flagged_results_total',
  'qwen_imagine_images_held_total',
  'qwen_imagine_moderation_decisions_total',
  'qwen_imagine_reviews_pending',
  'qwen_imagine_gateway_up',
  'qwen_imagine_storage_up',
  'qwen_imagine_jobs_recovered_total',
  'qwen_imagine_classification_seconds',
  'qwen_imagine_classifications_total',
  'qwen_imagine_classifier_status',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

export type JobOutcome = 'delivered' | 'failed' | 'held';
export type SubmissionResult = 'accepted' | 'rate_limited' | 'error';
export type FlagAction = 'held' | 'spoiler';

/** Every FailureKind, for pre-initialised label combinations. */
export const FAILURE_KINDS: readonly FailureKind[] = [...ERROR_KINDS, 'interrupted', 'internal', 'queue_timeout', 'upload_limit'];
const DECISIONS: readonly ReviewDecision[] = ['approve', 'reject', 'remove', 'keep'];

/**
 * Why the reconciler picked a job up: its step was never queued or has vanished (`step_missing`),
 * its step failed for good (`step_failed`), or no part of this process was running it
 * (`not_running`, the in-process engine).
 */
export type RecoveryReason = 'step_missing' | 'step_failed' | 'not_running';
export const RECOVERY_REASONS: readonly RecoveryReason[] = ['step_missing', 'step_failed', 'not_running'];

/** Read at scrape time; a source that fails or does not answer within the timeout keeps its last value. */
export interface ScrapeSources {
  jobs?: () => Promise<{ queued: number; inFlight: number }>;
  ipmLimit?: () => number;
  ipmBudgetRemaining?: () => number | Promise<number>;
  reviewsPending?: () => Promise<number>;
  gatewayUp?: () => boolean;
  storageUp?: () => boolean;
  classifierStatus?: () => ClassifierStatus;
}

const CLASSIFIER_STATUSES: readonly ClassifierStatus[] = ['off', 'loading', 'ready', 'failed'];

export interface Metrics {
  jobFinished(outcome: JobOutcome, errorKind: FailureKind | 'none'): void;
  submission(result: SubmissionResult): void;
  /** One HTTP request to the API or its CDN; `status` is the HTTP status, or `network` / `timeout`. */
  apiRequest(endpoint: ApiEndpoint, status: string, seconds: number): void;
  /** A task the API finished: how many task-result looks it took. */
  pollsPerJob(polls: number): void;
  requestToDelivery(seconds: number): void;
  completionToDelivery(seconds: number): void;
  /** `route` must already be a template (no ids, no tokens); see `restRouteLabel`. */
  discordRestError(route: string, code: string): void;
  flaggedResult(action: FlagAction): void;
  /** An image held for a moderator, by the reason that decided it. */
  imageHeld(reason: HoldReason): void;
  moderationDecision(decision: ReviewDecision): void;
  /** The reconciler found an unfinished job nothing was moving on, and re-queued or ended it. */
  jobRecovered(reason: RecoveryReason): void;
  /** One local NSFW classification: `ok` (reason `none`) or failed and why; seconds from ask to answer. */
  classification(outcome: 'ok' | 'failed', reason: ClassifierFailure | 'none', seconds: number): void;
  /** Plugs in (or replaces) what the scrape-time gauges read. */
  watch(sources: ScrapeSources): void;
}

export const noopMetrics: Metrics = {
  jobFinished: () => undefined,
  submission: () => undefined,
  apiRequest: () => undefined,
  pollsPerJob: () => undefined,
  requestToDelivery: () => undefined,
  completionToDelivery: () => undefined,
  discordRestError: () => undefined,
  flaggedResult: () => undefined,
  imageHeld: () => undefined,
  moderationDecision: () => undefined,
  jobRecovered: () => undefined,
  classification: () => undefined,
  watch: () => undefined,
};

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

  scrapedGauge('ipm_limit', 'The configured images-per-minute budget (API_IMAGES_PER_MINUTE).', () => sources.ipmLimit?.());
  scrapedGauge('ipm_budget_remaining', 'Submissions still possible in the current 60-second window (0 while paused after a 429). On Redis the window is shared by every process.', () => read(sources.ipmBudgetRemaining));

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
    help: 'Images held for a moderator, by the reason that decided it: provider (the API flagged it), classifier (the local classifier’s scores passed the guild’s thresholds), classifier_failed (it could not be checked: held unchecked) or review_all (the guild reviews every image).',
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
  scrapedGauge('reviews_pending', 'Flagged and reported images waiting for a moderator, in every guild (shared by every process on Redis: aggregate with max()).', () => read(sources.reviewsPending));
  scrapedGauge('gateway_up', '1 when this process is connected to the Discord gateway (every shard it runs ready), else 0.', () => (sources.gatewayUp ? Number(sources.gatewayUp()) : undefined));
  scrapedGauge('storage_up', '1 when the store (STORAGE_URL) answers, else 0.', () => (sources.storageUp ? Number(sources.storageUp()) : undefined));

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

const LITERAL_SEGMENT = /^[a-z@][a-z0-9@_-]{0,31}$/i;

/**
 * A bounded route label from a REST path (or discord.js' bucket route): ids become `:id`, the
 * token after `/webhooks/:id` or `/interactions/:id` becomes `:token`, reactions `:reaction`,
 * anything else that is not a plain word `:param`; the query is dropped. Never an id or a token.
 */
export function restRouteLabel(method: string, path: string): string {
  const segments = path.split('?')[0]!.split('/');
  const out: string[] = [];
  for (const [i, encoded] of segments.entries()) {
    let segment: string;
    try {
      segment = decodeURIComponent(encoded);
    } catch {
      segment = ':param';
    }
    const before = out[i - 1];
    const beforeThat = out[i - 2];
    if (segment === '' || segment === ':id') out.push(segment);
    else if (/^\d+$/.test(segment)) out.push(':id');
    else if (before === ':id' && (beforeThat === 'webhooks' || beforeThat === 'interactions')) out.push(':token');
    else if (before === 'reactions' || beforeThat === 'reactions') out.push(':reaction');
    else if (LITERAL_SEGMENT.test(segment)) out.push(segment);
    else out.push(':param');
  }
  return `${method.toUpperCase()} ${out.join('/')}`;
}
