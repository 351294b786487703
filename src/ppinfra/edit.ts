/**
 * Request bodies for Qwen-Image-Edit and the image upscaler (docs/ppinfra-api.md section 13),
 * checked here against the published validation so that a request the provider would refuse is
 * refused before anything is sent or billed.
 */
import { PpinfraError } from './errors.ts';

export const EDIT_PATH = '/v3/async/qwen-image-edit';
export const UPSCALE_PATH = '/v3/async/image-upscaler';

export const OUTPUT_FORMATS = ['jpeg', 'png', 'webp'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export const UPSCALE_RESOLUTIONS = ['2k', '4k', '8k'] as const;
export type UpscaleResolution = (typeof UPSCALE_RESOLUTIONS)[number];

/** The published seed range; -1 asks the provider for a random seed. */
export const SEED_MIN = -1;
export const SEED_MAX = 2_147_483_647;

export interface EditRequest {
  /** The instruction ("make the sky purple"), sent as `prompt`. */
  prompt: string;
  /** An http(s) URL of the image, its base64, or a `data:image/...;base64,` URI (see `imageInputFor`). */
  image: string;
  /** -1 (random, the provider's default) to 2147483647; omitted when undefined. */
  seed?: number;
  /** Omitted when undefined: the provider's default is jpeg. */
  outputFormat?: OutputFormat;
}

export interface UpscaleRequest {
  /** The http(s) URL of the image: the only form the provider documents for the upscaler. */
  image: string;
  /** Omitted when undefined: the provider's default is 4k. */
  resolution?: UpscaleResolution;
  outputFormat?: OutputFormat;
}

export interface EditBody {
  prompt: string;
  image: string;
  seed?: number;
  output_format?: OutputFormat;
}

export interface UpscaleBody {
  image: string;
  resolution?: UpscaleResolution;
  output_format?: OutputFormat;
}

/** The standard alphabet with padding; white space is not accepted, JSON carries none. */
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const DATA_URI = /^data:image\/(png|jpeg|webp);base64,(.+)$/s;

export type ImageStringKind = 'url' | 'base64' | 'data_uri';

/** Which form an `image` string has, or undefined when it is none of the three. */
export function imageStringKind(image: string): ImageStringKind | undefined {
  if (/^https?:\/\//i.test(image)) return URL.canParse(image) ? 'url' : undefined;
  const data = DATA_URI.exec(image);
  if (data) return BASE64.test(data[2]!) && data[2]!.length % 4 === 0 ? 'data_uri' : undefined;
  return BASE64.test(image) && image.length % 4 === 0 ? 'base64' : undefined;
}

/** `invalid_request` like the provider's INVALID_REQUEST_BODY, but certain that nothing was sent. */
function refused(message: string): PpinfraError {
  return new PpinfraError('invalid_request', message, { reason: 'INVALID_REQUEST_BODY', notSent: true });
}

function checkOutputFormat(format: unknown): void {
  if (format !== undefined && !OUTPUT_FORMATS.includes(format as OutputFormat)) {
    throw refused(`output_format must be one of ${OUTPUT_FORMATS.join(', ')}`);
  }
}

/** The JSON body for `POST /v3/async/qwen-image-edit`; throws `invalid_request` for what the provider would refuse. */
export function editBody(req: EditRequest): EditBody {
  if (typeof req.prompt !== 'string' || req.prompt.trim() === '')
    throw refused('The edit instruction (prompt) must not be empty');
  if (typeof req.image !== 'string' || req.image === '') throw refused('The image to edit must not be empty');
  if (!imageStringKind(req.image))
    throw refused('The image to edit must be an http(s) URL, base64, or a data:image/...;base64 URI');
  if (req.seed !== undefined && (!Number.isInteger(req.seed) || req.seed < SEED_MIN || req.seed > SEED_MAX)) {
    throw refused(`seed must be a whole number from ${SEED_MIN} to ${SEED_MAX}`);
  }
  checkOutputFormat(req.outputFormat);
  return {
    prompt: req.prompt,
    image: req.image,
    ...(req.seed === undefined ? {} : { seed: req.seed }),
    ...(req.outputFormat === undefined ? {} : { output_format: req.outputFormat }),
  };
}

/** The JSON body for `POST /v3/async/image-upscaler`; throws `invalid_request` for what the provider would refuse. */
export function upscaleBody(req: UpscaleRequest): UpscaleBody {
  if (typeof req.image !== 'string' || req.image === '') throw refused('The image to upscale must not be empty');
  if (imageStringKind(req.image) !== 'url') throw refused('The image to upscale must be an http(s) URL');
  if (req.resolution !== undefined && !UPSCALE_RESOLUTIONS.includes(req.resolution)) {
    throw refused(`resolution must be one of ${UPSCALE_RESOLUTIONS.join(', ')}`);
  }
  checkOutputFormat(req.outputFormat);
  return {
    image: req.image,
    ...(req.resolution === undefined ? {} : { resolution: req.resolution }),
    ...(req.outputFormat === undefined ? {} : { output_format: req.outputFormat }),
  };
}

export type EditImageInput = 'url' | 'base64';

/**
 * The `image` string for an edit under EDIT_IMAGE_INPUT: the attachment's URL as it is, or the
 * checked bytes as plain base64. Plain base64 rather than a data URI because the provider's other
 * image-to-image endpoints take plain base64; which form this one takes is not documented.
 */
export function imageInputFor(mode: EditImageInput, source: { url: string; bytes: Uint8Array }): string {
  return mode === 'url'
    ? source.url
    : Buffer.from(source.bytes.buffer, source.bytes.byteOffset, source.bytes.byteLength).toString('base64');
}
