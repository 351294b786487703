import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type Keyv from 'keyv';
import { openSharedState, openStorage } from '../../src/storage/open.ts';
import type { SharedState } from '../../src/storage/shared-state.ts';
import { Redis } from 'ioredis';
import { JOB_SCHEMA, JobConflictError, createJobStore, updateJob, type JobStore } from '../../src/jobs/store.ts';
import { createRedisJobStore } from '../../src/jobs/bullmq/store.ts';
import { createDurationEstimator } from '../../src/jobs/estimator.ts';
import type { Job } from '../../src/domain/job.ts';
import { createUsageLedger } from '../../src/usage/ledger.ts';
import { skipWithoutRedis, startRedis } from '../fakes/redis.ts';

const job = (id: string, over: Partial<Job> = {}): Job => ({
  id,
  prompt: '一张海报，写着“你好”',
  size: '1024*1024',
  userId: '1',
  userName: 'alice',
  guildId: '2',
  channelId: '3',
  channelNsfw: false,
  locale: 'zh-CN',
  state: 'queued',
  reply: { applicationId: '4', token: 'tok', createdAt: 1 },
  createdAt: 1,
  polls: 0,
  ...over,
});

/** A moderator decision's audit record, the kind of value claims hold. */
const audit = (moderatorId: string) => ({
  jobId: 'j1',
  guildId: '2',
  review: 'flag',
  decision: 'approve',
  moderatorId,
  moderatorName: `modérateur ${moderatorId} — 审核员 🛡️`,
  at: 1_700_000_000_000,
});
type Audit = ReturnType<typeof audit>;

/**
 * Lets the calls already started send their first command before the next one starts, so a
 * release lands between a claim's "is it free?" and its "who holds it?" (see the race case).
 */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The contract of one claim racing the release of the claim it collides with, on one or two instances. */
async function claimAgainstRelease(holder: SharedState, claimer: SharedState, prefix: string) {
  for (let round = 0; round < 30; round++) {
    const key = `${prefix}:${round}`;
    expect(await holder.claim(key, audit('first'))).toEqual({ won: true });
    const [, result] = await Promise.all([
      nextTurn().then(() => holder.release(key)),
      claimer.claim(key, audit('second')),
    ]);
    if (result.won) {
      expect(await claimer.read(key)).toEqual(audit('second'));
    } else {
      // Losing is only right if the first holder really still held it: never "you already hold it"
      // for a key nobody holds.
      expect(result.holder).toEqual(audit('first'));
      expect(await claimer.read(key)).toBeUndefined();
    }
  }
}

/** One contract, every backend the bot supports: the same cases must pass on each. */
function describeStorage(name: string, setup: () => Promise<{ url: string; cleanup: () => Promise<void> }>) {
  describe(`storage contract: ${name}`, () => {
    let url: string;
    let cleanup: () => Promise<void>;
    const opened: Keyv[] = [];
    const open = (ns: string) => {
      const kv = openStorage(url, ns);
      opened.push(kv);
      return kv;
    };
    const states = new Set<SharedState>();
    const openState = () => {
      const state = openSharedState(url);
      states.add(state);
      return state;
    };
    const closeState = async (state: SharedState) => {
      states.delete(state);
      await state.close();
    };
    const connections: Redis[] = [];
    /** The job store the bot opens on this backend: compare-and-set in Lua on Redis, per job in one process otherwise. */
    const openJobs = (ns: string): JobStore => {
      const now = () => 1_000;
      if (!url.startsWith('redis')) return createJobStore(open(ns), { now });
      const connection = new Redis(url);
      connections.push(connection);
      return createRedisJobStore(connection, { prefix: `${ns}:`, legacy: open(ns), now });
    };
    // Every test gets its own keys: the memory backend is one map per process.
    const keys = (test: string) => `${name}:${test}`;
    beforeAll(async () => ({ url, cleanup } = await setup()));
    afterAll(async () => {
      await Promise.all([
        ...opened.map((kv) => kv.disconnect()),
        ...[...states].map(closeState),
        ...connections.map((c) => c.quit()),
      ]);
      await cleanup();
    });

    it('saves and reads a job exactly, unicode included', async () => {
      const store = openJobs(`a-${name}`);
      await store.save(job('j1', { taskId: 't1', state: 'polling' }));
      expect(await store.get('j1')).toEqual({
        ...job('j1', { taskId: 't1', state: 'polling' }),
        schema: JOB_SCHEMA,
        version: 1,
        updatedAt: 1_000,
      });
      expect(await store.get('missing')).toBeUndefined();
    });

    it('refuses a save from a stale read, so two writers never both move one job; updateJob reads again and decides again', async () => {
      const ns = `d-${name}`;
      const store = openJobs(ns);
      // On Redis a second process with its own connection; otherwise the one process's store.
      const other = name === 'redis' ? openJobs(ns) : store;
      await store.save(job('c1'));
      const [mine, theirs] = await Promise.all([store.get('c1'), other.get('c1')]);
      mine!.state = 'submitting';
      await store.save(mine!);
      theirs!.state = 'failed';
      await expect(other.save(theirs!)).rejects.toBeInstanceOf(JobConflictError);
      expect((await store.get('c1'))?.state).toBe('submitting');
      // Many writers at once, each re-reading on a conflict: none of their changes is lost.
      const bump = (s: JobStore) =>
        updateJob(s, 'c1', (j) => {
          j.polls += 1;
          return true;
        });
      await Promise.all(Array.from({ length: 20 }, (_, i) => bump(i % 2 ? store : other)));
      expect(await store.get('c1')).toMatchObject({ polls: 20, version: 22, state: 'submitting' });
      // A change that no longer applies to what it reads saves nothing.
      expect(await updateJob(other, 'c1', (j) => j.state === 'queued')).toBeUndefined();
      expect((await store.get('c1'))?.version).toBe(22);
    });

    it('lists active jobs until they finish, across store instances', async () => {
      const ns = `b-${name}`;
      const first = openJobs(ns);
      const x3 = job('x3');
      await Promise.all([
        first.save(job('x1')),
        first.save(job('x2', { state: 'polling', taskId: 't' })),
        first.save(x3),
      ]);
      x3.state = 'delivered';
      await first.save(x3);
      const second = openJobs(ns);
      expect((await second.listActive()).map((j) => j.id).sort()).toEqual(['x1', 'x2']);
      expect((await second.get('x3'))?.state).toBe('delivered');
    });

    it('keeps observed durations across restarts, and those an older version stored', async () => {
      const legacy = open(`c-${name}`);
      await legacy.set('durations', { '512*512': [3_000] });
      const before = openState();
      const first = createDurationEstimator({ store: before, legacy });
      await first.load();
      await first.record('1024*1024', 7_000);
      await first.record('1024*1024', 9_000);
      await closeState(before);
      const after = createDurationEstimator({ store: openState(), legacy });
      await after.load();
      expect(after.estimate('1024*1024')).toMatchObject({ expectedMs: 8_000, samples: 2 });
      expect(after.estimate('512*512')).toMatchObject({ expectedMs: 3_000, samples: 1 });
    });

    it('claims: the first claim wins, later ones are told the holder until it is released', async () => {
      const state = openState();
      const key = keys('claim');
      expect(await state.read(key)).toBeUndefined();
      expect(await state.claim(key, audit('alice'))).toEqual({ won: true });
      expect(await state.claim(key, audit('bob'))).toEqual({ won: false, holder: audit('alice') });
      expect(await state.read<Audit>(key)).toEqual(audit('alice'));

      await state.release(key);
      expect(await state.read(key)).toBeUndefined();
      expect(await state.claim(key, audit('bob'))).toEqual({ won: true });
      expect(await state.read<Audit>(key)).toEqual(audit('bob'));
      // Claims on other keys are independent.
      expect(await state.claim(keys('claim-other'), audit('carol'))).toEqual({ won: true });
    });

    it('claims: a claim with a TTL holds until it expires, then the key can be claimed again', async () => {
      const state = openState();
      const key = keys('ttl');
      expect(await state.claim(key, audit('alice'), 100)).toEqual({ won: true });
      expect(await state.claim(key, audit('bob'), 100)).toEqual({ won: false, holder: audit('alice') });
      // The contract's one real wait: Redis expires keys on its own clock, which fake timers
      // cannot move, and the same case runs on every backend. Polling keeps it to ~100 ms and the
      // 5 s bound is only a margin for a loaded machine.
      await vi.waitFor(async () => expect(await state.read(key)).toBeUndefined(), { timeout: 5_000, interval: 20 });
      expect(await state.claim(key, audit('bob'))).toEqual({ won: true });
      expect(await state.read<Audit>(key)).toEqual(audit('bob'));
    });

    it('claims: 20 moderators clicking at once give exactly one winner, and every loser is told who', async () => {
      const state = openState();
      const key = keys('race');
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => state.claim(key, audit(`m${i}`))));
      const winners = results.flatMap((r, i) => (r.won ? [i] : []));
      expect(winners).toHaveLength(1);
      const winner = audit(`m${winners[0]}`);
      expect(results.filter((r) => !r.won)).toEqual(Array.from({ length: 19 }, () => ({ won: false, holder: winner })));
      expect(await state.read<Audit>(key)).toEqual(winner);
    });

    it('claims: a claim racing the release of the holder is never told it lost to a key nobody holds', async () => {
      const state = openState();
      await claimAgainstRelease(state, state, keys('release-race'));
    });

    it('sets: a member is added once and removed once', async () => {
      const state = openState();
      const set = keys('set');
      expect(await state.members(set)).toEqual([]);
      expect(await state.add(set, 'u1')).toBe(true);
      // One report per member per image: the second add is refused.
      expect(await state.add(set, 'u1')).toBe(false);
      expect(await state.add(set, 'ü2 — 用户')).toBe(true);
      expect((await state.members(set)).sort()).toEqual(['u1', 'ü2 — 用户'].sort());

      expect(await state.remove(set, 'u1')).toBe(true);
      expect(await state.remove(set, 'u1')).toBe(false);
      expect(await state.remove(set, 'never-there')).toBe(false);
      expect(await state.members(set)).toEqual(['ü2 — 用户']);
      // Sets are independent of each other.
      expect(await state.members(keys('set-other'))).toEqual([]);
      expect(await state.read(keys('set-other'))).toBeUndefined();
    });

    it('sets: concurrent adds lose no member, and the same member racing is added exactly once', async () => {
      const state = openState();
      const many = keys('set-many');
      const added = await Promise.all(Array.from({ length: 20 }, (_, i) => state.add(many, `u${i}`)));
      expect(added).toEqual(Array.from({ length: 20 }, () => true));
      expect((await state.members(many)).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `u${i}`).sort());

      const same = keys('set-same');
      const results = await Promise.all(Array.from({ length: 20 }, () => state.add(same, 'u1')));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await state.members(same)).toEqual(['u1']);

      // Concurrent removes of everything, interleaved with adds of new members: only the new ones remain.
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => [state.remove(many, `u${i}`), state.add(many, `v${i}`)]).flat(),
      );
      expect((await state.members(many)).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `v${i}`).sort());
    });

    it('counters: increments add up per field and per hash; a hash never written is empty', async () => {
      const state = openState();
      const [a, b] = [keys('count-a'), keys('count-b')];
      expect(await state.counters(a)).toEqual({});
      await state.increment([
        { hash: a, field: 'images' },
        { hash: a, field: 'failed', by: 0 },
        { hash: b, field: 'images', by: 5 },
      ]);
      await state.increment([
        { hash: a, field: 'images', by: 2 },
        { hash: a, field: 'member:一', by: 3 },
      ]);
      await state.increment([]);
      expect(await state.counters(a)).toEqual({ images: 3, failed: 0, 'member:一': 3 });
      expect(await state.counters(b)).toEqual({ images: 5 });
    });

    it('counters: 100 increments at once lose none', async () => {
      const state = openState();
      const hash = keys('count-race');
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          state.increment([
            { hash, field: 'images' },
            { hash, field: `member:${i % 4}` },
          ]),
        ),
      );
      expect(await state.counters(hash)).toEqual({
        images: 100,
        'member:0': 25,
        'member:1': 25,
        'member:2': 25,
        'member:3': 25,
      });
    });

    it('counters: a hash expires its TTL after its last change', async () => {
      const state = openState();
      const hash = keys('count-ttl');
      await state.increment([{ hash, field: 'images' }], 100);
      expect(await state.counters(hash)).toEqual({ images: 1 });
      // Redis expires keys on its own clock (see the claims' TTL case).
      await vi.waitFor(async () => expect(await state.counters(hash)).toEqual({}), { timeout: 5_000, interval: 20 });
    });

    it('usage ledger: a job recorded twice (a replayed step) is counted once', async () => {
      const state = openState();
      const ledger = createUsageLedger(state);
      const guildId = keys('guild');
      const finishedAt = Date.UTC(2026, 0, 31, 23, 59);
      const done = job(keys('usage-job'), {
        guildId,
        state: 'delivered',
        completedAt: finishedAt - 1_000,
        finishedAt,
        nsfw: { flagged: true, hasNsfwContents: true, detectionResult: null },
      });
      await Promise.all([ledger.record(done), ledger.record(done)]);
      await ledger.record(done);
      expect(await ledger.day(guildId, '2026-01-31')).toEqual({
        images: 1,
        edits: 0,
        upscales: 0,
        failed: 0,
        flagged: 1,
        members: { '1': 1 },
      });
      expect((await ledger.guilds('2026-01-31'))[guildId]).toBe(1);
      expect(await ledger.day(guildId, '2026-02-01')).toEqual({
        images: 0,
        edits: 0,
        upscales: 0,
        failed: 0,
        flagged: 0,
        members: {},
      });
    });

    it('lists: appends keep the last entries, in order, values as they were', async () => {
      const state = openState();
      const list = keys('list');
      expect(await state.list(list)).toEqual([]);
      expect(await state.append(list, [1, { ms: 7_000, at: 1_700_000_000_000 }], 3)).toEqual([
        1,
        { ms: 7_000, at: 1_700_000_000_000 },
      ]);
      expect(await state.append(list, ['三', null, 5], 3)).toEqual(['三', null, 5]);
      // Appending nothing changes nothing.
      expect(await state.append(list, [], 3)).toEqual(['三', null, 5]);
      expect(await state.list(list)).toEqual(['三', null, 5]);
      // Lists are independent of each other and of sets and claims of the same name.
      expect(await state.list(keys('list-other'))).toEqual([]);
      expect(await state.members(list)).toEqual([]);
      expect(await state.read(list)).toBeUndefined();
    });

    it('lists: 40 appends at once lose none but those trimmed, and each returns the list with its own entry', async () => {
      const state = openState();
      const list = keys('list-race');
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => state.append(list, [i], 30)));
      for (const [i, result] of results.entries()) expect(result).toContain(i);
      const kept = (await state.list(list)) as number[];
      expect(kept).toHaveLength(30);
      expect(new Set(kept).size).toBe(30);
    });

    it('claims and set members survive closing and reopening the store', async () => {
      const before = openState();
      await before.claim(keys('reopen'), audit('alice'));
      await before.add(keys('reopen-set'), 'u1');
      await before.add(keys('reopen-set'), 'u2');
      await closeState(before);

      const after = openState();
      expect(await after.claim(keys('reopen'), audit('bob'))).toEqual({ won: false, holder: audit('alice') });
      expect(await after.read<Audit>(keys('reopen'))).toEqual(audit('alice'));
      expect((await after.members(keys('reopen-set'))).sort()).toEqual(['u1', 'u2']);
      expect(await after.add(keys('reopen-set'), 'u1')).toBe(false);
    });

    it('counters survive closing and reopening the store', async () => {
      const before = openState();
      await before.increment([{ hash: keys('reopen-count'), field: 'images', by: 7 }], 60_000);
      await closeState(before);
      const after = openState();
      await after.increment([{ hash: keys('reopen-count'), field: 'images' }], 60_000);
      expect(await after.counters(keys('reopen-count'))).toEqual({ images: 8 });
    });
  });
}

describeStorage('memory', async () => ({ url: 'memory://', cleanup: async () => undefined }));

describeStorage('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qi-sqlite-'));
  return {
    url: `sqlite://${join(dir, 'nested', 'bot.sqlite')}`,
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

describe.skipIf(skipWithoutRedis)('redis', () => {
  describeStorage('redis', async () => {
    const redis = await startRedis();
    return { url: redis.url, cleanup: redis.stop };
  });

  /**
   * Several bot processes sharing one Redis, modelled by separately opened instances (one
   * connection each): atomicity comes from the server. Redis only on purpose: SQLite and memory
   * are documented single-process backends whose operations are serialised per key within one
   * instance, so two instances on one SQLite file (or the memory map) are not a supported setup.
   */
  describe('shared state across processes', () => {
    let redis: Awaited<ReturnType<typeof startRedis>>;
    const states: SharedState[] = [];
    const openState = () => {
      const state = openSharedState(redis.url);
      states.push(state);
      return state;
    };
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await Promise.all(states.map((state) => state.close()));
      await redis.stop();
    });

    it('20 moderators clicking at once in two processes give exactly one winner', async () => {
      const processes = [openState(), openState()];
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => processes[i % 2]!.claim('race', audit(`m${i}`))),
      );
      const winners = results.flatMap((r, i) => (r.won ? [i] : []));
      expect(winners).toHaveLength(1);
      const winner = audit(`m${winners[0]}`);
      expect(results.filter((r) => !r.won)).toEqual(Array.from({ length: 19 }, () => ({ won: false, holder: winner })));
      expect(await processes[0]!.read<Audit>('race')).toEqual(winner);
      expect(await processes[1]!.read<Audit>('race')).toEqual(winner);
    });

    it('a claim in one process racing a release in another is never told it lost to a key nobody holds', async () => {
      await claimAgainstRelease(openState(), openState(), 'release-race');
    });

    it('set members added from two processes at once all land, and one member is added once', async () => {
      const processes = [openState(), openState()];
      const added = await Promise.all(Array.from({ length: 20 }, (_, i) => processes[i % 2]!.add('many', `u${i}`)));
      expect(added).toEqual(Array.from({ length: 20 }, () => true));
      expect((await processes[1]!.members('many')).sort()).toEqual(
        Array.from({ length: 20 }, (_, i) => `u${i}`).sort(),
      );

      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => processes[i % 2]!.add('same', 'u1')));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('list entries appended from two processes at once all land', async () => {
      const processes = [openState(), openState()];
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => processes[i % 2]!.append('durations', [i], 30)),
      );
      for (const [i, result] of results.entries()) expect(result).toContain(i);
      expect(((await processes[0]!.list('durations')) as number[]).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, i) => i),
      );
    });

    it('counters incremented from two processes at once add up exactly, and a job is counted once', async () => {
      const processes = [openState(), openState()];
      await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          processes[i % 2]!.increment(
            [
              { hash: 'usage-race', field: 'images' },
              { hash: 'usage-race', field: `member:${i % 3}` },
            ],
            60_000,
          ),
        ),
      );
      expect(await processes[0]!.counters('usage-race')).toMatchObject({ images: 200 });
      const ledgers = processes.map((p) => createUsageLedger(p));
      const done = job('twice', { state: 'failed', completedAt: 5, finishedAt: 10 });
      await Promise.all(Array.from({ length: 10 }, (_, i) => ledgers[i % 2]!.record(done)));
      expect(await ledgers[1]!.day('2', '1970-01-01')).toEqual({
        images: 1,
        edits: 0,
        upscales: 0,
        failed: 1,
        flagged: 0,
        members: { '1': 1 },
      });
    });
  });

  it('a dropped Redis connection neither brings the bot process down nor stops it from shutting down', async () => {
    const lost = await startRedis();
    const state = openSharedState(lost.url);
    const admin = connect(Number(new URL(lost.url).port), '127.0.0.1').resume();
    let closed = false;
    try {
      await once(admin, 'connect');
      expect(await state.claim('k', audit('alice'))).toEqual({ won: true });

      // The server drops the state's connection (every client but this one). An unhandled 'error'
      // event would be thrown there (Vitest fails the run on it). A read can only succeed on a new
      // connection, so once one does, the drop has been seen and survived.
      const killed = once(admin, 'data');
      admin.write('CLIENT KILL TYPE normal\r\n');
      expect(String((await killed)[0])).toMatch(/^:[1-9]/);
      await vi.waitFor(async () => expect(await state.read<Audit>('k')).toEqual(audit('alice')), {
        timeout: 3_000,
        interval: 20,
      });

      // Shutting down while Redis is gone must finish, not wait for a reconnection. A read fails
      // only once the state's client has lost its connection, so the shutdown starts from there.
      await lost.stop();
      await expect(state.read('k')).rejects.toThrow(/offline|closed unexpectedly/i);
      await state.close();
      closed = true;
    } finally {
      admin.destroy();
      await lost.stop();
      // Only when the case failed before closing: don't leave a client reconnecting forever.
      if (!closed) void state.close();
    }
  }, 8_000);
});
