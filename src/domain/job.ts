import type { FailureKind } from './failure.ts';
import type { Estimate } from './estimate.ts';
import type { Place } from './place.ts';
import type { Source, Tool } from './tools.ts';

/**
 * A job is plain, serialisable data: it is saved at every state change so a restart (or another
 * process) can pick it up. Nothing in here is a live object.
 */
export type JobState =
  | 'queued' // waiting for a slot in this bot
  | 'submitting' // the submit request is in flight: a task may or may not exist
  | 'polling' // the API has a task id
  | 'delivering'
  | 'delivered'
  | 'held' // flagged image withheld until a moderator decides (see `review`)
  | 'failed';

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['delivered', 'held', 'failed']);

export interface ReplyTarget {
  applicationId: string;
  /** The interaction token: valid 15 minutes, needed to edit the deferred reply. Never logged. */
  token: string;
  /** When Discord created the interaction (ms), to know when the token expires. */
  createdAt: number;
}

export interface JobRequest {
  prompt: string;
  /** Normalised `W*H`. */
  size: string;
  userId: string;
  userName: string;
  guildId: string | null;
  channelId: string;
  /**
   * The channel was age-restricted when the image was asked for (a thread: its parent), kept for
   * the record. Where a flagged image goes is decided on the channel as it is when the image is
   * published, read again then (`ChannelAgeCheck` in `src/moderation/review-types.ts`).
   */
  channelNsfw: boolean;
  locale: string;
  /**
   * Where it was asked for (`src/domain/place.ts`); absent on records from before installs for
   * oneself, which were all in servers that installed the bot or in its DM.
   */
  place?: Place;
  /** Set when a More like this button (or an Edit prompt form) started this job from another. */
  regenerateOf?: string;
  /**
   * What the member typed, when `prompt` (what the API gets) was composed from it: the scene and
   * the exact text. The Edit prompt form starts from this.
   */
  input?: { prompt: string; text?: string; placement?: 'top' | 'center' | 'bottom' };
  /** The guild's own quota and budget when it set lower ones than the operator's. */
  caps?: GuildCaps;
  /**
   * One of several images asked for together (`/imagine count`): they share one reply, which
   * shows them all. `id` is the first job's id; `jobIds` are every job of the request, in order.
   */
  batch?: Batch;
  /** What the job does to a picture; absent: a picture from a prompt, as every older record is. */
  tool?: Tool;
  /** The picture worked on, for an edit or an upscale. */
  source?: Source;
  /** An upscale's target. */
  resolution?: '2k' | '4k';
  /**
   * The member's own picture (`/imagine-edit`) was flagged by the classifier, or could not be
   * checked: the result is held for review whatever it looks like (hold reason `input`).
   */
  inputFlagged?: boolean;
  /** An edit's seed, when the member gave one. */
  seed?: number;
}

/** A guild's own member quota and daily budget, lower than the operator's (`/imagine-settings limits`). */
export interface GuildCaps {
  userHourlyQuota: number;
  guildDailyBudget: number;
}

export interface Batch {
  id: string;
  index: number;
  count: number;
  jobIds: string[];
}

/** Only the first job of a batch holds the member's concurrency slot: a request counts once. */
export const holdsSlot = (job: Pick<JobRequest, 'batch'>) => !job.batch || job.batch.index === 0;

export interface Job extends JobRequest {
  id: string;
  /** The record's schema version (`JOB_SCHEMA` in store.ts), set when it is saved. */
  schema?: number;
  /**
   * How many times the record was saved: a save names the version it read and fails when another
   * writer saved first (compare-and-set, see `JobStore.save`). Absent on a job never saved.
   */
  version?: number;
  /** When the record was last saved (ms): how long it has been quiet, for the reconciler. */
  updatedAt?: number;
  /** On BullMQ: the one step allowed to move the job on, saved before it is queued (see `JobStep`). */
  step?: JobStep;
  /** The last progress view shown and when, so a view is sent once and edits are spaced on every engine. */
  shown?: { view: string; at: number };
  state: JobState;
  reply: ReplyTarget;
  createdAt: number;
  /** The deferred reply's message id, once Discord told us. */
  messageId?: string;
  taskId?: string;
  submittedAt?: number;
  /** What the estimator expected when the task was submitted (see `inFlightEstimate`). */
  estimate?: Estimate;
  completedAt?: number;
  /** When a poll last found the task unfinished (BullMQ keeps it across steps; see `observedDuration`). */
  pendingAt?: number;
  finishedAt?: number;
  polls: number;
  error?: { kind: FailureKind; reason?: string };
  /** File name the image was delivered as. */
  fileName?: string;
  /** Where the image was published (the deferred reply, or a channel message after the token expired). */
  published?: {
    channelId: string;
    messageId: string;
    spoiler: boolean /** In a batch message: this image's attachment. */;
    attachmentId?: string;
  };
  /** The API's NSFW signals for the image, raw, for the reviewer. */
  nsfw?: NsfwFlags;
  /** The moderator review of a flagged image. */
  review?: Review;
  /** The moderator review of a member's report about the published image. */
  report?: Review;
  /**
   * Where the bot is no member, a flagged image nobody could review was never shown (`withheld`),
   * or it finished after the token and the member's DMs were closed to the bot (`unreachable`).
   */
  unseen?: 'withheld' | 'unreachable';
}

export interface NsfwFlags {
  /** The provider flagged the image (its raw signals below, read generously). */
  flagged: boolean;
  /** `extra.has_nsfw_contents` as the API sent it. */
  hasNsfwContents: unknown;
  /** The image's `nsfw_detection_result` as the API sent it. */
  detectionResult: unknown;
  /** The local classifier's scores, when it classified the image. */
  scores?: NsfwScores;
  /** What the local classifier did: `failed` holds the image (fail closed), `off` when the operator turned it off. */
  classifier?: 'ok' | 'failed' | 'off';
  /**
   * Why the guild's policy withheld or spoilered the image, those that decided it first (see
   * `src/moderation/policy.ts`); empty for a clean image, absent on records from before.
   */
  reasons?: HoldReason[];
}

/**
 * Why an image is not simply shown: the provider flagged it, the classifier's scores passed the
 * guild's thresholds, the classifier could not look at it (held unchecked), or the guild reviews
 * every image, or the member's own picture an edit started from was flagged (`input`).
 */
export type HoldReason = 'provider' | 'classifier' | 'classifier_failed' | 'review_all' | 'input';

/** The local classifier's probabilities (nsfwjs classes), each 0-1, summing to about 1. */
export interface NsfwScores {
  drawing: number;
  hentai: number;
  neutral: number;
  porn: number;
  sexy: number;
}

export type ReviewKind = 'flag' | 'report';
export type ReviewDecision = 'approve' | 'reject' | 'remove' | 'keep';

/** Who decided what, when: stored once per review (the first click wins) and logged. */
export interface AuditRecord {
  jobId: string;
  guildId: string | null;
  review: ReviewKind;
  decision: ReviewDecision;
  moderatorId: string;
  moderatorName: string;
  at: number;
}

export interface Review {
  status: 'pending' | 'decided';
  createdAt: number;
  /** The review message, once posted in a review channel. */
  channelId?: string;
  messageId?: string;
  decision?: AuditRecord;
}

/**
 * A queued step of a job (on BullMQ). Its id comes from the record's version when it was planned,
 * so every step has an id of its own; `parent` is the step that planned it, so a step that runs
 * again after planning its successor only makes sure that one is queued.
 */
export interface JobStep {
  id: string;
  kind: 'submit' | 'check';
  /** When it is due (ms): a step not seen by then plus the lock is overdue. */
  dueAt: number;
  parent?: string;
}

/** What the deferred message shows while a job runs. */
export type ProgressView =
  | { phase: 'queued'; position: number /** When the images-per-minute budget lets it start. */; startsAt?: number }
  | { phase: 'submitting' }
  | { phase: 'generating'; expectedAt: number }
  | { phase: 'late' }
  /**
   * Where only the interaction token answers, shortly before it expires: the image will come by
   * DM (or /imagine-history). The last progress the message shows: nothing replaces it.
   */
  | { phase: 'expiring' };

export interface DeliveredImage {
  bytes: Uint8Array;
  contentType: string;
  /** File extension from the API's image_type. */
  extension: string;
}

/** `unreachable`: past the token, where the bot cannot post, and the member's DMs refused it. */
export type DeliveryOutcome = 'delivered' | 'over_upload_limit' | 'unreachable';

/**
 * What the requester's message says about a flagged image that is not shown; `withheld`: where
 * nobody can review it (a server without the bot, a conversation between others, the bot's DM
 * with DM_NSFW=hold).
 */
export type Notice = 'awaiting_review' | 'no_reviewer' | 'rejected' | 'withheld';

/**
 * The port through which the job service reports to people. The Discord implementation lives
 * in `src/discord/delivery.ts`; the service never imports discord.js.
 */
export interface Delivery {
  /** Show progress; returns the message id when it learns it. */
  progress(job: Job, view: ProgressView): Promise<string | undefined>;
  /**
   * Publishes the image for the requester; `spoiler` hides it behind a content warning. An image
   * over the server's upload limit is not posted: the requester is told, and the outcome says so.
   */
  deliver(job: Job, image: DeliveredImage, options?: { spoiler?: boolean }): Promise<DeliveryOutcome>;
  /** Tells the requester where a withheld image stands; no image, no preview. */
  notice(job: Job, notice: Notice): Promise<void>;
  fail(job: Job, error: { kind: FailureKind; reason?: string }): Promise<void>;
}

/**
 * What becomes of a finished image: shown, shown behind a spoiler, held for a moderator, or, where
 * nobody can review it, withheld for good (the member is told).
 */
export type Verdict = 'deliver' | 'spoiler' | 'review' | 'withhold';

/**
 * The port to moderation (`src/moderation/review.ts`): the guild's policy for every finished
 * image, and the hold that sends one to review.
 */
export interface Moderation {
  /**
   * Asked for every image before it is shown: weighs the provider's flag (already on `job.nsfw`)
   * with the local classifier's look at `image`, and records both on `job.nsfw`.
   */
  verdict(job: Job, image: DeliveredImage): Promise<Verdict>;
  /**
   * Withholds the image, tells the requester, sends it to review; saves the job as `held`. An
   * image over the server's upload limit could never be published after a review: nothing of it
   * is kept, the requester is told it is too large, and the caller records the job as failed.
   */
  hold(job: Job, image: DeliveredImage): Promise<HoldOutcome>;
}

export type HoldOutcome = 'held' | 'over_upload_limit';
