import type { Estimate } from './schedule.ts';

/** Where observed durations persist across restarts; a Keyv namespace satisfies it. */
export interface DurationStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<unknown>;
}

export interface DurationEstimator {
  estimate(size: string): Estimate & { samples: number };
  record(size: string, durationMs: number): Promise<void>;
  load(): Promise<void>;
}

const WINDOW = 30;
const STORE_KEY = 'durations';
/** Before any task has finished: a typical Qwen-Image time, with a wide spread so the first poll comes early. */
export const COLD_ESTIMATE: Estimate = { expectedMs: 8_000, spreadMs: 4_000 };

const pixels = (size: string) => {
  const [w, h] = size.split('*').map(Number);
  return (w || 1024) * (h || 1024);
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/**
 * Expected generation time per size from the durations the bot has seen (the API reports
 * `eta: 0` for this model). Median and median absolute deviation resist the odd slow task.
 */
export function createDurationEstimator(deps: { store?: DurationStore } = {}): DurationEstimator {
  let samples: Record<string, number[]> = {};

  const estimateFrom = (xs: number[]): Estimate => {
    const expectedMs = median(xs);
    const mad = median(xs.map((x) => Math.abs(x - expectedMs)));
    // Few samples say little: keep the spread wide until the window fills a bit.
    const floor = expectedMs * (xs.length < 3 ? 0.25 : 0.1);
    return { expectedMs, spreadMs: Math.max(mad * 1.5, floor, 250) };
  };

  return {
    estimate(size) {
      const own = samples[size];
      if (own?.length) return { ...estimateFrom(own), samples: own.length };
      // Other sizes' history is a hint, not a measurement: time scales roughly with the pixel
      // count, so scale it, and widen the spread.
      const perPixel = Object.entries(samples).flatMap(([other, xs]) => xs.map((x) => x / pixels(other)));
      if (!perPixel.length) return { ...COLD_ESTIMATE, samples: 0 };
      const expectedMs = median(perPixel) * pixels(size);
      return { expectedMs, spreadMs: expectedMs * 0.5, samples: 0 };
    },
    async record(size, durationMs) {
      const list = samples[size] ?? [];
      samples[size] = list;
      list.push(Math.round(durationMs));
      if (list.length > WINDOW) list.splice(0, list.length - WINDOW);
      await deps.store?.set(STORE_KEY, samples);
    },
    async load() {
      const stored = await deps.store?.get(STORE_KEY);
      if (stored && typeof stored === 'object') samples = stored as Record<string, number[]>;
    },
  };
}
