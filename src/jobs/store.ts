import type { Job } from '../domain/job.ts';
import { TERMINAL_STATES } from '../domain/job.ts';
import type { KeyValue } from '../storage/key-value.ts';

export interface JobStore {
  /**
   * Compare-and-set: saves `job` only if the stored record is still the version it was read at
   * (`job.version`; none for a new job), then bumps `job.version`. Throws `JobConflictError` when
   * another writer saved first: two processes, or a step that runs twice, can never both move one
   * job. Use `updateJob` to re-read and decide again.
   */
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

/** Another writer saved the job since it was read: re-read it and decide again. */
export class JobConflictError extends Error {
  readonly jobId: string;
  constructor(jobId: string) {
    super(`job ${jobId} was saved by another writer since it was read`);
    this.jobId = jobId;
  }
}

/** Conflicts in a row after which something is wrong beyond a race (a writer looping). */
const MAX_CONFLICTS = 50;

/**
 * Reads the job and applies `change`, then saves it; on a conflict, re-reads and applies `change`
 * to the fresh record, until it is saved. `change` returns false when, on what it reads, it no
 * longer applies (another writer ended the job, a newer step owns it): nothing is saved and the
 * result is undefined. `first` is a copy already in hand, tried before any read.
 */
export async function updateJob(
  store: JobStore,
  id: string,
  change: (job: Job) => boolean,
  first?: Job,
): Promise<Job | undefined> {
  let job = first ?? (await store.get(id));
  for (let conflicts = 0; ; conflicts++) {
    if (!job || !change(job)) return undefined;
    try {
      await store.save(job);
      return job;
    } catch (e) {
      if (!(e instanceof JobConflictError) || conflicts >= MAX_CONFLICTS) throw e;
    }
    job = await store.get(id);
  }
}

/** What a record is saved as: the version it becomes, when, and its schema. */
export const stamped = (job: Job, now: number): Job => ({
  ...job,
  schema: JOB_SCHEMA,
  version: (job.version ?? 0) + 1,
  updatedAt: now,
});

/** After a save: the job in hand is the record as saved (its version, when, its schema). */
export const adoptSaved = (job: Job, saved: Job) =>
  Object.assign(job, { schema: saved.schema, version: saved.version, updatedAt: saved.updatedAt });

/**
 * How long a held image waits for a moderator: its record, its stashed bytes (`createImageStash`)
 * and its place in the pending lists all end this long after it was held, so no member can fill
 * the storage with images nobody reviews.
 */
export const HELD_TTL_MS = 30 * 24 * 3600_000;

/**
 * A finished record expires after a week; a held one `HELD_TTL_MS` after it was held (counted
 * from the hold, not from its last save, so it ends with its stashed image); a reported one only
 * once a moderator has decided.
 */
export const recordTtl = (job: Job): number | undefined => {
  if (job.review?.status === 'pending')
    return Math.max(1, job.review.createdAt + HELD_TTL_MS - (job.updatedAt ?? job.review.createdAt));
  if (job.report?.status === 'pending') return undefined;
  return TERMINAL_STATES.has(job.state) ? FINISHED_TTL_MS : undefined;
};

/** Finished jobs are kept a week so More like this, Delete and Report still work on older messages. */
const FINISHED_TTL_MS = 7 * 24 * 3600_000;
const ACTIVE_INDEX = 'active';

/**
 * Jobs in a Keyv namespace (SQLite by default, Redis for many processes). Keyv cannot list keys
 * on every backend, so the store keeps its own index of active job ids.
 */
export function createJobStore(kv: KeyValue, options: { index?: boolean; now?: () => number } = {}): JobStore {
  // Without an index, `listActive` is empty (a store for tests of a single job).
  const indexed = options.index ?? true;
  const now = options.now ?? Date.now;
  // One process owns this store (SQLite, memory): compare-and-set is a check and a write
  // serialised per job in this process, against the version this process last saw, so a save
  // need not read first (a read can fail while the storage is away; writes are kept meanwhile).
  const records = new Map<string, Promise<unknown>>();
  const versions = new Map<string, number>();
  const exclusive = (id: string, fn: () => Promise<void>) => {
    const run = (records.get(id) ?? Promise.resolve()).then(fn);
    const tail = run.catch(() => undefined);
    records.set(id, tail);
    void tail.then(() => records.get(id) === tail && records.delete(id));
    return run;
  };
  let index: Promise<Set<string>> | undefined;
  // Index updates are serialised so two jobs finishing together cannot lose each other's write.
  let chain: Promise<unknown> = Promise.resolve();
  const loadIndex = () =>
    (index ??= kv.get(ACTIVE_INDEX).then((ids) => new Set(Array.isArray(ids) ? (ids as string[]) : [])));
  const updateIndex = (fn: (ids: Set<string>) => boolean) =>
    (chain = chain.then(async () => {
      const ids = await loadIndex();
      if (fn(ids)) await kv.set(ACTIVE_INDEX, [...ids]);
    }));

  /** A job this process has not saved yet: a new one, or one read back (a resume, a review). */
  const storedVersion = async (job: Job) => {
    try {
      return readJob(await kv.get(`job:${job.id}`))?.version ?? 0;
    } catch (e) {
      // The storage is away: a job never saved can only be new (its id is random), and its write
      // is kept until the storage answers.
      if (job.version === undefined) return 0;
      throw e;
    }
  };

  return {
    async save(job) {
      const terminal = TERMINAL_STATES.has(job.state);
      await exclusive(job.id, async () => {
        const stored = versions.get(job.id) ?? (await storedVersion(job));
        if (stored !== (job.version ?? 0)) throw new JobConflictError(job.id);
        const next = stamped(job, now());
        await kv.set(`job:${job.id}`, next, recordTtl(next));
        // A finished job is rarely saved again: its version is read back then, not kept.
        if (terminal) versions.delete(job.id);
        else versions.set(job.id, next.version!);
        adoptSaved(job, next);
      });
      if (indexed)
        await updateIndex((ids) => (terminal ? ids.delete(job.id) : !ids.has(job.id) && Boolean(ids.add(job.id))));
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
