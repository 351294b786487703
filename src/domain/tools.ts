/**
 * The image tools: a job that changes a picture by instruction (Qwen-Image-Edit) or upscales it,
 * instead of making one from a prompt, and the picture it works on.
 */
export type Tool = 'edit' | 'upscale';

export interface Source {
  /** Its Discord CDN URL, taken fresh from the message or the command (such URLs outlive any job). */
  url: string;
  /** The job and the image of a batch (1-based) it came from, when it is a bot result. */
  jobId?: string;
  image?: number;
  width: number;
  height: number;
}

/**
 * What the duration estimator learns and estimates by: the size for a picture from a prompt; an
 * edit by its source's size; an upscale by its target, whatever it starts from.
 */
export function durationKey(job: { size: string; tool?: Tool; resolution?: '2k' | '4k' }): string {
  if (job.tool === 'edit') return `edit:${job.size}`;
  if (job.tool === 'upscale') return `upscale:${job.resolution ?? '2k'}`;
  return job.size;
}

/** The long side an upscale makes, by target. */
export const UPSCALE_LONG_SIDE = { '2k': 2048, '4k': 4096 } as const;

/** What an upscale of `source` to `resolution` measures: the long side as the target, the ratio kept. */
export function upscaledSize(source: Pick<Source, 'width' | 'height'>, resolution: '2k' | '4k') {
  const scale = UPSCALE_LONG_SIDE[resolution] / Math.max(source.width, source.height, 1);
  return {
    width: Math.max(1, Math.round(source.width * scale)),
    height: Math.max(1, Math.round(source.height * scale)),
  };
}
