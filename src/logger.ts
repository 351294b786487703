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
 * An interaction's webhook token is in the path of every request that answers it
 * (`/webhooks/<application id>/<token>/...`): whoever reads it can post as the bot in that
 * channel for 15 minutes.
 */
const WEBHOOK_TOKEN = /(\/webhooks\/\d+\/)[^/?#\s"'\\]+/g;
export const maskWebhookTokens = (text: string) => text.replace(WEBHOOK_TOKEN, '$1***');

/** How deep the serializer follows causes and nested values: an error chain, not a data dump. */
const MAX_DEPTH = 6;

/** An Error, from this realm or another (a worker's); a plain object with a `message` is data. */
function isErrorLike(value: object): value is Error {
  const { message, stack } = value as { message?: unknown; stack?: unknown };
  return value instanceof Error || (typeof message === 'string' && typeof stack === 'string');
}

/** A request body's attachments by name: enough to know what was sent, without the bytes. */
function fileNames(body: unknown): string[] | undefined {
  const files = (body as { files?: unknown } | null | undefined)?.files;
  if (!Array.isArray(files)) return undefined;
  return files.map((f) => String((f as { name?: unknown } | null)?.name ?? '?'));
}

/**
 * Errors from a failed HTTP call (discord.js's `DiscordAPIError` and `HTTPError`, matched by
 * shape so the logger need not import discord.js) carry the request: its URL with the webhook
 * token, and `requestBody.files[].data`, a whole image that would be logged as a JSON array of
 * numbers. This keeps what explains the failure (type, message, status, code, method, the masked
 * URL, the files' names) and follows `cause`, which pino's own serializer folds into one string.
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
    out.type = typeof value.constructor === 'function' ? value.constructor.name : value.name;
    out.message = maskWebhookTokens(value.message);
    if (typeof value.stack === 'string') out.stack = maskWebhookTokens(value.stack);
  }
  for (const key in value) {
    if (key in out) continue;
    const field = (value as Record<string, unknown>)[key];
    if (key === 'requestBody') {
      const files = fileNames(field);
      if (files) out.files = files;
    } else if (typeof field !== 'function') out[key] = serializeError(field, depth + 1, seen);
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
  const scrub = (line: string) => maskWebhookTokens(secrets.reduce((text, secret) => text.split(secret).join('[REDACTED]'), line));
  const destination =
    options.format === 'pretty'
      ? pretty({ colorize: !options.destination, sync: true, ...(options.destination ? { destination: options.destination } : {}) })
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
