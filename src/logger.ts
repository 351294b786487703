import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

/** Field paths that may hold credentials in objects we log (headers of HTTP requests included). */
const REDACT_PATHS = [
  'authorization',
  'Authorization',
  'token',
  'apiKey',
  'headers.authorization',
  'headers.Authorization',
  '*.authorization',
  '*.Authorization',
  '*.token',
  '*.apiKey',
  '*.headers.authorization',
  '*.headers.Authorization',
  'DISCORD_TOKEN',
  'PPINFRA_API_KEY',
];

/**
 * An interaction's token is in the path of every request that answers it
 * (`/webhooks/<application id>/<token>/...`, `/interactions/<interaction id>/<token>/callback`):
 * whoever reads it can post as the bot in that channel for 15 minutes.
 */
const INTERACTION_TOKEN = /(\/(?:webhooks|interactions)\/\d+\/)[^/?#\s"'\\]+/g;
export const maskWebhookTokens = (text: string) => text.replace(INTERACTION_TOKEN, '$1:token');

/** How deep the serializer follows causes and nested values: an error chain, not a data dump. */
const MAX_DEPTH = 6;

/**
 * Fields of other errors never logged: what a request carried (a body with an image or a
 * prompt, headers with a key) rather than why it failed.
 */
const REQUEST_FIELDS = new Set(['requestBody', 'body', 'headers', 'rawHeaders', 'request', 'response', 'config']);

/** An Error, from this realm or another (a worker's); a plain object with a `message` is data. */
function isErrorLike(value: object): value is Error {
  const { message, stack } = value as { message?: unknown; stack?: unknown };
  return value instanceof Error || (typeof message === 'string' && typeof stack === 'string');
}

const safeDecode = (path: string) => {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
};

/** The path of a Discord API URL with its tokens masked: `/webhooks/123/:token/messages/@original`. */
function discordRoute(url: unknown): string | undefined {
  if (typeof url !== 'string') return undefined;
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  // Routes as Discord documents them: `@original`, not the URL's `%40original`.
  const path = parsed ? safeDecode(parsed.pathname) + parsed.search : url;
  return maskWebhookTokens(path.replace(/^\/api\/v\d+(?=\/)/, ''));
}

/**
 * discord.js's REST errors (`DiscordAPIError[code]`, `HTTPError`, `RateLimitError[route]`), known
 * by name so the logger need not import discord.js. They hold the request they failed on: its
 * URL with the interaction token, its JSON body (a prompt) and its files (whole images). Only what
 * explains the failure is kept: a whitelist, so a field added by a later discord.js stays out.
 */
const REST_ERROR = /^(DiscordAPIError|HTTPError|RateLimitError)\b/;
const RATE_LIMIT_FIELDS = ['retryAfter', 'limit', 'global', 'scope', 'timeToReset'] as const;

function restError(value: Error): Record<string, unknown> | undefined {
  const name = String(value.name);
  const type = typeof value.constructor === 'function' ? value.constructor.name : '';
  if (!REST_ERROR.test(name) && !REST_ERROR.test(type)) return undefined;
  const e = value as Error & Record<string, unknown>;
  const out: Record<string, unknown> = { name: maskWebhookTokens(name) };
  for (const key of ['code', 'status', 'method'] as const)
    if (typeof e[key] === 'number' || typeof e[key] === 'string') out[key] = e[key];
  out.route = discordRoute(e.url) ?? (typeof e.route === 'string' ? maskWebhookTokens(e.route) : undefined);
  if (value.message) out.message = maskWebhookTokens(value.message);
  if (/^RateLimitError/.test(name) || /^RateLimitError/.test(type))
    for (const key of RATE_LIMIT_FIELDS) if (e[key] !== undefined) out[key] = e[key];
  return out;
}

/**
 * Errors are logged as what explains them: discord.js's REST errors by a whitelist (above); any
 * other error by its type, message, stack and own fields, less what a request carried, following
 * `cause`, which pino's own serializer folds into one string. Tokens in URLs are masked throughout.
 */
function serializeError(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return maskWebhookTokens(value);
  if (!value || typeof value !== 'object') return value;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[${value.byteLength} bytes]`;
  if (seen.has(value) || depth > MAX_DEPTH) return '[…]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => serializeError(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  if (isErrorLike(value)) {
    const rest = restError(value);
    if (rest) return rest;
    out.type = typeof value.constructor === 'function' ? value.constructor.name : value.name;
    out.message = maskWebhookTokens(value.message);
    if (typeof value.stack === 'string') out.stack = maskWebhookTokens(value.stack);
  }
  for (const key in value) {
    if (key in out || REQUEST_FIELDS.has(key)) continue;
    const field = (value as Record<string, unknown>)[key];
    if (typeof field !== 'function') out[key] = serializeError(field, depth + 1, seen);
  }
  // `new Error(message, { cause })` makes `cause` an own property that `for…in` does not see.
  const { cause } = value as { cause?: unknown };
  if (cause !== undefined && !('cause' in out)) out.cause = serializeError(cause, depth + 1, seen);
  return out;
}

export interface LoggerOptions {
  level: string;
  format: 'json' | 'pretty';
  /** Secret values scrubbed from every line wherever they appear, even inside error messages. */
  secrets: readonly string[];
  /** Where lines go; stdout by default. Tests pass an in-memory sink. */
  destination?: DestinationStream;
}

/**
 * The logger root. Path redaction covers structured fields; the value scrub covers the rest
 * (a token pasted in an error message or a URL), because a leaked Discord token is a
 * compromised bot.
 */
export function createLogger(options: LoggerOptions): Logger {
  const secrets = options.secrets.filter((s) => s.length >= 6);
  // Webhook tokens are masked here too: a URL can reach a line outside an error (a message, a field).
  const scrub = (line: string) =>
    maskWebhookTokens(secrets.reduce((text, secret) => text.split(secret).join('[REDACTED]'), line));
  const destination =
    options.format === 'pretty'
      ? pretty({
          colorize: !options.destination,
          sync: true,
          ...(options.destination ? { destination: options.destination } : {}),
        })
      : (options.destination ?? pino.destination(1));
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      serializers: { err: serializeError, error: serializeError },
      hooks: { streamWrite: scrub },
      base: { service: 'qwen-imagine' },
    },
    destination,
  );
}

/** A silent logger for code paths whose caller passed none. */
export const silentLogger: Logger = pino({ level: 'silent' });
