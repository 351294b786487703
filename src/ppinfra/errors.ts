import { ERROR_KINDS, type PpinfraErrorKind } from '../domain/failure.ts';

/**
 * One error family for everything the PPInfra API (or the road to it) can do wrong.
 * `kind` is the stable discriminant the rest of the bot switches on; each kind maps to exactly
 * one user-facing sentence in `src/discord/messages.ts`. Raw API messages stay in logs.
 */
// The kinds are the domain's, since a job's failure records them; this error family carries them.
export { ERROR_KINDS, type PpinfraErrorKind };

export interface PpinfraErrorInit {
  status?: number;
  reason?: string;
  retryAfterMs?: number;
  taskId?: string;
  /** Network errors only: the request certainly never reached the server (no task can exist). */
  notSent?: boolean;
  cause?: unknown;
}

export class PpinfraError extends Error {
  override readonly name = 'PpinfraError';
  readonly kind: PpinfraErrorKind;
  readonly status: number | undefined;
  readonly reason: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly taskId: string | undefined;
  readonly notSent: boolean;

  constructor(kind: PpinfraErrorKind, message: string, init: PpinfraErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.kind = kind;
    this.status = init.status;
    this.reason = init.reason;
    this.retryAfterMs = init.retryAfterMs;
    this.taskId = init.taskId;
    this.notSent = init.notSent ?? false;
  }

  /** What goes into a structured log line: never a header, never a key. */
  toLog(): Record<string, unknown> {
    return { kind: this.kind, status: this.status, reason: this.reason, taskId: this.taskId, message: this.message };
  }
}

export const isPpinfraError = (e: unknown): e is PpinfraError => e instanceof PpinfraError;

/**
 * The body's `reason` decides before the HTTP status, because the docs disagree on statuses
 * (balance errors are 400 in one table and 403 in another; a missing key is 400 or 401).
 * See docs/ppinfra-api.md section 8.
 */
const BY_REASON: Record<string, PpinfraErrorKind> = {
  MISSING_API_KEY: 'auth',
  INVALID_API_KEY: 'auth',
  FAILED_TO_AUTH: 'auth',
  BILLING_AUTH_FAILED: 'auth',
  FEATURE_NOT_ALLOWED: 'auth',
  API_NOT_ALLOWED: 'auth',
  NEED_REAL_NAME_VERIFY: 'auth',
  BILLING_BALANCE_NOT_ENOUGH: 'quota',
  NOT_ENOUGH_BALANCE: 'quota',
  ANONYMOUS_ACCESS_QUOTA_EXCEEDS: 'quota',
  INVALID_REQUEST_BODY: 'invalid_request',
  ILLEGAL_PROMPT: 'illegal_prompt',
  ILLEGAL_IMAGE_CONTENT: 'illegal_prompt',
  TASK_NOT_FOUND: 'task_not_found',
  RATE_LIMIT_EXCEEDED: 'rate_limited',
  TASK_FAILED: 'task_failed',
  BILLING_FAILED: 'server',
  CREATE_TASK_FAILED: 'server',
  GET_RESULT_FAILED: 'server',
  SERVICE_NOT_AVAILABLE: 'server',
  API_NOT_FOUND: 'server',
};

function kindFromStatus(status: number): PpinfraErrorKind {
  if (status === 401 || status === 403) return 'auth';
  if (status === 402) return 'quota';
  if (status === 404) return 'task_not_found';
  if (status === 408) return 'timeout';
  if (status === 413 || status === 422 || (status >= 400 && status < 500 && status !== 429)) return 'invalid_request';
  if (status === 429) return 'rate_limited';
  return 'server';
}

export interface ErrorBody {
  code?: unknown;
  reason?: unknown;
  message?: unknown;
}

/** Builds the typed error for a non-2xx response. */
export function fromResponse(status: number, body: ErrorBody | undefined, retryAfterMs?: number): PpinfraError {
  const reason = typeof body?.reason === 'string' && body.reason ? body.reason : undefined;
  const apiMessage = typeof body?.message === 'string' ? body.message : '';
  const kind = (reason && BY_REASON[reason]) || kindFromStatus(status);
  const detail = [reason, apiMessage].filter(Boolean).join(': ');
  return new PpinfraError(kind, `PPInfra answered HTTP ${status}${detail ? ` (${detail})` : ''}`, {
    status,
    reason,
    retryAfterMs,
  });
}

/**
 * `Retry-After` in seconds or as an HTTP date (RFC 9110 10.2.3); `retry-after-ms` first when a
 * proxy sends it. Undefined when absent or unparseable.
 */
export function parseRetryAfter(
  headers: Record<string, string | string[] | undefined>,
  now: number,
): number | undefined {
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const ms = Number(first(headers['retry-after-ms']));
  if (Number.isFinite(ms) && ms >= 0 && first(headers['retry-after-ms']) !== undefined) return ms;
  const raw = first(headers['retry-after'])?.trim();
  if (!raw) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Math.round(Number(raw) * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** undici/Node error codes that prove the request never left this machine. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

function errorCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/**
 * Turns a thrown transport error into the family. `signal` tells an abort by the caller
 * (deadline -> timeout, shutdown -> aborted) from a failure on the wire.
 */
export function fromTransportError(e: unknown, signal: AbortSignal | undefined, what: string): PpinfraError {
  if (e instanceof PpinfraError) return e;
  if (signal?.aborted) {
    const timedOut = (signal.reason as { name?: string } | undefined)?.name === 'TimeoutError';
    return timedOut
      ? new PpinfraError('timeout', `${what} timed out`, { cause: e })
      : new PpinfraError('aborted', `${what} was cancelled`, { cause: e });
  }
  const code = errorCode(e);
  const notSent = code !== undefined && NOT_SENT_CODES.has(code);
  if (code && TIMEOUT_CODES.has(code)) {
    return new PpinfraError('timeout', `${what} timed out (${code})`, { cause: e, notSent });
  }
  return new PpinfraError('network', `${what} failed on the network (${code ?? 'unknown error'})`, {
    cause: e,
    notSent,
  });
}
