import type { Logger } from '../logger.ts';
import type { Estimate } from './schedule.ts';

/**
 * Where observed durations are kept for every process of the bot and across restarts; the shared
 * state (`src/shared-state.ts`) satisfies it. Each size's durations are a list appended to, never
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
  durations: [
    3_180, 3_950, 4_470, 4_910, 5_310, 5_700, 6_090, 6_490, 6_910, 7_370, 7_870, 8_450, 9_140, 10_040, 11_350, 14_110,
  ],
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
        const durations = own.length >= HAZARD_MIN_SAMPLES ? own.map((x) => x * load).sort((a, b) => a - b) : undefined;
        return { ...estimateFrom(own, load), ...(durations && { durations }), samples: own.length };
      }
      // Other sizes' history is a hint, not a measurement: time scales roughly with the pixel
      // count, so scale it, and widen the spread.
      const perPixel = Object.entries(samples).flatMap(([other, xs]) => xs.map((x) => x.ms / pixels(other)));
      if (!perPixel.length) return { ...COLD_ESTIMATE, samples: 0 };
      const expectedMs = median(perPixel) * pixels(size) * load;
      return { expectedMs, spreadMs: expectedMs * 0.5, guess: true, samples: 0 };
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
