import { Agent, request, type Dispatcher } from 'undici';
import { silentLogger, type Logger } from '../logger.ts';
import { discard, safeJson } from './bodies.ts';
import { PpinfraError, fromResponse, fromTransportError, parseRetryAfter, type ErrorBody } from './errors.ts';
import { EDIT_PATH, UPSCALE_PATH, editBody, upscaleBody, type EditRequest, type UpscaleRequest } from './edit.ts';
import { parseTaskId, parseTaskResult, type TaskResult } from './parse.ts';
import { READ_POLICY, SUBMIT_POLICY, sleep, withRetry, type RetryDeps, type RetryPolicy } from './retry.ts';

export const SUBMIT_PATH = '/v3/async/qwen-image-txt2img';
export const RESULT_PATH = '/v3/async/task-result';

/** The endpoints the client calls, as the request metric labels them. */
export type ApiEndpoint = 'submit' | 'task_result' | 'download';

/** Where the client reports each HTTP request; src/ops/metrics.ts implements it, so the client needs no metrics of its own. */
export interface ApiMetrics {
  apiRequest(endpoint: ApiEndpoint, status: string, seconds: number): void;
}

export interface PpinfraClientOptions {
  baseUrl: string;
  apiKey: string;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Overall budget for one read's retries (getResult, download), in ms. */
  readDeadlineMs?: number;
  logger?: Logger;
  /** Tests hand in their own dispatcher, clock, sleep and randomness; production uses defaults. */
  dispatcher?: Dispatcher;
  retry?: Partial<RetryDeps> & { submit?: RetryPolicy; read?: RetryPolicy };
  /** Times every HTTP request (each retry too) by endpoint and status. */
  metrics?: ApiMetrics;
}

export interface GenerateRequest {
  prompt: string;
  /** `W*H`, already normalised by `parseSize`. */
  size: string;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface Download {
  bytes: Uint8Array;
  contentType: string;
}

export interface PpinfraClient {
  submit(req: GenerateRequest, options?: CallOptions): Promise<string>;
  /** Qwen-Image-Edit: same retries, errors and metrics as `submit`; a request the provider would refuse is refused unsent. */
  submitEdit(req: EditRequest, options?: CallOptions): Promise<string>;
  /** The image upscaler, as `submitEdit`. */
  submitUpscale(req: UpscaleRequest, options?: CallOptions): Promise<string>;
  getResult(taskId: string, options?: CallOptions): Promise<TaskResult>;
  download(url: string, options: CallOptions & { maxBytes: number }): Promise<Download>;
  close(): Promise<void>;
}

/**
 * The PPInfra / Novita Qwen-Image client. Knows nothing of Discord or jobs. Every call takes an
 * AbortSignal; connect, header and body timeouts live on the keep-alive pool.
 */
export function createPpinfraClient(options: PpinfraClientOptions): PpinfraClient {
  const log = options.logger ?? silentLogger;
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const ownDispatcher = !options.dispatcher;
  const dispatcher =
    options.dispatcher ??
    new Agent({
      connect: { timeout: options.connectTimeoutMs ?? 10_000 },
      headersTimeout: options.headersTimeoutMs ?? 30_000,
      bodyTimeout: options.bodyTimeoutMs ?? 60_000,
      keepAliveTimeout: 30_000,
      connections: 16,
    });
  const deps: RetryDeps = {
    now: options.retry?.now ?? Date.now,
    sleep: options.retry?.sleep ?? sleep,
    random: options.retry?.random ?? Math.random,
  };
  const submitPolicy = options.retry?.submit ?? SUBMIT_POLICY;
  const readPolicy = options.retry?.read ?? READ_POLICY;
  const readDeadlineMs = options.readDeadlineMs ?? 60_000;
  const auth = { authorization: `Bearer ${options.apiKey}` };

  /** Records one request's duration: the HTTP status, or `network` / `timeout` (a cancel is not a request that failed). */
  const timed = (endpoint: ApiEndpoint) => {
    const started = performance.now();
    return (outcome: number | PpinfraError) => {
      if (!options.metrics) return;
      const status =
        typeof outcome === 'number'
          ? String(outcome)
          : outcome.kind === 'timeout'
            ? 'timeout'
            : outcome.kind === 'aborted'
              ? undefined
              : 'network';
      if (status) options.metrics.apiRequest(endpoint, status, (performance.now() - started) / 1000);
    };
  };

  const onRetry =
    (op: string, extra: Record<string, unknown>) => (info: { attempt: number; delayMs: number; error: PpinfraError }) =>
      log.warn(
        { op, ...extra, attempt: info.attempt, delayMs: info.delayMs, error: info.error.toLog() },
        'retrying PPInfra call',
      );

  async function call(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
    what: string,
    endpoint: ApiEndpoint,
  ): Promise<unknown> {
    const done = timed(endpoint);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${baseUrl}${path}`, {
        method,
        dispatcher,
        signal,
        headers: body === undefined ? auth : { ...auth, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      const error = fromTransportError(e, signal, what);
      done(error);
      throw error;
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (e) {
      const error = fromTransportError(e, signal, what);
      done(error);
      throw error;
    }
    done(res.statusCode);
    const json = safeJson(text);
    if (res.statusCode >= 200 && res.statusCode < 300) {
      if (json === undefined)
        throw new PpinfraError('server', `${what} returned a body that is not JSON`, { status: res.statusCode });
      return json;
    }
    throw fromResponse(res.statusCode, json as ErrorBody | undefined, parseRetryAfter(res.headers, deps.now()));
  }

  return {
    async submit(req, { signal } = {}) {
      const body = await withRetry(
        () =>
          call('POST', SUBMIT_PATH, { prompt: req.prompt, size: req.size }, signal, 'Submitting the prompt', 'submit'),
        { policy: submitPolicy, signal, onRetry: onRetry('submit', { size: req.size }) },
        deps,
      );
      return parseTaskId(body);
    },

    async submitEdit(req, { signal } = {}) {
      // Validated before the retry loop: a refusal here is certain that nothing was sent.
      const body = editBody(req);
      const logged = { kind: 'edit', imageChars: body.image.length, outputFormat: body.output_format };
      return submitTask(EDIT_PATH, body, signal, 'Submitting the edit', logged);
    },

    async submitUpscale(req, { signal } = {}) {
      const body = upscaleBody(req);
      return submitTask(UPSCALE_PATH, body, signal, 'Submitting the upscale', {
        kind: 'upscale',
        resolution: body.resolution,
      });
    },

    async getResult(taskId, { signal } = {}) {
      const path = `${RESULT_PATH}?task_id=${encodeURIComponent(taskId)}`;
      try {
        const body = await withRetry(
          () => call('GET', path, undefined, signal, 'Fetching the task result', 'task_result'),
          {
            policy: readPolicy,
            signal,
            deadline: deps.now() + readDeadlineMs,
            onRetry: onRetry('getResult', { taskId }),
          },
          deps,
        );
        return parseTaskResult(body, taskId);
      } catch (e) {
        throw withTaskId(e, taskId);
      }
    },

    async download(url, { signal, maxBytes }) {
      return withRetry(
        () => fetchBytes(url, maxBytes, signal),
        { policy: readPolicy, signal, deadline: deps.now() + readDeadlineMs, onRetry: onRetry('download', {}) },
        deps,
      );
    },

    async close() {
      if (ownDispatcher) await dispatcher.close();
    },
  };

  /**
   * The submit path of the image tools: billed like `submit`, so the same policy (retry only when
   * no task can exist) and the same `submit` metric. The log carries no image and no URL: an
   * attachment URL is a signed, member-specific link.
   */
  async function submitTask(
    path: string,
    body: object,
    signal: AbortSignal | undefined,
    what: string,
    logged: Record<string, unknown>,
  ): Promise<string> {
    const answer = await withRetry(
      () => call('POST', path, body, signal, what, 'submit'),
      { policy: submitPolicy, signal, onRetry: onRetry('submit', logged) },
      deps,
    );
    return parseTaskId(answer);
  }

  /** Streams the image with a byte cap; the CDN needs no key, so none is sent. */
  async function fetchBytes(url: string, maxBytes: number, signal: AbortSignal | undefined): Promise<Download> {
    const what = 'Downloading the image';
    const done = timed('download');
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method: 'GET', dispatcher, signal });
    } catch (e) {
      const error = fromTransportError(e, signal, what);
      done(error);
      throw error;
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      done(res.statusCode);
      await res.body.dump().catch(() => undefined);
      // 403/404 from the CDN means the URL expired or never existed: retrying will not help.
      const kind = res.statusCode === 429 ? 'rate_limited' : res.statusCode >= 500 ? 'server' : 'task_failed';
      throw new PpinfraError(kind, `${what} failed with HTTP ${res.statusCode}`, {
        status: res.statusCode,
        reason: res.statusCode === 429 ? undefined : 'IMAGE_DOWNLOAD_FAILED',
        retryAfterMs: parseRetryAfter(res.headers, deps.now()),
      });
    }
    const declared = Number(res.headers['content-length']);
    const tooLarge = () =>
      new PpinfraError('too_large', `The image is larger than ${maxBytes} bytes`, { reason: 'IMAGE_TOO_LARGE' });
    if (Number.isFinite(declared) && declared > maxBytes) {
      done(res.statusCode);
      discard(res.body);
      throw tooLarge();
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of res.body) {
        total += (chunk as Buffer).length;
        if (total > maxBytes) {
          discard(res.body);
          throw tooLarge();
        }
        chunks.push(chunk as Buffer);
      }
    } catch (e) {
      const error = fromTransportError(e, signal, what);
      done(error.kind === 'too_large' ? res.statusCode : error);
      throw error;
    }
    done(res.statusCode);
    const contentType = String(res.headers['content-type'] ?? 'application/octet-stream')
      .split(';')[0]!
      .trim();
    return { bytes: new Uint8Array(Buffer.concat(chunks)), contentType };
  }
}

function withTaskId(e: unknown, taskId: string): unknown {
  if (!(e instanceof PpinfraError) || e.taskId) return e;
  return new PpinfraError(e.kind, e.message, { ...e, taskId, cause: e.cause });
}
