import type { Logger } from '../logger.ts';
import { noopMetrics, type Metrics } from '../ops/metrics.ts';
import type { Refusal } from '../jobs/limits.ts';
import { HELD_TTL_MS, updateJob, type JobStore } from '../jobs/store.ts';
import type { AuditRecord, DeliveredImage, Delivery, Job, Moderation, Review, ReviewDecision, ReviewKind } from '../domain/job.ts';
import type { SharedState } from '../storage/shared-state.ts';
import type { ReportLimit } from './report-limit.ts';
import { classifierOff, type ImageClassifier } from './classifier.ts';
import { approvedAsSpoiler, decide, plausibleScores, type Classification } from './policy.ts';
import type { GuildSettingsStore } from './settings.ts';
import { DEFAULT_THRESHOLDS, type NsfwThresholds } from '../domain/moderation.ts';
import type { KeyValue } from '../storage/key-value.ts';

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
type ImageReport = { outcome: 'sent' | 'added' | 'already_reported' | 'no_reviewer' } | { outcome: 'already_decided'; record: AuditRecord };

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
  decide(input: { jobId: string; kind: ReviewKind; decision: ReviewDecision; moderator: Moderator; imageUrl?: string; message?: DecidingMessage }): Promise<DecideResult>;
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
  /** How long a classification may take before the image is held unchecked; default 30 s. */
  classifyTimeoutMs?: number;
  /** Flagged results, holds and decisions (none recorded when absent). */
  metrics?: Pick<Metrics, 'flaggedResult' | 'imageHeld' | 'moderationDecision'>;
  now?: () => number;
}

/** Audit records outlive the job records they point at, so a question months later has an answer. */
const AUDIT_TTL_MS = 365 * 24 * 3600_000;
const VALID: Record<ReviewKind, readonly ReviewDecision[]> = { flag: ['approve', 'reject'], report: ['remove', 'keep'] };
const FIELD: Record<ReviewKind, 'review' | 'report'> = { flag: 'review', report: 'report' };

const pendingSet = (guildId: string | null) => `reviews:pending:${guildId ?? 'dm'}`;
const pendingMember = (jobId: string, kind: ReviewKind) => `${jobId}:${kind}`;
/** Every guild's pending reviews in one set, beside the per-guild ones: what a metric counts. */
const ALL_PENDING = 'reviews:pending:all';
const UNROUTED = 'reviews:unrouted';
const decisionKey = (jobId: string, kind: ReviewKind) => `decision:${jobId}:${kind}`;
/** The job ids of held images waiting for a moderator, per member of a guild and per guild: what the caps count. */
const heldByMember = (guildId: string | null, userId: string) => `held:member:${guildId ?? 'dm'}:${userId}`;
const heldByGuild = (guildId: string | null) => `held:guild:${guildId ?? 'dm'}`;
const heldSets = (job: Pick<Job, 'guildId' | 'userId'>) => [heldByMember(job.guildId, job.userId), heldByGuild(job.guildId)];
/** How often `pendingCount` (read by the metrics) first drops the reviews that stopped waiting. */
const SWEEP_INTERVAL_MS = 3600_000;
const routingKey = (jobId: string) => `routing:${jobId}`;
/**
 * How long a process routing a held image keeps the others off it: longer than a post to Discord
 * takes with its retries. A process that died meanwhile leaves the image to the next attempt after it.
 */
const ROUTING_CLAIM_TTL_MS = 5 * 60_000;
/** Far longer than a classification takes on a loaded machine, far shorter than a member waits. */
const CLASSIFY_TIMEOUT_MS = 30_000;

/** Rejects after `ms`: a classifier that never answers must not keep an image from its end. */
async function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the NSFW classifier did not answer within ${ms} ms`)), ms);
        timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether a file name is one of the job's images: `imageFileName` ends every name with `-<jobId>.<ext>`. */
const namesJob = (fileName: string, jobId: string) => fileName.includes(`-${jobId}.`);

/**
 * Whether a reported message shows the job: its published message (or deferred reply), or a
 * message with an image of the job or of its batch. The job id comes from the button's custom
 * id, which the client sends; without this, a member could send another job's id (a held image,
 * another guild's) from a message of their own and put that message's image under the job's name.
 */
function showsJob(job: Job, message: ReportedMessage): boolean {
  if (message.guildId !== undefined && message.guildId !== job.guildId) return false;
  if (job.published?.messageId === message.messageId || job.messageId === message.messageId) return true;
  const ids = job.batch?.jobIds ?? [job.id];
  return message.images.some((image) => ids.some((id) => namesJob(image.fileName, id)));
}

/** Whether a moderator's button is on the job's review message, in the job's guild (see `DecidingMessage`). */
function reviewsJob(job: Job, review: Review, message: DecidingMessage): boolean {
  if (message.guildId !== job.guildId) return false;
  return review.messageId === message.messageId || message.fileNames.some((name) => namesJob(name, job.id));
}

/**
 * Moderator review, free of discord.js: holds flagged images, routes them to the guild's review
 * channel, and carries out decisions. A decision is a claim in the shared state (SET NX on
 * Redis), so of two moderators clicking at once, or one double-clicking, exactly one decides;
 * the claim's value is the audit record.
 */
export function createReviewService(deps: ReviewServiceDeps): ReviewService {
  const { store, state, stash, settings, desk, delivery } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.logger;
  const metrics = deps.metrics ?? noopMetrics;
  const classifier = deps.classifier ?? classifierOff;
  const thresholds = deps.thresholds ?? DEFAULT_THRESHOLDS;
  const addPending = (guildId: string | null, member: string) => Promise.all([state.add(pendingSet(guildId), member), state.add(ALL_PENDING, member)]);
  const removePending = (guildId: string | null, member: string) => Promise.all([state.remove(pendingSet(guildId), member), state.remove(ALL_PENDING, member)]);
  /**
   * Whether a review still waits for a moderator. A held image stops waiting `HELD_TTL_MS` after
   * its hold, when its record and stashed bytes expire; a record read just before it expires (or
   * kept by a backend without TTLs) is no different.
   */
  const waiting = (job: Job | undefined, kind: ReviewKind) => {
    const review = job?.[FIELD[kind]];
    return review?.status === 'pending' && (kind !== 'flag' || now() < review.createdAt + HELD_TTL_MS);
  };
  let sweptAt = now();

  /** Posts the review message if the guild has a channel that takes it; false leaves the image stashed. */
  async function route(job: Job, image: DeliveredImage): Promise<boolean> {
    const { reviewChannelId } = await settings.get(job.guildId ?? 'dm');
    if (!reviewChannelId) {
      await state.add(UNROUTED, job.id);
      return false;
    }
    try {
      const posted = { channelId: reviewChannelId, messageId: await desk.post(reviewChannelId, job, image, 'flag', []) };
      job.review = { ...(job.review as Review), ...posted };
      // Recorded on the record as it is now: it may have been saved since it was read.
      const saved = await updateJob(
        store,
        job.id,
        (current) => {
          if (current.review?.status !== 'pending') return false;
          current.review = { ...current.review, ...posted };
          return true;
        },
        job,
      );
      if (saved) Object.assign(job, saved);
    } catch (err) {
      log.warn({ err, jobId: job.id, guildId: job.guildId, channelId: reviewChannelId }, 'the review channel did not take a flagged image; it stays held');
      await state.add(UNROUTED, job.id);
      return false;
    }
    await state.remove(UNROUTED, job.id);
    await stash.delete(job.id);
    return true;
  }

  const effects: Record<ReviewDecision, (job: Job, imageUrl?: string) => Promise<void>> = {
    async approve(job, imageUrl) {
      const image = await reviewedImage(job, imageUrl);
      // Read now, days after the request perhaps: the channel may have changed since.
      const ageRestricted = await deps.channelAgeRestricted(job.channelId, { fresh: true });
      const outcome = await delivery.deliver(job, image, { spoiler: approvedAsSpoiler(ageRestricted, job.nsfw?.reasons) });
      if (outcome === 'over_upload_limit') job.error = { kind: 'upload_limit' };
      job.state = outcome === 'delivered' ? 'delivered' : 'failed';
    },
    reject: (job) => delivery.notice(job, 'rejected'),
    remove: (job) => desk.retract(job),
    keep: async () => undefined,
  };

  /** The review message's own attachment first; the stash only if that is gone. */
  async function reviewedImage(job: Job, imageUrl: string | undefined): Promise<DeliveredImage> {
    if (imageUrl) {
      try {
        return await deps.fetchImage(imageUrl);
      } catch (err) {
        log.warn({ err, jobId: job.id }, 'could not fetch the review message attachment; trying the stash');
      }
    }
    const stashed = await stash.get(job.id);
    if (!stashed) throw new Error('the reviewed image is no longer available');
    return stashed;
  }

  /**
   * Sends the held images that had no usable channel (of one guild, or of all) where they belong
   * now. Every process does this when it starts, so each image is claimed first: of two processes
   * starting together, one posts its review message.
   */
  async function routePending(guildId?: string): Promise<number> {
    let routed = 0;
    for (const jobId of await state.members(UNROUTED)) {
      const listed = await store.get(jobId);
      if (listed && guildId !== undefined && (listed.guildId ?? 'dm') !== guildId) continue;
      const key = routingKey(jobId);
      const claim = await state.claim(key, { at: now() }, ROUTING_CLAIM_TTL_MS);
      if (!claim.won) continue;
      let keep = false;
      try {
        // Read again under the claim: another process may have posted it since the list was read.
        const job = await store.get(jobId);
        if (job?.review?.status !== 'pending' || job.review.messageId || !waiting(job, 'flag')) {
          await state.remove(UNROUTED, jobId);
          continue;
        }
        const image = await stash.get(jobId);
        if (!image) continue;
        // A hold cut short may not have listed it as pending, nor counted it: moderators' lists must show it.
        await Promise.all([addPending(job.guildId, pendingMember(jobId, 'flag')), ...heldSets(job).map((set) => state.add(set, jobId))]);
        const posted = await route(job, image);
        // A review message that went out keeps the claim until it expires, even when it could not
        // be recorded; an image no channel took can be tried again at once.
        keep = posted || Boolean(job.review.messageId);
        if (posted) {
          routed++;
          await delivery.notice(job, 'awaiting_review').catch((err: unknown) => log.debug({ err, jobId }, 'could not update the requester'));
        }
      } finally {
        if (!keep) await state.release(key);
      }
    }
    return routed;
  }

  /**
   * The images of a reported message and the job each belongs to. A batch message's button names
   * the batch (its first job): each image is found among the batch's jobs by the attachment their
   * record names, or by its file name (which ends with the job's id, see `imageFileName`), since
   * a report can come before the last image's record is saved. A message of one image is its job's.
   */
  async function imagesOf(job: Job, message: ReportedMessage): Promise<{ job: Job; attachment?: ReportedImage }[]> {
    const single = [{ job, attachment: message.images[0] }];
    if (!job.batch) return single;
    const siblings = await Promise.all(job.batch.jobIds.map((id) => (id === job.id ? job : store.get(id))));
    const found: { job: Job; attachment: ReportedImage }[] = [];
    for (const attachment of message.images) {
      const owner = siblings.find(
        (s) =>
          s &&
          ((s.published?.messageId === message.messageId && s.published.attachmentId === attachment.attachmentId) ||
            s.fileName === attachment.fileName ||
            namesJob(attachment.fileName, s.id)),
      );
      if (owner && !found.some((f) => f.job.id === owner.id)) found.push({ job: owner, attachment });
    }
    return found.length ? found : single;
  }

  /** One image of a reported message: sent to the moderators, added to its open review, or why not. */
  async function reportImage(job: Job, attachment: ReportedImage | undefined, reporter: Moderator, message: ReportedMessage): Promise<ImageReport> {
    const jobId = job.id;
    const decided = await state.read<AuditRecord>(decisionKey(jobId, 'report'));
    if (decided) return { outcome: 'already_decided', record: decided };
    const reporters = `reporters:${jobId}`;
    if (!(await state.add(reporters, reporter.id))) return { outcome: 'already_reported' };
    const { reviewChannelId } = await settings.get(job.guildId ?? 'dm');
    const opened = reviewChannelId ? await state.claim(`report-open:${jobId}`, reporter.id, AUDIT_TTL_MS) : undefined;
    if (!opened) {
      // Nobody could act on it: forget the report so the member can send it once a channel exists.
      await state.remove(reporters, reporter.id);
      return { outcome: 'no_reviewer' };
    }
    if (!opened.won) {
      const current = await store.get(jobId);
      if (current?.report?.messageId) await desk.showReporters(current, await state.members(reporters));
      return { outcome: 'added' };
    }
    // The published message is the truth: after a token expiry it is not the deferred reply.
    const published = (current: Job): Job['published'] => ({
      // What else is known of that message (its attachment in a batch) stays.
      ...(current.published?.messageId === message.messageId ? current.published : {}),
      channelId: message.channelId,
      messageId: message.messageId,
      spoiler: attachment?.spoiler ?? false,
      // In a message of several images, the one a removal takes out while the others stay.
      ...(current.batch && attachment && message.images.length > 1 ? { attachmentId: attachment.attachmentId } : {}),
    });
    let report: Review;
    try {
      job.published = published(job);
      const image = await reviewedImage(job, attachment?.url);
      const messageId = await desk.post(reviewChannelId!, job, image, 'report', await state.members(reporters));
      report = { status: 'pending', createdAt: now(), channelId: reviewChannelId, messageId };
    } catch (err) {
      log.warn({ err, jobId, channelId: reviewChannelId }, 'could not send a report to the review channel');
      await Promise.all([state.release(`report-open:${jobId}`), state.remove(reporters, reporter.id)]);
      return { outcome: 'no_reviewer' };
    }
    // The review message is out: it goes onto the record as it is now (the job's last save may
    // have landed since it was read, as it does when a member reports at once).
    await updateJob(
      store,
      jobId,
      (current) => {
        current.published = published(current);
        current.report = report;
        return true;
      },
      job,
    );
    await addPending(job.guildId, pendingMember(jobId, 'report'));
    log.info({ jobId, guildId: job.guildId, reporterId: reporter.id, batchId: job.batch?.id }, 'image reported');
    return { outcome: 'sent' };
  }

  /**
   * The classifier's look at the image. Fails closed: a classifier that is on but rejects, times
   * out or is unavailable leaves the image unchecked, and the policy holds it.
   */
  async function classify(job: Job, image: DeliveredImage): Promise<Classification> {
    if (classifier.status() === 'off') return { classifier: 'off' };
    try {
      const scores = await within(classifier.classify(image.bytes), deps.classifyTimeoutMs ?? CLASSIFY_TIMEOUT_MS);
      // Scores that are not probabilities would read as a clean image: the image was not checked.
      if (!plausibleScores(scores)) throw new Error(`the NSFW classifier answered scores that are not probabilities: ${JSON.stringify(scores)}`);
      return { classifier: 'ok', scores };
    } catch (err) {
      log.warn({ err, jobId: job.id, classifierStatus: classifier.status() }, 'the NSFW classifier could not check an image: it is held for review unchecked (fail closed)');
      return { classifier: 'failed' };
    }
  }

  return {
    async verdict(job, image) {
      const [guild, classification] = await Promise.all([settings.get(job.guildId ?? 'dm'), classify(job, image)]);
      const providerFlagged = Boolean(job.nsfw?.flagged);
      const policy = (channelNsfw: boolean) =>
        decide({ providerFlagged, classification, thresholds, sensitivity: guild.sensitivity, reviewAll: guild.reviewAll, channelNsfw, nsfwChannels: guild.nsfwChannels });
      // The channel as it is when the image is ready, not when it was asked for, and not as a
      // cache saw it seconds ago (flagged images are few); an image nothing flagged is shown
      // anywhere, so it needs no look.
      const asIfPublic = policy(false);
      const { verdict, reasons } = asIfPublic.reasons.length === 0 ? asIfPublic : policy(await deps.channelAgeRestricted(job.channelId, { fresh: true }));
      // Both signals and the reasons go on the record: the reviewer sees them, and an approval reads them.
      job.nsfw = {
        flagged: providerFlagged,
        hasNsfwContents: job.nsfw?.hasNsfwContents ?? null,
        detectionResult: job.nsfw?.detectionResult ?? null,
        ...classification,
        reasons,
      };
      if (verdict === 'spoiler') metrics.flaggedResult('spoiler');
      return verdict;
    },

    async hold(job, image) {
      // Stashed before anything else: a crash from here on leaves an image a moderator can still
      // review. One over the upload limit could never be published after a review: nothing of it is kept.
      if (!(await stash.put(job.id, image, deps.uploadLimit(job.guildId)))) {
        log.warn({ jobId: job.id, bytes: image.bytes.length }, 'a flagged image over the upload limit was not held');
        await delivery.fail(job, { kind: 'upload_limit' }).catch((err: unknown) => log.warn({ err, jobId: job.id }, 'could not tell the requester their image is too large'));
        return 'over_upload_limit';
      }
      job.state = 'held';
      job.review = { status: 'pending', createdAt: now() };
      // Listed as unrouted, under this process's claim, before the held record exists: however far
      // the rest gets, a later `routePending` finds the image (and drops it from the list if the
      // record never became held).
      const claim = await state.claim(routingKey(job.id), { at: now() }, ROUTING_CLAIM_TTL_MS);
      await state.add(UNROUTED, job.id);
      let routed = false;
      try {
        await store.save(job);
        await Promise.all([addPending(job.guildId, pendingMember(job.id, 'flag')), ...heldSets(job).map((set) => state.add(set, job.id))]);
        metrics.flaggedResult('held');
        // Records from before the reasons were kept were held for the provider's flag.
        metrics.imageHeld(job.nsfw?.reasons?.[0] ?? 'provider');
        routed = await route(job, image);
      } finally {
        // A review message that went out keeps the claim, even when it could not be recorded; an
        // image no channel took, or a hold cut short, can be tried again at once.
        if (!routed && !job.review.messageId && claim.won) await state.release(routingKey(job.id));
      }
      // The image is safely held either way: a requester who can't be told is no reason to fail the job.
      await delivery
        .notice(job, routed ? 'awaiting_review' : 'no_reviewer')
        .catch((err: unknown) => log.warn({ err, jobId: job.id }, 'could not tell the requester their image is held'));
      return 'held';
    },

    async decide({ jobId, kind, decision, moderator, imageUrl, message }) {
      const job = await store.get(jobId);
      const review = job?.[FIELD[kind]];
      if (!job || !review || !VALID[kind].includes(decision)) return { outcome: 'unknown' };
      if (message && !reviewsJob(job, review, message)) {
        log.warn({ jobId, guildId: message.guildId, messageId: message.messageId, moderatorId: moderator.id }, 'a decision named a job its message does not review; ignored');
        return { outcome: 'unknown' };
      }
      const record: AuditRecord = { jobId, guildId: job.guildId, review: kind, decision, moderatorId: moderator.id, moderatorName: moderator.name, at: now() };
      const key = decisionKey(jobId, kind);
      const claim = await state.claim(key, record, AUDIT_TTL_MS);
      if (!claim.won) return { outcome: 'already', record: claim.holder };
      const before = structuredClone(job);
      try {
        await effects[decision](job, imageUrl);
      } catch (err) {
        // Nothing took effect: give the decision back so a moderator can click again.
        await state.release(key);
        throw err;
      }
      // The effect happened: what it changed, and the decision, go onto the record as it is now,
      // which another writer (the job's last save, a report) may have saved since it was read.
      const changed = changedFields(before, job);
      const decided = (await updateJob(
        store,
        jobId,
        (current) => {
          Object.assign(current, changed);
          current[FIELD[kind]] = { ...(current[FIELD[kind]] ?? review), status: 'decided', decision: record };
          return true;
        },
        job,
      ))!;
      await removePending(job.guildId, pendingMember(jobId, kind));
      metrics.moderationDecision(decision);
      if (kind === 'flag') await Promise.all([state.remove(UNROUTED, jobId), stash.delete(jobId), ...heldSets(job).map((set) => state.remove(set, jobId))]);
      log.info({ audit: record }, 'moderation decision');
      return { outcome: 'done', job: decided, record };
    },

    async report({ jobId, reporter, message }) {
      const job = await store.get(jobId);
      if (!job) return { outcome: 'unknown', images: 0 };
      if (!showsJob(job, message)) {
        log.warn({ jobId, guildId: message.guildId, messageId: message.messageId, reporterId: reporter.id }, 'a report named a job its message does not show; ignored');
        return { outcome: 'unknown', images: 0 };
      }
      const allowance = deps.reportLimit ? await deps.reportLimit.take(job.guildId, reporter.id) : undefined;
      if (allowance && !allowance.allowed) return { outcome: 'limited', limit: allowance.limit, retryAt: allowance.retryAt };
      const outcomes: ImageReport[] = [];
      const count = (outcome: ImageReport['outcome']) => outcomes.filter((o) => o.outcome === outcome).length;
      // A report that reached no moderator, or only ones who already had it, does not count against the member.
      const giveBackUnused = async () => {
        if (allowance?.allowed && !count('sent') && !count('added')) await allowance.giveBack();
      };
      try {
        // One image after another, so the review messages come in the order the message shows them.
        for (const { job: image, attachment } of await imagesOf(job, message)) outcomes.push(await reportImage(image, attachment, reporter, message));
      } catch (err) {
        await giveBackUnused().catch(() => undefined);
        throw err;
      }
      await giveBackUnused();
      if (count('sent')) return { outcome: 'sent', images: count('sent') + count('added') };
      if (count('added')) return { outcome: 'added', images: count('added') };
      if (count('no_reviewer')) return { outcome: 'no_reviewer', images: count('no_reviewer') };
      if (count('already_reported')) return { outcome: 'already_reported', images: count('already_reported') };
      const records = outcomes.flatMap((o) => (o.outcome === 'already_decided' ? [o.record] : []));
      return { outcome: 'already_decided', images: records.length, records };
    },

    async pending(guildId) {
      const members = await state.members(pendingSet(guildId));
      const items = await Promise.all(
        members.map(async (member): Promise<PendingReview | undefined> => {
          const [jobId, kind] = member.split(':') as [string, ReviewKind];
          const job = await store.get(jobId);
          const review = job?.[FIELD[kind]];
          if (!job || !review || !waiting(job, kind)) {
            // Decided, expired or gone: it leaves the list for good.
            await forget(jobId, kind, job, guildId);
            return undefined;
          }
          return { job, kind, createdAt: review.createdAt, channelId: review.channelId, messageId: review.messageId };
        }),
      );
      return items.filter((i): i is PendingReview => Boolean(i)).sort((a, b) => a.createdAt - b.createdAt);
    },

    routePending,

    async resume() {
      await sweep();
      return routePending();
    },

    async pendingCount() {
      if (now() - sweptAt >= SWEEP_INTERVAL_MS) await sweep();
      return (await state.members(ALL_PENDING)).length;
    },

    async heldRefusal(userId, guildId) {
      const caps = [
        { kind: 'held_member', set: heldByMember(guildId, userId), limit: deps.caps.heldPerMember },
        { kind: 'held_guild', set: heldByGuild(guildId), limit: deps.caps.heldPerGuild },
      ] as const;
      for (const { kind, set, limit } of caps) {
        const held = await stillHeld(set, limit);
        if (held >= limit) return { kind, limit, held };
      }
      return null;
    },

    sweep,
  };

  /**
   * How many images of a held set still wait for a moderator. An entry that stopped waiting
   * (expired, decided, a record gone) can only count too many, so the records are read, and such
   * entries dropped, only when the set has reached `limit`.
   */
  async function stillHeld(set: string, limit: number): Promise<number> {
    const jobIds = await state.members(set);
    if (jobIds.length < limit) return jobIds.length;
    const live = await Promise.all(
      jobIds.map(async (jobId) => {
        if (waiting(await store.get(jobId), 'flag')) return true;
        await state.remove(set, jobId);
        return false;
      }),
    );
    return live.filter(Boolean).length;
  }

  async function sweep(): Promise<number> {
    sweptAt = now();
    let dropped = 0;
    for (const member of await state.members(ALL_PENDING)) {
      const [jobId, kind] = member.split(':') as [string, ReviewKind];
      const job = await store.get(jobId);
      if (waiting(job, kind)) {
        // Holds from before the caps existed are counted from now on.
        if (kind === 'flag') await Promise.all(heldSets(job!).map((set) => state.add(set, jobId)));
        continue;
      }
      dropped++;
      await forget(jobId, kind, job);
    }
    return dropped;
  }

  /**
   * A review that stopped waiting leaves every list it is on. With its record gone, only what
   * names it by id alone can go: its guild's lists (`guildId`, when the caller knows it) and its
   * member's count are then left to `pending` and `heldRefusal`, which read them.
   */
  async function forget(jobId: string, kind: ReviewKind, job: Job | undefined, guildId?: string | null) {
    const guild = job ? job.guildId : guildId;
    const member = pendingMember(jobId, kind);
    const removals: [string, string][] = [[ALL_PENDING, member]];
    if (guild !== undefined) removals.push([pendingSet(guild), member]);
    if (kind === 'flag') {
      removals.push([UNROUTED, jobId]);
      if (guild !== undefined) removals.push([heldByGuild(guild), jobId]);
      if (job) removals.push([heldByMember(job.guildId, job.userId), jobId]);
    }
    await Promise.all([...removals.map(([set, value]) => state.remove(set, value)), kind === 'flag' ? stash.delete(jobId) : undefined]);
  }
}

/** The top-level fields of a job that `after` changed from `before` (one removed comes as undefined). */
function changedFields(before: Job, after: Job): Partial<Job> {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]) as Set<keyof Job>;
  return Object.fromEntries([...keys].filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key])).map((key) => [key, after[key]]));
}

/**
 * Held images in a Keyv namespace, as base64 (Keyv values are JSON), for as long as a held record
 * lives (`HELD_TTL_MS`).
 */
export function createImageStash(kv: KeyValue, ttlMs = HELD_TTL_MS): ImageStash {
  return {
    async put(jobId, image, maxBytes = Infinity) {
      if (image.bytes.length > maxBytes) return false;
      await kv.set(`image:${jobId}`, { ...image, bytes: Buffer.from(image.bytes).toString('base64') }, ttlMs);
      return true;
    },
    async get(jobId) {
      const stored = (await kv.get(`image:${jobId}`)) as (Omit<DeliveredImage, 'bytes'> & { bytes: string }) | undefined;
      return stored ? { ...stored, bytes: new Uint8Array(Buffer.from(stored.bytes, 'base64')) } : undefined;
    },
    async delete(jobId) {
      await kv.delete(`image:${jobId}`);
    },
  };
}
