// Stored job records across versions of the bot: older ones are read and upgraded, newer ones
// (after a downgrade) are left alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createJobStore, JOB_SCHEMA, readJob } from '../../src/jobs/store.ts';
import { openStorage } from '../../src/storage/open.ts';

/** A job record as the bot before schema versions wrote it: no `schema`, no newer fields. */
const BEFORE_VERSIONS = {
  id: 'old1',
  state: 'polling',
  prompt: 'a lantern',
  size: '1024*1024',
  userId: 'u1',
  userName: 'alice',
  guildId: 'g1',
  channelId: 'c1',
  channelNsfw: false,
  locale: 'en-US',
  reply: { applicationId: 'a', token: 't', createdAt: 1 },
  createdAt: 1,
  taskId: 'task-1',
  submittedAt: 2,
};

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
const sqlite = () => {
  dir = mkdtempSync(join(tmpdir(), 'qi-store-'));
  return openStorage(`sqlite://${join(dir, 'jobs.sqlite')}`, 'jobs');
};

describe('job records across versions', () => {
  it('reads a record from before schema versions, resumes it, and writes it back with the current version', async () => {
    const kv = sqlite();
    await kv.set('job:old1', BEFORE_VERSIONS);
    await kv.set('active', ['old1']);
    const store = createJobStore(kv);
    const [resumed] = await store.listActive();
    expect(resumed).toMatchObject({ id: 'old1', taskId: 'task-1', polls: 0, schema: JOB_SCHEMA });
    await store.save({ ...resumed!, state: 'delivered' });
    expect(await kv.get('job:old1')).toMatchObject({ schema: JOB_SCHEMA, state: 'delivered', prompt: 'a lantern' });
    await kv.disconnect();
  });

  it('leaves a record written by a newer version alone: not resumed, not returned, not rewritten', async () => {
    const kv = sqlite();
    const newer = { ...BEFORE_VERSIONS, id: 'new1', schema: JOB_SCHEMA + 1, polls: 3, somethingNew: { x: 1 } };
    await kv.set('job:new1', newer);
    await kv.set('active', ['new1']);
    const store = createJobStore(kv);
    expect(await store.listActive()).toEqual([]);
    expect(await store.get('new1')).toBeUndefined();
    expect(await kv.get('job:new1')).toEqual(newer);
    await kv.disconnect();
  });

  it('treats what is not a job as nothing', () => {
    for (const value of [undefined, null, 'job', 42, [], { state: 'polling' }]) expect(readJob(value)).toBeUndefined();
  });
});
