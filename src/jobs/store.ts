import type { Job } from './types.ts';
import { TERMINAL_STATES } from './types.ts';

/** The subset of Keyv the store needs, so tests and other backends can stand in. */
export interface KeyValue {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, ttl?: number): Promise<unknown>;
  delete(key: string): Promise<unknown>;
}

export interface JobStore {
  save(job: Job): Promise<void>;
  get(id: string): Promise<Job | undefined>;
  /** Jobs not yet in a terminal state: what a restart must resume. */
  listActive(): Promise<Job[]>;
}

/** Finished jobs are kept a week so More like this, Delete and Report still work on older messages. */
const FINISHED_TTL_MS = 7 * 24 * 3600_000;
const ACTIVE_INDEX = 'active';

/**
 * Jobs in a Keyv namespace (SQLite by default, Redis for many processes). Keyv cannot list keys
 * on every backend, so the store keeps its own index of active job ids.
 */
export function createJobStore(kv: KeyValue, options: { index?: boolean } = {}): JobStore {
  // With BullMQ the queue knows what is active; an index read-modify-written by several
  // processes would lose entries, so there is none.
  const indexed = options.index ?? true;
  let index: Promise<Set<string>> | undefined;
  // Index updates are serialised so two jobs finishing together cannot lose each other's write.
  let chain: Promise<unknown> = Promise.resolve();
  const loadIndex = () => (index ??= kv.get(ACTIVE_INDEX).then((ids) => new Set(Array.isArray(ids) ? (ids as string[]) : [])));
  const updateIndex = (fn: (ids: Set<string>) => boolean) =>
    (chain = chain.then(async () => {
      const ids = await loadIndex();
      if (fn(ids)) await kv.set(ACTIVE_INDEX, [...ids]);
    }));

  return {
    async save(job) {
      const terminal = TERMINAL_STATES.has(job.state);
      // A held image waiting for a moderator must not expire before someone decides.
      const awaitingModerator = job.review?.status === 'pending' || job.report?.status === 'pending';
      await kv.set(`job:${job.id}`, job, terminal && !awaitingModerator ? FINISHED_TTL_MS : undefined);
      if (indexed) await updateIndex((ids) => (terminal ? ids.delete(job.id) : !ids.has(job.id) && Boolean(ids.add(job.id))));
    },
    async get(id) {
      return (await kv.get(`job:${id}`)) as Job | undefined;
    },
    async listActive() {
      if (!indexed) return [];
      await chain;
      const ids = [...(await loadIndex())];
      const jobs = await Promise.all(ids.map((id) => kv.get(`job:${id}`) as Promise<Job | undefined>));
      return jobs.filter((j): j is Job => Boolean(j) && !TERMINAL_STATES.has(j!.state));
    },
  };
}

/** An in-memory KeyValue for tests and for `STORAGE_URL=memory://`. */
export function createMemoryKeyValue(): KeyValue {
  const map = new Map<string, { value: unknown; expires: number }>();
  return {
    async get(key) {
      const entry = map.get(key);
      if (!entry) return undefined;
      if (entry.expires < Date.now()) return void map.delete(key);
      return structuredClone(entry.value);
    },
    async set(key, value, ttl) {
      map.set(key, { value: structuredClone(value), expires: ttl ? Date.now() + ttl : Infinity });
      return true;
    },
    async delete(key) {
      return map.delete(key);
    },
  };
}
