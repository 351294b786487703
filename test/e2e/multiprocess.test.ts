// Two bot processes (one gateway shard each) sharing one real Redis, jobs on BullMQ: one is
// killed with SIGKILL in the middle of its tasks, and the other finishes them.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeDiscord, type FakeDiscord } from '../fakes/discord/server.ts';
import type { FakeInteraction } from '../fakes/discord/server.ts';
import { startFakePpinfra, type FakePpinfra } from '../fakes/ppinfra.ts';
import { skipWithoutRedis, startRedis } from '../fakes/redis.ts';
import { finished } from './harness.ts';
import { sharedRedisEnv, startShardProcess } from './shard-process.ts';

const children: ChildProcess[] = [];
let discord: FakeDiscord | undefined;
let api: FakePpinfra | undefined;
let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let cwd: string | undefined;

afterEach(async () => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await discord?.stop();
  await api?.close();
  await redis?.stop();
  if (cwd) rmSync(cwd, { recursive: true, force: true });
  discord = api = redis = cwd = undefined;
});

describe.skipIf(skipWithoutRedis)('two bot processes on one Redis', () => {
  it('deliver every image exactly once, with one submission each and exact quotas, when one is killed mid-task', async () => {
    redis = await startRedis();
    cwd = mkdtempSync(join(tmpdir(), 'qi-multi-'));
    discord = await startFakeDiscord({ shards: 2, guilds: [{ name: 'Alpha' }, { name: 'Beta' }] });
    // Long enough that the killed process surely holds tasks still generating.
    api = await startFakePpinfra({ script: () => ({ processingMs: 2_500 }) });
    const env = sharedRedisEnv(
      { discord, api, redis },
      { QUEUE_LOCK_MS: '2000', USER_HOURLY_QUOTA: '5', USER_MAX_CONCURRENT: '5' },
    );
    const [alpha, beta] = discord.guilds;
    const doomed = await startShardProcess(discord.shardOf(alpha!.id), env, cwd, children);
    await startShardProcess(discord.shardOf(beta!.id), env, cwd, children);

    // 20 requests, 10 in each guild: five each from alice and bob in Alpha, mod and owner in Beta.
    const asked: FakeInteraction[] = [];
    const askers: [typeof alpha, string][] = [
      [alpha, 'alice'],
      [alpha, 'bob'],
      [beta, 'mod'],
      [beta, 'owner'],
    ];
    for (const [guild, user] of askers) {
      for (let i = 0; i < 5; i++)
        asked.push(discord.slash('imagine', { prompt: `${guild!.name} ${user} ${i}` }, { guild: guild!.id, user }));
    }
    await Promise.all(asked.map((it) => it.waitForCallback({ timeoutMs: 15_000 })));
    expect(asked.every((it) => it.response?.type === 5)).toBe(true);
    // Every job is generating (its task id saved: a process killed between sending a submit and
    // saving its id leaves a job the others must report, not resend); then the process serving
    // Alpha dies without a word, whatever steps of either guild it holds.
    await Promise.all(
      asked.map((it) => it.waitForOriginal((m) => m.content.includes('Generating'), { timeoutMs: 15_000 })),
    );
    doomed.child.kill('SIGKILL');
    await doomed.exited;

    const messages = await Promise.all(asked.map((it) => it.waitForOriginal(finished, { timeoutMs: 30_000 })));
    expect(messages.filter((m) => m.attachments.length !== 1).map((m) => m.content)).toEqual([]);
    // Exactly one submission per request, and each image posted exactly once.
    expect(api.requests.filter((r) => r.route === 'submit' && r.status === 200)).toHaveLength(20);
    for (const it of asked) {
      const uploads = discord.requests.filter((r) => r.files.length > 0 && r.path.includes(it.token));
      expect(uploads).toHaveLength(1);
    }
    // Quotas exact and shared: alice asked five times through the dead process, so the living
    // one refuses her sixth in the other guild; a member who asked nothing is served.
    const sixth = discord.slash('imagine', { prompt: 'one more' }, { guild: beta!.id, user: 'alice' });
    expect(((await sixth.waitForCallback({ timeoutMs: 10_000 })).data as { content: string }).content).toMatch(
      /limit of 5 images per hour/,
    );
    expect(api.requests.filter((r) => r.route === 'submit')).toHaveLength(20);
  });
});
