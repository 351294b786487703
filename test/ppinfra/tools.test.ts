/**
 * The client's image tools (submitEdit, submitUpscale) against the fake PPInfra on loopback: the
 * bodies sent, the local refusals that send nothing, and the submit rules they share with txt2img
 * (retries only when no task can exist, typed errors, metrics, no image or key in the logs).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPpinfraClient, type PpinfraClient, type PpinfraClientOptions } from '../../src/ppinfra/client.ts';
import {
  EDIT_PATH,
  UPSCALE_PATH,
  imageInputFor,
  imageStringKind,
  type EditRequest,
  type UpscaleRequest,
} from '../../src/ppinfra/edit.ts';
import { createLogger } from '../../src/logger.ts';
import { makePicture } from '../fakes/pictures.ts';
import { startFakePpinfra, type FakePpinfra, type FakeTask } from '../fakes/ppinfra.ts';
import { caught } from './caught.ts';

let fake: FakePpinfra;
let clients: PpinfraClient[] = [];
let sleeps: number[] = [];
let images: Server;
let imageUrl: string;
let jpeg: Uint8Array;
let base64: string;

beforeAll(async () => {
  jpeg = await makePicture(7, 48, 'jpeg');
  base64 = Buffer.from(jpeg).toString('base64');
  images = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg));
  await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
  imageUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}/attachments/1/2/cat.jpg?ex=abc&hm=secret-signature`;
});

afterAll(() => new Promise<void>((resolve) => images.close(() => resolve())));

beforeEach(async () => {
  fake = await startFakePpinfra();
  sleeps = [];
});

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  clients = [];
  await fake.close();
});

function makeClient(o: Partial<PpinfraClientOptions> = {}): PpinfraClient {
  const client = createPpinfraClient({
    baseUrl: fake.url,
    apiKey: fake.apiKey,
    ...o,
    retry: {
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      random: () => 0.5,
      ...o.retry,
    },
  });
  clients.push(client);
  return client;
}

describe('submitEdit', () => {
  it('sends exactly {prompt, image, seed, output_format} with the key and returns the billed task', async () => {
    const id = await makeClient().submitEdit({
      prompt: 'make it snow',
      image: imageUrl,
      seed: 1234,
      outputFormat: 'png',
    });

    expect(fake.count('edit')).toBe(1);
    const [req] = fake.requests;
    expect(req).toMatchObject({
      route: 'edit',
      method: 'POST',
      path: EDIT_PATH,
      authOk: true,
      body: { prompt: 'make it snow', image: imageUrl, seed: 1234, output_format: 'png' },
    });
    expect(Object.keys(req!.body as object).sort()).toEqual(['image', 'output_format', 'prompt', 'seed']);
    expect(req!.headers['content-type']).toBe('application/json');
    expect(fake.tasks.get(id)).toMatchObject({
      kind: 'edit',
      prompt: 'make it snow',
      tool: { via: 'url', inputBytes: jpeg.length, seed: 1234, outputFormat: 'png' },
    });
  });

  it('leaves seed and output_format to the provider when not given, and takes base64', async () => {
    const id = await makeClient().submitEdit({ prompt: 'sepia', image: base64 });
    expect(fake.requests[0]!.body).toEqual({ prompt: 'sepia', image: base64 });
    expect(fake.tasks.get(id)!.tool).toMatchObject({ via: 'base64', inputBytes: jpeg.length });
  });

  it('reads the finished edit like any task and downloads an image that is not the input', async () => {
    fake.setScript(() => ({ processingMs: 0 }));
    const client = makeClient();
    const id = await client.submitEdit({
      prompt: 'invert',
      image: `data:image/jpeg;base64,${base64}`,
      outputFormat: 'webp',
    });
    await fake.waitFor('task-completed', (t: FakeTask) => t.id === id);
    const result = await client.getResult(id);
    expect(result).toMatchObject({ status: 'succeed', images: [{ type: 'webp', nsfw: false }] });
    const download = await client.download(result.images[0]!.url, { maxBytes: 1 << 20 });
    expect(download.contentType).toBe('image/webp');
    expect(Buffer.from(download.bytes).equals(Buffer.from(jpeg))).toBe(false);
  });

  it.each<{ name: string; req: EditRequest; message: RegExp }>([
    { name: 'an empty instruction', req: { prompt: '', image: 'aGVsbG8=' }, message: /instruction/ },
    { name: 'a blank instruction', req: { prompt: ' \n ', image: 'aGVsbG8=' }, message: /instruction/ },
    { name: 'an empty image', req: { prompt: 'x', image: '' }, message: /must not be empty/ },
    {
      name: 'an image that is no URL nor base64',
      req: { prompt: 'x', image: 'cat.png' },
      message: /http\(s\) URL, base64/,
    },
    { name: 'an ftp URL', req: { prompt: 'x', image: 'ftp://example.com/cat.png' }, message: /http\(s\) URL, base64/ },
    {
      name: 'a data URI of a GIF',
      req: { prompt: 'x', image: 'data:image/gif;base64,R0lGODlh' },
      message: /http\(s\) URL, base64/,
    },
    { name: 'seed -2', req: { prompt: 'x', image: 'aGVsbG8=', seed: -2 }, message: /seed/ },
    { name: 'seed 2^31', req: { prompt: 'x', image: 'aGVsbG8=', seed: 2 ** 31 }, message: /seed/ },
    { name: 'seed 0.5', req: { prompt: 'x', image: 'aGVsbG8=', seed: 0.5 }, message: /seed/ },
    { name: 'seed NaN', req: { prompt: 'x', image: 'aGVsbG8=', seed: Number.NaN }, message: /seed/ },
    {
      name: 'output format gif',
      req: { prompt: 'x', image: 'aGVsbG8=', outputFormat: 'gif' as never },
      message: /output_format/,
    },
  ])('refuses $name as invalid_request without sending anything', async ({ req, message }) => {
    const error = await caught(makeClient().submitEdit(req));
    expect(error).toMatchObject({ kind: 'invalid_request', reason: 'INVALID_REQUEST_BODY', notSent: true });
    expect(error.message).toMatch(message);
    expect(fake.requests).toHaveLength(0);
  });

  it('sends the bounds of the seed range', async () => {
    const client = makeClient();
    await client.submitEdit({ prompt: 'x', image: base64, seed: -1 });
    await client.submitEdit({ prompt: 'x', image: base64, seed: 2_147_483_647 });
    expect(fake.tasks.size).toBe(2);
  });

  it('the provider’s own 400 is invalid_request too', async () => {
    const error = await caught(
      makeClient().submitEdit({ prompt: 'x', image: Buffer.from('plain text, no picture').toString('base64') }),
    );
    expect(error).toMatchObject({
      kind: 'invalid_request',
      status: 400,
      reason: 'INVALID_REQUEST_BODY',
      notSent: false,
    });
    expect(fake.tasks.size).toBe(0);
  });
});

describe('submitUpscale', () => {
  it('sends {image, resolution, output_format} and returns the billed task', async () => {
    const id = await makeClient().submitUpscale({ image: imageUrl, resolution: '2k', outputFormat: 'jpeg' });
    expect(fake.requests[0]).toMatchObject({
      route: 'upscale',
      path: UPSCALE_PATH,
      body: { image: imageUrl, resolution: '2k', output_format: 'jpeg' },
    });
    expect(fake.tasks.get(id)).toMatchObject({
      kind: 'upscale',
      tool: { resolution: '2k', width: 2048, height: 2048 },
    });
  });

  it('leaves resolution and format to the provider when not given', async () => {
    await makeClient().submitUpscale({ image: imageUrl });
    expect(fake.requests[0]!.body).toEqual({ image: imageUrl });
  });

  it.each<{ name: string; req: UpscaleRequest; message: RegExp }>([
    { name: 'an empty image', req: { image: '' }, message: /must not be empty/ },
    { name: 'base64 (the upscaler takes a URL)', req: { image: 'aGVsbG8=' }, message: /http\(s\) URL/ },
    {
      name: 'resolution 16k',
      req: { image: 'https://cdn.example/x.png', resolution: '16k' as never },
      message: /resolution/,
    },
    {
      name: 'output format jpg',
      req: { image: 'https://cdn.example/x.png', outputFormat: 'jpg' as never },
      message: /output_format/,
    },
  ])('refuses $name as invalid_request without sending anything', async ({ req, message }) => {
    const error = await caught(makeClient().submitUpscale(req));
    expect(error).toMatchObject({ kind: 'invalid_request', notSent: true });
    expect(error.message).toMatch(message);
    expect(fake.requests).toHaveLength(0);
  });
});

describe('the submit rules the tools share with txt2img', () => {
  it('retries a 429 after its Retry-After and bills one edit', async () => {
    fake.inject('edit', { status: 429, retryAfterSec: 3 });
    const id = await makeClient().submitEdit({ prompt: 'x', image: base64 });
    expect(sleeps).toEqual([3000]);
    expect(fake.count('edit')).toBe(2);
    expect([...fake.tasks.keys()]).toEqual([id]);
  });

  it('retries 500 CREATE_TASK_FAILED on the upscaler and bills one task', async () => {
    fake.inject('upscale', { status: 500 }, 2);
    await makeClient().submitUpscale({ image: imageUrl });
    expect(fake.count('upscale')).toBe(3);
    expect(fake.tasks.size).toBe(1);
  });

  it('does not retry a reset after the provider took the edit (a retry would bill twice)', async () => {
    fake.inject('edit', { resetAfterProcessing: true });
    const error = await caught(makeClient().submitEdit({ prompt: 'x', image: base64 }));
    expect(error).toMatchObject({ kind: 'network', notSent: false });
    expect(fake.count('edit')).toBe(1);
    expect(fake.tasks.size).toBe(1);
  });

  it('does not retry a 503 on the upscaler', async () => {
    fake.inject('upscale', { status: 503 });
    const error = await caught(makeClient().submitUpscale({ image: imageUrl }));
    expect(error).toMatchObject({ kind: 'server', status: 503 });
    expect(fake.count('upscale')).toBe(1);
  });

  it('a wrong key is auth, and the key is in no error', async () => {
    const key = 'sk-wrong-key-for-tools-123';
    const error = await caught(makeClient({ apiKey: key }).submitEdit({ prompt: 'x', image: base64 }));
    expect(error.kind).toBe('auth');
    expect(JSON.stringify({ ...error.toLog(), stack: error.stack })).not.toContain(key);
  });

  it('an aborted signal sends nothing', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await caught(makeClient().submitUpscale({ image: imageUrl }, { signal: controller.signal }));
    expect(error.kind).toBe('aborted');
    expect(fake.requests).toHaveLength(0);
  });

  it('times each attempt as a submit', async () => {
    const timed: [string, string][] = [];
    fake.inject('edit', { status: 429 });
    const client = makeClient({ metrics: { apiRequest: (endpoint, status) => void timed.push([endpoint, status]) } });
    await client.submitEdit({ prompt: 'x', image: base64 });
    await client.submitUpscale({ image: imageUrl });
    expect(timed).toEqual([
      ['submit', '429'],
      ['submit', '200'],
      ['submit', '200'],
    ]);
  });

  it('logs a retry without the image, its URL or the key', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = createLogger({ level: 'debug', format: 'json', secrets: [fake.apiKey], destination: stream });
    fake.inject('edit', { status: 429 });
    fake.inject('upscale', { status: 429 });
    const client = makeClient({ logger });
    await client.submitEdit({ prompt: 'x', image: base64 });
    await client.submitUpscale({ image: imageUrl, resolution: '4k' });
    const all = lines.join('');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      op: 'submit',
      kind: 'edit',
      imageChars: base64.length,
      msg: 'retrying PPInfra call',
    });
    expect(JSON.parse(lines[1]!)).toMatchObject({ op: 'submit', kind: 'upscale', resolution: '4k' });
    expect(all).not.toContain(base64.slice(0, 40));
    expect(all).not.toContain('secret-signature');
    expect(all).not.toContain(fake.apiKey);
  });
});

describe('image strings', () => {
  it.each([
    ['https://cdn.discordapp.com/attachments/1/2/a.png?ex=1', 'url'],
    ['HTTP://127.0.0.1:8080/a.png', 'url'],
    ['aGVsbG8=', 'base64'],
    ['data:image/png;base64,aGVsbG8=', 'data_uri'],
    ['https://', undefined],
    ['aGVsbG8', undefined],
    ['aGVs bG8=', undefined],
    ['data:text/plain;base64,aGVsbG8=', undefined],
    ['', undefined],
  ])('%s is %s', (image, kind) => {
    expect(imageStringKind(image)).toBe(kind);
  });

  it('EDIT_IMAGE_INPUT picks the URL or the bytes as plain base64', () => {
    const bytes = new Uint8Array([0xff, 0xd8, 0xff, 0xe0]);
    expect(imageInputFor('url', { url: 'https://x/y.png', bytes })).toBe('https://x/y.png');
    expect(imageInputFor('base64', { url: 'https://x/y.png', bytes })).toBe('/9j/4A==');
    expect(imageInputFor('base64', { url: '', bytes: bytes.subarray(1, 3) })).toBe(
      Buffer.from([0xd8, 0xff]).toString('base64'),
    );
  });
});
