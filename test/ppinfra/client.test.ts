/**
 * The real PPInfra client (undici keep-alive pool, retry rules, error mapping) against the real
 * fake server on loopback. Retry delays go through a recording sleep double (or an injected
 * clock, for the read deadline) unless a test is about an abort during a real backoff.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import { afterEach, beforeEach, describe, expect, it, type TestContext } from 'vitest';
import { createPpinfraClient, type PpinfraClient, type PpinfraClientOptions } from '../../src/ppinfra/client.ts';
import { PpinfraError, type PpinfraErrorKind } from '../../src/ppinfra/errors.ts';
import { READ_POLICY, SUBMIT_POLICY, sleep as realSleep } from '../../src/ppinfra/retry.ts';
import {
  startFakePpinfra,
  type FakePpinfra,
  type FakePpinfraOptions,
  type FakeTask,
  type FakeTaskScript,
  type RecordedRequest,
  type Route,
} from '../fakes/ppinfra.ts';
import { caught } from './caught.ts';

const WRONG_KEY = 'sk-wrong-9f8e7d6c5b4a';
const REQ = { prompt: 'a red fox in the snow', size: '1024*1024' };
const MAX_BYTES = 10 * 1024 * 1024;

interface Env {
  fake: FakePpinfra;
  /** Every delay the retry loops of this env's clients asked for, in order. */
  sleeps: number[];
  /** A client on the fake; retries sleep through the recording double unless `retry` says otherwise. */
  makeClient(opts?: Partial<PpinfraClientOptions>): PpinfraClient;
  /** Submits (processingMs 0 unless the script says otherwise) and waits until the fake says the task is done. */
  completedTask(script?: FakeTaskScript): Promise<FakeTask>;
  /** Submits a task that stays PROCESSING for 10 s. */
  runningTask(): Promise<string>;
  /** A plain server for what the fake cannot do (a chunked body without Content-Length). */
  startServer(handler: Parameters<typeof createServer>[1]): Promise<string>;
  close(): Promise<void>;
}

async function createEnv(opts: FakePpinfraOptions = {}): Promise<Env> {
  const fake = await startFakePpinfra(opts);
  const sleeps: number[] = [];
  const clients: PpinfraClient[] = [];
  const servers: Server[] = [];
  const recordingSleep = async (ms: number, signal?: AbortSignal): Promise<void> => {
    sleeps.push(ms);
    if (signal?.aborted) throw signal.reason;
  };
  const makeClient = (o: Partial<PpinfraClientOptions> = {}): PpinfraClient => {
    // The client's own (production) timeouts unless a test is about them: a loaded machine may
    // take a while to answer, and only a test about timeouts may see one fire.
    const client = createPpinfraClient({
      baseUrl: fake.url,
      apiKey: fake.apiKey,
      ...o,
      retry: { sleep: recordingSleep, random: () => 0.5, ...o.retry },
    });
    clients.push(client);
    return client;
  };
  return {
    fake,
    sleeps,
    makeClient,
    async completedTask(script = {}) {
      fake.setScript(() => ({ processingMs: 0, ...script }));
      const id = await makeClient().submit(REQ);
      return fake.waitFor('task-completed', (t: FakeTask) => t.id === id);
    },
    runningTask() {
      fake.setScript(() => ({ processingMs: 10_000 }));
      return makeClient().submit(REQ);
    },
    async startServer(handler) {
      const server = createServer(handler);
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await fake.close();
      await Promise.all(servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
    },
  };
}

// The sequential suites share these, set per test by `useEnv()`.
let env: Env;
let fake: FakePpinfra;
let sleeps: number[];
const makeClient = (opts?: Partial<PpinfraClientOptions>) => env.makeClient(opts);
const completedTask = (script?: FakeTaskScript) => env.completedTask(script);
const runningTask = () => env.runningTask();

async function useFake(opts: FakePpinfraOptions): Promise<void> {
  await env.close();
  env = await createEnv(opts);
  ({ fake, sleeps } = env);
}

/** A fresh env before each test of the calling suite (sequential suites only). */
function useEnv(): void {
  beforeEach(async () => {
    env = await createEnv();
    ({ fake, sleeps } = env);
  });
  afterEach(() => env.close());
}

/** An env of its own for a concurrent test, closed after it. */
async function ownEnv(ctx: TestContext, opts: FakePpinfraOptions = {}): Promise<Env> {
  const own = await createEnv(opts);
  ctx.onTestFinished(() => own.close());
  return own;
}

/** A port that refuses connections: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Runs `fn` with the process's uncaughtException listeners (vitest's included) swapped for a
 * recorder, then lets two macrotask turns pass (undici emits a destroyed body's error on a
 * setImmediate) before restoring them.
 */
async function withUncaughtCaptured<T>(fn: () => Promise<T>): Promise<{ value: T; uncaught: unknown[] }> {
  const saved = process.listeners('uncaughtException');
  const uncaught: unknown[] = [];
  const record = (e: unknown) => void uncaught.push(e);
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', record);
  try {
    const value = await fn();
    for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    return { value, uncaught };
  } finally {
    process.off('uncaughtException', record);
    for (const listener of saved) process.on('uncaughtException', listener);
  }
}

describe('happy path', () => {
  useEnv();

  it('submits exactly {prompt, size} as JSON with a Bearer key and returns the task id', async () => {
    const id = await makeClient().submit(REQ);

    expect(fake.tasks.has(id)).toBe(true);
    expect(fake.count('submit')).toBe(1);
    const [req] = fake.requests;
    expect(req).toMatchObject({ route: 'submit', method: 'POST', authOk: true, body: REQ });
    expect(Object.keys(req!.body as object).sort()).toEqual(['prompt', 'size']);
    expect(req!.headers.authorization).toBe('Bearer ***');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(fake.tasks.get(id)).toMatchObject({ prompt: REQ.prompt, size: REQ.size, apiKey: fake.apiKey });
  });

  it('reads QUEUED, PROCESSING, then SUCCEED with the image', async () => {
    let clock = 0;
    await useFake({ now: () => clock, script: () => ({ queuedMs: 100, processingMs: 100 }) });
    const client = makeClient();
    const id = await client.submit(REQ);

    const queued = await client.getResult(id);
    expect(queued).toMatchObject({
      taskId: id,
      status: 'queued',
      rawStatus: 'TASK_STATUS_QUEUED',
      images: [],
      reason: '',
    });
    clock = 150;
    expect((await client.getResult(id)).status).toBe('processing');
    clock = 250;
    const done = await client.getResult(id);
    await fake.waitFor('task-completed', (t: FakeTask) => t.id === id);

    expect(done.status).toBe('succeed');
    expect(done.images).toEqual([
      {
        url: fake.tasks.get(id)!.imageUrl,
        type: 'jpeg',
        ttlSeconds: null,
        nsfw: false,
        nsfwSignals: { hasNsfwContents: null, detectionResult: null },
      },
    ]);
    const polls = fake.requests.filter((r) => r.route === 'result');
    expect(polls).toHaveLength(3);
    expect(polls.every((r) => r.method === 'GET' && r.query.task_id === id && r.authOk)).toBe(true);
    // A GET carries no body, so no content-type is needed (docs/ppinfra-api.md section 4).
    expect(polls[0]!.headers['content-type']).toBeUndefined();
  });

  it.each(['jpeg', 'png', 'webp'] as const)(
    'downloads the served %s bytes and their content type, without the key',
    async (imageType) => {
      const task = await completedTask({ imageType });
      const client = makeClient();
      const result = await client.getResult(task.id);

      const download = await client.download(result.images[0]!.url, { maxBytes: MAX_BYTES });

      expect(Buffer.from(download.bytes).equals(Buffer.from(task.image!))).toBe(true);
      expect(download.contentType).toBe(`image/${imageType}`);
      const [imageRequest] = fake.requests.filter((r) => r.route === 'image');
      expect(imageRequest!.headers.authorization).toBe('<none>');
    },
  );
});

interface ErrorCase {
  name: string;
  /** Runs before the call; may return a task id for `call`. */
  setup?: () => Promise<string | void> | string | void;
  client?: Partial<PpinfraClientOptions>;
  call: (client: PpinfraClient, taskId: string) => Promise<unknown>;
  expected: {
    kind: PpinfraErrorKind;
    status?: number | undefined;
    reason?: string | undefined;
    retryAfterMs?: number | undefined;
  };
  route: Route;
  requests: number;
  tasks?: number;
}

const errorCases: ErrorCase[] = [
  {
    name: 'a wrong key on submit is auth',
    client: { apiKey: WRONG_KEY },
    call: (c) => c.submit(REQ),
    expected: { kind: 'auth', status: 403, reason: 'INVALID_API_KEY' },
    route: 'submit',
    requests: 1,
    tasks: 0,
  },
  {
    name: 'a wrong key on getResult is auth',
    setup: runningTask,
    client: { apiKey: WRONG_KEY },
    call: (c, id) => c.getResult(id),
    expected: { kind: 'auth', status: 403, reason: 'INVALID_API_KEY' },
    route: 'result',
    requests: 1,
  },
  {
    name: 'a missing balance (400 BILLING_BALANCE_NOT_ENOUGH) is quota',
    setup: () => fake.inject('submit', { status: 400, reason: 'BILLING_BALANCE_NOT_ENOUGH' }),
    call: (c) => c.submit(REQ),
    expected: { kind: 'quota', status: 400, reason: 'BILLING_BALANCE_NOT_ENOUGH' },
    route: 'submit',
    requests: 1,
    tasks: 0,
  },
  {
    name: 'a size the API refuses (99*99) is invalid_request',
    call: (c) => c.submit({ prompt: 'a fox', size: '99*99' }),
    expected: { kind: 'invalid_request', status: 400, reason: 'INVALID_REQUEST_BODY' },
    route: 'submit',
    requests: 1,
    tasks: 0,
  },
  {
    name: 'ILLEGAL_PROMPT is illegal_prompt',
    setup: () => fake.inject('submit', { status: 400, reason: 'ILLEGAL_PROMPT' }),
    call: (c) => c.submit(REQ),
    expected: { kind: 'illegal_prompt', status: 400, reason: 'ILLEGAL_PROMPT' },
    route: 'submit',
    requests: 1,
    tasks: 0,
  },
  {
    name: 'an unknown task id is task_not_found, not retried',
    setup: () => '00000000-0000-4000-8000-000000000000',
    call: (c, id) => c.getResult(id),
    expected: { kind: 'task_not_found', status: 404, reason: 'TASK_NOT_FOUND' },
    route: 'result',
    requests: 1,
  },
  {
    name: 'a 429 that never ends on getResult is rate_limited with its Retry-After, after every attempt',
    setup: async () => {
      const id = await runningTask();
      fake.inject('result', { status: 429, retryAfterSec: 2 }, READ_POLICY.maxAttempts);
      return id;
    },
    call: (c, id) => c.getResult(id),
    expected: { kind: 'rate_limited', status: 429, reason: 'RATE_LIMIT_EXCEEDED', retryAfterMs: 2000 },
    route: 'result',
    requests: READ_POLICY.maxAttempts,
  },
  {
    name: 'a 429 that never ends on submit is rate_limited, after every attempt, nothing billed',
    setup: () => fake.inject('submit', { status: 429, retryAfterSec: 1 }, SUBMIT_POLICY.maxAttempts),
    call: (c) => c.submit(REQ),
    expected: { kind: 'rate_limited', status: 429, reason: 'RATE_LIMIT_EXCEEDED', retryAfterMs: 1000 },
    route: 'submit',
    requests: SUBMIT_POLICY.maxAttempts,
    tasks: 0,
  },
  {
    name: 'a failed task as HTTP 500 TASK_FAILED is task_failed, not retried',
    setup: async () => (await completedTask({ outcome: 'fail-http-500', reason: 'GPU fell over' })).id,
    call: (c, id) => c.getResult(id),
    expected: { kind: 'task_failed', status: 500, reason: 'TASK_FAILED' },
    route: 'result',
    requests: 1,
  },
  {
    name: 'a gateway 502 HTML page on getResult is server (retried to the end)',
    setup: async () => {
      const id = await runningTask();
      fake.inject('result', { status: 502 }, READ_POLICY.maxAttempts);
      return id;
    },
    call: (c, id) => c.getResult(id),
    expected: { kind: 'server', status: 502, reason: undefined },
    route: 'result',
    requests: READ_POLICY.maxAttempts,
  },
  {
    name: 'a gateway 502 HTML page on submit is server, not retried (the task may exist)',
    setup: () => fake.inject('submit', { status: 502 }),
    call: (c) => c.submit(REQ),
    expected: { kind: 'server', status: 502, reason: undefined },
    route: 'submit',
    requests: 1,
  },
  {
    name: 'a connection reset on getResult is network (retried to the end)',
    setup: async () => {
      const id = await runningTask();
      fake.inject('result', { reset: true }, READ_POLICY.maxAttempts);
      return id;
    },
    call: (c, id) => c.getResult(id),
    expected: { kind: 'network', status: undefined },
    route: 'result',
    requests: READ_POLICY.maxAttempts,
  },
  {
    name: 'a connection reset on submit is network, not retried',
    setup: () => fake.inject('submit', { reset: true }),
    call: (c) => c.submit(REQ),
    expected: { kind: 'network', status: undefined },
    route: 'submit',
    requests: 1,
    tasks: 0,
  },
  {
    name: 'an undocumented task status is task_failed',
    setup: async () => (await completedTask({ outcome: { status: 'TASK_STATUS_UNKNOWN' } })).id,
    call: (c, id) => c.getResult(id),
    expected: { kind: 'task_failed', reason: 'TASK_STATUS_UNKNOWN' },
    route: 'result',
    requests: 1,
  },
  {
    name: 'SUCCEED without images is task_failed',
    setup: async () => (await completedTask({ outcome: 'succeed-no-images' })).id,
    call: (c, id) => c.getResult(id),
    expected: { kind: 'task_failed', reason: 'NO_IMAGES' },
    route: 'result',
    requests: 1,
  },
];

describe('errors a caller sees', () => {
  useEnv();

  it.each(errorCases)('$name', async (c) => {
    const taskId = (await c.setup?.()) ?? '';
    const tasksBefore = fake.tasks.size;
    const requestsBefore = fake.count(c.route);

    const error = await caught(c.call(makeClient(c.client), taskId));

    expect(error).toMatchObject(c.expected);
    if (c.expected.retryAfterMs === undefined) expect(error.retryAfterMs).toBeUndefined();
    expect(fake.count(c.route) - requestsBefore).toBe(c.requests);
    expect(sleeps).toHaveLength(c.requests - 1);
    if (c.tasks !== undefined) expect(fake.tasks.size - tasksBefore).toBe(c.tasks);
    if (c.route === 'result') expect(error.taskId).toBe(taskId);
  });

  it('never puts the API key in the error', async () => {
    const error = await caught(makeClient({ apiKey: WRONG_KEY }).submit(REQ));
    expect(error.kind).toBe('auth');
    expect(error.message).not.toContain(WRONG_KEY);
    expect(String(error)).not.toContain(WRONG_KEY);
    expect(JSON.stringify(error.toLog())).not.toContain(WRONG_KEY);
    expect(error.stack ?? '').not.toContain(WRONG_KEY);
  });

  it('an already aborted signal is aborted and sends nothing', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await caught(makeClient().submit(REQ, { signal: controller.signal }));
    expect(error.kind).toBe('aborted');
    expect(fake.requests).toHaveLength(0);
  });

  it('aborting an in-flight request is aborted, at once, without a retry', async () => {
    const id = await runningTask();
    // Stalls for longer than the test runs: only the abort can end the call.
    fake.inject('result', { delayHeadersMs: 60_000 });
    const controller = new AbortController();
    const call = caught(makeClient().getResult(id, { signal: controller.signal }));
    const request = (await fake.waitFor('request', (r) => r.route === 'result')) as RecordedRequest;
    controller.abort();

    const error = await call;
    expect(error).toMatchObject({ kind: 'aborted', taskId: id });
    // "At once": the call ended while the fake had still not answered.
    expect(request.status).toBe(0);
    expect(fake.count('result')).toBe(1);
    expect(sleeps).toEqual([]);
  });

  // Regression: the backoff sleep rejected with the signal's raw DOMException, untyped.
  it('aborting during a retry backoff is aborted (a PpinfraError)', async () => {
    const id = await runningTask();
    fake.inject('result', { status: 503 });
    const controller = new AbortController();
    let backingOff!: () => void;
    const inBackoff = new Promise<void>((resolve) => (backingOff = resolve));
    const client = makeClient({
      retry: {
        sleep: (ms, signal) => {
          backingOff();
          return realSleep(ms, signal);
        },
        read: { ...READ_POLICY, baseDelayMs: 5000 },
      },
    });
    const call = client.getResult(id, { signal: controller.signal }).catch((e: unknown) => e);
    await inBackoff;
    controller.abort();

    const error = await call;
    expect(fake.count('result')).toBe(1);
    expect(error).toBeInstanceOf(PpinfraError);
    expect(error).toMatchObject({ kind: 'aborted' });
  });
});

describe('getResult retry rules', () => {
  useEnv();

  it('retries a 429 after exactly its Retry-After', async () => {
    const id = await runningTask();
    fake.inject('result', { status: 429, retryAfterSec: 3 });
    const result = await makeClient().getResult(id);
    expect(result.status).toBe('processing');
    expect(sleeps).toEqual([3000]);
    expect(fake.count('result')).toBe(2);
  });

  it('honours a Retry-After given as an HTTP date', async () => {
    // One injected clock for the fake (which writes the date) and the client (which reads it).
    const now = Date.UTC(2030, 0, 1, 12, 0, 0, 250);
    await useFake({ now: () => now });
    const id = await runningTask();
    fake.inject('result', { status: 429, retryAfterSec: 3, retryAfterHttpDate: true });
    await makeClient({ retry: { now: () => now } }).getResult(id);
    // The date has whole seconds (12:00:03), so the 250 ms past 12:00:00 are lost to truncation.
    expect(sleeps).toEqual([2750]);
  });

  it('retries three 503s with exponential backoff, then succeeds', async () => {
    const task = await completedTask();
    fake.inject('result', { status: 503, reason: 'SERVICE_NOT_AVAILABLE' }, 3);
    const result = await makeClient().getResult(task.id);
    expect(result.status).toBe('succeed');
    expect(fake.count('result')).toBe(4);
    // Full jitter with random() = 0.5: half of 500, 1000, 2000.
    expect(sleeps).toEqual([250, 500, 1000]);
  });

  it.each([
    ['500 GET_RESULT_FAILED', { status: 500 }],
    ['a connection reset', { reset: true as const }],
    ['a 504 gateway page', { status: 504 }],
  ])('retries %s once, then succeeds', async (_name, fault) => {
    const id = await runningTask();
    fake.inject('result', fault);
    const result = await makeClient().getResult(id);
    expect(result.status).toBe('processing');
    expect(fake.count('result')).toBe(2);
    expect(sleeps).toHaveLength(1);
  });

  it.each([
    ['404 TASK_NOT_FOUND', { status: 404 }, 'task_not_found'],
    ['403 INVALID_API_KEY', { status: 403 }, 'auth'],
    ['500 TASK_FAILED', { status: 500, reason: 'TASK_FAILED' }, 'task_failed'],
    ['400 INVALID_REQUEST_BODY', { status: 400 }, 'invalid_request'],
  ] as const)('does not retry %s', async (_name, fault, kind) => {
    const id = await runningTask();
    fake.inject('result', fault);
    const error = await caught(makeClient().getResult(id));
    expect(error.kind).toBe(kind);
    expect(fake.count('result')).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it('gives up at maxAttempts with the last error', async () => {
    const id = await runningTask();
    fake.inject('result', { status: 503 }, READ_POLICY.maxAttempts - 1);
    fake.inject('result', { status: 502 });
    fake.inject('result', { status: 503 }); // never reached
    const error = await caught(makeClient().getResult(id));
    expect(error).toMatchObject({ kind: 'server', status: 502, taskId: id });
    expect(fake.count('result')).toBe(READ_POLICY.maxAttempts);
    expect(sleeps).toHaveLength(READ_POLICY.maxAttempts - 1);
  });
});

describe('submit retry rules', () => {
  useEnv();

  it('retries a 429 and bills exactly one task', async () => {
    fake.inject('submit', { status: 429 }, 2);
    const id = await makeClient().submit(REQ);
    expect(fake.count('submit')).toBe(3);
    expect([...fake.tasks.keys()]).toEqual([id]);
    expect(sleeps).toEqual([500, 1000]);
  });

  it('retries 500 CREATE_TASK_FAILED and bills exactly one task', async () => {
    fake.inject('submit', { status: 500 }); // the fake's default reason on submit
    const id = await makeClient().submit(REQ);
    expect(fake.requests[0]).toMatchObject({ route: 'submit', status: 500 });
    expect(fake.count('submit')).toBe(2);
    expect([...fake.tasks.keys()]).toEqual([id]);
  });

  it('does not retry a reset after the server processed the request', async () => {
    fake.inject('submit', { resetAfterProcessing: true });
    const error = await caught(makeClient().submit(REQ));
    expect(error).toMatchObject({ kind: 'network', notSent: false });
    expect(fake.count('submit')).toBe(1);
    expect(fake.tasks.size).toBe(1);
  });

  it('retries a refused connection (nothing was sent) up to maxAttempts', async () => {
    const port = await closedPort();
    const error = await caught(makeClient({ baseUrl: `http://127.0.0.1:${port}` }).submit(REQ));
    expect(error).toMatchObject({ kind: 'network', notSent: true });
    expect(sleeps).toHaveLength(SUBMIT_POLICY.maxAttempts - 1);
  });

  it('does not retry 503 SERVICE_NOT_AVAILABLE (the API may have created the task)', async () => {
    fake.inject('submit', { status: 503, reason: 'SERVICE_NOT_AVAILABLE' });
    const error = await caught(makeClient().submit(REQ));
    expect(error).toMatchObject({ kind: 'server', status: 503, reason: 'SERVICE_NOT_AVAILABLE' });
    expect(fake.count('submit')).toBe(1);
  });

  it.each([
    ['403 INVALID_API_KEY', { status: 403 }],
    ['400 INVALID_REQUEST_BODY', { status: 400 }],
    ['400 ILLEGAL_PROMPT', { status: 400, reason: 'ILLEGAL_PROMPT' }],
    ['500 BILLING_FAILED', { status: 500, reason: 'BILLING_FAILED' }],
  ])('does not retry %s', async (_name, fault) => {
    fake.inject('submit', fault);
    await caught(makeClient().submit(REQ));
    expect(fake.count('submit')).toBe(1);
    expect(fake.tasks.size).toBe(0);
  });
});

describe('download', () => {
  useEnv();

  it('retries a 503 from the CDN, then returns the bytes', async () => {
    const task = await completedTask();
    fake.inject('image', { status: 503 });
    const download = await makeClient().download(task.imageUrl!, { maxBytes: MAX_BYTES });
    expect(Buffer.from(download.bytes).equals(Buffer.from(task.image!))).toBe(true);
    expect(fake.count('image')).toBe(2);
    expect(sleeps).toHaveLength(1);
  });

  it('does not retry a 403 from an expired URL', async () => {
    const task = await completedTask();
    fake.expireImages();
    const error = await caught(makeClient().download(task.imageUrl!, { maxBytes: MAX_BYTES }));
    expect(error).toMatchObject({ kind: 'task_failed', status: 403, reason: 'IMAGE_DOWNLOAD_FAILED' });
    expect(fake.count('image')).toBe(1);
  });

  it('refuses an image whose Content-Length is over maxBytes', async () => {
    await useFake({ imageSizeBytes: 4096 });
    const task = await completedTask();
    const error = await caught(makeClient().download(task.imageUrl!, { maxBytes: 1024 }));
    expect(error).toMatchObject({ kind: 'too_large', reason: 'IMAGE_TOO_LARGE' });
    expect(fake.count('image')).toBe(1);
  });

  // Regression: destroying the refused body made undici emit RequestAbortedError on a stream
  // nobody listened to, an uncaught exception that took the bot or CLI down.
  it('refusing an image by Content-Length leaves no uncaught error behind', async () => {
    await useFake({ imageSizeBytes: 4096 });
    const task = await completedTask();
    const { uncaught } = await withUncaughtCaptured(() =>
      caught(makeClient().download(task.imageUrl!, { maxBytes: 1024 })),
    );
    expect(uncaught).toEqual([]);
  });

  it('accepts an image of exactly maxBytes', async () => {
    await useFake({ imageSizeBytes: 4096 });
    const task = await completedTask();
    const download = await makeClient().download(task.imageUrl!, { maxBytes: 4096 });
    expect(download.bytes.length).toBe(4096);
  });

  it('caps a streamed (chunked, no Content-Length) body at maxBytes', async () => {
    let hits = 0;
    const url = await env.startServer((_req, res) => {
      hits++;
      res.writeHead(200, { 'content-type': 'image/png' });
      for (let i = 0; i < 8; i++) res.write(Buffer.alloc(1000, i));
      res.end();
    });
    const client = makeClient();

    const error = await caught(client.download(`${url}/big.png`, { maxBytes: 2500 }));
    expect(error).toMatchObject({ kind: 'too_large', reason: 'IMAGE_TOO_LARGE' });
    expect(hits).toBe(1);

    const ok = await client.download(`${url}/big.png`, { maxBytes: 8000 });
    expect(ok).toMatchObject({ contentType: 'image/png' });
    expect(ok.bytes.length).toBe(8000);
  });
});

describe('lenient parsing through the wire', () => {
  useEnv();

  it.each<[string, FakeTaskScript, { ttlSeconds: number | null }]>([
    ['numbers as numbers', { numericAsNumbers: true }, { ttlSeconds: null }],
    ['numbers as strings', { numericAsNumbers: false }, { ttlSeconds: null }],
    ['the doc example (ttl "0")', {}, { ttlSeconds: null }],
    ['a numeric ttl', { imageTtl: 3600 }, { ttlSeconds: 3600 }],
    ['a string ttl', { imageTtl: '3600' }, { ttlSeconds: 3600 }],
  ])('succeeds with %s', async (_name, script, expected) => {
    const task = await completedTask(script);
    const result = await makeClient().getResult(task.id);
    expect(result).toMatchObject({ status: 'succeed', etaSeconds: 0, progressPercent: 0 });
    expect(result.images).toEqual([
      {
        url: task.imageUrl,
        type: 'jpeg',
        nsfw: false,
        nsfwSignals: { hasNsfwContents: null, detectionResult: null },
        ...expected,
      },
    ]);
  });

  it.each([true, false, undefined])(
    'reads a running task without arrays (numericAsNumbers %s)',
    async (numericAsNumbers) => {
      fake.setScript(() => ({ processingMs: 10_000, omitArrays: true, numericAsNumbers }));
      const client = makeClient();
      const id = await client.submit(REQ);
      const result = await client.getResult(id);
      expect(result).toMatchObject({ status: 'processing', images: [], etaSeconds: 0, progressPercent: 0 });
    },
  );

  it('marks a flagged image as nsfw and keeps the raw signals for the reviewer', async () => {
    const task = await completedTask({ nsfw: true });
    const result = await makeClient().getResult(task.id);
    expect(result.images[0]!.nsfw).toBe(true);
    expect(result.images[0]!.nsfwSignals).toEqual({
      hasNsfwContents: true,
      detectionResult: { valid: true, confidence: 0.97 },
    });
  });

  it('reports a plain FAILED task with its reason (the caller decides)', async () => {
    const task = await completedTask({ outcome: 'fail', reason: 'content moderation' });
    const result = await makeClient().getResult(task.id);
    expect(result).toMatchObject({ status: 'failed', reason: 'content moderation', images: [] });
  });
});

/** Longer than any test runs: a request stalled this long is answered only after the test. */
const STALL_MS = 60_000;

/**
 * A keep-alive pool whose first request alone has a short headers timeout, so a test can stall
 * that one request into a timeout while the retry has all the time a loaded machine needs.
 */
function firstRequestTimesOutAfter(ms: number, ctx: TestContext): Dispatcher {
  const agent = new Agent();
  ctx.onTestFinished(() => agent.destroy());
  let first = true;
  return agent.compose((dispatch) => (opts, handler) => {
    const headersTimeout = first ? ms : STALL_MS;
    first = false;
    return dispatch({ ...opts, headersTimeout }, handler);
  });
}

/**
 * Client timeouts and deadlines. No test depends on a response arriving in time: the fake stalls
 * for longer than the test runs, so the short timeout that fires is only a lower bound on how
 * long a test takes (undici's header/body timeouts run on its coarse timer wheel, so these run
 * concurrently, each on an env of its own); the read deadline runs on an injected clock.
 */
describe.concurrent('timeouts and deadlines', () => {
  it('headers later than headersTimeout are timeout', async (ctx) => {
    const { expect } = ctx;
    const t = await ownEnv(ctx);
    const id = await t.runningTask();
    t.fake.inject('result', { delayHeadersMs: STALL_MS });
    // The read deadline is shorter than one attempt, so the first timeout is what the caller sees.
    const error = await caught(t.makeClient({ headersTimeoutMs: 300, readDeadlineMs: 100 }).getResult(id));
    expect(error).toMatchObject({ kind: 'timeout', status: undefined, taskId: id, notSent: false });
    expect(t.fake.count('result')).toBe(1);
  });

  it('a body stalled beyond bodyTimeout is timeout', async (ctx) => {
    const { expect } = ctx;
    const t = await ownEnv(ctx);
    const id = await t.runningTask();
    t.fake.inject('result', { delayBodyMs: STALL_MS });
    const error = await caught(t.makeClient({ bodyTimeoutMs: 300, readDeadlineMs: 100 }).getResult(id));
    expect(error).toMatchObject({ kind: 'timeout', status: undefined, taskId: id });
    expect(t.fake.count('result')).toBe(1);
  });

  it('getResult retries a stalled response (headers timeout) once, then succeeds', async (ctx) => {
    const { expect } = ctx;
    const t = await ownEnv(ctx);
    const id = await t.runningTask();
    t.fake.inject('result', { delayHeadersMs: STALL_MS });
    const result = await t.makeClient({ dispatcher: firstRequestTimesOutAfter(300, ctx) }).getResult(id);
    expect(result.status).toBe('processing');
    expect(t.fake.requests.filter((r) => r.route === 'result').map((r) => r.status)).toEqual([0, 200]);
    expect(t.sleeps).toHaveLength(1);
  });

  it('submit does not retry a timeout after sending: the task was created, a retry would bill twice', async (ctx) => {
    const { expect } = ctx;
    const t = await ownEnv(ctx);
    t.fake.inject('submit', { delayHeadersMs: STALL_MS });
    const error = await caught(t.makeClient({ headersTimeoutMs: 300 }).submit(REQ));
    expect(error).toMatchObject({ kind: 'timeout', notSent: false });
    expect(t.fake.count('submit')).toBe(1);
    expect(t.fake.tasks.size).toBe(1);
    expect(t.sleeps).toEqual([]);
  });

  it('an AbortSignal.timeout deadline is timeout', async (ctx) => {
    const { expect } = ctx;
    const t = await ownEnv(ctx);
    const id = await t.runningTask();
    t.fake.inject('result', { delayHeadersMs: STALL_MS });
    const error = await caught(t.makeClient().getResult(id, { signal: AbortSignal.timeout(150) }));
    expect(error).toMatchObject({ kind: 'timeout', taskId: id });
    // The signal ended the call, not an answer (none came) nor the client's own timeouts (30 s).
    expect(t.fake.requests.filter((r) => r.route === 'result').map((r) => r.status)).toEqual([0]);
  });

  it('getResult stops retrying before the overall read deadline (injected clock)', async (ctx) => {
    const { expect } = ctx;
    const t = await ownEnv(ctx);
    const id = await t.runningTask();
    t.fake.inject('result', { status: 503 }, 50);
    const start = 1_000_000;
    let clock = start;
    const slept: number[] = [];
    const readDeadlineMs = 600;
    const client = t.makeClient({
      readDeadlineMs,
      // Full-size jitter: delays 100, 200, 400 ... ; the third would end past the deadline.
      retry: {
        now: () => clock,
        sleep: async (ms) => {
          slept.push(ms);
          clock += ms;
        },
        random: () => 1,
        read: { ...READ_POLICY, maxAttempts: 50, baseDelayMs: 100 },
      },
    });

    const error = await caught(client.getResult(id));

    expect(error).toMatchObject({ kind: 'server', status: 503 });
    expect(slept).toEqual([100, 200]);
    // It gave up at 300 ms, inside the deadline, rather than sleep 400 ms past it.
    expect(clock - start).toBe(300);
    expect(t.fake.count('result')).toBe(3);
  });
});
