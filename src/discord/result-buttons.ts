/**
 * A finished image's buttons: the request's row, and Change… and Upscale for each image shown.
 * Their custom ids are kept forever: messages already posted still send them.
 */
import { ButtonStyle, ComponentType, type APIActionRowComponent, type APIButtonComponent } from 'discord.js';
import type { Job } from '../domain/job.ts';
import { encodeCustomId } from './custom-id.ts';
import { t } from './i18n.ts';
import { button } from './messages.ts';

export type Row = APIActionRowComponent<APIButtonComponent>;
export const row = (components: APIButtonComponent[]): Row => ({ type: ComponentType.ActionRow, components });

/**
 * A result's buttons. The first row speaks for the request; Change… and Upscale act on one image,
 * so a batch gets a numbered pair per image shown (at most 4: a row each, within Discord's 5 a
 * row). An edit or an upscale has no prompt to rerun or rewrite: its first row only deletes and
 * reports; an upscale offers no Upscale.
 */
export function resultButtons(job: Job, images?: readonly { jobId: string; index: number }[]): Row[] {
  const { locale } = job;
  const first = [
    ...(job.tool
      ? []
      : [
          button(ButtonStyle.Primary, t(locale, 'button.regenerate'), '🔁', encodeCustomId('regen', job.id)),
          button(ButtonStyle.Secondary, t(locale, 'button.edit'), '✏️', encodeCustomId('edit', job.id)),
        ]),
    button(ButtonStyle.Secondary, t(locale, 'button.delete'), '🗑️', encodeCustomId('del', job.id)),
    // Only a server that installed the bot has moderators to report to.
    ...(job.place && job.place !== 'guild'
      ? []
      : [button(ButtonStyle.Secondary, t(locale, 'button.report'), '🚩', encodeCustomId('report', job.id))]),
  ];
  const change = (id: string, label: string) => button(ButtonStyle.Secondary, label, '🖌️', encodeCustomId('change', id));
  const upscale = (id: string, label: string) =>
    button(ButtonStyle.Secondary, label, '🔍', encodeCustomId('upscale', id));
  // An upscale is already at its target size: upscaling it again would pay for the same picture.
  if (!images)
    return [
      row(first),
      row([
        change(job.id, t(locale, 'button.change')),
        ...(job.tool === 'upscale' ? [] : [upscale(job.id, t(locale, 'button.upscale'))]),
      ]),
    ];
  const shown = images.slice(0, 5);
  return [
    row(first),
    ...(shown.length
      ? [
          row(shown.map((i) => change(i.jobId, t(locale, 'button.change_n', { index: i.index })))),
          row(shown.map((i) => upscale(i.jobId, t(locale, 'button.upscale_n', { index: i.index })))),
        ]
      : []),
  ];
}

/** A batch message's rows without the Change… and Upscale of an image taken out of it; rows left empty go. */
export function withoutImageButtons(rows: readonly Row[] | undefined, jobId: string): Row[] {
  const gone = new Set([encodeCustomId('change', jobId), encodeCustomId('upscale', jobId)]);
  return (rows ?? [])
    .map((r) => row(r.components.filter((b) => !('custom_id' in b && gone.has(b.custom_id)))))
    .filter((r) => r.components.length > 0);
}

/** Offered when a 4k upscale is too large to post: the same picture again at 2k. */
export const upscale2kButtons = (job: Job): Row[] => [
  row([button(ButtonStyle.Primary, t(job.locale, 'button.upscale_2k'), '🔍', encodeCustomId('upscale2k', job.id))]),
];
