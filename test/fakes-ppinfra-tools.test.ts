// The fake PPInfra's Qwen-Image-Edit and upscaler endpoints (docs/ppinfra-api.md sections 12-13):
// validation as published, the input fetched from a URL or decoded from base64, and results that
// differ from the input.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makePicture } from './fakes/pictures.ts';
import {
  startFakePpinfra,
  type FakePpinfra,
  type FakePpinfraOptions,
  type FakeScriptRequest,
  type FakeTask,
} from './fakes/ppinfra.ts';

let fake: FakePpinfra;
let images: Server;
let imagesUrl: string;
/** What the loopback image host serves, by path. */
const served = new Map<string, { type: string; bytes: Uint8Array }>();
let png: Uint8Array;
let jpeg: Uint8Array;
let wide: Uint8Array;

beforeAll(async () => {
  png = await makePicture(1, 64, 'png');
  jpeg = await makePicture(2, 64, 'jpeg');
  wide = new Uint8Array(
    await sharp({ create: { width: 80, height: 40, channels: 3, background: { r: 200, g: 30, b: 90 } } })
      .webp()
      .toBuffer(),
  );
  const gif = new Uint8Array(
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#0f0' } })
      .gif()
      .toBuffer(),
  );
  served.set('/a.png', { type: 'image/png', bytes: png });
  served.set('/b.jpg', { type: 'image/jpeg', bytes: jpeg });
  served.set('/wide.webp', { type: 'image/webp', bytes: wide });
  served.set('/c.gif', { type: 'image/gif', bytes: gif });
  served.set('/notes.png', { type: 'image/png', bytes: Buffer.from('not a picture at all\n') });
  images = createServer((req, res) => {
    const hit = served.get(req.url ?? '');
    if (!hit) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': hit.type, 'content-length': String(hit.bytes.length) }).end(hit.bytes);
  });
  await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
  imagesUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => images.close(() => resolve())));

beforeEach(async () => {
  fake = await startFakePpinfra();
});

afterEach(() => fake.close());

async function restart(opts: FakePpinfraOptions): Promise<void> {
  await fake.close();
  fake = await startFakePpinfra(opts);
}

function post(path: 'qwen-image-edit' | 'image-upscaler', body: unknown): Promise<Response> {
  return fetch(`${fake.url}/v3/async/${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${fake.apiKey}` },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Submits, waits for the task to finish, and returns it with the result body and the served bytes. */
async function run(
  path: 'qwen-image-edit' | 'image-upscaler',
  body: unknown,
): Promise<{ task: FakeTask; result: any; bytes: Buffer; contentType: string | null }> {
  const res = await post(path, body);
  expect(res.status).toBe(200);
  const { task_id } = (await res.json()) as { task_id: string };
  const task: FakeTask = await fake.waitFor('task-completed', (t: FakeTask) => t.id === task_id);
  const result: any = await (
    await fetch(`${fake.url}/v3/async/task-result?task_id=${task_id}`, {
      headers: { Authorization: `Bearer ${fake.apiKey}` },
    })
  ).json();
  const image = await fetch(result.images[0].image_url);
  return {
    task,
    result,
    bytes: Buffer.from(await image.arrayBuffer()),
    contentType: image.headers.get('content-type'),
  };
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('qwen-image-edit', () => {
  it('fetches a URL, records what was asked, and serves a different image of the same size in output_format', async () => {
    const { task, result, bytes, contentType } = await run('qwen-image-edit', {
      prompt: 'make it dusk',
      image: `${imagesUrl}/a.png`,
      seed: 42,
      output_format: 'png',
    });

    expect(task).toMatchObject({ kind: 'edit', prompt: 'make it dusk', size: '64*64' });
    expect(task.tool).toMatchObject({
      kind: 'edit',
      via: 'url',
      inputUrl: `${imagesUrl}/a.png`,
      inputBytes: png.length,
      inputSha256: sha256(png),
      inputWidth: 64,
      inputHeight: 64,
      seed: 42,
      outputFormat: 'png',
      width: 64,
      height: 64,
    });
    expect(result.task.task_type).toBe('QWEN_IMAGE_EDIT');
    expect(result.images[0].image_type).toBe('png');
    expect(contentType).toBe('image/png');
    const meta = await sharp(bytes).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 64, height: 64 });
    const [before, after] = await Promise.all([sharp(png).raw().toBuffer(), sharp(bytes).raw().toBuffer()]);
    expect(after.equals(before)).toBe(false);
  });

  it('answers jpeg by default and keeps a non-square input’s dimensions', async () => {
    const { task, bytes } = await run('qwen-image-edit', { prompt: 'add a moon', image: `${imagesUrl}/wide.webp` });
    expect(task.tool).toMatchObject({ via: 'url', width: 80, height: 40 });
    expect(task.tool!.outputFormat).toBeUndefined();
    expect(await sharp(bytes).metadata()).toMatchObject({ format: 'jpeg', width: 80, height: 40 });
  });

  it.each([
    { via: 'base64', image: () => Buffer.from(jpeg).toString('base64') },
    { via: 'data_uri', image: () => `data:image/jpeg;base64,${Buffer.from(jpeg).toString('base64')}` },
  ])('takes the image as $via', async ({ via, image }) => {
    const { task, bytes } = await run('qwen-image-edit', { prompt: 'sepia', image: image(), output_format: 'webp' });
    expect(task.tool).toMatchObject({ via, inputBytes: jpeg.length, inputSha256: sha256(jpeg), width: 64, height: 64 });
    expect(task.tool!.inputUrl).toBeUndefined();
    expect((await sharp(bytes).metadata()).format).toBe('webp');
    expect(sha256(bytes)).not.toBe(sha256(jpeg));
  });

  it.each([
    { name: 'non-JSON body', body: '{"prompt":', message: /JSON/ },
    { name: 'missing prompt', body: { image: 'aGVsbG8=' }, message: /prompt is required/ },
    { name: 'blank prompt', body: { prompt: '  ', image: 'aGVsbG8=' }, message: /prompt must not be empty/ },
    { name: 'numeric prompt', body: { prompt: 7, image: 'aGVsbG8=' }, message: /prompt must be a string/ },
    { name: 'missing image', body: { prompt: 'x' }, message: /image is required/ },
    { name: 'empty image', body: { prompt: 'x', image: '' }, message: /image must not be empty/ },
    { name: 'image as object', body: { prompt: 'x', image: { url: 'http://x' } }, message: /image must be a string/ },
    { name: 'seed below -1', body: { prompt: 'x', image: 'aGVsbG8=', seed: -2 }, message: /seed/ },
    { name: 'seed above 2^31-1', body: { prompt: 'x', image: 'aGVsbG8=', seed: 2147483648 }, message: /seed/ },
    { name: 'fractional seed', body: { prompt: 'x', image: 'aGVsbG8=', seed: 1.5 }, message: /seed/ },
    { name: 'seed as string', body: { prompt: 'x', image: 'aGVsbG8=', seed: '7' }, message: /seed/ },
    {
      name: 'output_format gif',
      body: { prompt: 'x', image: 'aGVsbG8=', output_format: 'gif' },
      message: /output_format/,
    },
    { name: 'not base64', body: { prompt: 'x', image: 'a picture of a cat' }, message: /URL or base64/ },
    {
      name: 'base64 of text',
      body: { prompt: 'x', image: Buffer.from('hello, world').toString('base64') },
      message: /decoded/,
    },
    {
      name: 'URL answering 404',
      body: () => ({ prompt: 'x', image: `${imagesUrl}/missing.png` }),
      message: /downloaded \(HTTP 404\)/,
    },
    { name: 'a GIF', body: () => ({ prompt: 'x', image: `${imagesUrl}/c.gif` }), message: /not supported/ },
    { name: 'text named .png', body: () => ({ prompt: 'x', image: `${imagesUrl}/notes.png` }), message: /decoded/ },
  ])('$name -> 400 INVALID_REQUEST_BODY, no task', async ({ body, message }) => {
    const res = await post('qwen-image-edit', typeof body === 'function' ? body() : body);
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { code: number; reason: string; message: string };
    expect(answer).toMatchObject({ code: 400, reason: 'INVALID_REQUEST_BODY' });
    expect(answer.message).toMatch(message);
    expect(fake.tasks.size).toBe(0);
  });

  it('accepts seed -1 and 2147483647', async () => {
    for (const seed of [-1, 2147483647])
      expect(
        (await post('qwen-image-edit', { prompt: 'x', image: Buffer.from(jpeg).toString('base64'), seed })).status,
      ).toBe(200);
  });

  it('refuses an input past maxInputBytes', async () => {
    await restart({ maxInputBytes: 1000 });
    const res = await post('qwen-image-edit', { prompt: 'x', image: `${imagesUrl}/a.png` });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/too large/);
  });
});

describe('image-upscaler', () => {
  it('records the nominal 2048/4096/8192 long side and serves an eighth of it by default', async () => {
    for (const [resolution, long] of [
      ['2k', 2048],
      ['4k', 4096],
      ['8k', 8192],
    ] as const) {
      const { task, result, bytes } = await run('image-upscaler', {
        image: `${imagesUrl}/wide.webp`,
        resolution,
        output_format: 'png',
      });
      expect(task).toMatchObject({ kind: 'upscale', prompt: '', size: `${long}*${long / 2}` });
      expect(task.tool).toMatchObject({
        kind: 'upscale',
        via: 'url',
        resolution,
        width: long,
        height: long / 2,
        servedWidth: long / 8,
        servedHeight: long / 16,
        inputWidth: 80,
        inputHeight: 40,
      });
      expect(result.task.task_type).toBe('IMAGE_UPSCALER');
      expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: long / 8, height: long / 16 });
    }
  });

  it('upscales to 4k in jpeg when neither is sent', async () => {
    const { task, bytes } = await run('image-upscaler', { image: `${imagesUrl}/b.jpg` });
    expect(task.tool).toMatchObject({ width: 4096, height: 4096, servedWidth: 512 });
    expect(task.tool!.resolution).toBeUndefined();
    expect((await sharp(bytes).metadata()).format).toBe('jpeg');
  });

  it('serves the full size with upscaleFullSize', async () => {
    await restart({ upscaleFullSize: true });
    const { task, bytes } = await run('image-upscaler', { image: `${imagesUrl}/b.jpg`, resolution: '2k' });
    expect(task.tool).toMatchObject({ width: 2048, height: 2048, servedWidth: 2048, servedHeight: 2048 });
    expect(await sharp(bytes).metadata()).toMatchObject({ width: 2048, height: 2048 });
  });

  it.each([
    { name: 'missing image', body: {}, message: /image is required/ },
    { name: 'base64 image', body: { image: 'aGVsbG8=' }, message: /URL of the image/ },
    { name: 'resolution 16k', body: { image: 'http://127.0.0.1:1/x.png', resolution: '16k' }, message: /resolution/ },
    {
      name: 'resolution 4K (case)',
      body: { image: 'http://127.0.0.1:1/x.png', resolution: '4K' },
      message: /resolution/,
    },
    {
      name: 'output_format jpg',
      body: { image: 'http://127.0.0.1:1/x.png', output_format: 'jpg' },
      message: /output_format/,
    },
  ])('$name -> 400 INVALID_REQUEST_BODY, no task', async ({ body, message }) => {
    const res = await post('image-upscaler', body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(message);
    expect(fake.tasks.size).toBe(0);
  });
});

describe('the script hook, faults and auth for the new kinds', () => {
  it('tells the script the kind and honours its outcome, NSFW flag and durations', async () => {
    const seen: FakeScriptRequest[] = [];
    fake.setScript((req) => {
      seen.push(req);
      return req.kind === 'edit'
        ? { nsfw: true, processingMs: 0 }
        : { outcome: 'fail', reason: 'upscale exploded', processingMs: 0 };
    });
    const edited = await run('qwen-image-edit', { prompt: 'x', image: `${imagesUrl}/b.jpg` });
    expect(edited.result.extra.has_nsfw_contents).toEqual([true]);
    expect(edited.result.images[0].nsfw_detection_result).toEqual({ valid: true, confidence: 0.97 });

    const res = await post('image-upscaler', { image: `${imagesUrl}/b.jpg` });
    const { task_id } = (await res.json()) as { task_id: string };
    await fake.waitFor('task-completed', (t: FakeTask) => t.id === task_id);
    const failed: any = await (
      await fetch(`${fake.url}/v3/async/task-result?task_id=${task_id}`, {
        headers: { Authorization: `Bearer ${fake.apiKey}` },
      })
    ).json();
    expect(failed.task).toMatchObject({
      status: 'TASK_STATUS_FAILED',
      reason: 'upscale exploded',
      task_type: 'IMAGE_UPSCALER',
    });
    expect(seen).toEqual([
      { prompt: 'x', size: '64*64', kind: 'edit' },
      { prompt: '', size: '4096*4096', kind: 'upscale' },
    ]);
  });

  it('keeps the txt2img script request as it was', async () => {
    const seen: FakeScriptRequest[] = [];
    fake.setScript((req) => {
      seen.push(req);
      return {};
    });
    await post('qwen-image-edit', { prompt: 'x', image: Buffer.from(jpeg).toString('base64') });
    await fetch(`${fake.url}/v3/async/qwen-image-txt2img`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${fake.apiKey}` },
      body: '{"prompt":"p"}',
    });
    expect(seen[1]).toEqual({ prompt: 'p', size: '1024*1024' });
    expect(fake.tasks.size).toBe(2);
  });

  it('injects faults on the edit and upscale routes, counted apart from submit', async () => {
    fake.inject('edit', { status: 429, retryAfterSec: 2 });
    fake.inject('upscale', { status: 500 });
    const edit = await post('qwen-image-edit', { prompt: 'x', image: 'aGVsbG8=' });
    expect(edit.status).toBe(429);
    expect(edit.headers.get('retry-after')).toBe('2');
    const upscale = await post('image-upscaler', { image: `${imagesUrl}/b.jpg` });
    expect(upscale.status).toBe(500);
    expect(await upscale.json()).toMatchObject({ reason: 'CREATE_TASK_FAILED' });
    expect([fake.count('edit'), fake.count('upscale'), fake.count('submit')]).toEqual([1, 1, 0]);
    expect(fake.tasks.size).toBe(0);
  });

  it('asks for the key before anything else', async () => {
    const res = await fetch(`${fake.url}/v3/async/qwen-image-edit`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ reason: 'MISSING_API_KEY' });
  });
});
