import { z } from 'zod';
import { parseBlockedTerms } from './prompts/normalise.ts';
import { DEFAULT_THRESHOLDS, type NsfwThresholds } from './domain/moderation.ts';

/**
 * Configuration is a pure function of the environment: `loadConfig(env)` validates every
 * variable and reports all problems at once. Only `src/main.ts`, `src/cli/deploy-commands.ts` and
 * `src/cli/imagine.ts` read `process.env` (after dotenv), and nothing here echoes a value back, so a
 * misplaced secret never reaches the terminal.
 */

const SNOWFLAKE = /^\d{17,20}$/;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const str = () => z.string({ error: 'is required' }).min(1, { error: 'is required' });
const optionalStr = () => z.string().optional();
const int = (fallback: number, min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a whole number' })
    .int({ error: 'must be a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` })
    .default(fallback);
/** A probability threshold: above 0 (0 would flag every image), at most 1. */
const threshold = (fallback: number) =>
  z.coerce
    .number({ error: 'must be a number from 0.01 to 1, such as 0.6' })
    .min(0.01, { error: 'must be a number from 0.01 to 1, such as 0.6' })
    .max(1, { error: 'must be a number from 0.01 to 1, such as 0.6' })
    .default(fallback);
const httpUrl = () =>
  z.string().refine((v) => /^https?:\/\//.test(v) && URL.canParse(v), { error: 'must be an http(s) URL' });
const snowflake = () => z.string().regex(SNOWFLAKE, { error: 'must be a Discord id (17-20 digits)' }).optional();
const storageUrl = () =>
  z.string().refine((v) => /^(sqlite:\/\/.+|rediss?:\/\/.+|memory:\/\/)$/.test(v), {
    error: 'must be sqlite://./relative.sqlite, sqlite:///absolute/path.sqlite, redis://host:port or memory://',
  });

/** A price as the operator writes it, kept as text so costs stay exact (PRICE_PER_EDIT, PRICE_PER_UPSCALE). */
const decimalPrice = () =>
  z
    .string()
    .regex(/^\d{1,9}(\.\d{1,9})?$/, {
      error: 'must be a non-negative decimal number with a dot, such as 0.02 (no currency sign)',
    })
    .optional();

const schema = z.object({
  DISCORD_TOKEN: str(),
  PPINFRA_API_KEY: str(),
  PPINFRA_BASE_URL: httpUrl().default('https://api.ppinfra.com'),
  DISCORD_API_URL: httpUrl().optional(),
  DISCORD_LOGIN_TIMEOUT_MS: int(30_000, 1_000, 600_000),
  STORAGE_URL: storageUrl().default('sqlite://./data/qwen-imagine.sqlite'),
  REVIEW_CHANNEL_ID: snowflake(),
  DISCORD_GUILD_ID: snowflake(),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty'], { error: 'must be json or pretty' }).optional(),
  NODE_ENV: optionalStr(),

  DEFAULT_SIZE: z.string().default('1024*1024'),
  PROMPT_MAX_LENGTH: int(1000, 1, 4000),
  MAX_IMAGES_PER_REQUEST: int(4, 1, 4),
  BLOCKED_TERMS: z.string().default(''),
  // The local classifier's thresholds for a guild on the standard sensitivity (src/moderation/policy.ts).
  NSFW_THRESHOLD_PORN: threshold(DEFAULT_THRESHOLDS.porn),
  NSFW_THRESHOLD_SEXY: threshold(DEFAULT_THRESHOLDS.sexy),

  HTTP_CONNECT_TIMEOUT_MS: int(10_000, 100, 120_000),
  HTTP_HEADERS_TIMEOUT_MS: int(30_000, 100, 300_000),
  HTTP_BODY_TIMEOUT_MS: int(60_000, 100, 600_000),
  IMAGE_MAX_BYTES: int(50 * 1024 * 1024, 1024, 500 * 1024 * 1024),
  JOB_TIMEOUT_MS: int(300_000, 1_000, 14 * 60_000),
  QUEUE_TIMEOUT_MS: int(600_000, 1_000, 3_600_000),
  QUEUE_LOCK_MS: int(30_000, 1_000, 600_000),
  RECONCILE_INTERVAL_MS: int(30_000, 1_000, 600_000),
  API_IMAGES_PER_MINUTE: int(20, 1, 100_000),

  POLL_MIN_INTERVAL_MS: int(400, 200, 60_000),
  POLL_MAX_INTERVAL_MS: int(5_000, 200, 120_000),
  POLL_MAX_PER_SECOND: int(20, 1, 1000),
  PROGRESS_EDIT_INTERVAL_MS: int(5_000, 200, 60_000),

  USER_MAX_CONCURRENT: int(2, 1, 50),
  USER_HOURLY_QUOTA: int(20, 1, 10_000),
  GUILD_DAILY_BUDGET: int(200, 1, 1_000_000),
  MAX_JOBS_IN_FLIGHT: int(500, 1, 100_000),
  QUEUE_MAX: int(50, 0, 10_000),
  BREAKER_THRESHOLD: int(3, 1, 100),
  BREAKER_COOLDOWN_MS: int(60_000, 1_000, 3_600_000),
  // Held images waiting for a moderator: past these, new requests are refused (nothing billed).
  HELD_PER_MEMBER: int(5, 1, 1_000),
  HELD_PER_GUILD: int(50, 1, 100_000),
  REPORTS_PER_HOUR: int(10, 1, 1000),

  // The local NSFW classifier, a second signal beside the provider's flags (src/moderation/nsfw-classifier.ts).
  NSFW_CLASSIFIER: z.enum(['on', 'off'], { error: 'must be on or off' }).default('on'),
  // At least a second: one classification takes about 0.1 s on an idle core and a reload about 1 s,
  // and each timeout with no answer restarts the model's thread, so a bound below that held most
  // images and kept the thread reloading.
  NSFW_CLASSIFIER_TIMEOUT_MS: int(10_000, 1_000, 120_000),

  // [ops: health and metrics] Off unless METRICS_PORT is set; 0 means any free port (tests).
  METRICS_PORT: z.coerce
    .number({ error: 'must be a port number from 1 to 65535 (0: any free port)' })
    .int({ error: 'must be a port number from 1 to 65535 (0: any free port)' })
    .min(0, { error: 'must be a port number from 1 to 65535 (0: any free port)' })
    .max(65_535, { error: 'must be a port number from 1 to 65535 (0: any free port)' })
    .optional(),
  METRICS_HOST: z
    .string()
    .refine((v) => /^[A-Za-z0-9.:-]+$/.test(v) && !v.includes('://'), {
      error: 'must be a host name or an IP address to listen on, e.g. 127.0.0.1 or 0.0.0.0',
    })
    .default('127.0.0.1'),
  // What the operator pays (`/imagine-usage`, `npm run usage`): kept as written, so costs are exact.
  PRICE_PER_IMAGE: z
    .string()
    .regex(/^\d{1,9}(\.\d{1,9})?$/, {
      error: 'must be a non-negative decimal number with a dot, such as 0.02 (no currency sign)',
    })
    .optional(),
  PRICE_CURRENCY: z
    .string()
    .regex(/^[\p{L}\p{Sc}]{1,8}$/u, {
      error: 'must be a short currency label such as USD or CNY (up to 8 letters, no spaces)',
    })
    .optional(),
  // How an edit's image reaches the provider: the attachment's URL (public and
  // short-lived) or its bytes as base64 (a 10 MB image is ~13.4 MB of JSON). Which one the
  // provider takes is not documented (docs/ppinfra-api.md section 13).
  EDIT_IMAGE_INPUT: z.enum(['url', 'base64'], { error: 'must be url or base64' }).default('url'),
  // 8k is left out: an 8192-pixel image is far past Discord's upload limits.
  UPSCALE_RESOLUTION: z.enum(['2k', '4k'], { error: 'must be 2k or 4k' }).default('2k'),
  PRICE_PER_EDIT: decimalPrice(),
  PRICE_PER_UPSCALE: decimalPrice(),

  // Members may add the bot to their account and use it in DMs and in servers that
  // never installed it (src/discord/install.ts). There nobody can review a flagged image, and every
  // image is paid from one daily budget instead of a server's.
  USER_INSTALL: z.enum(['on', 'off'], { error: 'must be on or off' }).default('on'),
  DM_NSFW: z
    .enum(['hold', 'spoiler'], {
      error:
        'must be hold (flagged images are never shown in DMs) or spoiler (shown to the member alone, blurred, with a warning)',
    })
    .default('spoiler'),
  USER_INSTALL_DAILY_BUDGET: int(200, 0, 1_000_000),
});

export type RawConfig = z.infer<typeof schema>;

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
