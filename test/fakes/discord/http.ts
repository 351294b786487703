// HTTP plumbing: reading and parsing bodies (JSON and multipart/form-data with payload_json +
// files[n]), rate-limit headers, injected faults, and a small event-driven wait helper.
import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { DiscordHttpError, type Fault, type Json, type RecordedFile, type RouteMatcher } from './types.ts';

/** Bodies above this are refused before being buffered (Discord's edge does the same). */
const HARD_BODY_LIMIT = 64 * 1024 * 1024;

export interface ParsedBody {
  json: Json | undefined;
  files: RecordedFile[];
  /** Total bytes of uploaded files. */
  uploadBytes: number;
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > HARD_BODY_LIMIT) {
    req.resume();
    throw new DiscordHttpError(413, { message: 'Request entity too large', code: 40005 });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > HARD_BODY_LIMIT) throw new DiscordHttpError(413, { message: 'Request entity too large', code: 40005 });
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

const INVALID_JSON = (): DiscordHttpError =>
  new DiscordHttpError(400, { message: 'The request body contains invalid JSON.', code: 50109 });

export async function parseBody(raw: Buffer, contentType: string | undefined): Promise<ParsedBody> {
  if (raw.length === 0) return { json: undefined, files: [], uploadBytes: 0 };
  const type = (contentType ?? '').toLowerCase();
  if (type.startsWith('multipart/form-data')) return parseMultipart(raw, contentType ?? '');
  try {
    return { json: JSON.parse(raw.toString('utf8')) as Json, files: [], uploadBytes: 0 };
  } catch {
    throw INVALID_JSON();
  }
}

/** Uses the Web Request's own multipart parser (undici) rather than a hand-written one. */
async function parseMultipart(raw: Buffer, contentType: string): Promise<ParsedBody> {
  let form: FormData;
  try {
    form = await new Request('http://fake.invalid/', {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: raw,
    }).formData();
  } catch {
    throw new DiscordHttpError(400, { message: 'Invalid multipart body', code: 50035 });
  }
  let json: Json | undefined;
  const files: RecordedFile[] = [];
  for (const [field, value] of form.entries()) {
    if (typeof value === 'string') {
      if (field === 'payload_json') {
        try {
          json = JSON.parse(value) as Json;
        } catch {
          throw INVALID_JSON();
        }
      }
      continue;
    }
    const bytes = Buffer.from(await value.arrayBuffer());
    files.push({ field, filename: value.name, contentType: value.type, size: bytes.length, bytes });
  }
  return { json, files, uploadBytes: files.reduce((n, f) => n + f.size, 0) };
}

// ---- rate-limit headers ---------------------------------------------------------------------

/**
 * Per-bucket counters so the X-RateLimit-* headers move like Discord's. The limit is generous
 * (50 per second) on purpose: the fake reports rate limits but never enforces them by itself;
 * tests that want a 429 inject it with failNext().
 */
export class RateLimitTracker {
  private readonly buckets = new Map<string, { count: number; resetAt: number }>();
  readonly limit = 50;
  readonly windowMs = 1000;

  headers(method: string, route: string | null, majorParameter: string): Record<string, string> {
    const bucketRoute = route ?? 'unknown';
    const key = `${method} ${bucketRoute} ${majorParameter}`;
    const now = Date.now();
    let b = this.buckets.get(key);
    if (!b || b.resetAt <= now) {
      b = { count: 0, resetAt: now + this.windowMs };
      this.buckets.set(key, b);
    }
    b.count++;
    return rateLimitHeaders(
      bucketHash(method, bucketRoute),
      this.limit,
      Math.max(0, this.limit - b.count),
      (b.resetAt - now) / 1000,
    );
  }
}

export function bucketHash(method: string, route: string): string {
  return createHash('sha1').update(`${method} ${route}`).digest('hex').slice(0, 32);
}

export function rateLimitHeaders(
  bucket: string,
  limit: number,
  remaining: number,
  resetAfterSec: number,
): Record<string, string> {
  const resetAfter = Math.max(0, resetAfterSec);
  return {
    'X-RateLimit-Limit': String(limit),
    'X-RateLimit-Remaining': String(remaining),
    'X-RateLimit-Reset': (Date.now() / 1000 + resetAfter).toFixed(3),
    'X-RateLimit-Reset-After': resetAfter.toFixed(3),
    'X-RateLimit-Bucket': bucket,
  };
}

/** Discord's major parameters: a bucket is per channel / guild / webhook (+token). */
export function majorParameter(params: Record<string, string>): string {
  if (params.channel_id) return params.channel_id;
  if (params.guild_id) return params.guild_id;
  if (params.webhook_id) return `${params.webhook_id}:${params.webhook_token ?? ''}`;
  if (params.interaction_id) return params.interaction_id;
  return 'global';
}

// ---- fault injection ------------------------------------------------------------------------

interface PendingFault {
  matcher: RouteMatcher;
  fault: Fault;
  remaining: number;
}

export class FaultInjector {
  private readonly pending: PendingFault[] = [];

  add(matcher: RouteMatcher, fault: Fault, times: number): void {
    this.pending.push({ matcher, fault, remaining: times });
  }

  /** Consumes and returns the first fault whose matcher matches this request. */
  take(method: string, path: string, route: string | null): Fault | undefined {
    const index = this.pending.findIndex((p) => matches(p.matcher, method, path, route));
    const entry = this.pending[index];
    if (!entry) return undefined;
    entry.remaining--;
    if (entry.remaining <= 0) this.pending.splice(index, 1);
    return entry.fault;
  }

  get size(): number {
    return this.pending.length;
  }
}

/**
 * A string matches the concrete path ('/channels/1/messages'), the route template
 * ('/channels/{channel_id}/messages'), or either prefixed by the method ('POST /channels/...').
 * A RegExp is tested against the path and against 'METHOD path'.
 */
export function matches(matcher: RouteMatcher, method: string, path: string, route: string | null): boolean {
  const m = method.toUpperCase();
  const candidates = [path, `${m} ${path}`, ...(route ? [route, `${m} ${route}`] : [])];
  if (typeof matcher === 'string') return candidates.includes(normalizeMatcherString(matcher));
  if (matcher instanceof RegExp) return candidates.some((c) => matcher.test(c));
  if (matcher.method && matcher.method.toUpperCase() !== m) return false;
  if (matcher.path === undefined) return true;
  return matches(matcher.path, method, path, route);
}

function normalizeMatcherString(s: string): string {
  const [first, ...rest] = s.trim().split(/\s+/);
  const strip = (p: string): string => p.replace(/^\/api\/v10(?=\/)/, '');
  if (rest.length > 0 && first) return `${first.toUpperCase()} ${strip(rest.join(' '))}`;
  return strip(s.trim());
}

export function faultResponse(
  fault: Fault,
  route: string | null,
  method: string,
): { status: number; headers: Record<string, string>; body: Json } {
  if (fault.status === 429) {
    const retryAfter = fault.retryAfterSec ?? 0.05;
    const global = fault.global ?? false;
    const headers: Record<string, string> = {
      ...rateLimitHeaders(bucketHash(method, route ?? 'unknown'), 5, 0, retryAfter),
      // Discord sends whole seconds here; fractional values keep tests fast and discord.js
      // parses them with Number(), so they work the same way.
      'Retry-After': String(retryAfter),
      'X-RateLimit-Scope': global ? 'global' : 'user',
    };
    if (global) headers['X-RateLimit-Global'] = 'true';
    return { status: 429, headers, body: { message: 'You are being rate limited.', retry_after: retryAfter, global } };
  }
  // Discord's 5xx come from Cloudflare / the API as small JSON (or HTML) bodies.
  return { status: fault.status, headers: {}, body: { message: `${fault.status}: Server Error`, code: 0 } };
}

// ---- waiting --------------------------------------------------------------------------------

export type EventSource = [emitter: EventEmitter, event: string];

/**
 * Resolves with `check()`'s first non-undefined value, re-evaluated on every event of the
 * sources (no polling). Rejects after `timeoutMs` with `describe()` in the message.
 */
export function waitUntil<T>(
  sources: EventSource | EventSource[],
  check: () => T | undefined,
  timeoutMs: number,
  describe: () => string,
): Promise<T> {
  const list: EventSource[] = Array.isArray(sources[0]) ? (sources as EventSource[]) : [sources as EventSource];
  const immediate = check();
  if (immediate !== undefined) return Promise.resolve(immediate);
  return new Promise<T>((resolve, reject) => {
    const onEvent = (): void => {
      let value: T | undefined;
      try {
        value = check();
      } catch (err) {
        cleanup();
        reject(err as Error);
        return;
      }
      if (value !== undefined) {
        cleanup();
        resolve(value);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Fake Discord: timed out after ${timeoutMs} ms waiting for ${describe()}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      for (const [emitter, event] of list) emitter.off(event, onEvent);
    };
    for (const [emitter, event] of list) emitter.on(event, onEvent);
  });
}
