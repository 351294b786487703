import type { BotContext } from './command.ts';
import { localizations, t, type MessageKey } from './i18n.ts';
import type { GuildSettings } from '../moderation/settings.ts';

// The words of /imagine-settings: its localised names and descriptions, and the summary it shows.

/** The parts of the command with both a `settings.<part>.name` and a `settings.<part>.description` sentence. */
type Part = {
  [K in MessageKey]: K extends `settings.${infer P}.description`
    ? `settings.${P}.name` extends MessageKey
      ? P
      : never
    : never;
}[MessageKey];

interface Nameable {
  setName(name: string): this;
  setNameLocalizations(localized: Record<string, string>): this;
  setDescription(description: string): this;
  setDescriptionLocalizations(localized: Record<string, string>): this;
}

/** Names and describes a command, subcommand or option in English, with the other locales. */
export function named<B extends Nameable>(builder: B, part: Part): B {
  return builder
    .setName(t('en-US', `settings.${part}.name`))
    .setNameLocalizations(localizations(`settings.${part}.name`))
    .setDescription(t('en-US', `settings.${part}.description`))
    .setDescriptionLocalizations(localizations(`settings.${part}.description`));
}

/** One choice of a string option, named by its `settings.<option>.<value>` sentence. */
export const choice = <V extends string>(option: 'mode' | 'level' | 'state', value: V) => {
  const key = `settings.${option}.${value}` as MessageKey;
  return { name: t('en-US', key), name_localizations: localizations(key), value };
};

const channelMention = (id: string) => `<#${id}>`;
const roleMention = (id: string) => `<@&${id}>`;

/** What `/imagine-settings show` answers: one line per setting, the operator's maximum beside a limit. */
export function summary(locale: string, settings: GuildSettings, defaults: BotContext['settings']['defaults']): string {
  const channel = settings.reviewChannelId ? channelMention(settings.reviewChannelId) : '';
  const lines: [MessageKey, Record<string, string | number>][] = [
    [
      'settings.show.review_channel',
      { value: t(locale, `settings.source.${settings.reviewChannelSource}`, { channel }) },
    ],
    [
      'settings.show.moderator_role',
      {
        value: settings.moderatorRoleId
          ? t(locale, 'settings.moderators.role', { role: roleMention(settings.moderatorRoleId) })
          : t(locale, 'settings.moderators.default'),
      },
    ],
    ['settings.show.nsfw_channels', { value: t(locale, `settings.policy.${settings.nsfwChannels}`) }],
    ['settings.show.sensitivity', { value: t(locale, `settings.sensitivity.${settings.sensitivity}`) }],
    [
      'settings.show.review_all',
      { value: t(locale, settings.reviewAll ? 'settings.review_all.on' : 'settings.review_all.off') },
    ],
    ['settings.show.hourly_quota', { value: settings.userHourlyQuota, max: defaults.userHourlyQuota }],
    ['settings.show.daily_budget', { value: settings.guildDailyBudget, max: defaults.guildDailyBudget }],
  ];
  return [t(locale, 'settings.show.title'), ...lines.map(([key, params]) => `• ${t(locale, key, params)}`)].join('\n');
}
