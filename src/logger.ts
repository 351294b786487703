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
  const scrub = (line: string) => secrets.reduce((text, secret) => text.split(secret).join('[REDACTED]'), line);
  const destination =
    options.format === 'pretty'
      ? pretty({ colorize: !options.destination, sync: true, ...(options.destination ? { destination: options.destination } : {}) })
      : (options.destination ?? pino.destination(1));
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      hooks: { streamWrite: scrub },
      base: { service: 'qwen-imagine' },
    },
    destination,
  );
}

/** A silent logger for code paths whose caller passed none. */
export const silentLogger: Logger = pino({ level: 'silent' });
