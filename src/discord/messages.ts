import { ButtonStyle, ComponentType, escapeMarkdown, MessageFlags, type APIButtonComponent } from 'discord.js';
import { usesUserInstallBudget, type Place } from '../domain/place.ts';
import type { Refusal } from '../jobs/limits.ts';
import type { Job, ProgressView } from '../domain/job.ts';
import type { Tool } from '../domain/tools.ts';
import { SIZE_PRESETS } from '../ppinfra/size.ts';
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
export const SHOW_EMBEDS = 0;

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

const SUBMITTING: Record<Tool, MessageKey> = {
  edit: 'progress.edit_submitting',
  upscale: 'progress.upscale_submitting',
};

export function progressContent(locale: string, view: ProgressView, tool?: Tool): string {
  switch (view.phase) {
    case 'queued':
      if (view.startsAt !== undefined) {
        return t(locale, 'progress.queued_eta', { position: view.position, startsAt: relative(view.startsAt) });
      }
      return t(locale, 'progress.queued', { position: view.position });
    case 'submitting':
      return t(locale, tool ? SUBMITTING[tool] : 'progress.submitting');
    case 'generating':
      return t(locale, 'progress.generating', { expectedAt: relative(view.expectedAt) });
    case 'late':
      return t(locale, 'progress.late');
    case 'expiring':
      return t(locale, 'user_install.token_expiring');
  }
}

/** A message of text alone: replaces whatever embed, buttons or pings an earlier state had. */
export const textBody = (content: string) => ({
  content,
  embeds: [],
  components: [],
  flags: SUPPRESS_EMBEDS,
  allowed_mentions: NO_MENTIONS,
});

/** A status line followed by the prompt, quoted on one line, so people see which request it is about. */
export const aboutPrompt = (job: Job, line: string) =>
  `${line}\n> ${safeText(whatWasAsked(job), 300).replace(/\n/g, ' ')}`;

/** The prompt, the edit's instruction, or for an upscale (which has neither) its target. */
export const whatWasAsked = (job: Pick<Job, 'prompt' | 'tool' | 'resolution' | 'locale'>) =>
  job.tool === 'upscale'
    ? t(job.locale, 'tools.upscale_line', { resolution: job.resolution ?? '2k' })
    : (job.prompt ?? '');

export function progressBody(job: Job, view: ProgressView) {
  return {
    content: aboutPrompt(job, progressContent(job.locale, view, job.tool)),
    flags: SUPPRESS_EMBEDS,
    allowed_mentions: NO_MENTIONS,
  };
}

export function failureText(locale: string, kind: FailureKind, reason?: string): string {
  // Told without the sizes: a flagged image the review could not keep (`Moderation.hold`).
  if (kind === 'upload_limit') return t(locale, 'error.upload_limit_held');
  if (kind === 'task_failed')
    return t(locale, 'error.task_failed', { reason: reason ? ` (${safeText(reason, 200)})` : '' });
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

export function refusalText(locale: string, refusal: Refusal, place: Place = 'guild'): string {
  const params = {
    limit: refusal.kind === 'api_cooling' ? 0 : refusal.limit,
    retryAt: 'retryAt' in refusal ? relative(refusal.retryAt) : '',
    held: 'held' in refusal ? refusal.held : 0,
  };
  // Outside servers that installed the bot, the daily budget is the operator's USER_INSTALL_DAILY_BUDGET.
  if (refusal.kind === 'guild_daily' && usesUserInstallBudget(place))
    return t(locale, refusal.limit === 0 ? 'user_install.budget_closed' : 'user_install.budget_reached', params);
  return t(locale, `refusal.${refusal.kind}`, params);
}

type ActionStyle = ButtonStyle.Primary | ButtonStyle.Secondary | ButtonStyle.Success | ButtonStyle.Danger;

export const button = (style: ActionStyle, label: string, emoji: string, customId: string): APIButtonComponent => ({
  type: ComponentType.Button,
  style,
  label,
  emoji: { name: emoji },
  custom_id: customId,
});

export function sizeFormatText(locale: string, input: string): string {
  return t(locale, 'size.format', {
    input: safeText(input, 40),
    presets: SIZE_PRESETS.map((p) => `\`${p.name}\``).join(', '),
  });
}
