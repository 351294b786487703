import type { Logger } from '../logger.ts';
import { logBandwidth, type Estimate } from './schedule.ts';

/**
 * Where observed durations are kept for every process of the bot and across restarts; the shared
 * state (`src/storage/shared-state.ts`) satisfies it. Each size's durations are a list appended to, never
 * rewritten whole, so two processes recording at once both keep what they saw.
 */
export interface DurationStore {
  /** Appends, keeps the last `keep` entries, and returns the list as it is now (others' entries too). */
  append(list: string, values: readonly unknown[], keep: number): Promise<unknown[]>;
  list(list: string): Promise<unknown[]>;
  /** True when the member is new: the process that adds a list first seeds it. */
  add(set: string, member: string): Promise<boolean>;
  members(set: string): Promise<string[]>;
}

/** Where bots before the shared lists kept their durations (a Keyv namespace): read once, as a seed. */
export interface LegacyDurationStore {
  get(key: string): Promise<unknown>;
}

export interface DurationEstimator {
  /** The expected duration for a size, scaled by how loaded the API has been lately (ms). */
  estimate(size: string): Estimate & { samples: number };
  /**
   * A completed task. `startedAt` (when it was submitted) keeps the load factor honest: a task is
   * compared only with durations known when it started, not with the shorter tasks of its own
   * burst that finished before it (they always do, and every ratio would come out above 1).
   */
  record(size: string, durationMs: number, startedAt?: number): Promise<void>;
  /** Reads what every process has recorded (at the first start after an upgrade, the older record too). */
  load(): Promise<void>;
}

/** What a job records at submission (`Job.estimate`): the estimate without its bookkeeping. */
export function estimateAtSubmit(estimator: DurationEstimator, size: string): Estimate {
  const { samples: _, ...estimate } = estimator.estimate(size);
  return estimate;
}

const WINDOW = 30;
/**
 * What bots before the shared lists stored whole in `legacy`: `Record<size, number[]>`, and the
 * load factor's `{ at, ratio }[]`. Copied into a list that does not exist yet; never written.
 */
const LEGACY_KEY = 'durations';
const LEGACY_LOAD_KEY = 'durations:load';
/** A size's list of `{ ms, at }` in the store (its own key space: no clash with the legacy keys). */
const SIZE_LIST = 'durations:size:';
/** The load factor's inputs, `{ at, ratio }[]`. */
const LOAD_LIST = 'durations:load';
/** Every list started, so a process starting up finds the sizes other processes have seen. */
const LISTS = 'durations:lists';
/** How many recent tasks, of any size, the load factor looks at. */
const LOAD_WINDOW = 8;
/** Fewer recent tasks than this say nothing about the load, and the factor stays 1. */
const LOAD_MIN_TASKS = 3;
/** An observation older than this describes another hour's load (a busy evening, last night). */
const LOAD_MAX_AGE_MS = 60 * 60_000;
/**
 * How far the load factor itself may miss (log space): a median of a few recent tasks. A larger
 * surprise (a burst sent into an hour the factor has not seen yet) is the schedule's to hedge.
 */
const LOAD_LOG_WIDTH = 0.05;
/**
 * How little a few durations say about a size's spread: the kernel widens by this / sqrt(n),
 * so one duration of a size whose tasks vary 3-15 s is not taken for the whole story.
 */
const FEW_LOG_WIDTH = 0.2;
/**
 * What a size's first durations are weighed against: sizes vary by about this much (log space),
 * worth PRIOR_TASKS durations of its own, so three tasks that happen to look alike do not hide
 * that this size's tasks may take anything from 3 to 15 s.
 */
const PRIOR_LOG_WIDTH = 0.7;
const PRIOR_TASKS = 1;
/** How far other sizes' durations, fitted to the pixel count, may miss this one (log space). */
const HINT_LOG_WIDTH = 0.3;
/** The same with a single other size to scale from (time is not proportional to pixels: a fixed part). */
const ONE_SIZE_HINT_LOG_WIDTH = 0.45;
/** A size needs this many durations of its own before a new one is compared with their median. */
const BASELINE_MIN_SAMPLES = 3;
/** However odd the recent tasks, the factor stays in this range (a broken clock, a stalled API). */
const LOAD_MIN = 0.5;
const LOAD_MAX = 3;

/**
 * Before any task has finished. The expected 8 s is a typical Qwen-Image time and what the
 * member is shown. Polling is not aimed at it: tasks take about 3 to 15 s by size, so the guess
 * is a log-normal over that range (median 6.7 s, log width 0.4), polled like a learned size: from
 * about 3 s (a 3 s image is seen within a second, not at 8), densely while the small sizes may
 * finish, thinning out for the big ones. It serves only until the bot has seen a task finish.
 * (The wide spread also moves "taking longer than usual" to 21.5 s, fair when nothing is usual yet.)
 */
export const COLD_ESTIMATE: Estimate = {
  expectedMs: 8_000,
  spreadMs: 6_750,
  guess: true,
  durations: [6_700],
  logWidth: 0.4,
};

const pixels = (size: string) => {
  const [w, h] = size.split('*').map(Number);
  return (w || 1024) * (h || 1024);
};

/**
 * A duration for any pixel count from the sizes seen, `[pixels, median ms]`: a line through
 * them (least squares, never below a tenth of the nearest size's time per pixel), or, from a
 * single size, proportional to the pixel count.
 */
function fitToPixels(
  seen: readonly (readonly [number, number])[],
): { at: (px: number) => number; sizes: number } | undefined {
  const points = seen.filter(([, ms]) => ms > 0);
  if (!points.length) return undefined;
  const proportional = (px: number) => {
    const [p0, m0] = points.reduce((a, b) => (Math.abs(Math.log(b[0] / px)) < Math.abs(Math.log(a[0] / px)) ? b : a));
    return (m0 / p0) * px;
  };
  if (points.length < 2) return { at: proportional, sizes: 1 };
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  if (sxx === 0) return { at: proportional, sizes: 1 };
  const slope = Math.max(0, points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx);
  const at = (px: number) => Math.max(my + slope * (px - mx), 0.1 * proportional(px));
  return { at, sizes: n };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** One observed duration (ms) and when it was recorded (ms, the estimator's clock; 0 when not known). */
interface Sample {
  ms: number;
  at: number;
}

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

/** Stored entries as samples; a bare number is an older bot's, its time unknown. */
const samplesOf = (entries: readonly unknown[]): Sample[] =>
  entries.flatMap((x) => {
    if (typeof x === 'number') return Number.isFinite(x) && x > 0 ? [{ ms: x, at: 0 }] : [];
    const o = x as Partial<Sample> | null;
    return typeof o === 'object' && o !== null && Number.isFinite(o.ms) && o.ms! > 0 && Number.isFinite(o.at)
      ? [{ ms: o.ms!, at: o.at! }]
      : [];
  });

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
export function createDurationEstimator(
  deps: { store?: DurationStore; legacy?: LegacyDurationStore; now?: () => number; logger?: Pick<Logger, 'warn'> } = {},
): DurationEstimator {
  const { store } = deps;
  const now = deps.now ?? Date.now;
  let samples: Record<string, Sample[]> = {};
  let recent: LoadObservation[] = [];
  /** Lists known to be in LISTS: added once per process, not at every task. */
  const listed = new Set<string>();

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

  const share = async (shared: DurationStore, list: string, entry: unknown, keep: number) => {
    if (!listed.has(list)) {
      await shared.add(LISTS, list);
      listed.add(list);
    }
    return shared.append(list, [entry], keep);
  };

  return {
    estimate(size) {
      const load = loadFactor();
      const own = samples[size]?.map((s) => s.ms);
      if (own?.length) {
        const durations = own.map((x) => x * load).sort((a, b) => a - b);
        const logWidth = Math.sqrt(logBandwidth(own) ** 2 + LOAD_LOG_WIDTH ** 2 + FEW_LOG_WIDTH ** 2 / own.length);
        const prior = { share: PRIOR_TASKS / (PRIOR_TASKS + own.length), logWidth: PRIOR_LOG_WIDTH };
        return { ...estimateFrom(own, load), durations, logWidth, prior, samples: own.length };
      }
      // Other sizes' history is a hint, not a measurement: time grows with the pixel count, from
      // a fixed part, so fit both to the sizes seen, and widen the kernel.
      const hint = fitToPixels(
        Object.entries(samples).map(([other, xs]) => [pixels(other), median(xs.map((x) => x.ms))] as const),
      );
      if (!hint) return { ...COLD_ESTIMATE, samples: 0 };
      const expectedMs = hint.at(pixels(size)) * load;
      const logWidth = Math.hypot(hint.sizes > 1 ? HINT_LOG_WIDTH : ONE_SIZE_HINT_LOG_WIDTH, LOAD_LOG_WIDTH);
      return { expectedMs, spreadMs: expectedMs * 0.5, guess: true, durations: [expectedMs], logWidth, samples: 0 };
    },
    async record(size, durationMs, startedAt = Infinity) {
      const own = samples[size] ?? [];
      const before = own.filter((s) => s.at < startedAt).map((s) => s.ms);
      const usual = before.length >= BASELINE_MIN_SAMPLES ? median(before) : 0;
      const sample: Sample = { ms: Math.round(durationMs), at: now() };
      const observation =
        usual > 0 ? { at: sample.at, ratio: Math.round((durationMs / usual) * 1000) / 1000 } : undefined;
      samples[size] = [...own, sample].slice(-WINDOW);
      if (observation) recent = [...recent, observation].slice(-LOAD_WINDOW);
      if (!store) return;
      try {
        // What comes back has the other processes' tasks too: this one learns from them as well.
        await Promise.all([
          share(store, SIZE_LIST + size, sample, WINDOW).then((list) => {
            samples[size] = samplesOf(list);
          }),
          observation &&
            share(store, LOAD_LIST, observation, LOAD_WINDOW).then((list) => {
              recent = list.filter(isObservation);
            }),
        ]);
      } catch (err) {
        // An estimate is a hint: a storage outage must not fail the job whose duration this is.
        deps.logger?.warn({ err, size }, 'could not share an observed duration; this process keeps it');
      }
    },
    async load() {
      const [legacy, legacyLoad] = await Promise.all([deps.legacy?.get(LEGACY_KEY), deps.legacy?.get(LEGACY_LOAD_KEY)]);
      const seeds = new Map<string, { entries: unknown[]; keep: number }>();
      if (legacy && typeof legacy === 'object') {
        for (const [size, xs] of Object.entries(legacy))
          if (Array.isArray(xs)) seeds.set(SIZE_LIST + size, { entries: samplesOf(xs).slice(-WINDOW), keep: WINDOW });
      }
      if (Array.isArray(legacyLoad))
        seeds.set(LOAD_LIST, { entries: legacyLoad.filter(isObservation).slice(-LOAD_WINDOW), keep: LOAD_WINDOW });

      const lists = new Map<string, unknown[]>();
      if (store) {
        const names = new Set(await store.members(LISTS));
        // An upgraded bot keeps its history: whichever process starts a list first copies the old
        // record's entries into it, so two processes starting together do not copy them twice.
        for (const [name, { entries, keep }] of seeds) {
          if (names.has(name) || !entries.length) continue;
          if (await store.add(LISTS, name)) await store.append(name, entries, keep);
          names.add(name);
        }
        for (const name of names) listed.add(name);
        await Promise.all([...names].map(async (name) => lists.set(name, await store.list(name))));
      } else {
        for (const [name, { entries }] of seeds) lists.set(name, entries);
      }

      samples = {};
      recent = [];
      for (const [name, entries] of lists) {
        if (name === LOAD_LIST) recent = entries.filter(isObservation).slice(-LOAD_WINDOW);
        else if (name.startsWith(SIZE_LIST)) samples[name.slice(SIZE_LIST.length)] = samplesOf(entries).slice(-WINDOW);
      }
    },
  };
}
