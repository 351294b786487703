/**
 * A request for an image, however it was made: the checks that cost nothing (prompt, text, size,
 * channel permissions, storage, limits) and the hand-over to the job service. Commands and
 * buttons only read their own inputs and call these, so every path has the same rules.
 */
import {
  MessageFlags,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type MessageContextMenuCommandInteraction,
  type ModalSubmitInteraction,
} from 'discord.js';
import type { Job, JobRequest } from '../domain/job.ts';
import { durationKey } from '../domain/tools.ts';
import { checkPrompt } from '../prompts/check.ts';
import { parseSize } from '../ppinfra/size.ts';
import { checkText, composePrompt, type Placement } from '../prompts/exact-text.ts';
import type { BotContext, Outcome } from './command.ts';
import { t, type MessageKey } from './i18n.ts';
import { NO_MENTIONS, refusalText, sizeFormatText } from './messages.ts';
import { missingPermissions } from './permissions.ts';
import {
  canPostInChannel,
  factsOf,
  missingPermissions as missingAppPermissions,
  mustBeEphemeral,
  placeOf,
  type Place,
} from './install.ts';
import { discordTime } from './messages.ts';
import type { Ticket } from '../jobs/service.ts';

/** The interactions that can ask for an image. */
export type Asking =
  | ChatInputCommandInteraction
  | ButtonInteraction
  | ModalSubmitInteraction
  | MessageContextMenuCommandInteraction;

/**
 * Refusals cost nothing: ephemeral, before any defer, no API call. Returns the outcome to log.
 * Some repeat what the member typed (a size), so links in them show no preview.
 */
export async function refuse(interaction: Asking, content: string, outcome: string): Promise<Outcome> {
  await interaction.reply({
    content,
    flags: MessageFlags.Ephemeral | MessageFlags.SuppressEmbeds,
    allowedMentions: NO_MENTIONS,
  });
  return `refused:${outcome}`;
}

type Checked =
  | { ok: true; request: Pick<JobRequest, 'prompt' | 'size' | 'input'> }
  | { ok: false; message: string; problem: string };

/** What a member typed: in /imagine, the Edit prompt form, or a message's text. */
export interface MemberInput {
  prompt: string;
  size: string;
  text?: string;
  placement?: Placement;
}

const TEXT_PROBLEMS: Record<'empty' | 'mention' | 'blocked', MessageKey> = {
  empty: 'text.empty',
  mention: 'text.mention',
  blocked: 'prompt.blocked',
};

/** Every check before anything is billed, the same for every way of asking; one friendly sentence per problem. */
export function checkInput(locale: string, input: MemberInput, ctx: BotContext): Checked {
  const rules = { maxLength: ctx.generation.promptMaxLength, blockedTerms: ctx.generation.blockedTerms };
  const prompt = checkPrompt(input.prompt, rules);
  if (!prompt.ok) {
    const problem = `prompt_${prompt.problem}`;
    if (prompt.problem === 'too_long')
      return {
        ok: false,
        problem,
        message: t(locale, 'prompt.too_long', { length: prompt.length, limit: prompt.limit }),
      };
    return { ok: false, problem, message: t(locale, prompt.problem === 'empty' ? 'prompt.empty' : 'prompt.blocked') };
  }
  let text: string | undefined;
  if (input.text !== undefined && input.text.trim() !== '') {
    const checked = checkText(input.text, rules);
    if (!checked.ok) {
      const problem = `text_${checked.problem}`;
      if (checked.problem === 'too_long')
        return {
          ok: false,
          problem,
          message: t(locale, 'text.too_long', { length: checked.length, limit: checked.limit }),
        };
      return { ok: false, problem, message: t(locale, TEXT_PROBLEMS[checked.problem]) };
    }
    text = checked.text;
  }
  const final = composePrompt(prompt.prompt, text, text ? input.placement : undefined);
  if ([...final].length > rules.maxLength)
    return {
      ok: false,
      problem: 'prompt_too_long',
      message: t(locale, 'text.prompt_too_long', { limit: rules.maxLength }),
    };
  const size = parseSize(input.size);
  if (!size.ok) {
    const message =
      size.problem === 'format'
        ? sizeFormatText(locale, input.size)
        : t(locale, 'size.range', { width: size.width, height: size.height });
    return { ok: false, problem: `size_${size.problem}`, message };
  }
  const source = {
    prompt: prompt.prompt,
    ...(text ? { text } : {}),
    ...(text && input.placement ? { placement: input.placement } : {}),
  };
  return { ok: true, request: { prompt: final, size: size.size, input: source } };
}

/**
 * Shared by every way of asking (/imagine, More like this, Edit prompt, Imagine this): check the
 * channel and limits, defer publicly, hand over to the job service.
 */
/** Where the bot is (`src/discord/install.ts`), or a refusal when the operator keeps it to servers that installed it. */
export async function placeFor(interaction: Asking, ctx: BotContext): Promise<{ place: Place } | { outcome: Outcome }> {
  const place = placeOf(factsOf(interaction));
  if (place !== 'guild' && ctx.userInstall && !ctx.userInstall.enabled)
    return { outcome: await refuse(interaction, t(interaction.locale, 'user_install.disabled'), 'user_install_off') };
  return { place };
}

/** What the bot may not do here among what an image needs, from the interaction's `app_permissions`. */
function permissionsRefusal(interaction: Asking, place: Place): Promise<Outcome> | undefined {
  const locale = interaction.locale;
  if (place === 'guild') {
    const missing = missingPermissions(interaction.appPermissions);
    if (!missing.length) return undefined;
    const permissions = missing.map((m) => `**${m}**`).join(', ');
    return refuse(interaction, t(locale, 'permissions.missing', { permissions }), 'permissions');
  }
  // A user install can only answer through the token: only the image and its embed matter.
  const missing = missingAppPermissions(interaction.appPermissions?.bitfield);
  if (!missing.length) return undefined;
  const permissions = missing.map((m) => `**${m.replace(/([a-z])([A-Z])/g, '$1 $2')}**`).join(', ');
  return refuse(interaction, t(locale, 'user_install.permissions_missing', { permissions }), 'permissions');
}

/** Interaction tokens live 15 minutes; a request that would outlive one where only it can answer is refused. */
const TOKEN_BUDGET_MS = 14 * 60_000;

export async function startJob(
  interaction: Asking,
  input: Pick<
    JobRequest,
    'prompt' | 'size' | 'input' | 'regenerateOf' | 'tool' | 'source' | 'resolution' | 'inputFlagged' | 'seed'
  >,
  ctx: BotContext,
  count = 1,
): Promise<Outcome> {
  const locale = interaction.locale;
  const where = await placeFor(interaction, ctx);
  if ('outcome' in where) return where.outcome;
  const { place } = where;
  const inGuild = place === 'guild';
  const refused = permissionsRefusal(interaction, place);
  if (refused) return refused;
  if (ctx.storage && !ctx.storage.healthy())
    return refuse(interaction, t(locale, 'refusal.storage_unavailable'), 'storage_unavailable');
  if (!canPostInChannel(place) && ctx.readyBy) {
    // Estimated as the durations were learnt: an edit or an upscale takes its own time, not its size's.
    const readyAt = await ctx.readyBy(durationKey(input));
    if (readyAt > Math.min(interaction.createdTimestamp, Date.now()) + TOKEN_BUDGET_MS)
      return refuse(
        interaction,
        t(locale, 'user_install.queue_outlives_token', { readyAt: discordTime(readyAt) }),
        'outlives_token',
      );
  }
  // Before anything is reserved: a member (or a guild) with as many images waiting for a moderator as allowed gets no more.
  const held = await ctx.review.heldRefusal(interaction.user.id, inGuild ? interaction.guildId : null);
  if (held) return refuse(interaction, refusalText(locale, held), held.kind);
  const channel = interaction.channel;
  // A server's settings are its own: they do not follow a member's install into other servers.
  const guild = inGuild && interaction.guildId ? await ctx.settings.get(interaction.guildId) : undefined;
  const request: JobRequest = {
    ...input,
    userId: interaction.user.id,
    userName: interaction.user.username,
    guildId: interaction.guildId,
    channelId: interaction.channelId ?? '',
    // A thread inherits its parent's age restriction; unknown counts as not age-restricted.
    channelNsfw: Boolean(
      inGuild &&
        channel &&
        ('nsfw' in channel
          ? channel.nsfw
          : channel.isThread() && channel.parent && 'nsfw' in channel.parent && channel.parent.nsfw),
    ),
    locale,
    place,
    ...(guild ? { caps: { userHourlyQuota: guild.userHourlyQuota, guildDailyBudget: guild.guildDailyBudget } } : {}),
  };
  // All or nothing: every image of the request is reserved (each counts against the quotas, the
  // request once against the concurrency) before anything is deferred or sent.
  const tickets: Ticket[] = [];
  for (let i = 0; i < count; i++) {
    const reservation = await ctx.jobs.reserve(request, { follower: i > 0 });
    if (!reservation.ok) {
      await Promise.all(tickets.map((ticket) => ctx.jobs.release(ticket)));
      const { refusal } = reservation;
      const partial = i > 0 && (refusal.kind === 'user_hourly' || refusal.kind === 'guild_daily');
      const text = partial
        ? t(locale, `refusal.batch_${refusal.kind}`, { count, remaining: i, limit: refusal.limit })
        : refusalText(locale, refusal, place);
      return refuse(interaction, text, refusal.kind);
    }
    tickets.push(reservation.ticket);
  }
  try {
    // Where the server only lets external apps answer privately, asking for it keeps the bookkeeping true.
    const ephemeral = mustBeEphemeral(place, interaction.memberPermissions?.bitfield);
    await interaction.deferReply(ephemeral ? { flags: MessageFlags.Ephemeral } : {});
  } catch (e) {
    await Promise.all(tickets.map((ticket) => ctx.jobs.release(ticket)));
    throw e;
  }
  const reply = {
    applicationId: interaction.applicationId,
    token: interaction.token,
    createdAt: Math.min(interaction.createdTimestamp, Date.now()),
  };
  const jobIds = tickets.map((ticket) => ticket.id);
  const started: string[] = [];
  for (const [index, ticket] of tickets.entries()) {
    const batch = count > 1 ? { id: jobIds[0]!, index, count, jobIds } : undefined;
    let job: Job;
    try {
      job = await ctx.jobs.start(ticket, reply, batch);
    } catch (e) {
      // The jobs already started go on; the rest never existed: their reservations go back.
      await Promise.all(tickets.slice(index + 1).map((rest) => ctx.jobs.release(rest)));
      throw e;
    }
    started.push(job.id);
    // The image is on its way whatever happens here; a history that misses it is the lesser harm.
    await ctx.history
      .add(job.userId, job.id)
      .catch((err: unknown) => ctx.logger.warn({ err, jobId: job.id }, 'could not add the job to the history'));
  }
  return `started:${started.join(',')}`;
}
