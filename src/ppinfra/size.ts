/**
 * Image sizes as the API takes them: `W*H`, each side 256..1536 (docs/ppinfra-api.md
 * section 3). Users type `1024x1024`, `1024×1024`, `1024 * 1024` or a preset name; all normalise
 * to `W*H` before anything is sent.
 */
export const MIN_SIDE = 256;
export const MAX_SIDE = 1536;

export interface SizePreset {
  name: string;
  size: string;
  /** Aspect ratio shown next to the name, and accepted as input (`16:9`). */
  ratio: string;
}

/** Qwen-Image's native aspect ratios, scaled to fit inside the API's 1536-pixel side limit. */
export const SIZE_PRESETS: readonly SizePreset[] = [
  { name: 'square', size: '1024*1024', ratio: '1:1' },
  { name: 'square-hd', size: '1328*1328', ratio: '1:1 HD' },
  { name: 'landscape', size: '1472*1104', ratio: '4:3' },
  { name: 'portrait', size: '1104*1472', ratio: '3:4' },
  { name: 'wide', size: '1536*864', ratio: '16:9' },
  { name: 'tall', size: '864*1536', ratio: '9:16' },
  { name: 'photo', size: '1536*1024', ratio: '3:2' },
  { name: 'photo-portrait', size: '1024*1536', ratio: '2:3' },
];

export type SizeResult =
  | { ok: true; size: string; width: number; height: number }
  | { ok: false; problem: 'format' }
  | { ok: false; problem: 'range'; width: number; height: number };

const DIMENSIONS = /^(\d{1,5})\s*[*xX×✕]\s*(\d{1,5})$/;

export function parseSize(input: string): SizeResult {
  const text = input.normalize('NFKC').trim().toLowerCase();
  const preset = SIZE_PRESETS.find((p) => p.name === text || p.ratio === text);
  const match = DIMENSIONS.exec(preset ? preset.size : text);
  if (!match) return { ok: false, problem: 'format' };
  const width = Number(match[1]);
  const height = Number(match[2]);
  if ([width, height].some((side) => side < MIN_SIDE || side > MAX_SIDE))
    return { ok: false, problem: 'range', width, height };
  return { ok: true, size: `${width}*${height}`, width, height };
}

/** How a size reads for people: `1024×1024`. */
export const displaySize = (size: string) => size.replace('*', '×');
