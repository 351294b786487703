/**
 * Tiny, valid, per-tag images for the fakes (1x1 pixel, no dependencies).
 *
 * Each image embeds `tag` (the fake task id) in a comment-like block, so two tasks never
 * serve identical bytes, and can be padded to an exact size for download benchmarks.
 * Checked with djpeg, pngcheck and dwebp.
 */
import { crc32, deflateSync } from 'node:zlib';

export type FakeImageType = 'jpeg' | 'png' | 'webp';

/** Builds a valid 1x1 image of `type` carrying `tag`; at least `sizeBytes` long when given (exact for jpeg/png, rounded up to even for webp). */
export function makeFakeImage(type: FakeImageType, tag: string, sizeBytes?: number): Uint8Array {
  if (type === 'png') return makePng(tag, sizeBytes);
  if (type === 'webp') return makeWebp(tag, sizeBytes);
  return makeJpeg(tag, sizeBytes);
}

/** `length` bytes of printable filler derived from `tag` (deterministic). */
function filler(tag: string, length: number): Buffer {
  const unit = Buffer.from(` ${tag}`, 'latin1');
  const out = Buffer.alloc(Math.max(0, length));
  for (let i = 0; i < out.length; i++) out[i] = unit[i % unit.length] ?? 0x20;
  return out;
}

// ---------------------------------------------------------------- JPEG

const JPEG_MAX_SEGMENT_PAYLOAD = 0xffff - 2;
const JPEG_SEGMENT_OVERHEAD = 4; // marker (2) + length (2)

function jpegSegment(marker: number, payload: Uint8Array): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([head, payload]);
}

/**
 * Baseline greyscale 1x1 JPEG: one 8x8 block whose DC difference and AC run are both coded
 * with one-symbol Huffman tables, so the entropy-coded data is the single byte 0x3F
 * ('0' = DC category 0, '0' = EOB, then 1-padding).
 */
export function makeJpeg(tag: string, sizeBytes?: number): Uint8Array {
  const soi = Buffer.from([0xff, 0xd8]);
  const app0 = jpegSegment(0xe0, Buffer.from([0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0]));
  const dqt = jpegSegment(0xdb, Buffer.concat([Buffer.from([0x00]), Buffer.alloc(64, 1)]));
  const sof0 = jpegSegment(0xc0, Buffer.from([8, 0, 1, 0, 1, 1, 1, 0x11, 0]));
  const oneSymbolTable = (classAndId: number): Buffer => {
    const counts = Buffer.alloc(16);
    counts[0] = 1; // one code of length 1 ('0') ...
    return jpegSegment(0xc4, Buffer.concat([Buffer.from([classAndId]), counts, Buffer.from([0x00])])); // ... for symbol 0
  };
  const sos = jpegSegment(0xda, Buffer.from([1, 1, 0x00, 0, 63, 0]));
  const tail = Buffer.concat([
    dqt,
    sof0,
    oneSymbolTable(0x00),
    oneSymbolTable(0x10),
    sos,
    Buffer.from([0x3f, 0xff, 0xd9]),
  ]);

  const text = Buffer.from(`qwen-imagine fake ppinfra image ${tag}`, 'latin1');
  const baseLength = soi.length + app0.length + JPEG_SEGMENT_OVERHEAD + text.length + tail.length;
  const comments: Buffer[] = [];
  let padding = (sizeBytes ?? 0) - baseLength;
  const roomInFirst = JPEG_MAX_SEGMENT_PAYLOAD - text.length;
  if (padding <= roomInFirst) {
    comments.push(jpegSegment(0xfe, Buffer.concat([text, filler(tag, padding)])));
  } else {
    // Fill the first comment short of full so the remainder (>= 5 bytes) splits into whole segments.
    const absorbed = Math.max(0, roomInFirst - JPEG_SEGMENT_OVERHEAD);
    comments.push(jpegSegment(0xfe, Buffer.concat([text, filler(tag, absorbed)])));
    padding -= absorbed;
    const segments = Math.ceil(padding / (JPEG_SEGMENT_OVERHEAD + JPEG_MAX_SEGMENT_PAYLOAD));
    for (let i = 0; i < segments; i++) {
      const size = Math.floor(padding / segments) + (i < padding % segments ? 1 : 0);
      comments.push(jpegSegment(0xfe, filler(tag, size - JPEG_SEGMENT_OVERHEAD)));
    }
  }
  return new Uint8Array(Buffer.concat([soi, app0, ...comments, tail]));
}

// ---------------------------------------------------------------- PNG

function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** 1x1 8-bit greyscale PNG with the tag in a tEXt "Comment" chunk (padded to `sizeBytes`). */
export function makePng(tag: string, sizeBytes?: number): Uint8Array {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(1, 0);
  ihdr.writeUInt32BE(1, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const idat = deflateSync(Buffer.from([0x00, 0x80])); // filter byte + one grey pixel
  const text = Buffer.from(`Comment\0qwen-imagine fake ppinfra image ${tag}`, 'latin1');
  const fixed = signature.length + 3 * 12 + ihdr.length + idat.length; // IHDR, IDAT, IEND
  const padding = Math.max(0, (sizeBytes ?? 0) - fixed - 12 - text.length);
  return new Uint8Array(
    Buffer.concat([
      signature,
      pngChunk('IHDR', ihdr),
      pngChunk('tEXt', Buffer.concat([text, filler(tag, padding)])),
      pngChunk('IDAT', idat),
      pngChunk('IEND', Buffer.alloc(0)),
    ]),
  );
}

// ---------------------------------------------------------------- WebP

function riffChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.write(type, 0, 'latin1');
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data, Buffer.alloc(data.length % 2)]);
}

/** LSB-first bit packer, as VP8L wants. */
function packBits(fields: Array<[value: number, bits: number]>): Buffer {
  const out: number[] = [];
  let acc = 0;
  let used = 0;
  for (const [value, bits] of fields) {
    for (let i = 0; i < bits; i++) {
      acc |= ((value >> i) & 1) << used;
      used++;
      if (used === 8) {
        out.push(acc);
        acc = 0;
        used = 0;
      }
    }
  }
  if (used > 0) out.push(acc);
  return Buffer.from(out);
}

/**
 * Extended-format WebP (VP8X + lossless VP8L 1x1 + XMP chunk with the tag). The VP8L stream
 * uses five one-symbol "simple" prefix codes, so the single pixel costs zero bits.
 */
export function makeWebp(tag: string, sizeBytes?: number): Uint8Array {
  const simpleCode = (symbol: number): Array<[number, number]> =>
    symbol < 2
      ? [
          [1, 1],
          [0, 1],
          [0, 1],
          [symbol, 1],
        ]
      : [
          [1, 1],
          [0, 1],
          [1, 1],
          [symbol, 8],
        ];
  const vp8l = packBits([
    [0x2f, 8], // signature
    [0, 14],
    [0, 14], // width-1, height-1
    [0, 1],
    [0, 3], // alpha_is_used, version
    [0, 1], // no transform
    [0, 1], // no colour cache
    [0, 1], // no meta prefix codes
    ...simpleCode(0x80), // green
    ...simpleCode(0x80), // red
    ...simpleCode(0x80), // blue
    ...simpleCode(0xff), // alpha
    ...simpleCode(0), // distance
  ]);
  const vp8x = Buffer.alloc(10);
  vp8x[0] = 0x04; // XMP metadata present; canvas 1x1 (width-1 = height-1 = 0)
  const xmpText = Buffer.from(`qwen-imagine fake ppinfra image ${tag}`, 'latin1');
  const fixed = 12 + riffChunk('VP8X', vp8x).length + riffChunk('VP8L', vp8l).length + 8;
  const padding = Math.max(0, (sizeBytes ?? 0) - fixed - xmpText.length);
  const chunks = Buffer.concat([
    riffChunk('VP8X', vp8x),
    riffChunk('VP8L', vp8l),
    riffChunk('XMP ', Buffer.concat([xmpText, filler(tag, padding)])),
  ]);
  const header = Buffer.alloc(12);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(chunks.length + 4, 4);
  header.write('WEBP', 8, 'latin1');
  return new Uint8Array(Buffer.concat([header, chunks]));
}
