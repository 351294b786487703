// The storage health (src/storage/health.ts) on its own: the probe loop with injected timers,
// writes kept in memory through an outage, and what operators are told.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createJobStore } from '../../src/jobs/store.ts';
import type { Job } from '../../src/domain/job.ts';
import { createLogger } from '../../src/logger.ts';
import { createStorageHealth, type Timers } from '../../src/storage/health.ts';
import { openSharedState, openStorage, redactStorageUrl, storageSecrets } from '../../src/storage/open.ts';
import { freePort, skipWithoutRedis, startRedis } from '../fakes/redis.ts';
import { Writable } from 'node:stream';
import { createMemoryKeyValue, type KeyValue } from '../../src/storage/key-value.ts';
import { describeStorageError, StorageUnavailableError, storageFailureMessage } from '../../src/storage/errors.ts';
import { keepWhileUnavailable } from '../../src/storage/kept.ts';
import { startStorageHealth } from '../../src/storage/start.ts';

/** Lets pending promise callbacks run. */
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** Timers that only move when the test says so. */
function manualClock() {
  let now = 0;
  let seq = 0;
  const due: { at: number; fn: () => void; id: number }[] = [];
  const timers: Timers = {
    setTimeout(fn, ms) {
      due.push({ at: now + ms, fn, id: ++seq });
      return seq;
    },
    clearTimeout(id) {
      const at = due.findIndex((d) => d.id === id);
      if (at >= 0) due.splice(at, 1);
    },
  };
  return {
    timers,
    now: () => now,
    scheduled: () => due.length,
    async advance(ms: number) {
      const end = now + ms;
      for (;;) {
        await settle();
        due.sort((a, b) => a.at - b.at || a.id - b.id);
        const next = due[0];
        if (!next || next.at > end) break;
        due.shift();
        now = next.at;
        next.fn();
      }
      now = end;
      await settle();
    },
  };
}

function captureLogs() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    secrets: [],
    destination: new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    }),
  });
  return { logger, lines, msgs: () => lines.map((l) => l.msg) };
}

/** A KeyValue whose backend can be switched off: every call then fails, or hangs. */
function flakyKeyValue() {
  const inner = createMemoryKeyValue();
  let mode: 'up' | 'down' | 'hang' = 'up';
  let unhang = () => undefined as void;
  let hung = new Promise<void>((resolve) => (unhang = resolve));
  const writes: string[] = [];
  const gate = async () => {
    if (mode === 'down')
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6390'), { code: 'ECONNREFUSED' });
    // No answer until the mode changes, then a failure, like a Redis command's own timeout.
    if (mode === 'hang') {
      await hung;
      throw new Error('command timed out');
    }
  };
  const kv: KeyValue = {
    async get(key) {
      await gate();
      return inner.get(key);
    },
    async set(key, value, ttl) {
      await gate();
      writes.push(key);
      return inner.set(key, value, ttl);
    },
    async delete(key) {
      await gate();
      writes.push(`-${key}`);
      return inner.delete(key);
    },
  };
  const set = (next: typeof mode) => {
    mode = next;
    unhang();
    hung = new Promise<void>((resolve) => (unhang = resolve));
  };
  return { kv, inner, writes, set };
}

describe('createStorageHealth', () => {
  it('flips to unavailable when a probe fails, back when one succeeds, and tells listeners once each time', async () => {
    const clock = manualClock();
    const { logger, lines } = captureLogs();
    let up = true;
    const health = createStorageHealth({
      probe: async () => {
        if (!up) throw new Error('down');
      },
      intervalMs: 2_000,
      timeoutMs: 1_000,
      now: clock.now,
      timers: clock.timers,
      logger,
    });
    const changes: boolean[] = [];
    health.onChange((ok) => changes.push(ok));
    health.start();
    expect(health.healthy()).toBe(true);
    await clock.advance(2_000);
    expect(changes).toEqual([]);

    up = false;
    await clock.advance(2_000);
    expect(health.healthy()).toBe(false);
    await clock.advance(6_000);
    expect(changes).toEqual([false]);

    up = true;
    await clock.advance(2_000);
    expect(health.healthy()).toBe(true);
    expect(changes).toEqual([false, true]);
    const down = lines.find((l) => l.msg === 'storage unavailable: new requests are paused until it answers again');
    expect(down?.reason).toBe('down');
    expect(lines.find((l) => l.msg === 'storage available again: accepting new requests')?.downMs).toBe(8_000);
    health.stop();
    expect(clock.scheduled()).toBe(0);
  });

  it('probes more often while the storage is down, to notice its return sooner', async () => {
    const clock = manualClock();
    let up = true;
    let probes = 0;
    const health = createStorageHealth({
      probe: async () => {
        probes++;
        if (!up) throw new Error('down');
      },
      intervalMs: 5_000,
      unavailableIntervalMs: 1_000,
      timers: clock.timers,
      now: clock.now,
    });
    health.start();
    await clock.advance(10_000);
    expect(probes).toBe(2);
    up = false;
    await clock.advance(5_000);
    expect(health.healthy()).toBe(false);
    await clock.advance(3_000);
    expect(probes).toBe(6);
    up = true;
    await clock.advance(1_000);
    expect(health.healthy()).toBe(true);
    health.stop();
  });

  it('counts a probe that does not answer in time as a failure', async () => {
    const clock = manualClock();
    let hang = false;
    const health = createStorageHealth({
      probe: () => (hang ? new Promise<void>(() => undefined) : Promise.resolve()),
      intervalMs: 2_000,
      timeoutMs: 1_500,
      timers: clock.timers,
      now: clock.now,
    });
    health.start();
    hang = true;
    await clock.advance(3_000);
    expect(health.healthy()).toBe(true);
    await clock.advance(500);
    expect(health.healthy()).toBe(false);
    hang = false;
    // The next probe starts 2 s after the failed one ended.
    await clock.advance(2_000);
    expect(health.healthy()).toBe(true);
    health.stop();
  });

  it('probes at once when an operation fails, once for many reports, and never while stopped', async () => {
    const clock = manualClock();
    let probes = 0;
    let up = true;
    const health = createStorageHealth({
      probe: async () => {
        probes++;
        if (!up) throw new Error('down');
      },
      intervalMs: 60_000,
      timers: clock.timers,
      now: clock.now,
    });
    health.suspect(new Error('ignored: not started'));
    await settle();
    expect(probes).toBe(0);
    health.start();
    up = false;
    for (let i = 0; i < 5; i++) health.suspect(new Error('write failed'));
    await settle();
    expect(probes).toBe(1);
    expect(health.healthy()).toBe(false);
    // While unavailable, reports add nothing: the periodic probe watches for its return.
    health.suspect(new Error('again'));
    await settle();
    expect(probes).toBe(1);
    up = true;
    expect(await health.check()).toBe(true);
    health.stop();
  });

  it('keeps notifying the other listeners when one throws', async () => {
    const { logger, msgs } = captureLogs();
    const health = createStorageHealth({ probe: () => Promise.reject(new Error('down')), logger });
    const seen: boolean[] = [];
    health.onChange(() => {
      throw new Error('bad listener');
    });
    const off = health.onCheck((ok) => seen.push(ok));
    await health.check();
    off();
    await health.check();
    expect(seen).toEqual([false]);
    expect(msgs()).toContain('storage health listener failed');
  });
});

const job = (id: string, state: Job['state'], over: Partial<Job> = {}): Job => ({
  id,
  prompt: 'a lighthouse',
  size: '1024*1024',
  userId: '1',
  userName: 'alice',
  guildId: '2',
  channelId: '3',
  channelNsfw: false,
  locale: 'en-US',
  state,
  reply: { applicationId: '4', token: 'tok', createdAt: 1 },
  createdAt: 1,
  polls: 0,
  ...over,
});

describe('keepWhileUnavailable', () => {
  function setup() {
    const clock = manualClock();
    const flaky = flakyKeyValue();
    let up = true;
    const { logger, lines, msgs } = captureLogs();
    const health = createStorageHealth({
      probe: async () => {
        if (!up) throw new Error('down');
      },
      intervalMs: 1_000,
      timeoutMs: 500,
      timers: clock.timers,
      now: clock.now,
      logger,
    });
    const kept = keepWhileUnavailable(flaky.kv, health, {
      name: 'jobs',
      logger,
      timeoutMs: 3_000,
      timers: clock.timers,
    });
    health.start();
    return {
      clock,
      flaky,
      health,
      kept,
      lines,
      msgs,
      outage(down: boolean) {
        up = !down;
        flaky.set(down ? 'down' : 'up');
      },
      /** Only the probe's view: the backend's own calls are set with `flaky.set`. */
      probeUp(value: boolean) {
        up = value;
      },
    };
  }

  it('writes through while the storage answers', async () => {
    const { kept, flaky } = setup();
    await kept.set('a', { n: 1 });
    expect(await flaky.inner.get('a')).toEqual({ n: 1 });
    expect(await kept.get('a')).toEqual({ n: 1 });
    await kept.delete('a');
    expect(await flaky.inner.get('a')).toBeUndefined();
    expect(kept.pending()).toBe(0);
  });

  it('keeps a job’s writes through an outage, answers reads from them, and saves the newest values when it ends', async () => {
    const t = setup();
    const store = createJobStore(t.kept);
    const j1 = job('j1', 'queued');
    await store.save(j1);
    await store.save(job('j2', 'polling', { taskId: 't2' }));

    t.outage(true);
    await t.clock.advance(1_000);
    expect(t.health.healthy()).toBe(false);
    const writesBefore = t.flaky.writes.length;
    // A job in progress goes on: nothing it saves fails, and nothing reaches the backend yet.
    for (const state of ['polling', 'delivering', 'delivered'] as const)
      await store.save(Object.assign(j1, { state, taskId: 't1' }));
    await store.save(job('j3', 'queued'));
    expect(t.flaky.writes.length).toBe(writesBefore);
    expect((await store.get('j1'))?.state).toBe('delivered');
    await expect(t.kept.get('unknown')).rejects.toThrow(/unavailable/);
    expect(
      t.msgs().filter((m) => m === 'storage unavailable: keeping writes in memory until it answers again'),
    ).toHaveLength(1);

    t.outage(false);
    await t.clock.advance(1_000);
    expect(t.health.healthy()).toBe(true);
    expect(t.kept.pending()).toBe(0);
    // A fresh store on the backend itself sees what the jobs did during the outage.
    const after = createJobStore(t.flaky.inner);
    expect((await after.get('j1'))?.state).toBe('delivered');
    expect((await after.listActive()).map((j) => j.id).sort()).toEqual(['j2', 'j3']);
    expect(t.lines.find((l) => l.msg === 'writes kept while the storage was unavailable are saved')).toMatchObject({
      namespace: 'jobs',
      left: 0,
    });
  });

  it('keeps a write that fails before the outage is known, and a write the backend does not answer in time', async () => {
    const t = setup();
    t.flaky.set('down');
    await t.kept.set('a', 1);
    expect(t.kept.pending()).toBe(1);
    t.flaky.set('hang');
    const slow = t.kept.set('b', 2);
    await t.clock.advance(3_000);
    await slow;
    expect(await t.kept.get('b')).toBe(2);
    // The flush that followed is stuck behind the backend too, until it answers again.
    expect(t.kept.pending()).toBe(2);
    t.flaky.set('up');
    await t.clock.advance(1_000);
    expect(await t.flaky.inner.get('a')).toBe(1);
    expect(await t.flaky.inner.get('b')).toBe(2);
    expect(t.kept.pending()).toBe(0);
  });

  it('never lets an older value overwrite a newer one, and keeps a snapshot of what was written', async () => {
    const t = setup();
    t.outage(true);
    await t.clock.advance(1_000);
    const value = { state: 'polling' };
    await t.kept.set('j', value);
    value.state = 'changed after the write';
    await t.kept.set('k', 1);
    await t.kept.delete('k');
    expect(await t.kept.get('j')).toEqual({ state: 'polling' });
    expect(await t.kept.get('k')).toBeUndefined();
    t.outage(false);
    await t.clock.advance(1_000);
    expect(await t.flaky.inner.get('j')).toEqual({ state: 'polling' });
    expect(t.flaky.writes.filter((w) => w.endsWith('k'))).toEqual(['-k']);
  });

  it('stops a flush when the storage goes away again, and finishes it on the next success', async () => {
    const t = setup();
    t.outage(true);
    await t.clock.advance(1_000);
    await t.kept.set('a', 1);
    await t.kept.set('b', 2);
    // The probe passes but writes still fail: the flush stops at the first and keeps the rest.
    t.probeUp(true);
    await t.clock.advance(1_000);
    expect(t.kept.pending()).toBe(2);
    expect(t.msgs()).toContain('could not yet save the writes kept while the storage was unavailable');
    t.outage(false);
    await t.clock.advance(2_000);
    expect(t.kept.pending()).toBe(0);
    expect(await t.flaky.inner.get('b')).toBe(2);
  });
});

describe('what operators are told', () => {
  it('never shows a Redis password', () => {
    expect(redactStorageUrl('redis://user:pa55word@db.internal:6379/0')).toBe('redis://***@db.internal:6379/0');
    expect(redactStorageUrl('rediss://:pa55word@db:6380')).toBe('rediss://***@db:6380');
    expect(redactStorageUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactStorageUrl('sqlite://./data/x.sqlite')).toBe('sqlite://./data/x.sqlite');
    expect(storageSecrets('redis://user:pa%2455word@db:6379')).toEqual(['pa$55word']);
    expect(storageSecrets('redis://db:6379')).toEqual([]);
    expect(storageSecrets('sqlite://./x.sqlite')).toEqual([]);
    const message = storageFailureMessage(
      'redis://user:pa55word@db:6379',
      new Error('WRONGPASS invalid username-password pair or user is disabled.'),
    );
    expect(message).toBe(
      'the Redis storage at STORAGE_URL (redis://***@db:6379) cannot be reached: authentication failed (check the user and password in the URL). Check STORAGE_URL in .env, start Redis, or use the default SQLite file (remove STORAGE_URL).',
    );
    expect(describeStorageError(new Error('failed at redis://u:secret@host:1'))).toBe('failed at redis://***@host:1');
  });

  it('names the cause in a few words', () => {
    expect(
      describeStorageError(
        Object.assign(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]), {}),
      ),
    ).toBe('connection refused');
    expect(
      describeStorageError(
        Object.assign(new Error('SQLITE_READONLY: attempt to write a readonly database'), { code: 'SQLITE_READONLY' }),
      ),
    ).toBe('the database file is read-only');
    expect(describeStorageError(new Error('Connection timeout'))).toBe('the connection timed out');
    expect(describeStorageError('odd')).toBe('odd');
  });
});

describe('startStorageHealth', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qi-health-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const open = (url: string) => ({
    namespaces: ['jobs', 'stats'].map((ns) => openStorage(url, ns)),
    shared: openSharedState(url),
  });

  it('passes on a working SQLite file and watches it', async () => {
    const url = `sqlite://${join(dir, 'ok', 'bot.sqlite')}`;
    const { namespaces, shared } = open(url);
    const { logger } = captureLogs();
    const storage = await startStorageHealth({ storageUrl: url, namespaces, shared, logger });
    expect(storage.healthy()).toBe(true);
    expect(await storage.health.check()).toBe(true);
    const kept = storage.keep(namespaces[0]!, 'jobs');
    await kept.set('x', 1);
    expect(await namespaces[0]!.get('x')).toBe(1);
    await storage.stop();
    await Promise.all([...namespaces.map((kv) => kv.disconnect()), shared.close()]);
  });

  it('refuses an SQLite path whose folder cannot be created, naming STORAGE_URL and the folder', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a folder');
    const url = `sqlite://${file}/sub/bot.sqlite`;
    const { namespaces, shared } = open(url);
    const error = await startStorageHealth({ storageUrl: url, namespaces, shared, logger: captureLogs().logger }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StorageUnavailableError);
    expect((error as Error).message).toBe(
      `the SQLite storage at STORAGE_URL (${url}) cannot be opened or written: the folder ${file}/sub cannot be created (part of the path is a file, not a folder). Check STORAGE_URL in .env: it must name an SQLite file in a folder the bot can create and write to.`,
    );
  });

  it.skipIf(skipWithoutRedis)(
    'refuses a Redis nobody listens on once its 5 s start timeout runs out, with the cause',
    async () => {
      const url = `redis://bot:hunter22@127.0.0.1:${await freePort()}`;
      const { namespaces, shared } = open(url);
      // The start's own timers on a clock the test moves: the Redis client keeps retrying for real.
      const clock = manualClock();
      const connectionRefused = new Promise<void>((resolve) => namespaces[0]!.on('error', () => resolve()));
      let gaveUp = false;
      const outcome = startStorageHealth({
        storageUrl: url,
        namespaces,
        shared,
        logger: captureLogs().logger,
        timers: clock.timers,
      }).catch((e: unknown) => {
        gaveUp = true;
        return e;
      });
      // Once the connection has been refused, the start knows the cause; then its 5 s pass, and
      // the 1 s it allows for closing what it opened.
      await connectionRefused;
      await clock.advance(6_000);
      expect(gaveUp, 'still starting after 6 s on its own clock').toBe(true);
      const error = await outcome;
      expect((error as Error).message).toMatch(
        /^the Redis storage at STORAGE_URL \(redis:\/\/\*\*\*@127\.0\.0\.1:\d+\) cannot be reached: connection refused\. /,
      );
      expect((error as Error).message).not.toContain('hunter22');
    },
  );

  it.skipIf(skipWithoutRedis)('sees Redis go away at once and come back by itself', async () => {
    const redis = await startRedis();
    const { namespaces, shared } = open(redis.url);
    const { logger, msgs } = captureLogs();
    const storage = await startStorageHealth({ storageUrl: redis.url, namespaces, shared, logger, intervalMs: 200 });
    try {
      const changes: boolean[] = [];
      const changed = () =>
        new Promise<boolean>((resolve) => {
          const off = storage.health.onChange((ok) => {
            off();
            resolve(ok);
          });
        });
      const down = changed();
      await redis.down();
      changes.push(await down);
      const kept = storage.keep(namespaces[0]!, 'jobs');
      await kept.set('during', { n: 1 });
      const up = changed();
      await redis.up();
      changes.push(await up);
      expect(changes).toEqual([false, true]);
      await expect.poll(() => kept.pending()).toBe(0);
      expect(await namespaces[0]!.get('during')).toEqual({ n: 1 });
      expect(msgs()).toContain('storage unavailable: new requests are paused until it answers again');
    } finally {
      await storage.stop();
      await Promise.all([...namespaces.map((kv) => kv.disconnect()), shared.close()]);
      await redis.stop();
    }
  });
});
