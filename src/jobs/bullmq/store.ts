import type { Redis } from 'ioredis';
import { adoptSaved, JobConflictError, readJob, recordTtl, stamped, type JobStore } from '../store.ts';
import { TERMINAL_STATES, type Job } from '../../domain/job.ts';
import type { KeyValue } from '../../storage/key-value.ts';

/**
 * Writes a record only when its stored version is the one the writer read (0: no record), and
 * keeps the index of active jobs in the same step. Returns -1 when written, else the version
 * that is stored now.
 */
const WRITE = `
local stored = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if stored ~= tonumber(ARGV[1]) then return stored end
redis.call('HSET', KEYS[1], 'v', tonumber(ARGV[1]) + 1, 'data', ARGV[2])
if ARGV[3] == '0' then redis.call('PERSIST', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
if ARGV[4] == '1' then redis.call('SADD', KEYS[2], ARGV[5]) else redis.call('SREM', KEYS[2], ARGV[5]) end
return -1
`;

/**
 * Job records on Redis, for several processes: each record a hash of its version and its JSON,
 * each save one Lua script (compare-and-set, see `JobStore.save`), and a set of active job ids
 * changed in the same script, so the reconciler can find every unfinished job without a scan.
 * A record written before versions existed (in the Keyv namespace `legacy`) is still read, as
 * version 0, and moves here at its next save. (Jobs left unfinished by the version before are
 * resumed by their steps still in the queues, not by the reconciler, which lists this index.)
 */
export function createRedisJobStore(
  redis: Redis,
  options: { prefix?: string; legacy?: KeyValue; now?: () => number } = {},
): JobStore {
  const prefix = options.prefix ?? 'qi:';
  const now = options.now ?? Date.now;
  const recordKey = (id: string) => `${prefix}job:${id}`;
  const activeKey = `${prefix}jobs:active`;
  /** Records read from the old namespace: their old copy goes at their first save here, so it can never come back. */
  const legacyRead = new Set<string>();

  async function get(id: string): Promise<Job | undefined> {
    const [version, data] = await redis.hmget(recordKey(id), 'v', 'data');
    if (data == null) {
      const legacy = readJob(await options.legacy?.get(`job:${id}`));
      if (legacy) legacyRead.add(id);
      return legacy && { ...legacy, version: 0 };
    }
    const job = readJob(JSON.parse(data));
    return job && { ...job, version: Number(version) };
  }

  return {
    async save(job) {
      const next = stamped(job, now());
      const active = !TERMINAL_STATES.has(job.state);
      const result = await redis.eval(
        WRITE,
        2,
        recordKey(job.id),
        activeKey,
        job.version ?? 0,
        JSON.stringify(next),
        recordTtl(next) ?? 0,
        active ? '1' : '0',
        job.id,
      );
      if (Number(result) !== -1) throw new JobConflictError(job.id);
      adoptSaved(job, next);
      if (legacyRead.delete(job.id)) await options.legacy?.delete(`job:${job.id}`);
    },
    get,
    async listActive() {
      const ids = await redis.smembers(activeKey);
      const jobs = await Promise.all(ids.map((id) => get(id)));
      return jobs.filter((j): j is Job => Boolean(j) && !TERMINAL_STATES.has(j!.state));
    },
  };
}
