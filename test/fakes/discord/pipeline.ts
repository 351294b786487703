// The request pipeline of the fake's HTTP server, in Discord's order: route match, injected
// faults, rate-limit headers, body parsing, auth, upload size, then the route (which runs the
// OpenAPI validation after its own auth/state checks). Every request is recorded; every error
// answered goes through recordError.
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  faultResponse,
  majorParameter,
  parseBody,
  readBody,
  type FaultInjector,
  type RateLimitTracker,
} from './http.ts';
import type { MessageStore } from './messages.ts';
import { matchRoute, type CompiledRoute, type RouteContext } from './rest.ts';
import { checkUploadSize } from './rules.ts';
import { DiscordHttpError, type Json, type RecordedError, type RecordedRequest } from './types.ts';
import { validateRequestBody } from './validate.ts';

export interface PipelineDeps {
  token: string;
  routes: CompiledRoute[];
  faults: FaultInjector;
  rateLimits: RateLimitTracker;
  store: MessageStore;
  events: EventEmitter;
  requests: RecordedRequest[];
  uploadLimitBytes: number;
  /** Spec path when OpenAPI validation is on, null when off. */
  openApiSpec: string | null;
  baseUrl(): string;
  recordError(error: RecordedError): void;
}

const API_PREFIX = '/api/v10';

export function createRequestHandler(deps: PipelineDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const url = new URL(req.url ?? '/', deps.baseUrl());
    const method = (req.method ?? 'GET').toUpperCase();
    const isApi = url.pathname.startsWith(`${API_PREFIX}/`);
    // discord.js percent-encodes path segments ('@original' arrives as '%40original'); record and
    // match the decoded form so matchers can be written as in Discord's docs.
    const path = decodePath(isApi ? url.pathname.slice(API_PREFIX.length) : url.pathname);
    const record: RecordedRequest = {
      method,
      path,
      route: null,
      query: Object.fromEntries(url.searchParams),
      headers: redactHeaders(req.headers),
      body: undefined,
      files: [],
      status: 0,
      response: undefined,
      injected: false,
      at: Date.now(),
    };
    deps.requests.push(record);

    const finish = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      record.response = body === undefined ? undefined : (JSON.parse(JSON.stringify(body)) as Json);
      const out: Record<string, string> = { ...headers };
      if (body !== undefined) out['Content-Type'] = 'application/json';
      res.writeHead(status, out);
      res.end(body === undefined ? undefined : JSON.stringify(body));
      deps.events.emit('request', record);
    };
    const fail = (error: DiscordHttpError, headers: Record<string, string> = {}): void => {
      deps.recordError({
        method,
        path,
        route: record.route,
        status: error.status,
        code: error.body.code,
        message: error.body.message,
        body: error.body,
        at: Date.now(),
      });
      finish(error.status, error.body, headers);
    };

    try {
      if (method === 'GET' && /^\/(media-proxy\/)?attachments\//.test(url.pathname)) {
        serveAttachment(deps, url, record, res);
        return;
      }
      if (!isApi) throw new DiscordHttpError(404, { message: '404: Not Found', code: 0 });
      const routeMatch = matchRoute(deps.routes, method, path);
      const matched = routeMatch && 'route' in routeMatch ? routeMatch : null;
      record.route = matched?.route.route ?? null;
      const raw = await readBody(req);

      const fault = deps.faults.take(method, path, record.route);
      if (fault) {
        // Injected faults are expected by the test: answered, recorded as requests, not as errors.
        record.injected = true;
        const f = faultResponse(fault, record.route, method);
        finish(f.status, f.body, f.headers);
        return;
      }
      const rateHeaders = deps.rateLimits.headers(method, record.route, majorParameter(matched?.params ?? {}));
      let ctx: RouteContext | undefined;
      try {
        const parsed = await parseBody(raw, req.headers['content-type']);
        record.body = parsed.json;
        record.files = parsed.files;
        if (!routeMatch) throw new DiscordHttpError(404, { message: '404: Not Found', code: 0 });
        if (!matched) throw new DiscordHttpError(405, { message: '405: Method Not Allowed', code: 0 });
        const { route, params } = matched;
        if (route.auth && req.headers.authorization !== `Bot ${deps.token}`)
          throw new DiscordHttpError(401, { message: '401: Unauthorized', code: 0 });
        checkUploadSize(parsed.uploadBytes, deps.uploadLimitBytes);
        ctx = {
          params,
          query: url.searchParams,
          body: parsed.json,
          files: parsed.files,
          validate: () => {
            if (deps.openApiSpec === null || parsed.json === undefined) return;
            const error = validateRequestBody(route.route, method, parsed.json, deps.openApiSpec);
            if (error) throw error;
          },
        };
        const result = route.handler(ctx);
        finish(result.status, result.status === 204 ? undefined : result.body, rateHeaders);
      } catch (error) {
        if (!(error instanceof DiscordHttpError)) throw error;
        if (ctx && matched) matched.route.onError?.(ctx, error);
        fail(error, rateHeaders);
      }
    } catch (error) {
      if (error instanceof DiscordHttpError) {
        fail(error);
        return;
      }
      // A bug in the fake: answer 500 and record it so the test fails visibly.
      const message = error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error);
      fail(new DiscordHttpError(500, { message: `Fake Discord internal error: ${message}`, code: 0 }));
    }
  };
}

/** GET /attachments/{channel_id}/{attachment_id}/{filename}: the uploaded bytes, like the CDN. */
function serveAttachment(deps: PipelineDeps, url: URL, record: RecordedRequest, res: ServerResponse): void {
  record.route = '/attachments/{channel_id}/{attachment_id}/{filename}';
  const match = /attachments\/(\d+)\/(\d+)\//.exec(url.pathname);
  const found = match?.[2] ? deps.store.attachments.get(match[2]) : undefined;
  if (!found || found.channelId !== match?.[1]) {
    record.status = 404;
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found');
  } else {
    record.status = 200;
    res
      .writeHead(200, { 'Content-Type': found.contentType, 'Content-Length': String(found.bytes.length) })
      .end(found.bytes);
  }
  deps.events.emit('request', record);
}

function decodePath(path: string): string {
  return path
    .split('/')
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return segment;
      }
    })
    .join('/');
}

function redactHeaders(headers: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    const value = Array.isArray(v) ? v.join(', ') : v;
    out[k] = k === 'authorization' ? value.replace(/^(\S+)\s+.*$/, '$1 [redacted]') : value;
  }
  return out;
}
