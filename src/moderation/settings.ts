import type { KeyValue } from '../storage/key-value.ts';

/** In an age-restricted channel, a flagged image is published behind a spoiler, or reviewed first. */
export const NSFW_POLICIES = ['spoiler', 'review'] as const;
export type NsfwPolicy = (typeof NSFW_POLICIES)[number];

/** How readily the local classifier's scores flag an image (thresholds in `policy.ts`). */
export const SENSITIVITIES = ['strict', 'standard', 'relaxed'] as const;
export type Sensitivity = (typeof SENSITIVITIES)[number];

/** What a guild chose with /imagine-settings; anything unset follows the operator's defaults. */
export interface GuildChoices {
  reviewChannelId?: string;
  moderatorRoleId?: string;
  nsfwChannels?: NsfwPolicy;
  sensitivity?: Sensitivity;
  /** Every image is held for a moderator before it is shown, flagged or not. */
  reviewAll?: boolean;
  userHourlyQuota?: number;
  guildDailyBudget?: number;
}

/** The settings in force for a guild: its choices over the operator's defaults and maximums. */
export interface GuildSettings {
  reviewChannelId: string | undefined;
  /** Where the review channel comes from, for `/imagine-settings show`. */
  reviewChannelSource: 'guild' | 'operator' | 'none';
  moderatorRoleId: string | undefined;
  nsfwChannels: NsfwPolicy;
  sensitivity: Sensitivity;
  reviewAll: boolean;
  userHourlyQuota: number;
  guildDailyBudget: number;
  choices: GuildChoices;
}

export interface OperatorDefaults {
  reviewChannelId: string | undefined;
  /** USER_HOURLY_QUOTA and GUILD_DAILY_BUDGET: a guild may lower them, never raise them. */
  userHourlyQuota: number;
  guildDailyBudget: number;
}

export interface GuildSettingsStore {
  get(guildId: string): Promise<GuildSettings>;
  /** Sets the given fields; `null` clears a choice back to the default. */
  update(guildId: string, patch: { [K in keyof GuildChoices]?: GuildChoices[K] | null }): Promise<GuildSettings>;
  readonly defaults: OperatorDefaults;
}

const FIELDS = [
  'reviewChannelId',
  'moderatorRoleId',
  'nsfwChannels',
  'sensitivity',
  'reviewAll',
  'userHourlyQuota',
  'guildDailyBudget',
] as const;

/**
 * Guild settings in the shared store, one key per field: two admins changing different settings
 * from two processes at once both win, and nothing is cached, so every process sees a change
 * at its next read.
 */
export function createGuildSettingsStore(kv: KeyValue, defaults: OperatorDefaults): GuildSettingsStore {
  const key = (guildId: string, field: string) => `guild:${guildId}:${field}`;

  async function choices(guildId: string): Promise<GuildChoices> {
    const values = await Promise.all(FIELDS.map((field) => kv.get(key(guildId, field))));
    return Object.fromEntries(
      FIELDS.flatMap((field, i) => (values[i] === undefined || values[i] === null ? [] : [[field, values[i]]])),
    ) as GuildChoices;
  }

  function resolve(chosen: GuildChoices): GuildSettings {
    const reviewChannelId = chosen.reviewChannelId ?? defaults.reviewChannelId;
    return {
      reviewChannelId,
      reviewChannelSource: chosen.reviewChannelId ? 'guild' : defaults.reviewChannelId ? 'operator' : 'none',
      moderatorRoleId: chosen.moderatorRoleId,
      nsfwChannels: chosen.nsfwChannels === 'review' ? 'review' : 'spoiler',
      // Anything stored that is not a known level (an older or newer version wrote it) is the default.
      sensitivity: SENSITIVITIES.includes(chosen.sensitivity as Sensitivity)
        ? (chosen.sensitivity as Sensitivity)
        : 'standard',
      reviewAll: chosen.reviewAll === true,
      // The operator may have lowered a maximum since the guild chose: the lower one wins.
      userHourlyQuota: Math.min(chosen.userHourlyQuota ?? Infinity, defaults.userHourlyQuota),
      guildDailyBudget: Math.min(chosen.guildDailyBudget ?? Infinity, defaults.guildDailyBudget),
      choices: chosen,
    };
  }

  return {
    defaults,
    async get(guildId) {
      return resolve(await choices(guildId));
    },
    async update(guildId, patch) {
      await Promise.all(
        Object.entries(patch)
          .filter(([, value]) => value !== undefined)
          .map(([field, value]) =>
            value === null ? kv.delete(key(guildId, field)) : kv.set(key(guildId, field), value),
          ),
      );
      return resolve(await choices(guildId));
    },
  };
}
