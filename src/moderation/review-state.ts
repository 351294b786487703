import { noopMetrics } from '../ops/metrics.ts';
import { HELD_TTL_MS } from '../jobs/store.ts';
import type { DeliveredImage, Job, Review, ReviewDecision, ReviewKind } from '../domain/job.ts';
import { classifierOff } from './classifier.ts';
import { DEFAULT_THRESHOLDS } from '../domain/moderation.ts';
import type { ReportedMessage, DecidingMessage, ReviewServiceDeps } from './review-types.ts';

/** Audit records outlive the job records they point at, so a question months later has an answer. */
export const AUDIT_TTL_MS = 365 * 24 * 3600_000;
export const VALID: Record<ReviewKind, readonly ReviewDecision[]> = {
  flag: ['approve', 'reject'],
  report: ['remove', 'keep'],
};
export const FIELD: Record<ReviewKind, 'review' | 'report'> = { flag: 'review', report: 'report' };

export const pendingSet = (guildId: string | null) => `reviews:pending:${guildId ?? 'dm'}`;
export const pendingMember = (jobId: string, kind: ReviewKind) => `${jobId}:${kind}`;
/** Every guild's pending reviews in one set, beside the per-guild ones: what a metric counts. */
export const ALL_PENDING = 'reviews:pending:all';
export const UNROUTED = 'reviews:unrouted';
export const decisionKey = (jobId: string, kind: ReviewKind) => `decision:${jobId}:${kind}`;
/** The job ids of held images waiting for a moderator, per member of a guild and per guild: what the caps count. */
export const heldByMember = (guildId: string | null, userId: string) => `held:member:${guildId ?? 'dm'}:${userId}`;
export const heldByGuild = (guildId: string | null) => `held:guild:${guildId ?? 'dm'}`;
export const heldSets = (job: Pick<Job, 'guildId' | 'userId'>) => [
  heldByMember(job.guildId, job.userId),
  heldByGuild(job.guildId),
];
/** How often `pendingCount` (read by the metrics) first drops the reviews that stopped waiting. */
export const SWEEP_INTERVAL_MS = 3600_000;
export const routingKey = (jobId: string) => `routing:${jobId}`;
/**
 * How long a process routing a held image keeps the others off it: longer than a post to Discord
 * takes with its retries. A process that died meanwhile leaves the image to the next attempt after it.
 */
export const ROUTING_CLAIM_TTL_MS = 5 * 60_000;
/** Far longer than a classification takes on a loaded machine, far shorter than a member waits. */
export const CLASSIFY_TIMEOUT_MS = 30_000;

/** Rejects after `ms`: a classifier that never answers must not keep an image from its end. */
export async function within<T>(work: Promise<T>, ms: number): Promise<T> {
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
export const namesJob = (fileName: string, jobId: string) => fileName.includes(`-${jobId}.`);

/**
 * Whether a reported message shows the job: its published message (or deferred reply), or a
 * message with an image of the job or of its batch. The job id comes from the button's custom
 * id, which the client sends; without this, a member could send another job's id (a held image,
 * another guild's) from a message of their own and put that message's image under the job's name.
 */
export function showsJob(job: Job, message: ReportedMessage): boolean {
  if (message.guildId !== undefined && message.guildId !== job.guildId) return false;
  if (job.published?.messageId === message.messageId || job.messageId === message.messageId) return true;
  const ids = job.batch?.jobIds ?? [job.id];
  return message.images.some((image) => ids.some((id) => namesJob(image.fileName, id)));
}

/** Whether a moderator's button is on the job's review message, in the job's guild (see `DecidingMessage`). */
export function reviewsJob(job: Job, review: Review, message: DecidingMessage): boolean {
  if (message.guildId !== job.guildId) return false;
  return review.messageId === message.messageId || message.fileNames.some((name) => namesJob(name, job.id));
}

/** The top-level fields of a job that `after` changed from `before` (one removed comes as undefined). */
export function changedFields(before: Job, after: Job): Partial<Job> {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]) as Set<keyof Job>;
  return Object.fromEntries(
    [...keys]
      .filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]))
      .map((key) => [key, after[key]]),
  );
}

/** What the parts of the review service share: its dependencies and the lists a review is on. */
export type ReviewState = ReturnType<typeof createReviewState>;

export function createReviewState(deps: ReviewServiceDeps) {
  const { store, state, stash, settings, desk, delivery } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.logger;
  const metrics = deps.metrics ?? noopMetrics;
  const classifier = deps.classifier ?? classifierOff;
  const thresholds = deps.thresholds ?? DEFAULT_THRESHOLDS;
  const addPending = (guildId: string | null, member: string) =>
    Promise.all([state.add(pendingSet(guildId), member), state.add(ALL_PENDING, member)]);
  const removePending = (guildId: string | null, member: string) =>
    Promise.all([state.remove(pendingSet(guildId), member), state.remove(ALL_PENDING, member)]);
  /**
   * Whether a review still waits for a moderator. A held image stops waiting `HELD_TTL_MS` after
   * its hold, when its record and stashed bytes expire; a record read just before it expires (or
   * kept by a backend without TTLs) is no different.
   */
  const waiting = (job: Job | undefined, kind: ReviewKind) => {
    const review = job?.[FIELD[kind]];
    return review?.status === 'pending' && (kind !== 'flag' || now() < review.createdAt + HELD_TTL_MS);
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
    await Promise.all([
      ...removals.map(([set, value]) => state.remove(set, value)),
      kind === 'flag' ? stash.delete(jobId) : undefined,
    ]);
  }

  return {
    deps,
    store,
    state,
    stash,
    settings,
    desk,
    delivery,
    now,
    log,
    metrics,
    classifier,
    thresholds,
    addPending,
    removePending,
    waiting,
    reviewedImage,
    stillHeld,
    forget,
  };
}
