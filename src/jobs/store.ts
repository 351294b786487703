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

/**
 * The job record's schema version, saved in every record (`schema`). A change to what a field
 * means bumps it and adds a step to `UPGRADES`.
 */
export const JOB_SCHEMA = 1;

/**
 * Steps from version n to n + 1, applied in memory when an older record is read; the upgraded
 * record is written back at its next save. Version 0 is a record from before versions existed.
 */
const UPGRADES: ((record: Record<string, unknown>) => void)[] = [
  // 0 -> 1: the same fields; every one added since (nsfw, review, report, published, input) is optional.
  (record) => {
    if (typeof record.polls !== 'number') record.polls = 0;
  },
];

/**
 * A stored value as a job of this version, or undefined: nothing there, not a job, or written by a
 * newer version of the bot (after a downgrade), which this one must neither resume nor rewrite.
 */
export function readJob(value: unknown): Job | undefined {
  if (!value || typeof value !== 'object' || typeof (value as { id?: unknown }).id !== 'string') return undefined;
  const record = { ...(value as Record<string, unknown>) };
  const version = typeof record.schema === 'number' ? record.schema : 0;
  if (version > JOB_SCHEMA) return undefined;
  for (const step of UPGRADES.slice(version)) step(record);
  record.schema = JOB_SCHEMA;
  return record as unknown as Job;
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
      await kv.set(`job:${job.id}`, { ...job, schema: JOB_SCHEMA }, terminal && !awaitingModerator ? FINISHED_TTL_MS : undefined);
      if (indexed) await updateIndex((ids) => (terminal ? ids.delete(job.id) : !ids.has(job.id) && Boolean(ids.add(job.id))));
    },
    async get(id) {
      return readJob(await kv.get(`job:${id}`));
    },
    async listActive() {
      if (!indexed) return [];
      await chain;
      const ids = [...(await loadIndex())];
      const jobs = await Promise.all(ids.map(async (id) => readJob(await kv.get(`job:${id}`))));
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
