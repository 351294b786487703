import type { Logger } from '../logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Refusal } from '../jobs/limits.ts';
import type { JobStore } from '../jobs/store.ts';
import type {
  AuditRecord,
  DeliveredImage,
  Delivery,
  Job,
  Moderation,
  ReviewDecision,
  ReviewKind,
} from '../domain/job.ts';
import type { SharedState } from '../storage/shared-state.ts';
import type { ReportLimit } from './report-limit.ts';
import type { ImageClassifier } from './classifier.ts';
import type { GuildSettingsStore } from './settings.ts';
import type { NsfwThresholds } from '../domain/moderation.ts';

/**
 * The Discord side of review messages (`src/discord/review-desk.ts`). Review messages carry the
 * image as a spoiler attachment; that attachment, fetched fresh when a moderator approves, is
 * the copy that gets published, so approval does not depend on the API's URL still working.
 */
export interface ReviewDesk {
  /** Posts a review message; returns its id. Throws when the channel cannot be used. */
  post(channelId: string, job: Job, image: DeliveredImage, kind: ReviewKind, reporters: string[]): Promise<string>;
  /** Lists the members who reported an image on its open review message. */
  showReporters(job: Job, reporters: string[]): Promise<void>;
  /** Takes a published image down after a report; the message keeps a notice for the requester. */
  retract(job: Job): Promise<void>;
}

/** A held image kept by the bot until a review message carries it (no review channel yet). */
export interface ImageStash {
  /** False, and nothing stored, when the image is larger than `maxBytes`. */
  put(jobId: string, image: DeliveredImage, maxBytes?: number): Promise<boolean>;
  get(jobId: string): Promise<DeliveredImage | undefined>;
  delete(jobId: string): Promise<void>;
}

export interface Moderator {
  id: string;
  name: string;
}

export type DecideResult =
  | { outcome: 'done'; job: Job; record: AuditRecord }
  | { outcome: 'already'; record: AuditRecord }
  | { outcome: 'unknown' };

/**
 * What came of a member's report, for their answer. `images` is how many images it is about: a
 * message of several (a batch) is reported as a whole, and each of its images reviewed on its own.
 */
export type ReportResult =
  | { outcome: 'sent' | 'added' | 'already_reported' | 'no_reviewer' | 'unknown'; images: number }
  /** Every image of the message was decided already: the decisions, in the message's order. */
  | { outcome: 'already_decided'; images: number; records: AuditRecord[] }
  | { outcome: 'limited'; limit: number; retryAt: number };

/** One image of a reported message, as Discord shows it. */
export interface ReportedImage {
  attachmentId: string;
  fileName: string;
  url: string;
  spoiler: boolean;
}

/** The message a member reported: where it is, and its images in order. */
export interface ReportedMessage {
  /** The guild the button was clicked in (null in DMs); a job of another guild is never reported from it. */
  guildId?: string | null;
  channelId: string;
  messageId: string;
  images: ReportedImage[];
}

/**
 * The message a moderator's button is on. A custom id is whatever the client sends, so the job it
 * names must be the one this message reviews, in this guild: a moderator of one guild must not
 * decide another guild's review by sending its job id from a message of theirs.
 */
export interface DecidingMessage {
  guildId: string | null;
  messageId: string;
  /** Its attachments' file names: a review message's image is named after its job (`imageFileName`). */
  fileNames: readonly string[];
}

/** What a report did for one image of the message. */
export type ImageReport =
  | { outcome: 'sent' | 'added' | 'already_reported' | 'no_reviewer' }
  | { outcome: 'already_decided'; record: AuditRecord };

export interface PendingReview {
  job: Job;
  kind: ReviewKind;
  createdAt: number;
  /** Where the review message is; absent while no review channel could take it. */
  channelId?: string;
  messageId?: string;
}

export interface ReviewService extends Moderation {
  /** `message`, when the decision comes from a button: the review message it is on (`DecidingMessage`). */
  decide(input: {
    jobId: string;
    kind: ReviewKind;
    decision: ReviewDecision;
    moderator: Moderator;
    imageUrl?: string;
    message?: DecidingMessage;
  }): Promise<DecideResult>;
  /**
   * A member's report about a published message (`jobId` from its button: the first job's for a
   * batch). Every image of the message still undecided goes to the moderators, each on a review
   * message of its own, one per image however many members report it.
   */
  report(input: { jobId: string; reporter: Moderator; message: ReportedMessage }): Promise<ReportResult>;
  /** Reviews still waiting in a guild, oldest first. */
  pending(guildId: string): Promise<PendingReview[]>;
  /** Sends held images that had no usable review channel to the guild's channel now. Returns how many. */
  routePending(guildId: string): Promise<number>;
  /** On start: retries the held images that no review channel took before. */
  resume(): Promise<number>;
  /** Reviews waiting for a moderator in every guild (for metrics). */
  pendingCount(): Promise<number>;
  /**
   * A refusal when the member, or the guild, already has as many images waiting for a moderator
   * as the operator allows (`HELD_PER_MEMBER`, `HELD_PER_GUILD`); null when a request may go on.
   * Read before anything is reserved or billed, in the shared state, so every process agrees.
   */
  heldRefusal(userId: string, guildId: string | null): Promise<Refusal | null>;
  /**
   * Whether a member's own picture must have what an edit makes of it reviewed: the classifier
   * flagged it by the guild's sensitivity, or could not look at it within `timeoutMs` (fail closed).
   */
  inputFlagged(guildId: string | null, bytes: Uint8Array, timeoutMs: number): Promise<boolean>;
  /**
   * Drops from the pending lists and the held counts every review that no longer waits: decided,
   * expired (`HELD_TTL_MS`), or whose record is gone. Returns how many entries it dropped.
   */
  sweep(): Promise<number>;
}

/**
 * Whether a channel is age-restricted now; a thread answers for its parent. False when it cannot
 * tell, so a flagged image is then spoilered or reviewed, never shown. `fresh` skips any cache:
 * a moderator's approval may come right after the channel was changed.
 */
export type ChannelAgeCheck = (channelId: string, options?: { fresh?: boolean }) => Promise<boolean>;

/** How many held images may wait for a moderator at once (`HELD_PER_MEMBER`, `HELD_PER_GUILD`). */
export interface HeldCaps {
  heldPerMember: number;
  heldPerGuild: number;
}

export interface ReviewServiceDeps {
  store: JobStore;
  state: SharedState;
  stash: ImageStash;
  settings: GuildSettingsStore;
  desk: ReviewDesk;
  delivery: Delivery;
  /** Downloads an image (the review message's attachment) with the usual size cap. */
  fetchImage(url: string): Promise<DeliveredImage>;
  /**
   * Read when an image is published (its verdict, an approval), never taken from the request:
   * the channel may have been made age-restricted, or not, since (`src/discord/channels.ts`).
   */
  channelAgeRestricted: ChannelAgeCheck;
  /** The largest upload the guild accepts, in bytes: a held image must fit it to be published later. */
  uploadLimit(guildId: string | null): number;
  caps: HeldCaps;
  logger: Logger;
  /** Reports each member may send per hour (none counted when absent). */
  reportLimit?: ReportLimit;
  /**
   * The local NSFW classifier, the second signal beside the provider's flag. Off when absent:
   * only the provider's flags count.
   */
  classifier?: ImageClassifier;
  /** The operator's thresholds for the classifier's scores (a guild's sensitivity moves them). */
  thresholds?: NsfwThresholds;
  /** What a flagged image becomes in the bot's DM (DM_NSFW); default `spoiler`. */
  dmNsfw?: 'hold' | 'spoiler';
  /** How long a classification may take before the image is held unchecked; default 30 s. */
  classifyTimeoutMs?: number;
  /** Flagged results, holds and decisions (none recorded when absent). */
  metrics?: Pick<Metrics, 'flaggedResult' | 'imageHeld' | 'moderationDecision'>;
  now?: () => number;
}
