/**
 * A member's upload, checked before anything is spent: real images made by sharp, a text file,
 * a GIF, a 5000x10 PNG, and a 30 MB body from a loopback server with and without Content-Length.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  EDIT_INPUT_LIMITS,
  checkImageBytes,
  headerDimensions,
  screenAttachment,
  sniffFormat,
  type ImageFormat,
} from '../../src/prompts/image-input.ts';
import { downloadImage, loadAttachmentImage } from '../../src/discord/attachments.ts';
import { makePicture } from '../fakes/pictures.ts';

const MB = 1024 * 1024;
const solid = (width: number, height: number, alpha = false) =>
  sharp({ create: { width, height, channels: alpha ? 4 : 3, background: { r: 40, g: 120, b: 200, alpha: 0.5 } } });
const bytesOf = async (image: Sharp) => new Uint8Array(await image.toBuffer());

let pictures: Record<string, Uint8Array>;

beforeAll(async () => {
  pictures = {
    png: await makePicture(11, 96, 'png'),
    jpeg: await makePicture(12, 96, 'jpeg'),
    progressive: await bytesOf(solid(300, 200).jpeg({ progressive: true })),
    webpLossy: await bytesOf(solid(321, 123).webp()),
    webpLossless: await bytesOf(solid(77, 4000).webp({ lossless: true })),
    webpAlpha: await bytesOf(solid(130, 70, true).webp()),
    gif: await bytesOf(solid(20, 20).gif()),
    tiff: await bytesOf(solid(20, 20).tiff()),
    avif: await bytesOf(solid(64, 64).avif()),
    wide: await bytesOf(solid(5000, 10).png()),
    tall: await bytesOf(solid(10, 4097).jpeg()),
    edge: await bytesOf(solid(4096, 16).png()),
    text: new Uint8Array(Buffer.from('These are my notes, saved as notes.png by mistake.\n')),
  };
});

describe('checkImageBytes', () => {
  it.each([
    ['png', 'png', 96, 96],
    ['jpeg', 'jpeg', 96, 96],
    ['progressive', 'jpeg', 300, 200],
    ['webpLossy', 'webp', 321, 123],
    ['webpLossless', 'webp', 77, 4000],
    ['webpAlpha', 'webp', 130, 70],
    ['edge', 'png', 4096, 16],
  ] as const)('accepts %s as %s %ix%i, with the bytes to send', async (name, format, width, height) => {
    const bytes = pictures[name]!;
    const check = await checkImageBytes(bytes);
    expect(check).toEqual({ ok: true, format, width, height, bytes, size: bytes.length });
    expect(await sharp(bytes).metadata()).toMatchObject({ width, height });
  });

  it('a text file (whatever its name) is not_image', async () => {
    expect(await checkImageBytes(pictures.text!)).toEqual({ ok: false, reason: 'not_image' });
    expect(await checkImageBytes(new Uint8Array())).toEqual({ ok: false, reason: 'not_image' });
    expect(await checkImageBytes(new Uint8Array(Buffer.from('BMW 3 series, notes')))).toEqual({
      ok: false,
      reason: 'not_image',
    });
  });

  it.each([
    ['gif', 'gif'],
    ['tiff', 'tiff'],
    ['avif', 'avif'],
  ])('a %s is unsupported_format, named', async (name, format) => {
    expect(await checkImageBytes(pictures[name]!)).toEqual({ ok: false, reason: 'unsupported_format', format });
  });

  it('names a bitmap, an icon and an SVG as unsupported formats too', async () => {
    const bmp = Buffer.alloc(54);
    bmp.write('BM', 0, 'latin1');
    bmp.writeUInt32LE(40, 14);
    expect(await checkImageBytes(new Uint8Array(bmp))).toMatchObject({ reason: 'unsupported_format', format: 'bmp' });
    expect(await checkImageBytes(new Uint8Array([0, 0, 1, 0, 1, 0, 16, 16]))).toMatchObject({
      reason: 'unsupported_format',
      format: 'ico',
    });
    const svg = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>';
    expect(await checkImageBytes(new Uint8Array(Buffer.from(svg)))).toMatchObject({
      reason: 'unsupported_format',
      format: 'svg',
    });
  });

  it('a 5000x10 PNG and a 10x4097 JPEG are too_many_pixels, without being decoded', async () => {
    const decode = vi.fn(async () => undefined);
    expect(await checkImageBytes(pictures.wide!, EDIT_INPUT_LIMITS, decode)).toEqual({
      ok: false,
      reason: 'too_many_pixels',
      width: 5000,
      height: 10,
      limit: 4096,
    });
    expect(await checkImageBytes(pictures.tall!, EDIT_INPUT_LIMITS, decode)).toEqual({
      ok: false,
      reason: 'too_many_pixels',
      width: 10,
      height: 4097,
      limit: 4096,
    });
    expect(decode).not.toHaveBeenCalled();
  });

  it('more than 10 MB is too_large before anything else is looked at', async () => {
    const big = new Uint8Array(10 * MB + 1);
    big.set(pictures.png!);
    expect(await checkImageBytes(big)).toEqual({ ok: false, reason: 'too_large', size: 10 * MB + 1, limit: 10 * MB });
  });

  it('a truncated JPEG or PNG, whose header is whole, is unreadable', async () => {
    const { jpeg, png } = pictures;
    expect(await checkImageBytes(jpeg!.subarray(0, Math.floor(jpeg!.length / 2)))).toEqual({
      ok: false,
      reason: 'unreadable',
      format: 'jpeg',
    });
    expect(await checkImageBytes(png!.subarray(0, 40))).toEqual({ ok: false, reason: 'unreadable', format: 'png' });
  });

  it('a magic number without a header is unreadable', async () => {
    expect(await checkImageBytes(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]))).toEqual({
      ok: false,
      reason: 'unreadable',
      format: 'jpeg',
    });
    expect(await checkImageBytes(new Uint8Array(Buffer.from('RIFF\0\0\0\0WEBPVP8 ')))).toEqual({
      ok: false,
      reason: 'unreadable',
      format: 'webp',
    });
  });

  it('a decode failure from the injected decoder is unreadable', async () => {
    const decode = vi.fn(async () => {
      throw new Error('VipsJpeg: premature end of input file');
    });
    expect(await checkImageBytes(pictures.jpeg!, EDIT_INPUT_LIMITS, decode)).toEqual({
      ok: false,
      reason: 'unreadable',
      format: 'jpeg',
    });
    expect(decode).toHaveBeenCalledOnce();
  });
});

describe('sniffFormat and headerDimensions', () => {
  it('agree with sharp on every generated image', async () => {
    for (const [name, bytes] of Object.entries(pictures)) {
      const format = sniffFormat(bytes);
      if (name === 'text') {
        expect(format).toBeUndefined();
        continue;
      }
      const meta = await sharp(bytes).metadata();
      expect(format === 'avif' ? 'heif' : format).toBe(meta.format);
      if (format === 'png' || format === 'jpeg' || format === 'webp') {
        expect(headerDimensions(bytes, format as ImageFormat), name).toEqual({
          width: meta.width,
          height: meta.height,
        });
      }
    }
  });

  it('skips APP segments and fill bytes before a JPEG frame header', async () => {
    const withExif = new Uint8Array(
      await solid(40, 30)
        .withMetadata({ exif: { IFD0: { Copyright: 'x'.repeat(2000) } } })
        .jpeg()
        .toBuffer(),
    );
    expect(headerDimensions(withExif, 'jpeg')).toEqual({ width: 40, height: 30 });
    const filled = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xff]), Buffer.from(pictures.jpeg!.subarray(3))]);
    expect(headerDimensions(new Uint8Array(filled), 'jpeg')).toEqual({ width: 96, height: 96 });
  });
});

describe('screenAttachment', () => {
  const image = { size: 2 * MB, content_type: 'image/png', width: 1024, height: 768 };
  it.each([
    [{ ...image }, { ok: true }],
    [{ ...image, content_type: 'image/jpeg; charset=binary' }, { ok: true }],
    [{ size: 1000 }, { ok: true }],
    [{ ...image, content_type: 'application/octet-stream', width: null, height: null }, { ok: true }],
    // A text file named .png: Discord types it by the name and measures nothing; the bytes decide.
    [{ size: 60, content_type: 'image/png' }, { ok: true }],
    [
      { ...image, size: 10 * MB + 1 },
      { ok: false, reason: 'too_large', size: 10 * MB + 1, limit: 10 * MB },
    ],
    [
      { ...image, size: 30 * MB, content_type: 'text/plain' },
      { ok: false, reason: 'too_large', size: 30 * MB, limit: 10 * MB },
    ],
    [
      { ...image, width: 5000, height: 10 },
      { ok: false, reason: 'too_many_pixels', width: 5000, height: 10, limit: 4096 },
    ],
    [
      { ...image, content_type: 'image/gif' },
      { ok: false, reason: 'unsupported_format', format: 'gif' },
    ],
    [
      { ...image, content_type: 'image/svg+xml' },
      { ok: false, reason: 'unsupported_format', format: 'svg' },
    ],
    [
      { ...image, content_type: 'image/heic' },
      { ok: false, reason: 'unsupported_format', format: 'heic' },
    ],
    [
      { ...image, content_type: 'text/plain; charset=utf-8', width: null, height: null },
      { ok: false, reason: 'not_image' },
    ],
    [
      { ...image, content_type: 'video/mp4' },
      { ok: false, reason: 'not_image' },
    ],
  ])('%o -> %o', (meta, verdict) => {
    expect(screenAttachment(meta)).toEqual(verdict);
  });
});

describe('downloadImage and loadAttachmentImage', () => {
  let server: Server;
  let base: string;
  const hits: string[] = [];
  /** How many bytes of each 30 MB response the server managed to hand to the socket before it closed. */
  const written: Record<string, number> = {};
  const huge = Buffer.alloc(30 * MB, 0x41);

  /** Streams `total` bytes in 64 KiB chunks, counting what the socket took, until the client hangs up. */
  function stream(res: ServerResponse, key: string, total: number): void {
    written[key] = 0;
    const chunk = huge.subarray(0, 64 * 1024);
    const pump = () => {
      while (written[key]! < total && !res.destroyed) {
        written[key]! += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (!res.destroyed) res.end();
    };
    res.on('close', () => undefined);
    pump();
  }

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? '';
      hits.push(path);
      if (path === '/cat.png')
        return void res
          .writeHead(200, { 'content-type': 'image/png', 'content-length': String(pictures.png!.length) })
          .end(pictures.png);
      if (path === '/notes.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(pictures.text);
      if (path === '/declared') {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(huge.length) });
        return stream(res, 'declared', huge.length);
      }
      if (path === '/chunked') {
        res.writeHead(200, { 'content-type': 'image/png' });
        return stream(res, 'chunked', huge.length);
      }
      if (path === '/lying') {
        // Declares 1000 bytes, then keeps sending: the parser takes 1000 and the rest is not a body.
        res.socket!.write('HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 1000\r\n\r\n');
        res.socket!.write(huge.subarray(0, 4 * MB));
        return;
      }
      if (path === '/stall-headers') return; // never answers
      if (path === '/stall-body') {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': '5000' });
        return void res.write(Buffer.alloc(100));
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const opts = { maxBytes: 10 * MB, timeoutMs: 5_000 };

  it('returns the bytes and the content type', async () => {
    const result = await downloadImage(`${base}/cat.png`, opts);
    expect(result).toMatchObject({ ok: true, contentType: 'image/png' });
    expect(result.ok && Buffer.from(result.bytes).equals(Buffer.from(pictures.png!))).toBe(true);
  });

  it('refuses a declared 30 MB unread', async () => {
    expect(await downloadImage(`${base}/declared`, opts)).toEqual({
      ok: false,
      reason: 'too_large',
      limit: 10 * MB,
      bytesRead: 0,
    });
  });

  it('cuts off an undeclared 30 MB body just past the limit', async () => {
    const result = await downloadImage(`${base}/chunked`, opts);
    expect(result).toMatchObject({ ok: false, reason: 'too_large', limit: 10 * MB });
    if (result.ok || result.reason !== 'too_large') return;
    expect(result.bytesRead).toBeGreaterThan(10 * MB);
    expect(result.bytesRead).toBeLessThan(11 * MB);
    await vi.waitFor(() => expect(written.chunked).toBeLessThan(30 * MB));
  });

  it('never reads past a Content-Length that lies low', async () => {
    const result = await downloadImage(`${base}/lying`, opts);
    if (result.ok) expect(result.bytes.length).toBeLessThanOrEqual(1000);
    else expect(result.reason).toBe('network');
  });

  it('times out a server that never answers, and one that stalls in the body', async () => {
    const started = Date.now();
    expect(await downloadImage(`${base}/stall-headers`, { ...opts, timeoutMs: 200 })).toEqual({
      ok: false,
      reason: 'timeout',
    });
    expect(await downloadImage(`${base}/stall-body`, { ...opts, timeoutMs: 200 })).toEqual({
      ok: false,
      reason: 'timeout',
    });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('tells the caller’s cancel from a timeout', async () => {
    const controller = new AbortController();
    const pending = downloadImage(`${base}/stall-headers`, { ...opts, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect(await pending).toEqual({ ok: false, reason: 'aborted' });
  });

  it('reports an HTTP error, a refused connection and a URL that is not http(s)', async () => {
    expect(await downloadImage(`${base}/expired.png`, opts)).toEqual({ ok: false, reason: 'http', status: 404 });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(await downloadImage(`http://127.0.0.1:${port}/x.png`, opts)).toEqual({
      ok: false,
      reason: 'network',
      code: 'ECONNREFUSED',
    });
    expect(await downloadImage('file:///etc/passwd', opts)).toEqual({
      ok: false,
      reason: 'network',
      code: 'ERR_INVALID_URL',
    });
  });

  it('loadAttachmentImage screens, downloads and checks', async () => {
    const ok = await loadAttachmentImage(
      { url: `${base}/cat.png`, size: pictures.png!.length, content_type: 'image/png', width: 96, height: 96 },
      { timeoutMs: 5_000 },
    );
    expect(ok).toMatchObject({ ok: true, format: 'png', width: 96, height: 96 });
    const text = await loadAttachmentImage(
      { url: `${base}/notes.png`, size: 60, content_type: 'image/png' },
      { timeoutMs: 5_000 },
    );
    expect(text).toEqual({ ok: false, reason: 'not_image' });
    const before = hits.length;
    const big = await loadAttachmentImage(
      { url: `${base}/declared`, size: 30 * MB, content_type: 'image/png' },
      { timeoutMs: 5_000 },
    );
    expect(big).toMatchObject({ ok: false, reason: 'too_large' });
    expect(hits.length).toBe(before);
    const lied = await loadAttachmentImage(
      { url: `${base}/chunked`, size: 1000, content_type: 'image/png' },
      { timeoutMs: 5_000 },
    );
    expect(lied).toMatchObject({ ok: false, reason: 'too_large', bytesRead: expect.any(Number) });
  });
});
