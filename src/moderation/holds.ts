import { updateJob } from '../jobs/store.ts';
import type { DeliveredImage, Job, Review, Verdict } from '../domain/job.ts';
import { nsfwPolicy, type Place } from '../domain/place.ts';
import { decide, plausibleScores, type Classification } from './policy.ts';
import type { ReviewState } from './review-state.ts';
import type { ReviewService } from './review-types.ts';
import {
  pendingMember,
  UNROUTED,
  heldByMember,
  heldByGuild,
  heldSets,
  routingKey,
  ROUTING_CLAIM_TTL_MS,
  CLASSIFY_TIMEOUT_MS,
  within,
} from './review-state.ts';

/** A flagged image held for review: the verdict, the hold, posting it where moderators see it, the caps on what waits. */
export function createHolds(
  ctx: ReviewState,
): Pick<ReviewService, 'verdict' | 'hold' | 'heldRefusal'> & { routePending(guildId?: string): Promise<number> } {
  const {
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
    waiting,
    stillHeld,
  } = ctx;

  /** Posts the review message if the guild has a channel that takes it; false leaves the image stashed. */
  async function route(job: Job, image: DeliveredImage): Promise<boolean> {
    const { reviewChannelId } = await settings.get(job.guildId ?? 'dm');
    if (!reviewChannelId) {
      await state.add(UNROUTED, job.id);
      return false;
    }
    try {
      const posted = {
        channelId: reviewChannelId,
        messageId: await desk.post(reviewChannelId, job, image, 'flag', []),
      };
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
      log.warn(
        { err, jobId: job.id, guildId: job.guildId, channelId: reviewChannelId },
        'the review channel did not take a flagged image; it stays held',
      );
      await state.add(UNROUTED, job.id);
      return false;
    }
    await state.remove(UNROUTED, job.id);
    await stash.delete(job.id);
    return true;
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
        await Promise.all([
          addPending(job.guildId, pendingMember(jobId, 'flag')),
          ...heldSets(job).map((set) => state.add(set, jobId)),
        ]);
        const posted = await route(job, image);
        // A review message that went out keeps the claim until it expires, even when it could not
        // be recorded; an image no channel took can be tried again at once.
        keep = posted || Boolean(job.review.messageId);
        if (posted) {
          routed++;
          await delivery
            .notice(job, 'awaiting_review')
            .catch((err: unknown) => log.debug({ err, jobId }, 'could not update the requester'));
        }
      } finally {
        if (!keep) await state.release(key);
      }
    }
    return routed;
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
      if (!plausibleScores(scores))
        throw new Error(`the NSFW classifier answered scores that are not probabilities: ${JSON.stringify(scores)}`);
      return { classifier: 'ok', scores };
    } catch (err) {
      log.warn(
        { err, jobId: job.id, classifierStatus: classifier.status() },
        'the NSFW classifier could not check an image: it is held for review unchecked (fail closed)',
      );
      return { classifier: 'failed' };
    }
  }

  /**
   * Where the bot was not installed by a server, no guild's settings apply and nobody can review:
   * the operator's thresholds decide whether the image is flagged, and the place what becomes of
   * it. No channel is looked up (the bot may not see it). An image nobody could check is never
   * shown, even in the bot's DM.
   */
  function elsewhere(job: Job, place: Place, classification: Classification): Verdict {
    const { reasons } = decide({
      providerFlagged: Boolean(job.nsfw?.flagged),
      classification,
      thresholds,
      sensitivity: 'standard',
      reviewAll: false,
      // A flagged picture the result was made from flags the result here too: nobody can review it.
      inputFlagged: job.inputFlagged,
      channelNsfw: false,
      nsfwChannels: 'review',
    });
    job.nsfw = {
      flagged: Boolean(job.nsfw?.flagged),
      hasNsfwContents: job.nsfw?.hasNsfwContents ?? null,
      detectionResult: job.nsfw?.detectionResult ?? null,
      ...classification,
      reasons,
    };
    if (reasons.length === 0) return 'deliver';
    const spoiler = nsfwPolicy(place, deps.dmNsfw ?? 'spoiler') === 'spoiler' && !reasons.includes('classifier_failed');
    metrics.flaggedResult(spoiler ? 'spoiler' : 'held');
    return spoiler ? 'spoiler' : 'withhold';
  }

  return {
    async verdict(job, image) {
      if (job.place && job.place !== 'guild') return elsewhere(job, job.place, await classify(job, image));
      const [guild, classification] = await Promise.all([settings.get(job.guildId ?? 'dm'), classify(job, image)]);
      const providerFlagged = Boolean(job.nsfw?.flagged);
      const policy = (channelNsfw: boolean) =>
        decide({
          providerFlagged,
          classification,
          thresholds,
          sensitivity: guild.sensitivity,
          reviewAll: guild.reviewAll,
          inputFlagged: job.inputFlagged,
          channelNsfw,
          nsfwChannels: guild.nsfwChannels,
        });
      // The channel as it is when the image is ready, not when it was asked for, and not as a
      // cache saw it seconds ago (flagged images are few); an image nothing flagged is shown
      // anywhere, so it needs no look.
      const asIfPublic = policy(false);
      const { verdict, reasons } =
        asIfPublic.reasons.length === 0
          ? asIfPublic
          : policy(await deps.channelAgeRestricted(job.channelId, { fresh: true }));
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
        await delivery
          .fail(job, { kind: 'upload_limit' })
          .catch((err: unknown) =>
            log.warn({ err, jobId: job.id }, 'could not tell the requester their image is too large'),
          );
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
        await Promise.all([
          addPending(job.guildId, pendingMember(job.id, 'flag')),
          ...heldSets(job).map((set) => state.add(set, job.id)),
        ]);
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

    routePending,
  };
}
