/**
 * A member's uploaded image, checked before anything is spent on it: first Discord's attachment
 * metadata (so an oversized file is never downloaded), then a bounded download, then the bytes
 * themselves. Only the bytes decide what an image is: a file name or a reported content type can
 * say anything.
 */
import sharp from 'sharp';

/** What the edit endpoint is sent; GIF, HEIC and the rest are named so the member hears which formats work. */
export const IMAGE_FORMATS = ['png', 'jpeg', 'webp'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export interface ImageLimits {
  maxBytes: number;
  /** The most pixels on either side. */
  maxSide: number;
}

/** Discord's own upload limit for members without Nitro, and the provider's largest output side. */
export const EDIT_INPUT_LIMITS: ImageLimits = Object.freeze({ maxBytes: 10 * 1024 * 1024, maxSide: 4096 });

export type ImageCheck =
  | {
      ok: true;
      format: ImageFormat;
      width: number;
      height: number /** The checked bytes, ready to send. */;
      bytes: Uint8Array;
      size: number;
    }
  | { ok: false; reason: 'not_image' }
  | { ok: false; reason: 'unsupported_format'; format: string }
  | { ok: false; reason: 'too_large'; size: number; limit: number }
  | { ok: false; reason: 'too_many_pixels'; width: number; height: number; limit: number }
  | { ok: false; reason: 'unreadable'; format: ImageFormat };

export type ImageRefusal = Extract<ImageCheck, { ok: false }>;

const ascii = (bytes: Uint8Array, start: number, end: number) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1', start, end);
const startsWith = (bytes: Uint8Array, magic: readonly number[], at = 0) =>
  bytes.length >= at + magic.length && magic.every((b, i) => bytes[at + i] === b);

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const BMP_DIB_SIZES = new Set([12, 40, 52, 56, 64, 108, 124]);
const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1']);

/**
 * The format by its magic number: one of the three we send, another image format we name but do
 * not send, or undefined for anything that is not an image at all.
 */
export function sniffFormat(
  bytes: Uint8Array,
): ImageFormat | 'gif' | 'bmp' | 'tiff' | 'heif' | 'avif' | 'ico' | 'svg' | undefined {
  if (startsWith(bytes, PNG_MAGIC)) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (bytes.length >= 6 && /^GIF8[79]a$/.test(ascii(bytes, 0, 6))) return 'gif';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  // "BM" alone begins plenty of text; the DIB header size after the file header makes it a bitmap.
  if (
    bytes.length >= 18 &&
    ascii(bytes, 0, 2) === 'BM' &&
    BMP_DIB_SIZES.has(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32LE(14))
  )
    return 'bmp';
  if (bytes.length >= 12 && ascii(bytes, 4, 8) === 'ftyp') {
    const brand = ascii(bytes, 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (HEIF_BRANDS.has(brand)) return 'heif';
  }
  if (startsWith(bytes, [0x00, 0x00, 0x01, 0x00]) && bytes.length >= 6 && bytes[4]! + bytes[5]! > 0) return 'ico';
  if (/^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*<svg[\s>]/i.test(ascii(bytes, 0, Math.min(bytes.length, 1024))))
    return 'svg';
  return undefined;
}

/** Width and height from the header bytes alone, or undefined when the header is not there to read. */
export function headerDimensions(
  bytes: Uint8Array,
  format: ImageFormat,
): { width: number; height: number } | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const valid = (width: number, height: number) => (width > 0 && height > 0 ? { width, height } : undefined);
  if (format === 'png') {
    if (b.length < 24 || b.toString('latin1', 12, 16) !== 'IHDR') return undefined;
    return valid(b.readUInt32BE(16), b.readUInt32BE(20));
  }
  if (format === 'webp') {
    if (b.length < 30) return undefined;
    const chunk = b.toString('latin1', 12, 16);
    if (chunk === 'VP8 ') {
      // The key frame's start code, then 14-bit width and height with 2 bits of scale each.
      if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return undefined;
      return valid(b.readUInt16LE(26) & 0x3fff, b.readUInt16LE(28) & 0x3fff);
    }
    if (chunk === 'VP8L') {
      if (b[20] !== 0x2f) return undefined;
      const bits = b.readUInt32LE(21);
      return valid((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
    }
    if (chunk === 'VP8X') return valid(b.readUIntLE(24, 3) + 1, b.readUIntLE(27, 3) + 1);
    return undefined;
  }
  // JPEG: walk the segments to the first start-of-frame (SOF0-SOF15 but DHT, JPG and DAC).
  let offset = 2;
  while (offset + 4 <= b.length) {
    if (b[offset] !== 0xff) return undefined;
    const marker = b[offset + 1]!;
    if (marker === 0xff) {
      offset++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      offset += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return undefined; // the image data began before any frame header
    const length = b.readUInt16BE(offset + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (offset + 9 > b.length) return undefined;
      return valid(b.readUInt16BE(offset + 7), b.readUInt16BE(offset + 5));
    }
    if (length < 2) return undefined;
    offset += 2 + length;
  }
  return undefined;
}

/** Decodes the whole image, throwing when it cannot: a header can be whole while the rest is not. */
export type Decode = (bytes: Uint8Array, limits: ImageLimits) => Promise<void>;

/**
 * sharp, failing on errors and truncation (not on warnings, which phone cameras' JPEGs often
 * carry), with the pixel limit set from `maxSide` so no header can make it allocate more.
 * Shrinking on load keeps a 4096-pixel JPEG or WebP from costing a full-size raster.
 */
export const sharpDecode: Decode = async (bytes, limits) => {
  await sharp(bytes, { failOn: 'error', limitInputPixels: limits.maxSide * limits.maxSide })
    .resize(256, 256, { fit: 'inside' })
    .raw()
    .toBuffer();
};

/**
 * The bytes of a member's upload, checked in order of cost: size, magic number, the header's
 * dimensions, then a full decode. Nothing is decoded before the header has shown the image fits.
 */
export async function checkImageBytes(
  bytes: Uint8Array,
  limits: ImageLimits = EDIT_INPUT_LIMITS,
  decode: Decode = sharpDecode,
): Promise<ImageCheck> {
  if (bytes.length > limits.maxBytes)
    return { ok: false, reason: 'too_large', size: bytes.length, limit: limits.maxBytes };
  const sniffed = sniffFormat(bytes);
  if (sniffed === undefined) return { ok: false, reason: 'not_image' };
  if (!IMAGE_FORMATS.includes(sniffed as ImageFormat))
    return { ok: false, reason: 'unsupported_format', format: sniffed };
  const format = sniffed as ImageFormat;
  const size = headerDimensions(bytes, format);
  if (!size) return { ok: false, reason: 'unreadable', format };
  if (size.width > limits.maxSide || size.height > limits.maxSide)
    return { ok: false, reason: 'too_many_pixels', ...size, limit: limits.maxSide };
  try {
    await decode(bytes, limits);
  } catch {
    return { ok: false, reason: 'unreadable', format };
  }
  return { ok: true, format, ...size, bytes, size: bytes.length };
}

/** The fields of a Discord attachment object this needs (API names). */
export interface AttachmentMeta {
  size: number;
  content_type?: string | null;
  width?: number | null;
  height?: number | null;
}

const CONTENT_TYPES: Record<string, ImageFormat> = {
  'image/png': 'png',
  'image/jpeg': 'jpeg',
  'image/jpg': 'jpeg',
  'image/pjpeg': 'jpeg',
  'image/webp': 'webp',
};

/**
 * Whether an attachment is worth downloading, from what Discord says of it. It can only refuse:
 * a yes still needs `checkImageBytes`. Refuses a size over the limit, dimensions over the limit
 * (Discord measures those itself), and a content type that is not an image or names a format the
 * edit does not take. A missing or generic type (`application/octet-stream`) is left to the bytes.
 */
export function screenAttachment(
  meta: AttachmentMeta,
  limits: ImageLimits = EDIT_INPUT_LIMITS,
): { ok: true } | ImageRefusal {
  if (!Number.isFinite(meta.size) || meta.size > limits.maxBytes)
    return { ok: false, reason: 'too_large', size: meta.size, limit: limits.maxBytes };
  const { width, height } = meta;
  if ((width ?? 0) > limits.maxSide || (height ?? 0) > limits.maxSide) {
    return { ok: false, reason: 'too_many_pixels', width: width ?? 0, height: height ?? 0, limit: limits.maxSide };
  }
  const type = (meta.content_type ?? '').split(';')[0]!.trim().toLowerCase();
  if (!type || type === 'application/octet-stream' || CONTENT_TYPES[type]) return { ok: true };
  if (type.startsWith('image/'))
    return {
      ok: false,
      reason: 'unsupported_format',
      format: type
        .slice('image/'.length)
        .replace(/^x-/, '')
        .replace(/\+xml$/, ''),
    };
  return { ok: false, reason: 'not_image' };
}
