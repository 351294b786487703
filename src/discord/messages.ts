import { ButtonStyle, ComponentType, escapeMarkdown, MessageFlags, type APIEmbed, type APIActionRowComponent, type APIButtonComponent } from 'discord.js';
import type { Refusal } from '../jobs/limits.ts';
import type { Job, Notice, ProgressView } from '../domain/job.ts';
import { SIZE_PRESETS, displaySize } from '../ppinfra/size.ts';
import { encodeCustomId } from './custom-id.ts';
import { t, type MessageKey } from './i18n.ts';
import type { FailureKind } from '../domain/failure.ts';

/**
 * Pure builders from outcomes to Discord message bodies (raw API shape, so the delivery can
 * send them through REST even after a restart). No prompt text can ping anyone: every body
 * carries `allowed_mentions: { parse: [] }` and user text is escaped.
 *
 * No prompt can show a preview either. Discord unfurls every link in a message's `content`
 * (an image, a GIF, a page's picture) and shows it under the bot's name, so a prompt ending in
 * a link would publish whatever that link shows, past every check on the generated image. The
 * rule, for every body here and every reply in `commands/`:
 * - a message whose `content` carries member text (a prompt, a reason, a size as typed) is sent
 *   with SUPPRESS_EMBEDS (`flags: SUPPRESS_EMBEDS`);
 * - the flag hides every embed of the message, the bot's own too, so a message with a rich
 *   embed (the result, a review) keeps member text out of `content` (embed text is never
 *   unfurled) and clears the flag (`flags: 0`) when it replaces a suppressed text.
 */
export const NO_MENTIONS = { parse: [] as never[] };
export const EMBED_COLOR = 0x615ced;
/** `flags` of a message that shows member text in its content: Discord shows no link preview for it. */
export const SUPPRESS_EMBEDS = MessageFlags.SuppressEmbeds;
/** `flags` of an edit that shows the bot's own embeds again, after a suppressed text (only SUPPRESS_EMBEDS changes on edit). */
const SHOW_EMBEDS = 0;

/** A time every Discord client shows in its reader's zone: `R` relative ("in 5 s"), `f` date and time. */
export const discordTime = (ms: number, style: 'R' | 'f' = 'R') => `<t:${Math.round(ms / 1000)}:${style}>`;
const relative = (ms: number) => discordTime(ms);

/** Line-start markdown that would let a prompt pose as the bot's own text: a heading, a list. */
const MARKDOWN = { heading: true, bulletedList: true, numberedList: true } as const;

/**
 * Escapes markdown and breaks mention syntax, then truncates on a code-point boundary. A prompt
 * shown to moderators must read as the member's words: no link hiding its address behind
 * "Approve here", no heading or list dressed as the bot's verdict.
 */
export function safeText(text: string, max: number): string {
  const escaped = escapeMarkdown(text, MARKDOWN)
    // Every bracket, not discord.js's `maskedLink`: that escapes one `[` per line, so a second
    // `[text](url)` on the line stays a link. `[text](<url>)` is covered the same way.
    .replace(/[[\]]/g, '\\$&')
    // `-# ` subtext and `>` quotes, which escapeMarkdown leaves alone.
    .replace(/^([ \t]*)(-#|>)/gm, '$1\\$2')
    .replace(/@/g, '@\u200b')
    .replace(/<(#|@|&|\/)/g, '<\u200b$1');
  const points = [...escaped];
  return points.length <= max ? escaped : `${points.slice(0, max - 1).join('')}…`;
}

export function progressContent(locale: string, view: ProgressView): string {
  switch (view.phase) {
    case 'queued':
      if (view.startsAt !== undefined) {
        return t(locale, 'progress.queued_eta', { position: view.position, startsAt: relative(view.startsAt) });
      }
      return t(locale, 'progress.queued', { position: view.position });
    case 'submitting':
      return t(locale, 'progress.submitting');
    case 'generating':
      return t(locale, 'progress.generating', { expectedAt: relative(view.expectedAt) });
    case 'late':
      return t(locale, 'progress.late');
  }
}

/** A message of text alone: replaces whatever embed, buttons or pings an earlier state had. */
export const textBody = (content: string) => ({ content, embeds: [], components: [], flags: SUPPRESS_EMBEDS, allowed_mentions: NO_MENTIONS });

/** A status line followed by the prompt, quoted on one line, so people see which request it is about. */
const aboutPrompt = (job: Job, line: string) => `${line}\n> ${safeText(job.prompt, 300).replace(/\n/g, ' ')}`;

export function progressBody(job: Job, view: ProgressView) {
  return { content: aboutPrompt(job, progressContent(job.locale, view)), flags: SUPPRESS_EMBEDS, allowed_mentions: NO_MENTIONS };
}

export function failureText(locale: string, kind: FailureKind, reason?: string): string {
  // Told without the sizes: a flagged image the review could not keep (`Moderation.hold`).
  if (kind === 'upload_limit') return t(locale, 'error.upload_limit_held');
  if (kind === 'task_failed') return t(locale, 'error.task_failed', { reason: reason ? ` (${safeText(reason, 200)})` : '' });
  return t(locale, `error.${kind}`);
}

/** Failures the member can fix by changing the prompt: those get an Edit prompt button. */
const PROMPT_FAILURES: ReadonlySet<FailureKind> = new Set(['illegal_prompt', 'invalid_request']);

export function failureBody(job: Job, error: { kind: FailureKind; reason?: string }) {
  const body = textBody(aboutPrompt(job, `❌ ${failureText(job.locale, error.kind, error.reason)}`));
  if (!PROMPT_FAILURES.has(error.kind)) return body;
  const edit = button(ButtonStyle.Secondary, t(job.locale, 'button.edit'), '✏️', encodeCustomId('edit', job.id));
  return { ...body, components: [{ type: ComponentType.ActionRow, components: [edit] }] };
}

export function refusalText(locale: string, refusal: Refusal): string {
  const params = { limit: refusal.kind === 'api_cooling' ? 0 : refusal.limit, retryAt: 'retryAt' in refusal ? relative(refusal.retryAt) : '', held: 'held' in refusal ? refusal.held : 0 };
  return t(locale, `refusal.${refusal.kind}`, params);
}

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

type ActionStyle = ButtonStyle.Primary | ButtonStyle.Secondary | ButtonStyle.Success | ButtonStyle.Danger;

export const button = (style: ActionStyle, label: string, emoji: string, customId: string): APIButtonComponent => ({
  type: ComponentType.Button,
  style,
  label,
  emoji: { name: emoji },
  custom_id: customId,
});

export function resultButtons(job: Job): APIActionRowComponent<APIButtonComponent>[] {
  return [
    {
      type: ComponentType.ActionRow,
      components: [
        button(ButtonStyle.Primary, t(job.locale, 'button.regenerate'), '🔁', encodeCustomId('regen', job.id)),
        button(ButtonStyle.Secondary, t(job.locale, 'button.edit'), '✏️', encodeCustomId('edit', job.id)),
        button(ButtonStyle.Secondary, t(job.locale, 'button.delete'), '🗑️', encodeCustomId('del', job.id)),
        button(ButtonStyle.Secondary, t(job.locale, 'button.report'), '🚩', encodeCustomId('report', job.id)),
      ],
    },
  ];
}

/** Discord blurs an attachment whose name starts with SPOILER_; an embed image is never blurred. */
export const spoilerName = (fileName: string) => `SPOILER_${fileName}`;

export function resultEmbed(job: Job, fileName: string, now: number): APIEmbed {
  const seconds = ((job.completedAt ?? now) - (job.submittedAt ?? job.createdAt)) / 1000;
  return {
    title: t(job.locale, 'result.title'),
    description: safeText(job.prompt, 1000),
    color: EMBED_COLOR,
    image: { url: `attachment://${fileName}` },
    fields: [
      { name: t(job.locale, 'result.size'), value: displaySize(job.size), inline: true },
      { name: t(job.locale, 'result.time'), value: t(job.locale, 'result.seconds', { seconds: seconds.toFixed(1) }), inline: true },
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
    content: spoiler ? `⚠️ ${t(job.locale, 'result.content_warning')}` : '',
    embeds: [embed],
    components: resultButtons(job),
    attachments: [{ id: 0, filename: fileName }],
    flags: SHOW_EMBEDS,
    allowed_mentions: NO_MENTIONS,
  };
}

const NOTICES: Record<Notice, MessageKey> = {
  awaiting_review: 'notice.awaiting_review',
  no_reviewer: 'notice.no_reviewer',
  rejected: 'notice.rejected',
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
  return textBody(aboutPrompt(job, t(job.locale, (onlyReviewAll(job) && REVIEW_ALL_NOTICES[notice]) || NOTICES[notice])));
}

/** The line of a batch message for one held image: flagged, or reviewed as every image is here. */
const BATCH_HELD: Record<'flagged' | 'every', Record<Exclude<Notice, 'rejected'>, MessageKey>> = {
  flagged: { awaiting_review: 'batch.held', no_reviewer: 'batch.no_reviewer' },
  every: { awaiting_review: 'batch.review_all.held', no_reviewer: 'batch.review_all.no_reviewer' },
};
const batchHeldKey = (job: Pick<Job, 'nsfw'> | undefined, notice: Exclude<Notice, 'rejected'>) => BATCH_HELD[job && onlyReviewAll(job) ? 'every' : 'flagged'][notice];

/** Sizes in whole-and-tenth MiB, as Discord states its upload limits. */
export function uploadLimitBody(job: Job, bytes: number, limitBytes: number) {
  const mib = 1024 * 1024;
  return textBody(`❌ ${t(job.locale, 'error.upload_limit', { size: (bytes / mib).toFixed(1), limit: Math.floor(limitBytes / mib) })}`);
}

export function sizeFormatText(locale: string, input: string): string {
  return t(locale, 'size.format', { input: safeText(input, 40), presets: SIZE_PRESETS.map((p) => `\`${p.name}\``).join(', ') });
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
  if (message.guildId !== job.guildId) return false;
  if (job.messageId === message.id || job.published?.messageId === message.id) return true;
  const ids = job.batch?.jobIds ?? [job.id];
  return message.fileNames.some((name) => ids.some((id) => namesJob(name, id)));
}

/**
 * The one message of a batch (`/imagine count`): the images delivered so far (kept by id, the new
 * one uploaded), a count of the rest, a line for each image that failed or is held, and the
 * buttons once every image has its answer. Rebuilt whole from the batch's state at each change.
 */
export function batchBody(job: Job & { batch: NonNullable<Job['batch']> }, siblings: readonly (Job | undefined)[], attachments: readonly { id: string; filename: string }[], change: BatchChange) {
  const { locale } = job;
  const { count } = job.batch;
  // An image already in the message (delivered a second time) is kept by id like the others, not uploaded again.
  const added = change.kind === 'image' && !attachments.some((a) => a.filename === change.file.name) ? change.file.name : undefined;
  const ours = (id: string) => attachments.some((a) => namesJob(a.filename, id)) || (added !== undefined && namesJob(added, id));
  let ready = 0;
  let pending = 0;
  const notes: string[] = [];
  for (const [i, sibling] of siblings.entries()) {
    const id = job.batch.jobIds[i]!;
    const params = { index: i + 1, count };
    const self = id === job.id;
    if (ours(id)) ready++;
    else if (self && change.kind === 'failed') notes.push(t(locale, 'batch.failed', { ...params, reason: change.text.replace(/^❌\s*/, '') }));
    else if (self && change.kind === 'held') notes.push(t(locale, batchHeldKey(job, change.notice), params));
    else if (sibling?.state === 'failed') notes.push(t(locale, 'batch.failed', { ...params, reason: failureText(locale, sibling.error?.kind ?? 'internal', sibling.error?.reason) }));
    else if (sibling?.state === 'held') notes.push(t(locale, batchHeldKey(sibling, sibling.review?.channelId ? 'awaiting_review' : 'no_reviewer'), params));
    // Delivered elsewhere (approved by a moderator, or after the token expired): answered, not here.
    else if (sibling?.state !== 'delivered') pending++;
  }
  const lines: string[] = [];
  if (pending > 0) {
    if (change.kind === 'progress') lines.push(progressContent(locale, change.view));
    lines.push(t(locale, 'batch.progress', { ready, count, pending }));
  } else lines.push(t(locale, 'batch.done', { ready, count }));
  lines.push(...notes);
  const spoilers = attachments.some((a) => a.filename.startsWith('SPOILER_')) || (change.kind === 'image' && change.spoiler);
  if (spoilers) lines.push(t(locale, 'batch.content_warning'));
  const content = aboutPrompt(job, lines.join('\n'));
  // Buttons speak for the whole request: the first job's id, which every job of the batch knows.
  const components = pending === 0 && ready > 0 ? resultButtons({ ...job, id: job.batch.id }) : [];
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
