// `npm run start:sharded` as operators run it: discord.js' ShardingManager spawning one
// `src/main.ts` process per shard, against a fake Discord of two shards (one guild on each),
// a real Redis the shards share, and the fake PPInfra; configured only by environment variables.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { startFakeDiscord, type FakeDiscord } from '../fakes/discord/server.ts';
import { startFakePpinfra, type FakePpinfra } from '../fakes/ppinfra.ts';
import { skipWithoutRedis, startRedis } from '../fakes/redis.ts';
import { finished } from './harness.ts';

const ROOT = join(import.meta.dirname, '..', '..');

type LogLine = Record<string, unknown>;
interface Proc {
  child: ChildProcess;
  exited: Promise<number | null>;
  output(): { stdout: string; stderr: string };
  /** JSON lines written so far by the manager and the shards (they share its stdout). */
  lines(): LogLine[];
  /** Resolves once `count` lines (already written or to come) match. */
  waitForLines(predicate: (line: LogLine) => boolean, count?: number): Promise<LogLine[]>;
}

let discord: FakeDiscord | undefined;
let api: FakePpinfra | undefined;
let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let cwd: string | undefined;
const procs: Proc[] = [];

afterEach(async () => {
  // Each run is a process group (manager + shards): nothing outlives a failed test.
  for (const proc of procs.splice(0)) {
    if (proc.child.exitCode === null && proc.child.signalCode === null) {
      try {
        process.kill(-proc.child.pid!, 'SIGKILL');
      } catch {}
      await proc.exited;
    }
  }
  await discord?.stop();
  await api?.close();
  await redis?.stop();
  if (cwd) rmSync(cwd, { recursive: true, force: true });
  discord = api = redis = cwd = undefined;
});

function start(command: string, args: string[], env: Record<string, string>, dir = ROOT): Proc {
  const child = spawn(command, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  const lines: LogLine[] = [];
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    partial += d.toString();
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    for (const text of complete) {
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {}
    }
    for (const wake of waiters) wake();
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  // A failure in CI is explained by what the processes said: their warnings and errors go with the report.
  onTestFailed(() => {
    for (const line of lines.filter((l) => Number(l.level) >= 40).slice(-40))
      console.error('sharded log:', JSON.stringify(line).slice(0, 2_000));
    if (stderr) console.error('sharded stderr:', stderr.slice(-2_000));
  });
  const proc: Proc = {
    child,
    exited,
    output: () => ({ stdout, stderr }),
    lines: () => lines,
    waitForLines: (predicate, count = 1) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.filter(predicate);
          if (found.length < count) return;
          waiters.delete(check);
          resolve(found);
        };
        waiters.add(check);
        void exited.then((code) => {
          if (!waiters.has(check)) return;
          waiters.delete(check);
          reject(new Error(`exited (${code}) before ${count} matching line(s)\n${stdout}\n${stderr}`));
        });
        check();
      }),
  };
  procs.push(proc);
  return proc;
}

/** `node src/sharded.ts` (what `npm run start:sharded` runs) in an empty working directory: no stray .env. */
function sharded(env: Record<string, string>): Proc {
  cwd ??= mkdtempSync(join(tmpdir(), 'qi-sharded-'));
  return start(process.execPath, [join(ROOT, 'src', 'sharded.ts')], env, cwd);
}

const msg = (text: string) => (line: LogLine) => line.msg === text;

describe.skipIf(skipWithoutRedis)('npm run start:sharded on Redis', () => {
  it('runs one process per shard (count from /gateway/bot), each guild served by its shard, and stops cleanly on SIGTERM', {
    timeout: 90_000,
  }, async () => {
    redis = await startRedis();
    discord = await startFakeDiscord({ shards: 2, guilds: [{ name: 'Alpha' }, { name: 'Beta' }] });
    api = await startFakePpinfra({ script: () => ({ processingMs: 200 }) });
    expect([discord.shardOf('Alpha'), discord.shardOf('Beta')]).toEqual([0, 1]);
    const d = discord;

    const proc = sharded({
      DISCORD_TOKEN: d.token,
      DISCORD_API_URL: d.apiUrl,
      PPINFRA_API_KEY: api.apiKey,
      PPINFRA_BASE_URL: api.url,
      STORAGE_URL: redis.url,
    });
    await proc.waitForLines(msg('all shards ready'));
    await proc.waitForLines(msg('qwen-imagine is running'), 2);

    // The manager asked the fake for the shard count (DISCORD_API_URL, not discord.com), then each shard identified with its own.
    const first = d.requests[0]!;
    expect([first.method, first.route, first.headers.authorization]).toEqual(['GET', '/gateway/bot', 'Bot [redacted]']);
    const identifies = d.gateway.received.filter((p) => p.op === 2).map((p) => (p.d as { shard: number[] }).shard);
    expect(identifies).toEqual([
      [0, 2],
      [1, 2],
    ]);
    expect(
      proc
        .lines()
        .filter(msg('shard ready'))
        .map((l) => [l.shard, l.shards]),
    ).toEqual([
      [0, 2],
      [1, 2],
    ]);
    const spawned = proc
      .lines()
      .filter(msg('shard spawned'))
      .map((l) => l.pid as number);
    expect(new Set(spawned).size).toBe(2);
    // Each shard process sees the one guild its shard holds.
    expect(
      proc
        .lines()
        .filter(msg('logged in to Discord'))
        .map((l) => l.guilds),
    ).toEqual([1, 1]);

    const inAlpha = d.slash('imagine', { prompt: 'a lighthouse' }, { guild: 'Alpha' });
    const inBeta = d.slash('imagine', { prompt: 'a windmill' }, { guild: 'Beta', user: 'bob' });
    const [alpha, beta] = await Promise.all([
      inAlpha.waitForOriginal(finished, { timeoutMs: 15_000 }),
      inBeta.waitForOriginal(finished, { timeoutMs: 15_000 }),
    ]);
    const images = [...api.tasks.values()].map((t) => Buffer.from(t.image!));
    expect(images).toHaveLength(2);
    for (const message of [alpha, beta])
      expect(images.some((image) => d.files(message)[0]?.bytes.equals(image))).toBe(true);
    // Each interaction went to the session of its guild's shard only, and that shard answered it.
    const holders = (id: string) =>
      [...d.gateway.sessions.values()]
        .filter((s) =>
          s.history.some((h) => h.text.includes(`"t":"INTERACTION_CREATE"`) && h.text.includes(`"id":"${id}"`)),
        )
        .map((s) => s.shard[0]);
    expect([holders(inAlpha.id), holders(inBeta.id)]).toEqual([[0], [1]]);
    await proc.waitForLines(msg('job delivered'), 2);
    expect(api.requests.filter((r) => r.route === 'submit')).toHaveLength(2);

    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    // Every shard paused its jobs and exited; none was started again.
    expect(proc.lines().filter(msg('stopping: jobs in progress will resume on the next start'))).toHaveLength(2);
    expect(
      proc
        .lines()
        .filter(msg('shard stopped'))
        .map((l) => [l.shard, l.exitCode])
        .sort(),
    ).toEqual([
      [0, 0],
      [1, 0],
    ]);
    expect(proc.lines().filter(msg('shard spawned'))).toHaveLength(2);
    for (const pid of spawned) expect(() => process.kill(pid, 0)).toThrow();
    const { stdout, stderr } = proc.output();
    expect(stdout + stderr).not.toContain(d.token);
    expect(stdout + stderr).not.toContain(api.apiKey);
    expect(d.errors).toEqual([]);
  });
});

describe.skipIf(skipWithoutRedis)('npm run start:sharded stopped while starting', () => {
  it('SIGTERM while shards start (SHARD_COUNT=2): the ready shard stops, nothing is spawned after the signal, exit 0', {
    timeout: 60_000,
  }, async () => {
    redis = await startRedis();
    discord = await startFakeDiscord({ shards: 2, guilds: [{ name: 'Alpha' }, { name: 'Beta' }] });
    api = await startFakePpinfra();
    const proc = sharded({
      DISCORD_TOKEN: discord.token,
      DISCORD_API_URL: discord.apiUrl,
      PPINFRA_API_KEY: api.apiKey,
      PPINFRA_BASE_URL: api.url,
      STORAGE_URL: redis.url,
      SHARD_COUNT: '2',
    });
    expect((await proc.waitForLines(msg('starting shards')))[0]).toMatchObject({ shards: 2, source: 'SHARD_COUNT' });
    await proc.waitForLines(msg('qwen-imagine is running'));
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    // The signal usually comes in the pause before shard 1. A shard 0 slower to be ready than that
    // pause (a loaded machine) has shard 1 spawned as soon as it is: then that one is stopped too,
    // while it starts. Either way the manager's lines, in the order it wrote them, show nothing
    // spawned after the signal.
    const lines = proc.lines();
    const signalled = lines.findIndex(msg('stopping every shard: jobs in progress will resume on the next start'));
    expect(signalled).toBeGreaterThan(-1);
    expect(lines.slice(signalled).filter(msg('shard spawned'))).toEqual([]);
    const spawned = lines.filter(msg('shard spawned')).map((l) => l.shard);
    expect([[0], [0, 1]]).toContainEqual(spawned);
    // Exit 0, or ended by the SIGTERM itself when it came before `npm start` set its signal handlers.
    const stoppedShards = lines.filter(msg('shard stopped'));
    expect(stoppedShards.map((l) => l.shard).sort()).toEqual(spawned);
    for (const stopped of stoppedShards) expect([0, 'SIGTERM']).toContain(stopped.exitCode ?? stopped.signal);
    expect(lines.filter(msg('all shards ready'))).toEqual([]);
    const identified = discord.gateway.received
      .filter((p) => p.op === 2)
      .map((p) => (p.d as { shard: number[] }).shard);
    expect(identified[0]).toEqual([0, 2]);
    expect(identified.every(([shard]) => spawned.includes(shard))).toBe(true);
  });
});

describe('npm run start:sharded refuses what cannot work', () => {
  it('two shards on the default SQLite storage: exit 2 with a clear message, nothing spawned', async () => {
    // Run through npm, as operators do. Blank variables count as unset (and keep a developer's .env out).
    const proc = start('npm', ['run', '--silent', 'start:sharded'], {
      SHARD_COUNT: '2',
      DISCORD_TOKEN: 'a-token-value-xyz',
      PPINFRA_API_KEY: 'a-key-value-xyz',
      STORAGE_URL: '',
      DISCORD_API_URL: '',
    });
    expect(await proc.exited).toBe(2);
    const { stdout, stderr } = proc.output();
    expect(stderr).toContain('cannot start 2 shards');
    expect(stderr).toContain('STORAGE_URL (SQLite) serves one process');
    expect(stderr).toContain('redis://');
    expect(stderr).not.toMatch(/at .*\.[jt]s:\d+/);
    expect(stdout + stderr).not.toContain('a-token-value-xyz');
    expect(stdout + stderr).not.toContain('a-key-value-xyz');
    expect(stdout).not.toContain('shard spawned');
  });

  it('two shards recommended by /gateway/bot on memory:// storage: exit 2', async () => {
    discord = await startFakeDiscord({ shards: 2 });
    const proc = sharded({
      DISCORD_TOKEN: discord.token,
      DISCORD_API_URL: discord.apiUrl,
      PPINFRA_API_KEY: 'k-123456',
      STORAGE_URL: 'memory://',
    });
    expect(await proc.exited).toBe(2);
    expect(proc.output().stderr).toContain('cannot start 2 shards');
    expect(proc.output().stderr).toContain('STORAGE_URL (memory://)');
    expect(discord.requests.map((r) => r.route)).toEqual(['/gateway/bot']);
    expect(discord.gateway.received).toEqual([]);
  });

  it('lists every configuration problem at once, SHARD_COUNT included, and exits 2 without a stack trace', async () => {
    const proc = sharded({ SHARD_COUNT: 'two', PPINFRA_BASE_URL: 'not-a-url' });
    expect(await proc.exited).toBe(2);
    const { stderr } = proc.output();
    for (const name of [
      'DISCORD_TOKEN',
      'PPINFRA_API_KEY',
      'PPINFRA_BASE_URL',
      'SHARD_COUNT must be a whole number of at least 1',
    ])
      expect(stderr).toContain(name);
    expect(stderr).not.toMatch(/at .*\.[jt]s:\d+/);
    expect(await sharded({ SHARD_COUNT: '0', DISCORD_TOKEN: 't-123456', PPINFRA_API_KEY: 'k-123456' }).exited).toBe(2);
  });

  it('a shard that cannot start (Redis unreachable) stops the start: its exit code, its message, no respawn loop', {
    timeout: 30_000,
  }, async () => {
    const proc = sharded({
      SHARD_COUNT: '2',
      DISCORD_TOKEN: 't-123456',
      PPINFRA_API_KEY: 'k-123456',
      STORAGE_URL: 'redis://127.0.0.1:1',
    });
    expect(await proc.exited).toBe(2);
    expect(proc.output().stderr).toContain('STORAGE_URL');
    expect(proc.output().stderr).not.toMatch(/at .*\.[jt]s:\d+/);
    expect(proc.lines().filter(msg('shard spawned'))).toHaveLength(1);
    expect(proc.lines().find((l) => l.level === 60)?.msg).toBe(
      'shard 0 exited with code 2 before all shards were ready',
    );
  });

  it('says clearly that Discord rejected the token when asking for the shard count, without printing it', async () => {
    discord = await startFakeDiscord({ shards: 2 });
    discord.expectError({ status: 401 });
    const proc = sharded({
      DISCORD_TOKEN: 'MTIz.wrong.token-value-xyz',
      DISCORD_API_URL: discord.apiUrl,
      PPINFRA_API_KEY: 'k-123456',
    });
    expect(await proc.exited).toBe(1);
    const { stdout, stderr } = proc.output();
    expect(stderr).toContain('Discord rejected DISCORD_TOKEN');
    expect(stdout + stderr).not.toContain('MTIz.wrong.token-value-xyz');
    expect(discord.errors).toEqual([]);
  });
});

describe('npm run start:sharded for a bot that needs one shard', () => {
  it('runs the one shard on SQLite, and stops with exit 0 on SIGINT', { timeout: 60_000 }, async () => {
    discord = await startFakeDiscord();
    api = await startFakePpinfra({ script: () => ({ processingMs: 100 }) });
    const proc = sharded({
      DISCORD_TOKEN: discord.token,
      DISCORD_API_URL: discord.apiUrl,
      PPINFRA_API_KEY: api.apiKey,
      PPINFRA_BASE_URL: api.url,
    });
    await proc.waitForLines(msg('all shards ready'));
    expect(discord.gateway.received.filter((p) => p.op === 2).map((p) => (p.d as { shard: number[] }).shard)).toEqual([
      [0, 1],
    ]);
    const message = await discord
      .slash('imagine', { prompt: 'a kettle' })
      .waitForOriginal(finished, { timeoutMs: 15_000 });
    expect(message.attachments).toHaveLength(1);
    proc.child.kill('SIGINT');
    expect(await proc.exited).toBe(0);
    expect(
      proc
        .lines()
        .filter(msg('shard stopped'))
        .map((l) => l.exitCode),
    ).toEqual([0]);
  });
});
