/**
 * Where an image was asked for, kept on the job so what happens at its end (delivery after the
 * token, a flagged image, which budget pays) follows from where the bot is, not from guesses.
 * - `guild`: a server that installed the bot; it is a member and may post in channels.
 * - `guild_user_install`: a server that did not install it; the member's own install answers.
 * - `bot_dm`: the member's DM with the bot.
 * - `private`: a DM or group DM between other people (interaction context 2).
 * The rules that read it live in `src/discord/install.ts`; the ones the jobs need are here.
 */
export type Place = 'guild' | 'guild_user_install' | 'bot_dm' | 'private';

/** The budget key of every place without the bot's server install: the operator's USER_INSTALL_DAILY_BUDGET. */
export const USER_INSTALL_BUDGET = 'user_install';

/** Images there are paid from USER_INSTALL_DAILY_BUDGET instead of a server's GUILD_DAILY_BUDGET. */
export const usesUserInstallBudget = (place: Place) => place !== 'guild';

/**
 * The key the daily budget and the usage ledger count a job under: its server, or the one key of
 * every place without the bot's server install. Records from before `place` count as they did.
 */
export function budgetKey(job: { guildId: string | null; place?: Place }): string | null {
  return job.place && usesUserInstallBudget(job.place) ? USER_INSTALL_BUDGET : job.guildId;
}

/** The bot may create and edit channel messages there (the channel fallback after the token). */
export const canPostInChannel = (place: Place) => place === 'guild' || place === 'bot_dm';

/** How long after the interaction the member is told the token is about to expire (it lives 15 minutes). */
export const TOKEN_NOTICE_MS = 14 * 60_000;

/**
 * When the member is told that their image will come by DM instead, where only the token can
 * answer (in the bot's DM the bot posts there itself): `undefined` elsewhere.
 */
export function tokenNoticeAt(job: { place?: Place; reply: { createdAt: number } }): number | undefined {
  return job.place && !canPostInChannel(job.place) ? job.reply.createdAt + TOKEN_NOTICE_MS : undefined;
}

/**
 * What happens to a flagged image:
 * - `review`: a moderator decides (the server's review desk);
 * - `withhold`: never shown there, since nobody there can review it (a server without the bot,
 *   a conversation between others, where it would be public);
 * - `spoiler`: shown to the member alone in the bot's DM, as a spoiler with a content warning;
 * - `hold`: not shown in the bot's DM either (DM_NSFW=hold).
 */
export type FlagPolicy = 'review' | 'withhold' | 'spoiler' | 'hold';

export function nsfwPolicy(place: Place, dmNsfw: 'hold' | 'spoiler'): FlagPolicy {
  switch (place) {
    case 'guild':
      return 'review';
    case 'bot_dm':
      return dmNsfw;
    default:
      return 'withhold';
  }
}
