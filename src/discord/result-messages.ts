import type { APIEmbed } from 'discord.js';
import type { Job, Notice, ProgressView } from '../domain/job.ts';
import { upscaledSize } from '../domain/tools.ts';
import { displaySize } from '../ppinfra/size.ts';
import { resultButtons, upscale2kButtons } from './result-buttons.ts';
import { t, type MessageKey } from './i18n.ts';
import {
  aboutPrompt,
  EMBED_COLOR,
  failureText,
  NO_MENTIONS,
  progressContent,
  safeText,
  SHOW_EMBEDS,
  SUPPRESS_EMBEDS,
  textBody,
} from './messages.ts';

// The finished image's message: its file, buttons and embed, the notices of a held image, and the one reply a batch shares.

/** A file name people can recognise in their downloads: the prompt's first words and the job id. */
export function imageFileName(job: Pick<Job, 'prompt' | 'id'>, extension: string): string {
  const slug = job.prompt
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  const ext = /^[a-z0-9]{2,5}$/.test(extension) ? extension : 'jpeg';
  return `qwen-image-${slug ? `${slug}-` : ''}${job.id}.${ext}`;
}

/** What the embed says of the image: the prompt, the edit's instruction, or the upscale's size. */
function resultDescription(job: Job): string {
  if (job.tool === 'edit') return t(job.locale, 'result.edited', { instruction: safeText(job.prompt, 900) });
  if (job.tool === 'upscale' && job.source) {
    const { width, height } = upscaledSize(job.source, job.resolution ?? '2k');
    return t(job.locale, 'result.upscaled', { width, height });
  }
  return safeText(job.prompt, 1000);
}

/** The size shown: an upscale's target; for anything else what was asked for (an edit keeps its source's). */
const shownSize = (job: Job) => {
  if (job.tool !== 'upscale' || !job.source) return displaySize(job.size);
  const { width, height } = upscaledSize(job.source, job.resolution ?? '2k');
  return `${width}×${height}`;
};

/** Discord blurs an attachment whose name starts with SPOILER_; an embed image is never blurred. */
export const spoilerName = (fileName: string) => `SPOILER_${fileName}`;

export function resultEmbed(job: Job, fileName: string, now: number): APIEmbed {
  const seconds = ((job.completedAt ?? now) - (job.submittedAt ?? job.createdAt)) / 1000;
  return {
    title: t(job.locale, 'result.title'),
    description: resultDescription(job),
    color: EMBED_COLOR,
    image: { url: `attachment://${fileName}` },
    fields: [
      { name: t(job.locale, 'result.size'), value: shownSize(job), inline: true },
      {
        name: t(job.locale, 'result.time'),
        value: t(job.locale, 'result.seconds', { seconds: seconds.toFixed(1) }),
        inline: true,
      },
      { name: t(job.locale, 'result.requester'), value: `<@${job.userId}>`, inline: true },
    ],
    timestamp: new Date(now).toISOString(),
  };
}

/**
 * The finished image. Behind a spoiler it is a blurred attachment with a content warning, and
 * the embed shows no image (embeds cannot be blurred). The prompt is in the embed only, and the
 * flags show the embed again: the message it replaces showed the prompt with previews off.
 */
export function resultBody(job: Job, fileName: string, now: number, spoiler = false) {
  const embed = resultEmbed(job, fileName, now);
  if (spoiler) delete embed.image;
  return {
    content: spoiler ? contentWarning(job) : '',
    embeds: [embed],
    components: resultButtons(job),
    attachments: [{ id: 0, filename: fileName }],
    flags: SHOW_EMBEDS,
    allowed_mentions: NO_MENTIONS,
  };
}

/** In the bot's DM only the member sees it; elsewhere the channel does. */
const contentWarning = (job: Job) =>
  job.place === 'bot_dm'
    ? t(job.locale, 'user_install.dm_content_warning')
    : `⚠️ ${t(job.locale, 'result.content_warning')}`;

const NOTICES: Record<Notice, MessageKey> = {
  awaiting_review: 'notice.awaiting_review',
  no_reviewer: 'notice.no_reviewer',
  rejected: 'notice.rejected',
  withheld: 'user_install.flag_withheld',
};

/** A flagged image nobody can review, by where it was asked for (see `nsfwPolicy`). */
const WITHHELD: Partial<Record<NonNullable<Job['place']>, MessageKey>> = {
  private: 'user_install.flag_withheld_private',
  bot_dm: 'user_install.dm_held',
};

/** Held only because the guild reviews every image: the requester is not told it was flagged. */
const REVIEW_ALL_NOTICES: Partial<Record<Notice, MessageKey>> = {
  awaiting_review: 'notice.review_all.awaiting_review',
  no_reviewer: 'notice.review_all.no_reviewer',
};

/** Nothing flagged the image: it waits only because the guild reviews every image. */
const onlyReviewAll = (job: Pick<Job, 'nsfw'>) => {
  const reasons = job.nsfw?.reasons;
  return reasons !== undefined && reasons.length > 0 && reasons.every((reason) => reason === 'review_all');
};

/** Where a withheld image stands, for the requester: text only, no image, no preview. */
export function noticeBody(job: Job, notice: Notice) {
  if (notice === 'withheld')
    return textBody(aboutPrompt(job, t(job.locale, (job.place && WITHHELD[job.place]) || NOTICES.withheld)));
  return textBody(
    aboutPrompt(job, t(job.locale, (onlyReviewAll(job) && REVIEW_ALL_NOTICES[notice]) || NOTICES[notice])),
  );
}

/** The line of a batch message for one held image: flagged, or reviewed as every image is here. */
const BATCH_HELD: Record<'flagged' | 'every', Record<Exclude<Notice, 'rejected'>, MessageKey>> = {
  flagged: { awaiting_review: 'batch.held', no_reviewer: 'batch.no_reviewer', withheld: 'user_install.batch_withheld' },
  every: {
    awaiting_review: 'batch.review_all.held',
    no_reviewer: 'batch.review_all.no_reviewer',
    withheld: 'user_install.batch_withheld',
  },
};
const batchHeldKey = (job: Pick<Job, 'nsfw'> | undefined, notice: Exclude<Notice, 'rejected'>) =>
  BATCH_HELD[job && onlyReviewAll(job) ? 'every' : 'flagged'][notice];

/** Sizes in whole-and-tenth MiB, as Discord states its upload limits. */
export function uploadLimitBody(job: Job, bytes: number, limitBytes: number) {
  const mib = 1024 * 1024;
  const params = { size: (bytes / mib).toFixed(1), limit: Math.floor(limitBytes / mib) };
  if (job.tool !== 'upscale') return textBody(`❌ ${t(job.locale, 'error.upload_limit', params)}`);
  // Nothing is lost: a 4k upscale too large to post is offered again at 2k, a quarter of the pixels.
  if (job.resolution !== '4k')
    return textBody(aboutPrompt(job, `❌ ${t(job.locale, 'error.upload_limit_upscale', params)}`));
  return {
    ...textBody(aboutPrompt(job, `❌ ${t(job.locale, 'error.upload_limit_upscale_2k', params)}`)),
    components: upscale2kButtons(job),
  };
}

/** What just happened to one image of a batch, applied on top of what the stored jobs say. */
export type BatchChange =
  | { kind: 'progress'; view: ProgressView }
  | { kind: 'image'; file: { name: string }; spoiler: boolean }
  | { kind: 'failed'; text: string }
  | { kind: 'held'; notice: Exclude<Notice, 'rejected'> };

/** An attachment belongs to a job when its file name ends with the job's id (see `imageFileName`). */
export const namesJob = (fileName: string, jobId: string) => fileName.includes(`-${jobId}.`);

/**
 * Whether the message a button is on is about the job its custom id names: in the job's guild,
 * and the job's reply, its published message, or a message with an image of the job or of its
 * batch. A custom id is whatever the client sends; a member who names their own job on another
 * member's message must not delete it, nor rerun another guild's prompt in this channel.
 */
export function messageShowsJob(
  job: Pick<Job, 'id' | 'guildId' | 'messageId' | 'published' | 'batch'>,
  message: { id: string; guildId: string | null; fileNames: readonly string[] },
): boolean {
  // The message the image was published as, wherever: one sent to the member's DM once the token
  // had expired is in no guild, though the job is.
  if (job.published?.messageId === message.id) return true;
  if (message.guildId !== job.guildId) return false;
  if (job.messageId === message.id) return true;
  const ids = job.batch?.jobIds ?? [job.id];
  return message.fileNames.some((name) => ids.some((id) => namesJob(name, id)));
}

/**
 * The one message of a batch (`/imagine count`): the images delivered so far (kept by id, the new
 * one uploaded), a count of the rest, a line for each image that failed or is held, and the
 * buttons once every image has its answer. Rebuilt whole from the batch's state at each change.
 */
export function batchBody(
  job: Job & { batch: NonNullable<Job['batch']> },
  siblings: readonly (Job | undefined)[],
  attachments: readonly { id: string; filename: string }[],
  change: BatchChange,
) {
  const { locale } = job;
  const { count } = job.batch;
  // An image already in the message (delivered a second time) is kept by id like the others, not uploaded again.
  const added =
    change.kind === 'image' && !attachments.some((a) => a.filename === change.file.name) ? change.file.name : undefined;
  const ours = (id: string) =>
    attachments.some((a) => namesJob(a.filename, id)) || (added !== undefined && namesJob(added, id));
  let ready = 0;
  let pending = 0;
  const notes: string[] = [];
  for (const [i, sibling] of siblings.entries()) {
    const id = job.batch.jobIds[i]!;
    const params = { index: i + 1, count };
    const self = id === job.id;
    if (ours(id)) ready++;
    else if (self && change.kind === 'failed')
      notes.push(t(locale, 'batch.failed', { ...params, reason: change.text.replace(/^❌\s*/, '') }));
    else if (self && change.kind === 'held') notes.push(t(locale, batchHeldKey(job, change.notice), params));
    else if (sibling?.state === 'failed')
      notes.push(
        t(locale, 'batch.failed', {
          ...params,
          reason: failureText(locale, sibling.error?.kind ?? 'internal', sibling.error?.reason),
        }),
      );
    else if (sibling?.state === 'held')
      notes.push(
        t(
          locale,
          batchHeldKey(
            sibling,
            sibling.unseen === 'withheld' ? 'withheld' : sibling.review?.channelId ? 'awaiting_review' : 'no_reviewer',
          ),
          params,
        ),
      );
    // Delivered elsewhere (approved by a moderator, or after the token expired): answered, not here.
    else if (sibling?.state !== 'delivered') pending++;
  }
  const lines: string[] = [];
  if (pending > 0) {
    if (change.kind === 'progress') lines.push(progressContent(locale, change.view));
    lines.push(t(locale, 'batch.progress', { ready, count, pending }));
  } else lines.push(t(locale, 'batch.done', { ready, count }));
  lines.push(...notes);
  const spoilers =
    attachments.some((a) => a.filename.startsWith('SPOILER_')) || (change.kind === 'image' && change.spoiler);
  if (spoilers) lines.push(t(locale, 'batch.content_warning'));
  const content = aboutPrompt(job, lines.join('\n'));
  // Buttons speak for the whole request: the first job's id, which every job of the batch knows.
  // Numbered as the member sees them: the message's images in its order, which is the order they arrived.
  const shownNames = [...attachments.map((a) => a.filename), ...(added ? [added] : [])];
  const images = shownNames.flatMap((name, i) => {
    const id = job.batch.jobIds.find((jobId) => namesJob(name, jobId));
    return id ? [{ jobId: id, index: i + 1 }] : [];
  });
  const components = pending === 0 && ready > 0 ? resultButtons({ ...job, id: job.batch.id }, images) : [];
  return {
    content,
    embeds: [],
    components,
    // The images are attachments, which SUPPRESS_EMBEDS leaves visible.
    attachments: [...attachments.map((a) => ({ id: a.id })), ...(added ? [{ id: 0, filename: added }] : [])],
    flags: SUPPRESS_EMBEDS,
    allowed_mentions: NO_MENTIONS,
  };
}
