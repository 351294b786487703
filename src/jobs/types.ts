import type { PpinfraErrorKind } from '../ppinfra/errors.ts';

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
  | 'held' // flagged image withheld from a channel that is not age-restricted
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
  /** The channel is age-restricted: flagged images may be shown there. */
  channelNsfw: boolean;
  locale: string;
  /** Set when a Regenerate button started this job. */
  regenerateOf?: string;
}

export type FailureKind = PpinfraErrorKind | 'interrupted' | 'internal';

export interface Job extends JobRequest {
  id: string;
  state: JobState;
  reply: ReplyTarget;
  createdAt: number;
  /** The deferred reply's message id, once Discord told us. */
  messageId?: string;
  taskId?: string;
  submittedAt?: number;
  completedAt?: number;
  finishedAt?: number;
  polls: number;
  error?: { kind: FailureKind; reason?: string };
  /** File name the image was delivered as. */
  fileName?: string;
}

/** What the deferred message shows while a job runs. */
export type ProgressView =
  | { phase: 'queued'; position: number }
  | { phase: 'submitting' }
  | { phase: 'generating'; expectedAt: number }
  | { phase: 'late' };

export interface DeliveredImage {
  bytes: Uint8Array;
  contentType: string;
  /** File extension from the API's image_type. */
  extension: string;
}

/**
 * The port through which the job service reports to people. The Discord implementation lives
 * in `src/discord/delivery.ts`; the service never imports discord.js.
 */
export interface Delivery {
  /** Show progress; returns the message id when it learns it. */
  progress(job: Job, view: ProgressView): Promise<string | undefined>;
  deliver(job: Job, image: DeliveredImage): Promise<void>;
  /** A flagged image withheld until moderation ([5 of 6]) lands. */
  withhold(job: Job): Promise<void>;
  fail(job: Job, error: { kind: FailureKind; reason?: string }): Promise<void>;
}
