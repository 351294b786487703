/**
 * A member's attachment, fetched from Discord's CDN within a byte limit and a deadline, then
 * checked by its bytes (src/prompts/image-input.ts). A Content-Length that lies, or none, must
 * not make the bot read a 30 MB body to refuse a 10 MB limit.
 */
import { request, type Dispatcher } from 'undici';
import { discard } from '../ppinfra/bodies.ts';
import {
  checkImageBytes,
  screenAttachment,
  type AttachmentMeta,
  type Decode,
  type ImageCheck,
  type ImageLimits,
  EDIT_INPUT_LIMITS,
} from '../prompts/image-input.ts';

export interface DownloadOptions {
  maxBytes: number;
  /** The whole download, headers and body, in ms. */
  timeoutMs: number;
  /** The caller's cancel (the job's deadline or the shutdown). */
  signal?: AbortSignal;
  /** Tests and the app hand in their pool; undici's global one otherwise. */
  dispatcher?: Dispatcher;
}

export type DownloadResult =
  | { ok: true; bytes: Uint8Array; contentType: string | undefined }
  | {
      ok: false;
      reason: 'too_large';
      limit: number /** What was read before stopping: 0 when the declared length refused it. */;
      bytesRead: number;
    }
  | { ok: false; reason: 'http'; status: number }
  | { ok: false; reason: 'timeout' }
  | { ok: false; reason: 'aborted' }
  | { ok: false; reason: 'network'; code: string | undefined };

function errorCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/**
 * Downloads an attachment, reading at most `maxBytes` (plus one chunk) whatever the server
 * declares: a Content-Length over the limit is refused unread, and a body that runs past it,
 * declared or not, is cut off. No credentials are sent; the attachment URL carries its own
 * signature. The result is a value, not an exception, so a caller can switch on `reason`.
 */
export async function downloadImage(url: string, options: DownloadOptions): Promise<DownloadResult> {
  if (!/^https?:\/\//i.test(url) || !URL.canParse(url))
    return { ok: false, reason: 'network', code: 'ERR_INVALID_URL' };
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  const failed = (e: unknown): DownloadResult => {
    if (options.signal?.aborted) return { ok: false, reason: 'aborted' };
    if (timeout.aborted) return { ok: false, reason: 'timeout' };
    const code = errorCode(e);
    return code?.startsWith('UND_ERR_') && code.includes('TIMEOUT')
      ? { ok: false, reason: 'timeout' }
      : { ok: false, reason: 'network', code };
  };
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      method: 'GET',
      signal,
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    });
  } catch (e) {
    return failed(e);
  }
  if (res.statusCode < 200 || res.statusCode >= 300) {
    discard(res.body);
    return { ok: false, reason: 'http', status: res.statusCode };
  }
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > options.maxBytes) {
    discard(res.body);
    return { ok: false, reason: 'too_large', limit: options.maxBytes, bytesRead: 0 };
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body) {
      total += (chunk as Buffer).length;
      if (total > options.maxBytes) {
        discard(res.body);
        return { ok: false, reason: 'too_large', limit: options.maxBytes, bytesRead: total };
      }
      chunks.push(chunk as Buffer);
    }
  } catch (e) {
    return failed(e);
  }
  const type = res.headers['content-type'];
  return {
    ok: true,
    bytes: new Uint8Array(Buffer.concat(chunks)),
    contentType: typeof type === 'string' ? type.split(';')[0]!.trim() : undefined,
  };
}

/**
 * The three steps together for one attachment: screen the metadata, download within the limit,
 * check the bytes. A download failure comes back as it is, for the caller to word.
 */
export async function loadAttachmentImage(
  attachment: AttachmentMeta & { url: string },
  options: Omit<DownloadOptions, 'maxBytes'> & {
    limits?: ImageLimits;
    decode?: Decode;
    download?: typeof downloadImage;
  },
): Promise<ImageCheck | Exclude<DownloadResult, { ok: true }>> {
  const limits = options.limits ?? EDIT_INPUT_LIMITS;
  const screened = screenAttachment(attachment, limits);
  if (!screened.ok) return screened;
  const downloaded = await (options.download ?? downloadImage)(attachment.url, {
    ...options,
    maxBytes: limits.maxBytes,
  });
  if (!downloaded.ok) return downloaded;
  return checkImageBytes(downloaded.bytes, limits, options.decode);
}
