import {
  ButtonStyle,
  ComponentType,
  type APIActionRowComponent,
  type APIButtonComponent,
  type APIEmbed,
} from 'discord.js';
import type { AuditRecord, HoldReason, Job, NsfwScores, ReviewDecision, ReviewKind } from '../domain/job.ts';
import { displaySize } from '../ppinfra/size.ts';
import { encodeCustomId, type ButtonAction } from './custom-id.ts';
import { t, type MessageKey } from './i18n.ts';
import { button, discordTime, NO_MENTIONS, safeText, SUPPRESS_EMBEDS, textBody, whatWasAsked } from './messages.ts';

/**
 * Review messages for moderators: the image travels as a spoiler attachment, never in the embed
 * (an embed image is not blurred). Every mention in them is display only: nobody is pinged.
 */
const COLORS = {
  flag: 0xe67e22,
  report: 0xe74c3c,
  approve: 0x2ecc71,
  keep: 0x2ecc71,
  reject: 0x95a5a6,
  remove: 0x95a5a6,
} as const;

const BUTTONS: Record<
  ReviewKind,
  {
    action: ButtonAction & ReviewDecision;
    style: ButtonStyle.Success | ButtonStyle.Danger | ButtonStyle.Secondary;
    emoji: string;
    label: MessageKey;
  }[]
> = {
  flag: [
    { action: 'approve', style: ButtonStyle.Success, emoji: '✅', label: 'review.button.approve' },
    { action: 'reject', style: ButtonStyle.Danger, emoji: '⛔', label: 'review.button.reject' },
  ],
  report: [
    { action: 'remove', style: ButtonStyle.Danger, emoji: '🗑️', label: 'review.button.remove' },
    { action: 'keep', style: ButtonStyle.Secondary, emoji: '👍', label: 'review.button.keep' },
  ],
};

const DECIDED: Record<ReviewDecision, MessageKey> = {
  approve: 'review.decided.approve',
  reject: 'review.decided.reject',
  remove: 'review.decided.remove',
  keep: 'review.decided.keep',
};

export const messageLink = (guildId: string | null, channelId: string, messageId?: string) =>
  `https://discord.com/channels/${guildId ?? '@me'}/${channelId}${messageId ? `/${messageId}` : ''}`;

/** The API's raw signals, compact, for the reviewer: they are undocumented, so shown as they came. */
function flagDetails(job: Job): string {
  const raw = JSON.stringify({
    has_nsfw_contents: job.nsfw?.hasNsfwContents ?? null,
    nsfw_detection_result: job.nsfw?.detectionResult ?? null,
  });
  // Inside a code span nothing is markdown or a mention, so only backticks need taking out.
  const points = [...raw.replace(/`/g, "'")];
  // The short one too: a backtick in what the API sent would end the code span early.
  return `\`${points.length > 900 ? `${points.slice(0, 899).join('')}…` : points.join('')}\``;
}

/** The classifier's scores, the explicit classes first, as a moderator reads them: `Porn 0.91 · Hentai 0.02 · …`. */
const SCORE_ORDER: readonly (keyof NsfwScores)[] = ['porn', 'hentai', 'sexy', 'drawing', 'neutral'];

/** What the local classifier made of the image; undefined on records from before it existed. */
function classifierDetails(job: Job, locale: string): string | undefined {
  const nsfw = job.nsfw;
  if (nsfw?.classifier === 'failed') return t(locale, 'review.classifier.failed');
  if (nsfw?.classifier === 'off') return t(locale, 'review.classifier.off');
  if (!nsfw?.scores) return undefined;
  const scores = nsfw.scores;
  return SCORE_ORDER.map((name) => `${t(locale, `review.score.${name}`)} ${Number(scores[name] ?? 0).toFixed(2)}`).join(
    ' · ',
  );
}

const REASONS: Record<HoldReason, MessageKey> = {
  provider: 'review.reason.provider',
  classifier: 'review.reason.classifier',
  classifier_failed: 'review.reason.classifier_failed',
  review_all: 'review.reason.review_all',
  input: 'review.reason.input',
};

export function reviewEmbed(job: Job, kind: ReviewKind, reporters: string[], locale: string): APIEmbed {
  const original =
    kind === 'report' && job.published ? job.published : { channelId: job.channelId, messageId: job.messageId };
  const classifier = classifierDetails(job, locale);
  // Why a flagged image waits here; a report says why itself (its reporters).
  const reasons = kind === 'flag' ? (job.nsfw?.reasons ?? (job.nsfw?.flagged ? ['provider' as const] : [])) : [];
  const fields = [
    { name: t(locale, 'result.size'), value: displaySize(job.size), inline: true },
    { name: t(locale, 'result.requester'), value: `<@${job.userId}>`, inline: true },
    {
      name: t(locale, 'review.field.original'),
      value: `[${t(locale, 'review.jump')}](${messageLink(job.guildId, original.channelId, original.messageId)}) · <#${job.channelId}>`,
      inline: true,
    },
    // A reported batch image has a review message of its own: which of the message's images it is.
    ...(kind === 'report' && job.batch && job.batch.count > 1
      ? [
          {
            name: t(locale, 'review.field.image'),
            value: t(locale, 'review.image_of', { index: job.batch.index + 1, count: job.batch.count }),
            inline: true,
          },
        ]
      : []),
    ...(reasons.length
      ? [
          {
            name: t(locale, 'review.field.reasons'),
            value: reasons.map((reason) => t(locale, REASONS[reason])).join(' · '),
          },
        ]
      : []),
    // Both signals, whatever they said: a clean provider flag beside high scores is worth seeing.
    ...(job.nsfw ? [{ name: t(locale, 'review.field.flags'), value: flagDetails(job) }] : []),
    ...(classifier ? [{ name: t(locale, 'review.field.classifier'), value: classifier }] : []),
    ...(reporters.length
      ? [
          {
            name: t(locale, 'review.field.reporters'),
            value: reporters
              .map((id) => `<@${id}>`)
              .join(', ')
              .slice(0, 1000),
          },
        ]
      : []),
  ];
  return {
    title: t(locale, kind === 'flag' ? 'review.title.flag' : 'review.title.report'),
    description: safeText(whatWasAsked(job), 1500),
    color: COLORS[kind],
    fields,
    footer: { text: `job ${job.id}` },
    timestamp: new Date(job.finishedAt ?? job.createdAt).toISOString(),
  };
}

export function reviewButtons(job: Job, kind: ReviewKind, locale: string): APIActionRowComponent<APIButtonComponent>[] {
  return [
    {
      type: ComponentType.ActionRow,
      components: BUTTONS[kind].map((b) =>
        button(b.style, t(locale, b.label), b.emoji, encodeCustomId(b.action, job.id)),
      ),
    },
  ];
}

export function reviewBody(job: Job, kind: ReviewKind, reporters: string[], locale: string, fileName: string) {
  return {
    content: '',
    embeds: [reviewEmbed(job, kind, reporters, locale)],
    components: reviewButtons(job, kind, locale),
    attachments: [{ id: 0, filename: fileName }],
    allowed_mentions: NO_MENTIONS,
  };
}

/** The line that says who decided what and when. */
export const decisionLine = (record: AuditRecord, locale: string) =>
  t(locale, DECIDED[record.decision], { moderator: `<@${record.moderatorId}>`, when: discordTime(record.at, 'f') });

/** The review message once decided: the outcome, who and when; no buttons left to click. */
export function decidedReviewBody(current: APIEmbed | undefined, record: AuditRecord, locale: string) {
  const embed: APIEmbed = { ...(current ?? {}), color: COLORS[record.decision] };
  embed.fields = [
    ...(current?.fields ?? []),
    { name: t(locale, 'review.field.decision'), value: decisionLine(record, locale) },
  ];
  return { embeds: [embed], components: [], allowed_mentions: NO_MENTIONS };
}

/** What replaces a published image that moderators removed after a report. */
export const removedBody = (job: Job) => ({ ...textBody(`🗑️ ${t(job.locale, 'notice.removed')}`), attachments: [] });

/**
 * A batch message with one of its images removed after a report: the others kept by id, its buttons
 * and text as they are, and a line saying which image went, numbered as the batch's other notes
 * are. The line goes above the quoted prompt, once, even when a removal runs twice.
 */
export function removedFromBatchBody(
  job: Job & { batch: NonNullable<Job['batch']> },
  content: string,
  kept: readonly { id: string }[],
) {
  const line = t(job.locale, 'batch.removed', { index: job.batch.index + 1, count: job.batch.count });
  const quote = content.lastIndexOf('\n> ');
  const text = content.includes(line)
    ? content
    : quote >= 0
      ? `${content.slice(0, quote)}\n${line}${content.slice(quote)}`
      : [content, line].filter(Boolean).join('\n');
  // It quotes the prompt: no link preview, as when the batch message was written.
  return {
    content: text,
    attachments: kept.map((a) => ({ id: a.id })),
    flags: SUPPRESS_EMBEDS,
    allowed_mentions: NO_MENTIONS,
  };
}
