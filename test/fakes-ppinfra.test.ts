import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakePpinfra } from './fakes/ppinfra.ts';
import type { FakePpinfra, FakePpinfraOptions, FakeTask, FakeTaskScript, RecordedRequest } from './fakes/ppinfra.ts';

const OTHER_KEY = 'other-key-456';

let fake: FakePpinfra;
let clock: number;

async function start(opts: FakePpinfraOptions = {}): Promise<FakePpinfra> {
  await fake.close();
  fake = await startFakePpinfra({ extraApiKeys: [OTHER_KEY], ...opts });
  return fake;
}

beforeEach(async () => {
  clock = 0;
  fake = await startFakePpinfra({ extraApiKeys: [OTHER_KEY] });
});

afterEach(async () => {
  await fake.close();
});

interface CallOptions {
  /** `null` sends no Authorization header; a string is sent verbatim. Default `Bearer <fake.apiKey>`. */
  auth?: string | null;
  signal?: AbortSignal;
}

function authHeaders(auth: string | null | undefined): Record<string, string> {
  if (auth === null) return {};
  return { Authorization: auth ?? `Bearer ${fake.apiKey}` };
}

function submitRaw(body: string, opts: CallOptions = {}): Promise<Response> {
  return fetch(`${fake.url}/v3/async/qwen-image-txt2img`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...authHeaders(opts.auth) },
    body,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

function submit(body: unknown = { prompt: 'a cat', size: '1024*1024' }, opts: CallOptions = {}): Promise<Response> {
  return submitRaw(JSON.stringify(body), opts);
}

async function submitOk(prompt = 'a cat'): Promise<string> {
  const res = await submit({ prompt });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { task_id: string };
  return body.task_id;
}

function poll(taskId: string | undefined, opts: CallOptions = {}): Promise<Response> {
  const query = taskId === undefined ? '' : `?task_id=${encodeURIComponent(taskId)}`;
  return fetch(`${fake.url}/v3/async/task-result${query}`, {
    headers: authHeaders(opts.auth),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

async function pollJson(taskId: string): Promise<any> {
  const res = await poll(taskId);
  expect(res.status).toBe(200);
  return res.json();
}

async function runToCompletion(
  script: FakeTaskScript,
  prompt = 'a cat',
): Promise<{ id: string; body: any; task: FakeTask }> {
  fake.setScript(() => script);
  const id = await submitOk(prompt);
  const task: FakeTask = await fake.waitFor('task-completed', (t: FakeTask) => t.id === id);
  return { id, body: await pollJson(id), task };
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('auth', () => {
  it.each([
    { name: 'no header', auth: null, status: 400, reason: 'MISSING_API_KEY' },
    { name: 'empty Bearer', auth: 'Bearer ', status: 400, reason: 'MISSING_API_KEY' },
    { name: 'wrong key', auth: 'Bearer nope', status: 403, reason: 'INVALID_API_KEY' },
    { name: 'raw key without Bearer', auth: 'test-key-123', status: 403, reason: 'INVALID_API_KEY' },
  ])('submit with $name -> $status $reason, no task', async ({ auth, status, reason }) => {
    const res = await submit({ prompt: 'a cat' }, { auth });
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual({ code: status, reason, message: expect.any(String) });
    expect(fake.tasks.size).toBe(0);
  });

  it('uses the documented body for a wrong key', async () => {
    const res = await submit({ prompt: 'a cat' }, { auth: 'Bearer nope' });
    expect(await res.json()).toEqual({ code: 403, reason: 'INVALID_API_KEY', message: 'invalid api-key' });
  });

  it.each([
    { name: 'no header', auth: null, status: 400, reason: 'MISSING_API_KEY' },
    { name: 'wrong key', auth: 'Bearer nope', status: 403, reason: 'INVALID_API_KEY' },
  ])('task-result with $name -> $status $reason', async ({ auth, status, reason }) => {
    const id = await submitOk();
    const res = await poll(id, { auth });
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ code: status, reason });
    expect(fake.tasks.get(id)?.polls).toBe(0);
  });

  it('can answer a missing key with 401', async () => {
    await start({ missingKeyStatus: 401 });
    const res = await submit({ prompt: 'a cat' }, { auth: null });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: 401, reason: 'MISSING_API_KEY' });
  });

  it('accepts a custom key', async () => {
    await start({ apiKey: 'custom' });
    expect(fake.apiKey).toBe('custom');
    expect((await submit({ prompt: 'x' }, { auth: 'Bearer custom' })).status).toBe(200);
    expect((await submit({ prompt: 'x' }, { auth: 'Bearer test-key-123' })).status).toBe(403);
  });

  it('does not let another key read a task', async () => {
    const id = await submitOk();
    const res = await poll(id, { auth: `Bearer ${OTHER_KEY}` });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ code: 404, reason: 'TASK_NOT_FOUND', message: 'task not found' });
    expect((await poll(id)).status).toBe(200);
  });
});

describe('submit validation', () => {
  it.each([
    { name: 'non-JSON body', raw: '{"prompt": "a cat"', message: /JSON/ },
    { name: 'JSON array', raw: '["a cat"]', message: /object/ },
    { name: 'JSON null', raw: 'null', message: /object/ },
    { name: 'missing prompt', raw: '{"size":"1024*1024"}', message: /prompt is required/ },
    { name: 'empty prompt', raw: '{"prompt":""}', message: /prompt must not be empty/ },
    { name: 'blank prompt', raw: '{"prompt":"   "}', message: /prompt must not be empty/ },
    { name: 'numeric prompt', raw: '{"prompt":42}', message: /prompt must be a string/ },
    { name: 'size with x', raw: '{"prompt":"a","size":"1024x1024"}', message: /W\*H/ },
    { name: 'size as number', raw: '{"prompt":"a","size":1024}', message: /size must be a string/ },
    { name: 'size null', raw: '{"prompt":"a","size":null}', message: /size must be a string/ },
    { name: 'size negative', raw: '{"prompt":"a","size":"-1*512"}', message: /W\*H/ },
    { name: 'width too small', raw: '{"prompt":"a","size":"255*1024"}', message: /between 256 and 1536/ },
    { name: 'height too large', raw: '{"prompt":"a","size":"1024*1537"}', message: /between 256 and 1536/ },
    { name: 'non-boolean watermark', raw: '{"prompt":"a","watermark":"yes"}', message: /watermark/ },
  ])('$name -> 400 INVALID_REQUEST_BODY', async ({ raw, message }) => {
    const res = await submitRaw(raw);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: number; reason: string; message: string };
    expect(body).toMatchObject({ code: 400, reason: 'INVALID_REQUEST_BODY' });
    expect(body.message).toMatch(message);
    expect(fake.tasks.size).toBe(0);
  });

  it.each([
    { body: { prompt: 'a cat' }, size: '1024*1024' },
    { body: { prompt: 'a cat', size: '256*1536' }, size: '256*1536' },
    { body: { prompt: 'a cat', size: '1536*256', watermark: true, seed: 7, extra: { x: 1 } }, size: '1536*256' },
  ])('accepts $body (size $size, unknown fields ignored)', async ({ body, size }) => {
    const res = await submit(body);
    expect(res.status).toBe(200);
    const { task_id } = (await res.json()) as { task_id: string };
    expect(task_id).toMatch(UUID_V4);
    expect(fake.tasks.get(task_id)).toMatchObject({
      id: task_id,
      apiKey: fake.apiKey,
      prompt: 'a cat',
      size,
      polls: 0,
    });
  });

  it('gives every task a distinct id', async () => {
    const ids = await Promise.all([submitOk('a'), submitOk('b'), submitOk('c')]);
    expect(new Set(ids).size).toBe(3);
    expect(fake.tasks.size).toBe(3);
  });
});

describe('task-result', () => {
  it('walks QUEUED -> PROCESSING -> SUCCEED with the documented envelope (injected clock)', async () => {
    await start({ now: () => clock, script: () => ({ queuedMs: 30, processingMs: 20 }) });
    const id = await submitOk();
    const envelope = (status: string): unknown => ({
      extra: { has_nsfw_contents: [] },
      task: { task_id: id, task_type: 'QWEN_IMAGE_TEXT_TO_IMAGE', status, reason: '', eta: 0, progress_percent: 0 },
      images: [],
      videos: [],
      audios: [],
    });
    expect(await pollJson(id)).toEqual(envelope('TASK_STATUS_QUEUED'));
    clock = 29;
    expect(await pollJson(id)).toEqual(envelope('TASK_STATUS_QUEUED'));
    clock = 30;
    expect(await pollJson(id)).toEqual(envelope('TASK_STATUS_PROCESSING'));
    clock = 50;
    const done = await pollJson(id);
    expect(done).toEqual({
      ...(envelope('TASK_STATUS_SUCCEED') as object),
      images: [{ image_url: expect.any(String), image_url_ttl: '0', image_type: 'jpeg', nsfw_detection_result: null }],
    });
    const task = fake.tasks.get(id);
    expect(task).toMatchObject({ createdAt: 0, completedAt: 50, polls: 4 });
    expect(done.images[0].image_url).toBe(task?.imageUrl);
    expect(done.images[0].image_url).toMatch(new RegExp(`^${fake.url}/cdn/output/${id}-u1_[0-9a-f-]{36}\\.jpeg$`));
    await expect(fake.waitFor('task-completed', (t: FakeTask) => t.id === id, 1000)).resolves.toBe(task);
  });

  // The states in between are the injected-clock test's business: on the real clock, a poll
  // right after submit says QUEUED only if it arrives within queuedMs, which a loaded machine
  // does not promise.
  it('emits task-created and task-completed on the real clock, never early', async () => {
    fake.setScript(() => ({ queuedMs: 10, processingMs: 10 }));
    const created = fake.waitFor('task-created');
    const id = await submitOk();
    expect(((await created) as FakeTask).id).toBe(id);
    const task: FakeTask = await fake.waitFor('task-completed', (t: FakeTask) => t.id === id);
    expect(Date.now()).toBeGreaterThanOrEqual(task.completedAt);
    expect(task.completedAt).toBe(task.createdAt + 20);
    expect((await pollJson(id)).task.status).toBe('TASK_STATUS_SUCCEED');
  });

  it('does not require Content-Type on GET', async () => {
    const id = await submitOk();
    expect((await poll(id)).status).toBe(200);
    const last = fake.requests.at(-1);
    expect(last).toMatchObject({ route: 'result', method: 'GET', query: { task_id: id }, status: 200 });
    expect(last?.headers['content-type']).toBeUndefined();
  });

  it('answers a missing task_id with 400 INVALID_REQUEST_BODY', async () => {
    const res = await poll(undefined);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      code: 400,
      reason: 'INVALID_REQUEST_BODY',
      message: expect.stringMatching(/task_id/),
    });
  });

  it('answers an unknown task id with 404 TASK_NOT_FOUND', async () => {
    const res = await poll('00000000-0000-4000-8000-000000000000');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ code: 404, reason: 'TASK_NOT_FOUND', message: 'task not found' });
  });

  it.each([
    { outcome: 'fail', reason: undefined, status: 'TASK_STATUS_FAILED', taskReason: 'Internal error' },
    { outcome: 'fail', reason: 'quota exceeded', status: 'TASK_STATUS_FAILED', taskReason: 'quota exceeded' },
    { outcome: 'succeed-no-images', reason: undefined, status: 'TASK_STATUS_SUCCEED', taskReason: '' },
    { outcome: { status: 'TASK_STATUS_UNKNOWN' }, reason: undefined, status: 'TASK_STATUS_UNKNOWN', taskReason: '' },
    {
      outcome: { status: 'TASK_STATUS_CANCELED' },
      reason: 'canceled',
      status: 'TASK_STATUS_CANCELED',
      taskReason: 'canceled',
    },
  ] as const)('outcome $outcome -> 200 $status, no images', async ({ outcome, reason, status, taskReason }) => {
    const { body, task } = await runToCompletion({ processingMs: 5, outcome, ...(reason ? { reason } : {}) });
    expect(body.task).toMatchObject({ status, reason: taskReason });
    expect(body.images).toEqual([]);
    expect(body.extra).toEqual({ has_nsfw_contents: [] });
    expect(task.imageUrl).toBeUndefined();
  });

  it('reports fail-http-500 as HTTP 500 TASK_FAILED once done, progressing normally before', async () => {
    await start({
      now: () => clock,
      script: () => ({ processingMs: 10, outcome: 'fail-http-500', reason: 'gpu on fire' }),
    });
    const id = await submitOk();
    expect((await pollJson(id)).task.status).toBe('TASK_STATUS_PROCESSING');
    clock = 10;
    const res = await poll(id);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ code: 500, reason: 'TASK_FAILED', message: 'gpu on fire' });
  });

  it('flags NSFW results', async () => {
    const { body } = await runToCompletion({ processingMs: 5, nsfw: true });
    expect(body.extra).toEqual({ has_nsfw_contents: [true] });
    expect(body.images[0].nsfw_detection_result).toEqual({ valid: true, confidence: 0.97 });
  });

  it.each([
    { numericAsNumbers: true, eta: 0, ttl: 0 },
    { numericAsNumbers: false, eta: '0', ttl: '0' },
  ])('numericAsNumbers=$numericAsNumbers sends eta $eta and ttl $ttl', async ({ numericAsNumbers, eta, ttl }) => {
    const { body } = await runToCompletion({ processingMs: 5, numericAsNumbers });
    expect(body.task).toMatchObject({ eta, progress_percent: eta });
    expect(body.images[0].image_url_ttl).toBe(ttl);
  });

  it('passes imageTtl through and can omit the arrays while running', async () => {
    await start({ now: () => clock, script: () => ({ processingMs: 10, omitArrays: true, imageTtl: 3600 }) });
    const id = await submitOk();
    const running = await pollJson(id);
    expect(Object.keys(running).sort()).toEqual(['extra', 'task']);
    clock = 10;
    const done = await pollJson(id);
    expect(done.images[0].image_url_ttl).toBe(3600);
    expect(done.videos).toEqual([]);
  });
});

describe('CDN', () => {
  it('serves script.image keylessly with Content-Type and Content-Length', async () => {
    const image = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4]);
    const { body, task } = await runToCompletion({ processingMs: 5, image, imageType: 'png' });
    expect(body.images[0]).toMatchObject({ image_type: 'png', image_url: expect.stringMatching(/\.png$/) });
    const res = await fetch(body.images[0].image_url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('content-length')).toBe(String(image.length));
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(image);
    expect(task.image).toEqual(image);
    expect(fake.requests.at(-1)).toMatchObject({
      route: 'image',
      status: 200,
      authOk: false,
      headers: { authorization: '<none>' },
    });
  });

  it('generates a valid JPEG per task by default, different bytes per task', async () => {
    const a = await runToCompletion({ processingMs: 1 }, 'a');
    const b = await runToCompletion({ processingMs: 1 }, 'b');
    const bytesA = new Uint8Array(await (await fetch(a.task.imageUrl ?? '')).arrayBuffer());
    const bytesB = new Uint8Array(await (await fetch(b.task.imageUrl ?? '')).arrayBuffer());
    expect([...bytesA.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    expect([...bytesA.subarray(-2)]).toEqual([0xff, 0xd9]);
    expect(Buffer.from(bytesA).includes(a.id)).toBe(true);
    expect(bytesA).toEqual(a.task.image);
    expect(bytesA).not.toEqual(bytesB);
  });

  it.each([
    { imageType: 'png', magic: [0x89, 0x50, 0x4e, 0x47] },
    { imageType: 'webp', magic: [0x52, 0x49, 0x46, 0x46] },
  ] as const)('generates $imageType when asked', async ({ imageType, magic }) => {
    const { task } = await runToCompletion({ processingMs: 1, imageType });
    const res = await fetch(task.imageUrl ?? '');
    expect(res.headers.get('content-type')).toBe(`image/${imageType}`);
    expect([...new Uint8Array(await res.arrayBuffer()).subarray(0, 4)]).toEqual(magic);
  });

  it('pads generated images to imageSizeBytes', async () => {
    await start({ imageSizeBytes: 300_000 });
    const { task } = await runToCompletion({ processingMs: 1 });
    const res = await fetch(task.imageUrl ?? '');
    expect(res.headers.get('content-length')).toBe('300000');
    expect((await res.arrayBuffer()).byteLength).toBe(300_000);
  });

  it('answers 403 after expireImages and 404 for unknown objects', async () => {
    const { task } = await runToCompletion({ processingMs: 1 });
    expect((await fetch(`${fake.url}/cdn/output/nope.jpeg`)).status).toBe(404);
    fake.expireImages();
    const res = await fetch(task.imageUrl ?? '');
    expect(res.status).toBe(403);
    await res.arrayBuffer();
  });
});

describe('unknown routes', () => {
  it.each([
    { method: 'GET', path: '/v3/async/nope' },
    { method: 'GET', path: '/v3/async/qwen-image-txt2img' },
    { method: 'POST', path: '/v3/async/task-result' },
    { method: 'GET', path: '/' },
  ])('$method $path -> 404 API_NOT_FOUND', async ({ method, path }) => {
    const res = await fetch(`${fake.url}${path}`, { method, headers: authHeaders(undefined) });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ code: 404, reason: 'API_NOT_FOUND', message: 'api not found' });
    expect(fake.requests.at(-1)?.route).toBe('unknown');
  });
});

describe('faults', () => {
  it('429 without Retry-After', async () => {
    fake.inject('submit', { status: 429 });
    const res = await submit();
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBeNull();
    expect(await res.json()).toEqual({ code: 429, reason: 'RATE_LIMIT_EXCEEDED', message: 'rate limit exceeded' });
    expect(fake.tasks.size).toBe(0);
    expect((await submit()).status).toBe(200);
  });

  it('429 with Retry-After in seconds', async () => {
    fake.inject('result', { status: 429, retryAfterSec: 7 });
    const res = await poll('any');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    await res.arrayBuffer();
  });

  it('429 with Retry-After as an HTTP-date (on the injected clock)', async () => {
    clock = Date.UTC(2030, 0, 1, 12, 0, 0);
    await start({ now: () => clock });
    fake.inject('submit', { status: 429, retryAfterSec: 30, retryAfterHttpDate: true });
    const res = await submit();
    expect(res.headers.get('retry-after')).toBe('Tue, 01 Jan 2030 12:00:30 GMT');
    await res.arrayBuffer();
  });

  it.each([
    { route: 'submit', fault: { status: 500 }, reason: 'CREATE_TASK_FAILED' },
    { route: 'submit', fault: { status: 500, reason: 'BILLING_FAILED' }, reason: 'BILLING_FAILED' },
    {
      route: 'submit',
      fault: { status: 400, reason: 'BILLING_BALANCE_NOT_ENOUGH' },
      reason: 'BILLING_BALANCE_NOT_ENOUGH',
    },
    { route: 'submit', fault: { status: 400, reason: 'ILLEGAL_PROMPT', message: 'nope' }, reason: 'ILLEGAL_PROMPT' },
    { route: 'submit', fault: { status: 503 }, reason: 'SERVICE_NOT_AVAILABLE' },
    { route: 'result', fault: { status: 500 }, reason: 'GET_RESULT_FAILED' },
    { route: 'result', fault: { status: 500, reason: 'TASK_FAILED' }, reason: 'TASK_FAILED' },
  ] as const)('$route gets $fault.status $reason', async ({ route, fault, reason }) => {
    fake.inject(route, fault);
    const res = route === 'submit' ? await submit() : await poll('whatever');
    expect(res.status).toBe(fault.status);
    const body = (await res.json()) as { code: number; reason: string; message: string };
    expect(body).toEqual({
      code: fault.status,
      reason,
      message: 'message' in fault ? fault.message : expect.any(String),
    });
    expect(body.message).not.toBe('');
    expect(fake.tasks.size).toBe(0);
  });

  it('502 without a reason is an HTML gateway page', async () => {
    fake.inject('result', { status: 502 });
    const res = await poll('x');
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toBe('text/html');
    expect(await res.text()).toMatch(/<title>502 Bad Gateway<\/title>/);
  });

  it('consumes faults FIFO, `times` at a time, per route', async () => {
    fake.inject('submit', { status: 503 }, 2);
    fake.inject('submit', { status: 429 });
    fake.inject('result', { status: 500 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await submit();
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([503, 503, 429, 200]);
    expect(fake.requests.map((r) => r.fault)).toEqual([{ status: 503 }, { status: 503 }, { status: 429 }, undefined]);
    expect(fake.count('submit')).toBe(4);
    expect(fake.count('result')).toBe(0);
  });

  it('reset destroys the socket without a response', async () => {
    fake.inject('result', { reset: true });
    await expect(poll('x')).rejects.toThrow(TypeError);
    expect(fake.requests[0]).toMatchObject({ route: 'result', status: 0, fault: { reset: true } });
    expect((await poll('x')).status).toBe(404);
  });

  it('resetAfterProcessing creates (bills) the task, yet the client sees a network error', async () => {
    fake.inject('submit', { resetAfterProcessing: true });
    const created = fake.waitFor('task-created');
    await expect(submit({ prompt: 'ambiguous' })).rejects.toThrow(TypeError);
    const task = (await created) as FakeTask;
    expect(task.prompt).toBe('ambiguous');
    expect([...fake.tasks.keys()]).toEqual([task.id]);
    expect((await pollJson(task.id)).task.task_id).toBe(task.id);
  });

  it('delayHeadersMs makes a client-side timeout fire', async () => {
    // Longer than the test runs (close() clears the timer): only the client's timeout can end it.
    fake.inject('result', { delayHeadersMs: 60_000 });
    await expect(poll('x', { signal: AbortSignal.timeout(20) })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(fake.requests[0]).toMatchObject({ route: 'result', status: 0, fault: { delayHeadersMs: 60_000 } });
  });

  it('delayHeadersMs still answers normally when the client waits', async () => {
    fake.inject('submit', { delayHeadersMs: 20 });
    const res = await submit();
    expect(res.status).toBe(200);
    expect((await res.json()) as object).toHaveProperty('task_id');
  });

  it('delayBodyMs sends headers at once and stalls the body', async () => {
    const id = await submitOk();
    // Longer than the test runs: the rest of the body never comes while the test looks.
    fake.inject('result', { delayBodyMs: 60_000 });
    const controller = new AbortController();
    const res = await poll(id, { signal: controller.signal });
    expect(res.status).toBe(200);
    const length = Number(res.headers.get('content-length'));
    const reader = res.body!.getReader();
    const first = await reader.read();
    // The first half came with the headers; the reader is now waiting for the rest.
    expect(first.value!.length).toBeLessThan(length);
    const rest = reader.read();
    controller.abort(new Error('body too slow'));
    await expect(rest).rejects.toThrow();
  });

  it('delayBodyMs finishes the body after the stall', async () => {
    const id = await submitOk();
    fake.inject('result', { delayBodyMs: 20 });
    const res = await poll(id);
    expect(((await res.json()) as { task: { task_id: string } }).task.task_id).toBe(id);
  });

  it('applies faults to image downloads', async () => {
    const { task } = await runToCompletion({ processingMs: 1 });
    fake.inject('image', { status: 503 });
    const res = await fetch(task.imageUrl ?? '');
    expect(res.status).toBe(503);
    await res.arrayBuffer();
    expect((await fetch(task.imageUrl ?? '')).status).toBe(200);
  });
});

describe('recording and events', () => {
  it('records every request in order with the key masked', async () => {
    const id = await submitOk();
    await (await submit({ prompt: 'x' }, { auth: 'Bearer wrong' })).arrayBuffer();
    await (await submit({ prompt: 'x' }, { auth: fake.apiKey })).arrayBuffer();
    await (await poll(id, { auth: null })).arrayBuffer();
    const summary = fake.requests.map((r: RecordedRequest) => [r.route, r.status, r.authOk, r.headers.authorization]);
    expect(summary).toEqual([
      ['submit', 200, true, 'Bearer ***'],
      ['submit', 403, false, 'Bearer ***'],
      ['submit', 403, false, '***'],
      ['result', 400, false, '<none>'],
    ]);
    expect(fake.requests[0]).toMatchObject({
      method: 'POST',
      path: '/v3/async/qwen-image-txt2img',
      body: { prompt: 'a cat' },
    });
    expect(JSON.stringify(fake.requests)).not.toContain(fake.apiKey);
  });

  it('emits request events and waitFor sees past events', async () => {
    const seen: RecordedRequest[] = [];
    fake.on('request', (r: RecordedRequest) => seen.push(r));
    const id = await submitOk();
    await pollJson(id);
    expect(seen.map((r) => r.route)).toEqual(['submit', 'result']);
    await expect(fake.waitFor('request', (r: RecordedRequest) => r.route === 'result')).resolves.toBe(seen[1]);
  });

  it('waitFor rejects on timeout and on close', async () => {
    await expect(fake.waitFor('task-created', undefined, 10)).rejects.toThrow(/within 10 ms/);
    const pending = fake.waitFor('task-completed', undefined, 0);
    await fake.close();
    await expect(pending).rejects.toThrow(/closed/);
  });

  it('close() does not hang on open keep-alive connections or pending delays', async () => {
    const id = await submitOk();
    await pollJson(id); // leaves a keep-alive socket open
    fake.inject('result', { delayHeadersMs: 10_000 });
    const hanging = poll(id).catch((error: unknown) => error);
    await fake.waitFor('request', (r: RecordedRequest) => r.fault !== undefined);
    await fake.close();
    expect(await hanging).toBeInstanceOf(TypeError);
  });
});
