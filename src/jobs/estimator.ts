import type { Estimate } from './schedule.ts';

/** Where observed durations persist across restarts; a Keyv namespace satisfies it. */
export interface DurationStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<unknown>;
}

export interface DurationEstimator {
  /** The expected duration for a size, scaled by how loaded the API has been lately (ms). */
  estimate(size: string): Estimate & { samples: number };
  /** One completed task: submit to completion, in ms. */
  /**
   * A completed task. `startedAt` (when it was submitted) keeps the load factor honest: a task is
   * compared only with durations known when it started, not with the shorter tasks of its own
   * burst that finished before it (they always do, and every ratio would come out above 1).
   */
  record(size: string, durationMs: number, startedAt?: number): Promise<void>;
  load(): Promise<void>;
}

/** What a job records at submission (`Job.estimate`): the estimate without its bookkeeping. */
export function estimateAtSubmit(estimator: DurationEstimator, size: string): Estimate {
  const { samples: _, ...estimate } = estimator.estimate(size);
  return estimate;
}

const WINDOW = 30;
/** `Record<size, number[]>`: the shape every version of the bot has stored and read. */
const STORE_KEY = 'durations';
/**
 * The load factor's inputs, `{ at, ratio }[]`. A key of their own keeps `durations` in its old
 * shape, so an older record loads (factor 1) and an older bot still reads a newer record.
 */
const LOAD_KEY = 'durations:load';
/** How many recent tasks, of any size, the load factor looks at. */
const LOAD_WINDOW = 8;
/** Fewer recent tasks than this say nothing about the load, and the factor stays 1. */
const LOAD_MIN_TASKS = 3;
/** An observation older than this describes another hour's load (a busy evening, last night). */
const LOAD_MAX_AGE_MS = 60 * 60_000;
/** With this many durations of its own, a size is polled by their distribution (schedule.ts). */
export const HAZARD_MIN_SAMPLES = 8;
/** A size needs this many durations of its own before a new one is compared with their median. */
const BASELINE_MIN_SAMPLES = 3;
/** However odd the recent tasks, the factor stays in this range (a broken clock, a stalled API). */
const LOAD_MIN = 0.5;
const LOAD_MAX = 3;

/**
 * Before any task has finished. The expected 8 s is a typical Qwen-Image time and what the
 * member is shown. Polling is not aimed at it: tasks take about 3 to 15 s by size, so the guess
 * carries a distribution over that range, a log-normal (median 6.7 s, sigma 0.4) as its 16
 * quantiles at (i + 0.5) / 16, and is polled by its hazard like a learned one: from about 3.2 s
 * (a 3 s image is seen within a quarter second, not at 4 s), densely while the small sizes may
 * finish, thinning out for the big ones. A log-normal rather than an even spread over 3-15 s,
 * whose hazard soars at its hard end and would poll a 15 s task more often than fixed 1-second
 * polling. It serves only until a size has history. (The wide spread also moves "taking longer
 * than usual" to 21.5 s, fair when nothing is usual yet.)
 */
export const COLD_ESTIMATE: Estimate = {
  expectedMs: 8_000,
  spreadMs: 6_750,
  guess: true,
  durations: [3_180, 3_950, 4_470, 4_910, 5_310, 5_700, 6_090, 6_490, 6_910, 7_370, 7_870, 8_450, 9_140, 10_040, 11_350, 14_110],
};

const pixels = (size: string) => {
  const [w, h] = size.split('*').map(Number);
  return (w || 1024) * (h || 1024);
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** One completed task, compared with its size's usual duration at the time. */
interface LoadObservation {
  /** When it was recorded (ms, the estimator's clock). */
  at: number;
  /** Its duration / the median of its size's durations before it. */
  ratio: number;
}

const isObservation = (x: unknown): x is LoadObservation => {
  const o = x as Partial<LoadObservation> | null;
  return typeof o === 'object' && o !== null && Number.isFinite(o.at) && Number.isFinite(o.ratio) && o.ratio! > 0;
};

/**
 * Expected generation time per size from the durations the bot has seen (the API reports
 * `eta: 0` for this model). Median and median absolute deviation resist the odd slow task.
 *
 * The API's load moves every size at once: in a busy hour everything runs ~30 % slower, and a
 * size's own median (30 tasks, which may be days old for a rarely used size) lags behind. So
 * each estimate is also scaled by a load factor, the median over the last few tasks of any
 * size of (duration / that size's median at the time), clamped. A median of eight ignores one
 * odd task; the factor returns to 1 as soon as recent tasks look like their sizes' history
 * again, which they also do once a long slowdown has entered the per-size medians.
 */
export function createDurationEstimator(deps: { store?: DurationStore; now?: () => number } = {}): DurationEstimator {
  const now = deps.now ?? Date.now;
  let samples: Record<string, number[]> = {};
  /** When each sample was recorded, parallel to `samples`; not stored (older ones count as 0). */
  const recordedAt: Record<string, number[]> = {};
  let recent: LoadObservation[] = [];

  const loadFactor = () => {
    const since = now() - LOAD_MAX_AGE_MS;
    const ratios = recent.filter((r) => r.at >= since).map((r) => r.ratio);
    if (ratios.length < LOAD_MIN_TASKS) return 1;
    return Math.min(LOAD_MAX, Math.max(LOAD_MIN, median(ratios)));
  };

  const estimateFrom = (xs: number[], load: number): Estimate => {
    const typical = median(xs);
    const expectedMs = typical * load;
    const mad = median(xs.map((x) => Math.abs(x - typical))) * load;
    // Few samples say little: keep the spread wide until the window fills a bit.
    const floor = expectedMs * (xs.length < 3 ? 0.25 : 0.1);
    return { expectedMs, spreadMs: Math.max(mad * 1.5, floor, 250) };
  };

  return {
    estimate(size) {
      const load = loadFactor();
      const own = samples[size];
      if (own?.length) {
        const durations = own.length >= HAZARD_MIN_SAMPLES ? own.map((x) => x * load).sort((a, b) => a - b) : undefined;
        return { ...estimateFrom(own, load), ...(durations && { durations }), samples: own.length };
      }
      // Other sizes' history is a hint, not a measurement: time scales roughly with the pixel
      // count, so scale it, and widen the spread.
      const perPixel = Object.entries(samples).flatMap(([other, xs]) => xs.map((x) => x / pixels(other)));
      if (!perPixel.length) return { ...COLD_ESTIMATE, samples: 0 };
      const expectedMs = median(perPixel) * pixels(size) * load;
      return { expectedMs, spreadMs: expectedMs * 0.5, guess: true, samples: 0 };
    },
    async record(size, durationMs, startedAt = Infinity) {
      const list = samples[size] ?? [];
      samples[size] = list;
      const times = recordedAt[size] ?? [];
      recordedAt[size] = times;
      const before = list.filter((_, i) => (times[i - (list.length - times.length)] ?? 0) < startedAt);
      const usual = before.length >= BASELINE_MIN_SAMPLES ? median(before) : 0;
      if (usual > 0) {
        recent.push({ at: now(), ratio: Math.round((durationMs / usual) * 1000) / 1000 });
        if (recent.length > LOAD_WINDOW) recent.splice(0, recent.length - LOAD_WINDOW);
      }
      list.push(Math.round(durationMs));
      times.push(now());
      if (list.length > WINDOW) list.splice(0, list.length - WINDOW);
      if (times.length > list.length) times.splice(0, times.length - list.length);
      await deps.store?.set(STORE_KEY, samples);
      if (usual > 0) await deps.store?.set(LOAD_KEY, recent);
    },
    async load() {
      const [stored, storedLoad] = await Promise.all([deps.store?.get(STORE_KEY), deps.store?.get(LOAD_KEY)]);
      if (stored && typeof stored === 'object') samples = stored as Record<string, number[]>;
      if (Array.isArray(storedLoad)) recent = storedLoad.filter(isObservation).slice(-LOAD_WINDOW);
    },
  };
}
