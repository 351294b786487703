import { createClient } from '@keyv/redis';
import type { KeyValue } from './key-value.ts';

/**
 * The few operations that must be atomic when several processes share one Redis: a claim
 * (first writer wins, like SET NX) and sets whose members are added and removed one at a time
 * (never a read-modify-write of the whole list). Moderator decisions, reports and the pending
 * review index are built on them, the usage ledger's counters (`increment`), and the observed
 * task durations (`append`).
 */
export interface SharedState {
  /** Stores `value` under `key` unless the key holds something; tells who holds it now. */
  claim<T>(key: string, value: T, ttlMs?: number): Promise<{ won: true } | { won: false; holder: T }>;
  read<T>(key: string): Promise<T | undefined>;
  /** Gives a claim up (a decision whose effect could not be carried out). */
  release(key: string): Promise<void>;
  /** Adds a member; true when it was not there before. */
  add(set: string, member: string): Promise<boolean>;
  remove(set: string, member: string): Promise<boolean>;
  members(set: string): Promise<string[]>;
  /**
   * Adds to counters kept in hashes (`by` defaults to 1), all in one step, and sets each touched
   * hash to expire `ttlMs` after this change. Never a read-modify-write across processes: on
   * Redis it is HINCRBY (in one MULTI), so counts from several processes add up exactly.
   */
  increment(counts: readonly { hash: string; field: string; by?: number }[], ttlMs?: number): Promise<void>;
  /** Every counter of a hash; `{}` when there is none (never created, or expired). */
  counters(hash: string): Promise<Record<string, number>>;
  /**
   * Adds `values` at the end of a list and drops all but its last `keep` entries, in one step,
   * and returns the list as it is then, with what other processes appended. On Redis it is
   * RPUSH + LTRIM + LRANGE in one MULTI, so appends from several processes all land.
   */
  append(list: string, values: readonly unknown[], keep: number): Promise<unknown[]>;
  /** A list's entries, oldest first; `[]` when there is none. */
  list(list: string): Promise<unknown[]>;
  close(): Promise<void>;
}

/**
 * Redis: SET NX PX and the set commands are atomic on the server, so two processes clicking at
 * the same instant get exactly one winner.
 */
export function createRedisSharedState(
  url: string,
  prefix = 'qi:',
  client: ReturnType<typeof createClient> = createClient({ url }),
): SharedState {
  // Claims and sets in separate key spaces, as on the Keyv side, so one name can never hit a WRONGTYPE.
  const claimKey = (key: string) => `${prefix}claim:${key}`;
  const setKey = (set: string) => `${prefix}set:${set}`;
  // Counters have their own key space too: `usage:<guild>:<day>` is `qi:count:usage:<guild>:<day>`.
  const countKey = (hash: string) => `${prefix}count:${hash}`;
  const listKey = (list: string) => `${prefix}list:${list}`;
  // node-redis reconnects by itself and commands issued meanwhile fail or wait for it; without a
  // listener, its 'error' event on a dropped connection would be thrown and end the process.
  client.on('error', () => undefined);
  let connecting: Promise<unknown> | undefined;
  const ready = async () => {
    // A first connection that failed is tried again by the next call, not remembered as failed.
    connecting ??= client.connect().catch((err: unknown) => {
      connecting = undefined;
      throw err;
    });
    await connecting;
    return client;
  };
  return {
    async claim(key, value, ttlMs) {
      const redis = await ready();
      for (;;) {
        const set = await redis.set(claimKey(key), JSON.stringify(value), {
          NX: true,
          ...(ttlMs ? { PX: ttlMs } : {}),
        });
        if (set === 'OK') return { won: true };
        const holder = await redis.get(claimKey(key));
        if (holder !== null) return { won: false, holder: JSON.parse(String(holder)) as never };
        // Released or expired between the two commands: nobody holds it, so try again rather
        // than report the caller's own value as the holder.
      }
    },
    async read(key) {
      const raw = await (await ready()).get(claimKey(key));
      return raw === null ? undefined : (JSON.parse(String(raw)) as never);
    },
    async release(key) {
      await (await ready()).del(claimKey(key));
    },
    async add(set, member) {
      return (await (await ready()).sAdd(setKey(set), member)) === 1;
    },
    async remove(set, member) {
      return (await (await ready()).sRem(setKey(set), member)) === 1;
    },
    async members(set) {
      return (await (await ready()).sMembers(setKey(set))).map(String);
    },
    async increment(counts, ttlMs) {
      if (!counts.length) return;
      const multi = (await ready()).multi();
      for (const { hash, field, by = 1 } of counts) multi.hIncrBy(countKey(hash), field, by);
      if (ttlMs) for (const hash of new Set(counts.map((c) => c.hash))) multi.pExpire(countKey(hash), ttlMs);
      await multi.exec();
    },
    async counters(hash) {
      const all = await (await ready()).hGetAll(countKey(hash));
      return Object.fromEntries(Object.entries(all).map(([field, value]) => [String(field), Number(value)]));
    },
    async append(list, values, keep) {
      const multi = (await ready()).multi();
      // RPUSH refuses an empty list of values; appending nothing still trims and reads.
      if (values.length)
        multi.rPush(
          listKey(list),
          values.map((value) => JSON.stringify(value)),
        );
      multi.lTrim(listKey(list), -keepCount(keep), -1);
      multi.lRange(listKey(list), 0, -1);
      const replies = await multi.exec();
      return decodeList(replies.at(-1) as unknown as string[]);
    },
    async list(list) {
      return decodeList(await (await ready()).lRange(listKey(list), 0, -1));
    },
    async close() {
      // close(), not QUIT: QUIT is queued until a lost connection comes back, so a shutdown while
      // Redis is down would never finish.
      if (connecting) await client.close().catch(() => undefined);
    },
  };
}

/** A Redis list's entries, each stored as JSON. */
const decodeList = (raws: readonly unknown[]) => raws.map((raw) => JSON.parse(String(raw)) as unknown);

/** LTRIM with a start of -0 would keep the whole list: a list always keeps at least its last entry. */
const keepCount = (keep: number) => Math.max(1, Math.floor(keep));

/**
 * SQLite and memory serve one process: operations are serialised per key in this process, over
 * the same Keyv storage as everything else, so claims and sets survive a restart.
 */
export function createLocalSharedState(kv: KeyValue & { disconnect?: () => Promise<void> }): SharedState {
  const chains = new Map<string, Promise<unknown>>();
  const exclusive = <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const run = (chains.get(key) ?? Promise.resolve()).then(fn);
    const tail = run.catch(() => undefined);
    chains.set(key, tail);
    void tail.then(() => chains.get(key) === tail && chains.delete(key));
    return run;
  };
  const list = async (set: string) => {
    const value = await kv.get(`set:${set}`);
    return Array.isArray(value) ? (value as string[]) : [];
  };
  const entries = async (name: string) => {
    const value = await kv.get(`list:${name}`);
    return Array.isArray(value) ? (value as unknown[]) : [];
  };
  const change = (set: string, fn: (members: string[]) => string[] | null) =>
    exclusive(`set:${set}`, async () => {
      const next = fn(await list(set));
      if (next) await kv.set(`set:${set}`, next);
      return next !== null;
    });
  return {
    claim: (key, value, ttlMs) =>
      exclusive(`claim:${key}`, async () => {
        const holder = await kv.get(`claim:${key}`);
        if (holder !== undefined) return { won: false, holder: holder as never };
        await kv.set(`claim:${key}`, value, ttlMs);
        return { won: true };
      }),
    read: async (key) => (await kv.get(`claim:${key}`)) as never,
    release: (key) => exclusive(`claim:${key}`, async () => void (await kv.delete(`claim:${key}`))),
    add: (set, member) => change(set, (members) => (members.includes(member) ? null : [...members, member])),
    remove: (set, member) =>
      change(set, (members) => (members.includes(member) ? members.filter((m) => m !== member) : null)),
    members: list,
    async increment(counts, ttlMs) {
      const byHash = new Map<string, { field: string; by: number }[]>();
      for (const { hash, field, by = 1 } of counts) byHash.set(hash, [...(byHash.get(hash) ?? []), { field, by }]);
      await Promise.all(
        [...byHash].map(([hash, changes]) =>
          exclusive(`count:${hash}`, async () => {
            const value = await kv.get(`count:${hash}`);
            const next: Record<string, number> =
              value && typeof value === 'object' ? { ...(value as Record<string, number>) } : {};
            for (const { field, by } of changes) next[field] = (next[field] ?? 0) + by;
            await kv.set(`count:${hash}`, next, ttlMs);
          }),
        ),
      );
    },
    async counters(hash) {
      const value = await kv.get(`count:${hash}`);
      return value && typeof value === 'object' ? { ...(value as Record<string, number>) } : {};
    },
    append: (name, values, keep) =>
      exclusive(`list:${name}`, async () => {
        const next = [...(await entries(name)), ...values].slice(-keepCount(keep));
        await kv.set(`list:${name}`, next);
        return next;
      }),
    list: entries,
    async close() {
      await Promise.all(chains.values());
      await kv.disconnect?.();
    },
  };
}
