import { HELD_TTL_MS } from '../jobs/store.ts';
import type { DeliveredImage } from '../domain/job.ts';
import type { KeyValue } from '../storage/key-value.ts';
import type { ImageStash } from './review-types.ts';

/**
 * Held images in a Keyv namespace, as base64 (Keyv values are JSON), for as long as a held record
 * lives (`HELD_TTL_MS`).
 */
export function createImageStash(kv: KeyValue, ttlMs = HELD_TTL_MS): ImageStash {
  return {
    async put(jobId, image, maxBytes = Infinity) {
      if (image.bytes.length > maxBytes) return false;
      await kv.set(`image:${jobId}`, { ...image, bytes: Buffer.from(image.bytes).toString('base64') }, ttlMs);
      return true;
    },
    async get(jobId) {
      const stored = (await kv.get(`image:${jobId}`)) as
        | (Omit<DeliveredImage, 'bytes'> & { bytes: string })
        | undefined;
      return stored ? { ...stored, bytes: new Uint8Array(Buffer.from(stored.bytes, 'base64')) } : undefined;
    },
    async delete(jobId) {
      await kv.delete(`image:${jobId}`);
    },
  };
}
