import type { HoldReason, ReviewDecision } from '../domain/job.ts';
import type { ApiEndpoint } from '../ppinfra/client.ts';
import { ERROR_KINDS } from '../ppinfra/errors.ts';
import type { FailureKind } from '../domain/failure.ts';
import type { ClassifierFailure, ClassifierStatus } from '../domain/moderation.ts';

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
export const FAILURE_KINDS: readonly FailureKind[] = [
  ...ERROR_KINDS,
  'interrupted',
  'internal',
  'queue_timeout',
  'upload_limit',
];
export const DECISIONS: readonly ReviewDecision[] = ['approve', 'reject', 'remove', 'keep'];

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

export const CLASSIFIER_STATUSES: readonly ClassifierStatus[] = ['off', 'loading', 'ready', 'failed'];

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
