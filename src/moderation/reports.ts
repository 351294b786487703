import { updateJob } from '../jobs/store.ts';
import type { AuditRecord, Job, Review } from '../domain/job.ts';
import type { ReviewState } from './review-state.ts';
import type { Moderator, ReportedImage, ReportedMessage, ImageReport, ReviewService } from './review-types.ts';
import { AUDIT_TTL_MS, pendingMember, decisionKey, namesJob, showsJob } from './review-state.ts';

/** A member's report of a published image: each image of the message sent to the moderators once. */
export function createReports(ctx: ReviewState): Pick<ReviewService, 'report'> {
  const { deps, store, state, settings, desk, now, log, addPending, reviewedImage } = ctx;

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
  async function reportImage(
    job: Job,
    attachment: ReportedImage | undefined,
    reporter: Moderator,
    message: ReportedMessage,
  ): Promise<ImageReport> {
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

  return {
    async report({ jobId, reporter, message }) {
      const job = await store.get(jobId);
      if (!job) return { outcome: 'unknown', images: 0 };
      if (!showsJob(job, message)) {
        log.warn(
          { jobId, guildId: message.guildId, messageId: message.messageId, reporterId: reporter.id },
          'a report named a job its message does not show; ignored',
        );
        return { outcome: 'unknown', images: 0 };
      }
      // Where no server installed the bot there is no desk of its own: a report must not reach another server's.
      if (job.place && job.place !== 'guild') return { outcome: 'no_reviewer', images: 0 };
      const allowance = deps.reportLimit ? await deps.reportLimit.take(job.guildId, reporter.id) : undefined;
      if (allowance && !allowance.allowed)
        return { outcome: 'limited', limit: allowance.limit, retryAt: allowance.retryAt };
      const outcomes: ImageReport[] = [];
      const count = (outcome: ImageReport['outcome']) => outcomes.filter((o) => o.outcome === outcome).length;
      // A report that reached no moderator, or only ones who already had it, does not count against the member.
      const giveBackUnused = async () => {
        if (allowance?.allowed && !count('sent') && !count('added')) await allowance.giveBack();
      };
      try {
        // One image after another, so the review messages come in the order the message shows them.
        for (const { job: image, attachment } of await imagesOf(job, message))
          outcomes.push(await reportImage(image, attachment, reporter, message));
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
  };
}
