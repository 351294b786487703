import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Keyv from 'keyv';
import { openStorage } from '../../src/storage.ts';
import { createJobStore } from '../../src/jobs/store.ts';
import { createDurationEstimator } from '../../src/jobs/estimator.ts';
import type { Job } from '../../src/jobs/types.ts';
import { hasRedis, startRedis } from '../fakes/redis.ts';

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
    beforeAll(async () => ({ url, cleanup } = await setup()));
    afterAll(async () => {
      await Promise.all(opened.map((kv) => kv.disconnect()));
      await cleanup();
    });

    it('saves and reads a job exactly, unicode included', async () => {
      const store = createJobStore(open(`a-${name}`));
      await store.save(job('j1', { taskId: 't1', state: 'polling' }));
      expect(await store.get('j1')).toEqual(job('j1', { taskId: 't1', state: 'polling' }));
      expect(await store.get('missing')).toBeUndefined();
    });

    it('lists active jobs until they finish, across store instances', async () => {
      const ns = `b-${name}`;
      const first = createJobStore(open(ns));
      await Promise.all([first.save(job('x1')), first.save(job('x2', { state: 'polling', taskId: 't' })), first.save(job('x3'))]);
      await first.save(job('x3', { state: 'delivered' }));
      const second = createJobStore(open(ns));
      expect((await second.listActive()).map((j) => j.id).sort()).toEqual(['x1', 'x2']);
      expect((await second.get('x3'))?.state).toBe('delivered');
    });

    it('keeps observed durations across restarts', async () => {
      const ns = `c-${name}`;
      const before = createDurationEstimator({ store: open(ns) });
      await before.record('1024*1024', 7_000);
      await before.record('1024*1024', 9_000);
      const after = createDurationEstimator({ store: open(ns) });
      await after.load();
      expect(after.estimate('1024*1024')).toMatchObject({ expectedMs: 8_000, samples: 2 });
    });
  });
}

describeStorage('memory', async () => ({ url: 'memory://', cleanup: async () => undefined }));

describeStorage('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qi-sqlite-'));
  return { url: `sqlite://${join(dir, 'nested', 'bot.sqlite')}`, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
});

describe.skipIf(!hasRedis)('redis', () => {
  describeStorage('redis', async () => {
    const redis = await startRedis();
    return { url: redis.url, cleanup: redis.stop };
  });
});
