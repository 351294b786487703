import { parseBlockedTerms } from './prompts/normalise.ts';
import type { NsfwThresholds } from './domain/moderation.ts';
import { type LOG_LEVELS, schema, type RawConfig } from './config-schema.ts';

/**
 * Configuration is a pure function of the environment: `loadConfig(env)` validates every
 * variable and reports all problems at once. Only `src/main.ts`, `src/cli/deploy-commands.ts` and
 * `src/cli/imagine.ts` read `process.env` (after dotenv), and nothing here echoes a value back, so a
 * misplaced secret never reaches the terminal.
 */

export type { RawConfig };

export interface Config {
  discordToken: string;
  discordApiUrl: string | undefined;
  /** How long the start may take to reach Discord (REST and gateway) before it gives up. */
  discordLoginTimeoutMs: number;
  discordGuildId: string | undefined;
  reviewChannelId: string | undefined;
  ppinfra: {
    apiKey: string;
    baseUrl: string;
    connectTimeoutMs: number;
    headersTimeoutMs: number;
    bodyTimeoutMs: number;
  };
  storageUrl: string;
  log: { level: (typeof LOG_LEVELS)[number]; format: 'json' | 'pretty' };
  /**
   * The local classifier's thresholds on the standard sensitivity: `porn + hentai` and `sexy` at
   * or above them flag an image; a guild's strict or relaxed sensitivity moves them.
   */
  nsfwThresholds: NsfwThresholds;
  generation: {
    defaultSize: string;
    promptMaxLength: number;
    blockedTerms: string[];
    imageMaxBytes: number /** The most images one /imagine may ask for (`count`), 1-4. */;
    maxImagesPerRequest: number;
  };
  jobs: {
    timeoutMs: number;
    queueTimeoutMs: number;
    /** On Redis: how long a process holds a job step; another takes over a dead one's steps after it. */
    lockMs: number;
    /** How often the reconciler looks for unfinished jobs nothing is moving on (both engines). */
    reconcileIntervalMs: number;
    imagesPerMinute: number;
    pollMinIntervalMs: number;
    pollMaxIntervalMs: number;
    pollMaxPerSecond: number;
    progressEditIntervalMs: number;
  };
  limits: {
    userMaxConcurrent: number;
    userHourlyQuota: number;
    guildDailyBudget: number;
    maxJobsInFlight: number;
    queueMax: number;
    breakerThreshold: number;
    breakerCooldownMs: number;
  };
  /**
   * The local NSFW classifier (NSFW_CLASSIFIER, default on): `timeoutMs` bounds one
   * classification, waiting in its queue included; past it the image is held (fail closed).
   */
  classifier: { enabled: boolean; timeoutMs: number };
  /** HELD_PER_MEMBER and HELD_PER_GUILD: flagged images that may wait for a moderator at once. */
  review: { heldPerMember: number; heldPerGuild: number };
  /** Member reports: how many one member of a guild may send in any hour (a batch message counts once). */
  reports: { perHour: number };
  /** The health and metrics HTTP endpoint; undefined when METRICS_PORT is not set. */
  ops: { host: string; port: number } | undefined;
  /** PRICE_PER_IMAGE (exact decimal text) and PRICE_CURRENCY; undefined when no price is set. */
  price: { perImage: string; currency: string | undefined } | undefined;
  /**
   * The image tools: EDIT_IMAGE_INPUT, UPSCALE_RESOLUTION, and their prices (exact decimal text,
   * in PRICE_CURRENCY), PRICE_PER_EDIT and PRICE_PER_UPSCALE, each PRICE_PER_IMAGE when unset and
   * undefined when neither is set.
   */
  tools: {
    editImageInput: 'url' | 'base64';
    upscaleResolution: '2k' | '4k';
    pricePerEdit: string | undefined;
    pricePerUpscale: string | undefined;
  };
  /**
   * USER_INSTALL, DM_NSFW, USER_INSTALL_DAILY_BUDGET. `enabled` false registers every command for
   * servers that installed the bot only. `dmNsfw`: what the member sees of a flagged image in the
   * bot's DM. `dailyBudget`: images per rolling day across every place without the bot's server
   * install (its DM, conversations between others, servers that did not install it); 0 allows none.
   */
  userInstall: { enabled: boolean; dmNsfw: 'hold' | 'spoiler'; dailyBudget: number };
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

/** Which secrets an entry point needs: the CLI generator has no Discord token, deploy no API key. */
export type ConfigNeeds = { discord: boolean; ppinfra: boolean };

/** Facts about the process that are not in the environment: whether stdout is a terminal. */
export type ConfigRuntime = { isTTY?: boolean };

/**
 * The log format: an explicit LOG_FORMAT wins; otherwise readable lines for a person at a
 * terminal (or NODE_ENV=development), JSON for everything else (log shippers, containers, pipes).
 */
export function resolveLogFormat(o: {
  format: 'json' | 'pretty' | undefined;
  nodeEnv: string | undefined;
  isTTY: boolean | undefined;
}): 'json' | 'pretty' {
  if (o.format) return o.format;
  return o.nodeEnv === 'development' || o.isTTY === true ? 'pretty' : 'json';
}

export function loadConfig(
  env: Record<string, string | undefined>,
  needs: ConfigNeeds = { discord: true, ppinfra: true },
  runtime: ConfigRuntime = {},
): ConfigResult {
  // An empty or blank variable means "unset": `.env` files often carry `KEY=` placeholders.
  const cleaned: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    const trimmed = value?.trim();
    if (trimmed) cleaned[key] = trimmed;
  }
  if (!needs.discord) cleaned.DISCORD_TOKEN ??= 'unused-by-this-entry-point';
  if (!needs.ppinfra) cleaned.PPINFRA_API_KEY ??= 'unused-by-this-entry-point';

  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`);
    return { ok: false, problems: [...new Set(problems)].sort() };
  }
  const raw = parsed.data;
  const problems: string[] = [];
  if (raw.POLL_MAX_INTERVAL_MS < raw.POLL_MIN_INTERVAL_MS) {
    problems.push('POLL_MAX_INTERVAL_MS must be at least POLL_MIN_INTERVAL_MS');
  }
  if (problems.length) return { ok: false, problems };
  return { ok: true, config: toConfig(raw, runtime) };
}

function toConfig(raw: RawConfig, runtime: ConfigRuntime): Config {
  return Object.freeze({
    discordToken: raw.DISCORD_TOKEN,
    discordApiUrl: raw.DISCORD_API_URL,
    discordLoginTimeoutMs: raw.DISCORD_LOGIN_TIMEOUT_MS,
    discordGuildId: raw.DISCORD_GUILD_ID,
    reviewChannelId: raw.REVIEW_CHANNEL_ID,
    ppinfra: {
      apiKey: raw.PPINFRA_API_KEY,
      baseUrl: raw.PPINFRA_BASE_URL.replace(/\/+$/, ''),
      connectTimeoutMs: raw.HTTP_CONNECT_TIMEOUT_MS,
      headersTimeoutMs: raw.HTTP_HEADERS_TIMEOUT_MS,
      bodyTimeoutMs: raw.HTTP_BODY_TIMEOUT_MS,
    },
    storageUrl: raw.STORAGE_URL,
    log: {
      level: raw.LOG_LEVEL,
      format: resolveLogFormat({ format: raw.LOG_FORMAT, nodeEnv: raw.NODE_ENV, isTTY: runtime.isTTY }),
    },
    nsfwThresholds: { porn: raw.NSFW_THRESHOLD_PORN, sexy: raw.NSFW_THRESHOLD_SEXY },
    generation: {
      defaultSize: raw.DEFAULT_SIZE,
      promptMaxLength: raw.PROMPT_MAX_LENGTH,
      maxImagesPerRequest: raw.MAX_IMAGES_PER_REQUEST,
      blockedTerms: parseBlockedTerms(raw.BLOCKED_TERMS),
      imageMaxBytes: raw.IMAGE_MAX_BYTES,
    },
    jobs: {
      timeoutMs: raw.JOB_TIMEOUT_MS,
      queueTimeoutMs: raw.QUEUE_TIMEOUT_MS,
      lockMs: raw.QUEUE_LOCK_MS,
      reconcileIntervalMs: raw.RECONCILE_INTERVAL_MS,
      imagesPerMinute: raw.API_IMAGES_PER_MINUTE,
      pollMinIntervalMs: raw.POLL_MIN_INTERVAL_MS,
      pollMaxIntervalMs: raw.POLL_MAX_INTERVAL_MS,
      pollMaxPerSecond: raw.POLL_MAX_PER_SECOND,
      progressEditIntervalMs: raw.PROGRESS_EDIT_INTERVAL_MS,
    },
    limits: {
      userMaxConcurrent: raw.USER_MAX_CONCURRENT,
      userHourlyQuota: raw.USER_HOURLY_QUOTA,
      guildDailyBudget: raw.GUILD_DAILY_BUDGET,
      maxJobsInFlight: raw.MAX_JOBS_IN_FLIGHT,
      queueMax: raw.QUEUE_MAX,
      breakerThreshold: raw.BREAKER_THRESHOLD,
      breakerCooldownMs: raw.BREAKER_COOLDOWN_MS,
    },
    classifier: { enabled: raw.NSFW_CLASSIFIER === 'on', timeoutMs: raw.NSFW_CLASSIFIER_TIMEOUT_MS },
    review: { heldPerMember: raw.HELD_PER_MEMBER, heldPerGuild: raw.HELD_PER_GUILD },
    reports: { perHour: raw.REPORTS_PER_HOUR },
    ops: raw.METRICS_PORT === undefined ? undefined : { host: raw.METRICS_HOST, port: raw.METRICS_PORT },
    price: raw.PRICE_PER_IMAGE ? { perImage: raw.PRICE_PER_IMAGE, currency: raw.PRICE_CURRENCY } : undefined,
    tools: {
      editImageInput: raw.EDIT_IMAGE_INPUT,
      upscaleResolution: raw.UPSCALE_RESOLUTION,
      pricePerEdit: raw.PRICE_PER_EDIT ?? raw.PRICE_PER_IMAGE,
      pricePerUpscale: raw.PRICE_PER_UPSCALE ?? raw.PRICE_PER_IMAGE,
    },
    userInstall: {
      enabled: raw.USER_INSTALL === 'on',
      dmNsfw: raw.DM_NSFW,
      dailyBudget: raw.USER_INSTALL_DAILY_BUDGET,
    },
  });
}

/** The one report an operator sees when configuration is wrong: every problem, no values. */
export function formatProblems(problems: string[]): string {
  return [
    'qwen-imagine cannot start: the configuration has problems.',
    ...problems.map((p) => `  - ${p}`),
    'Set these in .env (see .env.example) or in the environment, then start again.',
  ].join('\n');
}
