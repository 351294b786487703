/**
 * A fake PPInfra / Novita async API on loopback, following docs/ppinfra-api.md
 * (sections 1-8; what it imitates is section 12):
 *
 * - `POST /v3/async/qwen-image-txt2img`  Bearer auth, body validation, `{task_id}`
 * - `GET  /v3/async/task-result?task_id=` Bearer auth, QUEUED -> PROCESSING -> terminal by elapsed time
 * - `POST /v3/async/qwen-image-edit`     Bearer auth, body validation, fetches or decodes `image`, `{task_id}`
 * - `POST /v3/async/image-upscaler`      Bearer auth, body validation, fetches `image`, `{task_id}`
 * - `GET  /cdn/output/<task>-u1_<uuid>.<ext>` keyless image download (403 once expired)
 *
 * Every request is recorded (API key masked) before any injected fault applies. Faults are
 * queued per route and consumed FIFO, one per request. Events let tests wait instead of sleep.
 */
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp, { type Metadata } from 'sharp';
import { makeFakeImage } from './images.ts';
import type { FakeImageType } from './images.ts';

export interface FakeTaskScript {
  /** Time in TASK_STATUS_QUEUED after submit (default 0). */
  queuedMs?: number;
  /** Then time in TASK_STATUS_PROCESSING (default 50). */
  processingMs?: number;
  /** Default 'succeed'; `{ status }` reports that raw status string when done (e.g. 'TASK_STATUS_UNKNOWN'). */
  outcome?: 'succeed' | 'fail' | 'fail-http-500' | 'succeed-no-images' | { status: string };
  /** Failure reason (default 'Internal error' for 'fail' and 'fail-http-500'). */
  reason?: string;
  /** Flagged: extra.has_nsfw_contents [true] and images[0].nsfw_detection_result {valid:true, confidence:0.97}. */
  nsfw?: boolean;
  /** Bytes served at the CDN URL (default: a tiny valid image of `imageType` embedding the task id). */
  image?: Uint8Array;
  /** Default 'jpeg'. */
  imageType?: FakeImageType;
  /** What image_url_ttl says (default the string "0", as in the doc example). */
  imageTtl?: number | string;
  /** true: eta/progress_percent/image_url_ttl as numbers; false: all as strings; unset: as in the doc example (numbers, ttl "0"). */
  numericAsNumbers?: boolean;
  /** Omit the images/videos/audios arrays while the task is not done. */
  omitArrays?: boolean;
  /**
   * The first this-many task-result polls of the task answer 404 TASK_NOT_FOUND, as a task not yet
   * visible right after its submission does (replication lag).
   */
  notFoundPolls?: number;
}

export type Fault =
  | { status: 429; retryAfterSec?: number; retryAfterHttpDate?: boolean }
  | { status: number; reason?: string; message?: string; retryAfterSec?: number; retryAfterHttpDate?: boolean }
  | { delayHeadersMs: number }
  | { delayBodyMs: number }
  | { reset: true }
  | { resetAfterProcessing: true };

export type Route = 'submit' | 'result' | 'image' | 'edit' | 'upscale';

/** What a task was asked to do: txt2img (`submit`), an edit or an upscale. */
export type FakeTaskKind = 'txt2img' | 'edit' | 'upscale';

/** What the script hook is told about a request; `kind` is absent for txt2img callers that predate it. */
export interface FakeScriptRequest {
  prompt: string;
  size: string;
  kind?: FakeTaskKind;
}

/** An edit's or an upscale's input and output, as the fake saw and made them. */
export interface FakeToolDetails {
  kind: 'edit' | 'upscale';
  /** How `image` came: a URL the fake fetched, plain base64 or a data URI. */
  via: 'url' | 'base64' | 'data_uri';
  /** The URL as sent (url only). */
  inputUrl?: string;
  inputBytes: number;
  /** sha256 of the input bytes, hex. */
  inputSha256: string;
  inputWidth: number;
  inputHeight: number;
  seed?: number;
  /** As sent; undefined means the provider's default (jpeg). */
  outputFormat?: 'jpeg' | 'png' | 'webp';
  /** As sent (upscale only); undefined means the provider's default (4k). */
  resolution?: '2k' | '4k' | '8k';
  /** The dimensions the provider would return: the input's for an edit, 2048/4096/8192 on the long side for an upscale. */
  width: number;
  height: number;
  /** The dimensions of the bytes actually served (a smaller stand-in for upscales unless `upscaleFullSize`). */
  servedWidth: number;
  servedHeight: number;
  /** The result image: the input flipped left-right and negated (edit) or resized (upscale), in the output format. */
  output: Uint8Array;
}
export type FakeEvent = 'task-created' | 'task-completed' | 'request';

export interface RecordedRequest {
  route: Route | 'unknown';
  method: string;
  path: string;
  query: Record<string, string>;
  /** Lower-case names; `authorization` is always present: 'Bearer ***', '***' (no Bearer scheme) or '<none>'. */
  headers: Record<string, string>;
  /** Parsed JSON, the raw text when it is not JSON, or undefined when empty. */
  body: unknown;
  /** Whether the Authorization header carried `Bearer <an accepted key>`. */
  authOk: boolean;
  at: number;
  /** HTTP status sent; 0 until the response starts, and 0 for requests answered with a socket reset. */
  status: number;
  /** The injected fault this request consumed, if any. */
  fault?: Fault;
}

export interface FakeTask {
  id: string;
  apiKey: string;
  kind: FakeTaskKind;
  /** The txt2img prompt or the edit instruction; '' for an upscale. */
  prompt: string;
  /** The txt2img size; for edits and upscales the nominal output size, `W*H`. */
  size: string;
  /** Edits and upscales only. */
  tool?: FakeToolDetails;
  createdAt: number;
  script: FakeTaskScript;
  polls: number;
  /** createdAt + queuedMs + processingMs */
  completedAt: number;
  /** Set at creation when the outcome is 'succeed'. */
  imageUrl?: string;
  /** The bytes served at imageUrl (script.image, or generated deterministically from the id). */
  readonly image?: Uint8Array | undefined;
}

export interface FakePpinfraOptions {
  /** The accepted key (default 'test-key-123'). */
  apiKey?: string;
  /** More accepted keys, e.g. to check that one key cannot read another key's task. */
  extraApiKeys?: string[];
  /** Status for a missing Authorization header (default 400, as in the error table). */
  missingKeyStatus?: 400 | 401;
  /** Clock for task progression and `at` (default Date.now). */
  now?: () => number;
  /** Per-task script chosen from the submitted prompt/size (and kind) (default: `{}` for all). */
  script?: (req: FakeScriptRequest) => FakeTaskScript;
  /** Pad generated (default) images to this many bytes, for download benchmarks. */
  imageSizeBytes?: number;
  /**
   * Upscales serve an image of their nominal size (2048/4096/8192 on the long side). Off by
   * default: an 8192-pixel raster is ~200 MB while sharp makes it, so the served stand-in is an
   * eighth of that on each side, and `tool.width`/`tool.height` carry the nominal size.
   */
  upscaleFullSize?: boolean;
  /** The most bytes the fake reads from an `image` URL (default 64 MiB); more is a 400. */
  maxInputBytes?: number;
}

export interface FakePpinfra {
  /** 'http://127.0.0.1:<port>' — the client appends /v3/async/... */
  url: string;
  apiKey: string;
  requests: RecordedRequest[];
  /** Every created (billed) task. */
  tasks: Map<string, FakeTask>;
  setScript(fn: (req: FakeScriptRequest) => FakeTaskScript): void;
  /** The next `times` (default 1) requests to `route` get `fault` (FIFO per route). */
  inject(route: Route, fault: Fault, times?: number): void;
  /** CDN URLs answer 403 from now on. */
  expireImages(): void;
  count(route: Route): number;
  on(event: FakeEvent, listener: (x: any) => void): void;
  off(event: FakeEvent, listener: (x: any) => void): void;
  /**
   * Resolves with the first event — already emitted or future — that matches `predicate`
   * (payloads: FakeTask for task events, RecordedRequest for 'request'). Rejects after
   * `timeoutMs` (default 3000; 0 = never) or when the fake closes.
   */
  waitFor(event: FakeEvent, predicate?: (x: any) => boolean, timeoutMs?: number): Promise<any>;
  /** Closes the server and every socket, clears all timers, rejects pending waitFor calls. */
  close(): Promise<void>;
}

const SUBMIT_PATH = '/v3/async/qwen-image-txt2img';
const EDIT_PATH = '/v3/async/qwen-image-edit';
const UPSCALE_PATH = '/v3/async/image-upscaler';
const OUTPUT_FORMATS = ['jpeg', 'png', 'webp'] as const;
const RESOLUTIONS = { '2k': 2048, '4k': 4096, '8k': 8192 } as const;
const SEED_MAX = 2_147_483_647;
const UPSCALE_STAND_IN_DIVISOR = 8;
const DEFAULT_MAX_INPUT_BYTES = 64 * 1024 * 1024;
const INPUT_FETCH_TIMEOUT_MS = 10_000;
const TASK_TYPES: Record<FakeTaskKind, string> = {
  txt2img: 'QWEN_IMAGE_TEXT_TO_IMAGE',
  edit: 'QWEN_IMAGE_EDIT',
  upscale: 'IMAGE_UPSCALER',
};
const RESULT_PATH = '/v3/async/task-result';
const CDN_PREFIX = '/cdn/output/';
const DEFAULT_API_KEY = 'test-key-123';
const DEFAULT_PROCESSING_MS = 50;
const DEFAULT_SIZE = '1024*1024';
const MIN_SIDE = 256;
const MAX_SIDE = 1536;
const DEFAULT_FAILURE_REASON = 'Internal error';
const DEFAULT_WAIT_TIMEOUT_MS = 3000;
const COMPLETION_RECHECK_MS = 1;
const COMPLETION_RECHECK_MAX_MS = 1000;

/** Default reason/message for an injected status fault, from the error table (docs/ppinfra-api.md section 8). */
const DEFAULT_ERROR_BY_STATUS: Record<number, [reason: string, message: string]> = {
  400: ['INVALID_REQUEST_BODY', 'request parameter validation failed'],
  401: ['INVALID_API_KEY', 'invalid api-key'],
  403: ['INVALID_API_KEY', 'invalid api-key'],
  404: ['API_NOT_FOUND', 'api not found'],
  429: ['RATE_LIMIT_EXCEEDED', 'rate limit exceeded'],
  500: ['GET_RESULT_FAILED', 'failed to get task result'],
  503: ['SERVICE_NOT_AVAILABLE', 'service not available'],
};

const DEFAULT_MESSAGE_BY_REASON: Record<string, string> = {
  INVALID_REQUEST_BODY: 'request parameter validation failed',
  ILLEGAL_PROMPT: 'prompt contains inappropriate content',
  BILLING_BALANCE_NOT_ENOUGH: 'not enough balance',
  MISSING_API_KEY: 'missing api key',
  INVALID_API_KEY: 'invalid api-key',
  BILLING_AUTH_FAILED: 'billing auth failed',
  TASK_NOT_FOUND: 'task not found',
  API_NOT_FOUND: 'api not found',
  RATE_LIMIT_EXCEEDED: 'rate limit exceeded',
  BILLING_FAILED: 'billing service error',
  CREATE_TASK_FAILED: 'failed to create task',
  GET_RESULT_FAILED: 'failed to get task result',
  TASK_FAILED: 'task execution failed',
};

const STATUS_TEXT: Record<number, string> = { 502: 'Bad Gateway', 504: 'Gateway Time-out' };

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

function reply(
  status: number,
  contentType: string,
  body: Uint8Array | string,
  extra: Record<string, string> = {},
): Reply {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return {
    status,
    headers: { 'content-type': contentType, 'content-length': String(bytes.length), ...extra },
    body: bytes,
  };
}

function json(status: number, value: unknown, extra: Record<string, string> = {}): Reply {
  return reply(status, 'application/json', JSON.stringify(value), extra);
}

/** The v3 error body `{code, reason, message}` (docs/ppinfra-api.md section 8). */
function v3Error(status: number, reason: string, message?: string, extra: Record<string, string> = {}): Reply {
  return json(
    status,
    { code: status, reason, message: message ?? DEFAULT_MESSAGE_BY_REASON[reason] ?? reason.toLowerCase() },
    extra,
  );
}

/** S3/CloudFront-style XML error, as a CDN would send. */
function cdnError(status: number, code: string, message: string): Reply {
  return reply(
    status,
    'application/xml',
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`,
  );
}

function gatewayPage(status: number): Reply {
  const title = `${status} ${STATUS_TEXT[status] ?? 'Error'}`;
  return reply(
    status,
    'text/html',
    `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`,
  );
}

function classify(method: string, path: string): Route | 'unknown' {
  if (method === 'POST' && path === SUBMIT_PATH) return 'submit';
  if (method === 'POST' && path === EDIT_PATH) return 'edit';
  if (method === 'POST' && path === UPSCALE_PATH) return 'upscale';
  if (method === 'GET' && path === RESULT_PATH) return 'result';
  if ((method === 'GET' || method === 'HEAD') && path.startsWith(CDN_PREFIX)) return 'image';
  return 'unknown';
}

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const auth = out.authorization;
  out.authorization = auth === undefined ? '<none>' : /^bearer\s/i.test(auth) ? 'Bearer ***' : '***';
  return out;
}

function parseBody(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  const text = raw.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Returns an error message for an invalid submit body, or the normalised request. */
function validateSubmit(raw: Buffer): string | { prompt: string; size: string } {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    return 'request body must be valid JSON';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'request body must be a JSON object';
  const { prompt, size, watermark } = body as Record<string, unknown>;
  if (prompt === undefined) return 'prompt is required';
  if (typeof prompt !== 'string') return 'prompt must be a string';
  if (prompt.trim() === '') return 'prompt must not be empty';
  if (watermark !== undefined && typeof watermark !== 'boolean') return 'watermark must be a boolean';
  if (size === undefined) return { prompt, size: DEFAULT_SIZE };
  if (typeof size !== 'string') return `size must be a string like "${DEFAULT_SIZE}"`;
  const match = /^(\d+)\*(\d+)$/.exec(size);
  if (!match) return `size must look like "W*H" (e.g. "${DEFAULT_SIZE}"), got ${JSON.stringify(size)}`;
  const width = Number(match[1]);
  const height = Number(match[2]);
  if (width < MIN_SIDE || width > MAX_SIDE || height < MIN_SIDE || height > MAX_SIDE) {
    return `size width and height must each be between ${MIN_SIDE} and ${MAX_SIDE}, got ${JSON.stringify(size)}`;
  }
  return { prompt, size };
}

type ToolRequest =
  | { kind: 'edit'; prompt: string; image: string; seed?: number; outputFormat?: (typeof OUTPUT_FORMATS)[number] }
  | {
      kind: 'upscale';
      image: string;
      resolution?: keyof typeof RESOLUTIONS;
      outputFormat?: (typeof OUTPUT_FORMATS)[number];
    };

/** Returns an error message for an invalid edit or upscale body, or the request (docs/ppinfra-api.md section 13). */
function validateTool(kind: 'edit' | 'upscale', raw: Buffer): string | ToolRequest {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    return 'request body must be valid JSON';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'request body must be a JSON object';
  const { prompt, image, seed, output_format, resolution } = body as Record<string, unknown>;
  if (kind === 'edit') {
    if (prompt === undefined) return 'prompt is required';
    if (typeof prompt !== 'string') return 'prompt must be a string';
    if (prompt.trim() === '') return 'prompt must not be empty';
  }
  if (image === undefined) return 'image is required';
  if (typeof image !== 'string') return 'image must be a string';
  if (image === '') return 'image must not be empty';
  if (output_format !== undefined && !OUTPUT_FORMATS.includes(output_format as never))
    return `output_format must be one of ${OUTPUT_FORMATS.join(', ')}`;
  const outputFormat = output_format as (typeof OUTPUT_FORMATS)[number] | undefined;
  if (kind === 'edit') {
    if (seed !== undefined && (typeof seed !== 'number' || !Number.isInteger(seed) || seed < -1 || seed > SEED_MAX))
      return `seed must be an integer from -1 to ${SEED_MAX}`;
    return {
      kind,
      prompt: prompt as string,
      image,
      ...(seed === undefined ? {} : { seed: seed as number }),
      ...(outputFormat ? { outputFormat } : {}),
    };
  }
  if (!/^https?:\/\//i.test(image)) return 'image must be the URL of the image';
  if (resolution !== undefined && !Object.hasOwn(RESOLUTIONS, resolution as string))
    return `resolution must be one of ${Object.keys(RESOLUTIONS).join(', ')}`;
  return {
    kind,
    image,
    ...(resolution === undefined ? {} : { resolution: resolution as keyof typeof RESOLUTIONS }),
    ...(outputFormat ? { outputFormat } : {}),
  };
}

/** The input image's bytes: fetched from a URL, or decoded from base64 / a data URI. A string is the 400 message. */
async function readInput(
  image: string,
  maxBytes: number,
): Promise<string | { bytes: Buffer; via: FakeToolDetails['via'] }> {
  if (/^https?:\/\//i.test(image)) {
    let res: Response;
    try {
      res = await fetch(image, { signal: AbortSignal.timeout(INPUT_FETCH_TIMEOUT_MS) });
    } catch {
      return 'image could not be downloaded';
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => undefined);
      return `image could not be downloaded (HTTP ${res.status})`;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res.body) {
      total += chunk.length;
      if (total > maxBytes) return 'image is too large';
      chunks.push(Buffer.from(chunk));
    }
    return { bytes: Buffer.concat(chunks), via: 'url' };
  }
  const data = /^data:image\/[a-z]+;base64,(.*)$/s.exec(image);
  const text = data ? data[1]! : image;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) return 'image must be a URL or base64';
  return { bytes: Buffer.from(text, 'base64'), via: data ? 'data_uri' : 'base64' };
}

/** Makes the result: different from the input whatever it was, so a test can tell them apart. */
async function makeToolOutput(
  req: ToolRequest,
  input: Buffer,
  fullSize: boolean,
): Promise<string | Omit<FakeToolDetails, 'kind' | 'via' | 'inputUrl' | 'seed' | 'outputFormat' | 'resolution'>> {
  let meta: Metadata;
  try {
    meta = await sharp(input).metadata();
    if (!meta.width || !meta.height || !['png', 'jpeg', 'webp'].includes(meta.format ?? ''))
      return 'image format is not supported';
  } catch {
    return 'image could not be decoded';
  }
  const format = req.outputFormat ?? 'jpeg';
  const [inputWidth, inputHeight] = [meta.width, meta.height];
  let width = inputWidth;
  let height = inputHeight;
  let pipeline = sharp(input);
  let served = { width, height };
  if (req.kind === 'edit') {
    pipeline = pipeline.flop().negate({ alpha: false });
  } else {
    const long = RESOLUTIONS[req.resolution ?? '4k'];
    const scale = long / Math.max(inputWidth, inputHeight);
    width = Math.max(1, Math.round(inputWidth * scale));
    height = Math.max(1, Math.round(inputHeight * scale));
    served = fullSize
      ? { width, height }
      : {
          width: Math.max(1, Math.round(width / UPSCALE_STAND_IN_DIVISOR)),
          height: Math.max(1, Math.round(height / UPSCALE_STAND_IN_DIVISOR)),
        };
    pipeline = pipeline.resize(served.width, served.height, { fit: 'fill' });
  }
  let output: Buffer;
  try {
    output = await pipeline.toFormat(format).toBuffer();
  } catch {
    return 'image could not be decoded';
  }
  return {
    inputBytes: input.length,
    inputSha256: createHash('sha256').update(input).digest('hex'),
    inputWidth,
    inputHeight,
    width,
    height,
    servedWidth: served.width,
    servedHeight: served.height,
    output: new Uint8Array(output),
  };
}

/** The served type: the script's when a test set one, else the tool's output format, else jpeg. */
function imageTypeOf(script: FakeTaskScript, tool: FakeToolDetails | undefined): FakeImageType {
  return script.imageType ?? tool?.outputFormat ?? 'jpeg';
}

/** Starts the fake on 127.0.0.1 with an OS-assigned port. */
export async function startFakePpinfra(opts: FakePpinfraOptions = {}): Promise<FakePpinfra> {
  const apiKey = opts.apiKey ?? DEFAULT_API_KEY;
  const acceptedKeys = new Set([apiKey, ...(opts.extraApiKeys ?? [])]);
  const missingKeyStatus = opts.missingKeyStatus ?? 400;
  const now = opts.now ?? Date.now;
  let scriptFor = opts.script ?? ((): FakeTaskScript => ({}));
  let imagesExpired = false;
  let closed = false;

  const requests: RecordedRequest[] = [];
  const tasks = new Map<string, FakeTask>();
  const tasksByImagePath = new Map<string, FakeTask>();
  const completed = new Set<string>();
  const faults: Record<Route, Fault[]> = { submit: [], result: [], image: [], edit: [], upscale: [] };
  const timers = new Set<NodeJS.Timeout>();
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const history: Record<FakeEvent, unknown[]> = { 'task-created': [], 'task-completed': [], request: [] };
  const waiters = new Set<(error: Error) => void>();

  function emit(event: FakeEvent, payload: unknown): void {
    history[event].push(payload);
    emitter.emit(event, payload);
  }

  function later(ms: number, fn: () => void): void {
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        fn();
      },
      Math.max(0, ms),
    );
    timer.unref();
    timers.add(timer);
  }

  /** Emits task-completed once the (possibly injected) clock has passed completedAt. */
  function checkCompletion(task: FakeTask, recheckMs = COMPLETION_RECHECK_MS): void {
    if (closed || completed.has(task.id)) return;
    const remaining = task.completedAt - now();
    if (remaining <= 0) {
      completed.add(task.id);
      emit('task-completed', task);
      return;
    }
    // Real clock: fires right on time. Injected clock: keep re-checking, backing off.
    later(Math.max(remaining, recheckMs), () =>
      checkCompletion(task, Math.min(recheckMs * 2, COMPLETION_RECHECK_MAX_MS)),
    );
  }

  /** With an injected clock, a request is a good moment to notice tasks the clock has moved past. */
  function checkAllCompletions(): void {
    if (opts.now === undefined) return; // real clock: the per-task timers are on time
    for (const task of tasks.values()) if (!completed.has(task.id) && task.completedAt <= now()) checkCompletion(task);
  }

  function authenticate(req: IncomingMessage): { key: string } | Reply {
    const header = req.headers.authorization;
    const token = header === undefined ? '' : header.trim();
    if (token === '' || /^bearer$/i.test(token)) return v3Error(missingKeyStatus, 'MISSING_API_KEY', 'missing api key');
    const match = /^bearer\s+(\S+)$/i.exec(token);
    const key = match?.[1];
    if (key === undefined || !acceptedKeys.has(key)) return v3Error(403, 'INVALID_API_KEY', 'invalid api-key');
    return { key };
  }

  function createTask(key: string, prompt: string, size: string, tool?: FakeToolDetails): FakeTask {
    const id = randomUUID();
    const kind: FakeTaskKind = tool?.kind ?? 'txt2img';
    const script = scriptFor(tool ? { prompt, size, kind } : { prompt, size });
    const createdAt = now();
    const completedAt =
      createdAt + Math.max(0, script.queuedMs ?? 0) + Math.max(0, script.processingMs ?? DEFAULT_PROCESSING_MS);
    const imageType = imageTypeOf(script, tool);
    const task: FakeTask = {
      id,
      apiKey: key,
      kind,
      prompt,
      size,
      ...(tool ? { tool } : {}),
      createdAt,
      script,
      polls: 0,
      completedAt,
      get image(): Uint8Array | undefined {
        if (task.imageUrl === undefined) return undefined;
        return script.image ?? tool?.output ?? makeFakeImage(imageType, id, opts.imageSizeBytes);
      },
    };
    if ((script.outcome ?? 'succeed') === 'succeed') {
      const path = `${CDN_PREFIX}${id}-u1_${randomUUID()}.${imageType}`;
      task.imageUrl = `${fake.url}${path}`;
      tasksByImagePath.set(path, task);
    }
    tasks.set(id, task);
    emit('task-created', task);
    checkCompletion(task);
    return task;
  }

  function handleSubmit(req: IncomingMessage, raw: Buffer): Reply {
    const auth = authenticate(req);
    if ('status' in auth) return auth;
    const valid = validateSubmit(raw);
    if (typeof valid === 'string') return v3Error(400, 'INVALID_REQUEST_BODY', valid);
    const task = createTask(auth.key, valid.prompt, valid.size);
    return json(200, { task_id: task.id });
  }

  async function handleTool(kind: 'edit' | 'upscale', req: IncomingMessage, raw: Buffer): Promise<Reply> {
    const auth = authenticate(req);
    if ('status' in auth) return auth;
    const valid = validateTool(kind, raw);
    if (typeof valid === 'string') return v3Error(400, 'INVALID_REQUEST_BODY', valid);
    const input = await readInput(valid.image, opts.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES);
    if (typeof input === 'string') return v3Error(400, 'INVALID_REQUEST_BODY', input);
    const made = await makeToolOutput(valid, input.bytes, opts.upscaleFullSize === true);
    if (typeof made === 'string') return v3Error(400, 'INVALID_REQUEST_BODY', made);
    const tool: FakeToolDetails = {
      kind,
      via: input.via,
      ...(input.via === 'url' ? { inputUrl: valid.image } : {}),
      ...made,
      ...(valid.kind === 'edit' && valid.seed !== undefined ? { seed: valid.seed } : {}),
      ...(valid.outputFormat ? { outputFormat: valid.outputFormat } : {}),
      ...(valid.kind === 'upscale' && valid.resolution ? { resolution: valid.resolution } : {}),
    };
    if (closed) return v3Error(503, 'SERVICE_NOT_AVAILABLE');
    const task = createTask(auth.key, valid.kind === 'edit' ? valid.prompt : '', `${made.width}*${made.height}`, tool);
    return json(200, { task_id: task.id });
  }

  function taskResultBody(task: FakeTask): Reply {
    const s = task.script;
    const elapsed = now() - task.createdAt;
    const queuedMs = Math.max(0, s.queuedMs ?? 0);
    const done = now() >= task.completedAt;
    const outcome = s.outcome ?? 'succeed';
    if (done && outcome === 'fail-http-500') return v3Error(500, 'TASK_FAILED', s.reason ?? DEFAULT_FAILURE_REASON);

    let status: string;
    let reason = '';
    if (!done) status = elapsed < queuedMs ? 'TASK_STATUS_QUEUED' : 'TASK_STATUS_PROCESSING';
    else if (outcome === 'fail') {
      status = 'TASK_STATUS_FAILED';
      reason = s.reason ?? DEFAULT_FAILURE_REASON;
    } else if (typeof outcome === 'object') {
      status = outcome.status;
      reason = s.reason ?? '';
    } else status = 'TASK_STATUS_SUCCEED';

    const asNumber = s.numericAsNumbers;
    const zero = asNumber === false ? '0' : 0;
    const ttl = s.imageTtl ?? (asNumber === true ? 0 : '0');
    const withImage = done && task.imageUrl !== undefined;
    const flagged = withImage && s.nsfw === true;
    const body: Record<string, unknown> = {
      extra: { has_nsfw_contents: flagged ? [true] : [] },
      task: { task_id: task.id, task_type: TASK_TYPES[task.kind], status, reason, eta: zero, progress_percent: zero },
    };
    if (done || s.omitArrays !== true) {
      body.images = withImage
        ? [
            {
              image_url: task.imageUrl,
              image_url_ttl: ttl,
              image_type: imageTypeOf(s, task.tool),
              nsfw_detection_result: flagged ? { valid: true, confidence: 0.97 } : null,
            },
          ]
        : [];
      body.videos = [];
      body.audios = [];
    }
    return json(200, body);
  }

  function handleResult(req: IncomingMessage, query: Record<string, string>): Reply {
    const auth = authenticate(req);
    if ('status' in auth) return auth;
    const id = query.task_id;
    if (id === undefined || id === '') return v3Error(400, 'INVALID_REQUEST_BODY', 'task_id is required');
    const task = tasks.get(id);
    if (task === undefined || task.apiKey !== auth.key) return v3Error(404, 'TASK_NOT_FOUND', 'task not found');
    task.polls++;
    if (task.polls <= (task.script.notFoundPolls ?? 0)) return v3Error(404, 'TASK_NOT_FOUND', 'task not found');
    return taskResultBody(task);
  }

  function handleImage(path: string): Reply {
    if (imagesExpired) return cdnError(403, 'AccessDenied', 'Access Denied');
    const task = tasksByImagePath.get(path);
    const bytes = task?.image;
    if (task === undefined || bytes === undefined)
      return cdnError(404, 'NoSuchKey', 'The specified key does not exist.');
    return reply(200, `image/${imageTypeOf(task.script, task.tool)}`, bytes);
  }

  function faultReply(route: Route | 'unknown', fault: Extract<Fault, { status: number }>): Reply {
    const { status } = fault;
    const reason = 'reason' in fault ? fault.reason : undefined;
    const message = 'message' in fault ? fault.message : undefined;
    const extra: Record<string, string> = {};
    if (fault.retryAfterSec !== undefined) {
      extra['retry-after'] =
        fault.retryAfterHttpDate === true
          ? new Date(now() + fault.retryAfterSec * 1000).toUTCString()
          : String(fault.retryAfterSec);
    }
    if (reason === undefined && (status === 502 || status === 504)) {
      const page = gatewayPage(status);
      return { ...page, headers: { ...page.headers, ...extra } };
    }
    if (route === 'image') {
      const r = cdnError(status, reason ?? (status === 403 ? 'AccessDenied' : 'InternalError'), message ?? 'error');
      return { ...r, headers: { ...r.headers, ...extra } };
    }
    let [defaultReason, defaultMessage] = DEFAULT_ERROR_BY_STATUS[status] ?? [
      status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'INVALID_REQUEST_BODY',
      'error',
    ];
    if (status === 500 && (route === 'submit' || route === 'edit' || route === 'upscale'))
      [defaultReason, defaultMessage] = ['CREATE_TASK_FAILED', 'failed to create task'];
    if (status === 404 && route === 'result') [defaultReason, defaultMessage] = ['TASK_NOT_FOUND', 'task not found'];
    const finalReason = reason ?? defaultReason;
    return v3Error(status, finalReason, message ?? (reason === undefined ? defaultMessage : undefined), extra);
  }

  function handle(
    route: Route | 'unknown',
    req: IncomingMessage,
    path: string,
    query: Record<string, string>,
    raw: Buffer,
  ): Reply | Promise<Reply> {
    switch (route) {
      case 'submit':
        return handleSubmit(req, raw);
      case 'edit':
      case 'upscale':
        return handleTool(route, req, raw);
      case 'result':
        return handleResult(req, query);
      case 'image':
        return handleImage(path);
      default:
        return v3Error(404, 'API_NOT_FOUND', 'api not found');
    }
  }

  function send(res: ServerResponse, record: RecordedRequest, r: Reply): void {
    if (res.destroyed || res.headersSent) return;
    record.status = r.status;
    res.writeHead(r.status, r.headers);
    res.end(r.body);
  }

  function reset(req: IncomingMessage): void {
    const socket = req.socket;
    if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
    else socket.destroy();
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname;
    const query: Record<string, string> = {};
    for (const [name, value] of url.searchParams) if (!(name in query)) query[name] = value;
    const route = classify(method, path);
    const record: RecordedRequest = {
      route,
      method,
      path,
      query,
      headers: flattenHeaders(req),
      body: undefined,
      authOk: !('status' in authenticate(req)),
      at: now(),
      status: 0,
    };
    const fault = route === 'unknown' ? undefined : faults[route].shift();
    if (fault !== undefined) record.fault = fault;
    requests.push(record);

    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => {});
    req.on('end', () => {
      if (closed) return;
      const raw = Buffer.concat(chunks);
      record.body = parseBody(raw);
      checkAllCompletions();
      emit('request', record);

      if (fault !== undefined && 'reset' in fault) {
        reset(req);
        return;
      }
      const r =
        fault !== undefined && 'status' in fault ? faultReply(route, fault) : handle(route, req, path, query, raw);
      // Edits and upscales fetch their input first; everything else answers in this same turn.
      if (r instanceof Promise) r.then(respond, () => respond(v3Error(500, 'CREATE_TASK_FAILED')));
      else respond(r);
    });

    function respond(r: Reply): void {
      if (closed) return;
      if (fault === undefined || 'status' in fault) {
        send(res, record, r);
      } else if ('resetAfterProcessing' in fault || 'reset' in fault) {
        reset(req);
      } else if ('delayHeadersMs' in fault) {
        later(fault.delayHeadersMs, () => send(res, record, r));
      } else {
        // delayBodyMs: status + headers + first half now, the rest after the stall.
        record.status = r.status;
        res.writeHead(r.status, r.headers);
        res.flushHeaders();
        const half = Math.floor(r.body.length / 2);
        res.write(r.body.subarray(0, half));
        later(fault.delayBodyMs, () => {
          if (!res.destroyed) res.end(r.body.subarray(half));
        });
      }
    }
  }

  const server = createServer({ keepAliveTimeout: 5000 }, onRequest);
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  const fake: FakePpinfra = {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    requests,
    tasks,
    setScript(fn) {
      scriptFor = fn;
    },
    inject(route, fault, times = 1) {
      for (let i = 0; i < times; i++) faults[route].push(fault);
    },
    expireImages() {
      imagesExpired = true;
    },
    count(route) {
      return requests.filter((r) => r.route === route).length;
    },
    on(event, listener) {
      emitter.on(event, listener);
    },
    off(event, listener) {
      emitter.off(event, listener);
    },
    waitFor(event, predicate = () => true, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS) {
      const past = history[event].find((x) => predicate(x));
      if (past !== undefined) return Promise.resolve(past);
      if (closed) return Promise.reject(new Error(`fake ppinfra: closed while waiting for '${event}'`));
      return new Promise((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const finish = (): void => {
          emitter.off(event, listener);
          waiters.delete(fail);
          if (timer !== undefined) clearTimeout(timer);
        };
        const listener = (x: unknown): void => {
          let ok: boolean;
          try {
            ok = predicate(x);
          } catch (error) {
            finish();
            reject(error);
            return;
          }
          if (ok) {
            finish();
            resolve(x);
          }
        };
        const fail = (error: Error): void => {
          finish();
          reject(error);
        };
        emitter.on(event, listener);
        waiters.add(fail);
        if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
          timer = setTimeout(
            () => fail(new Error(`fake ppinfra: no matching '${event}' event within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const fail of [...waiters]) fail(new Error('fake ppinfra: closed'));
      emitter.removeAllListeners();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await done;
    },
  };
  return fake;
}
