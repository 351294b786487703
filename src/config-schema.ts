/**
 * Every environment variable the bot reads, with its default and its rule. A wrong value is
 * named with what would work, never echoed: it may be a secret pasted in the wrong place.
 * src/config.ts turns the parsed values into the settings the rest of the bot reads.
 */
import { z } from 'zod';
import { DEFAULT_THRESHOLDS } from './domain/moderation.ts';

const SNOWFLAKE = /^\d{17,20}$/;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

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

export const schema = z.object({
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
