// `npm start` as one shard of two, in a child process: what the multi-process suites run.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { onTestFailed } from 'vitest';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'main.ts');

/**
 * The environment a shard process needs to run on the test doubles and one Redis, with fast
 * polling and an images-per-minute budget that does not pace the test; `extra` adds or overrides.
 */
export function sharedRedisEnv(
  doubles: { discord: { token: string; apiUrl: string }; api: { apiKey: string; url: string }; redis: { url: string } },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    DISCORD_TOKEN: doubles.discord.token,
    DISCORD_API_URL: doubles.discord.apiUrl,
    PPINFRA_API_KEY: doubles.api.apiKey,
    PPINFRA_BASE_URL: doubles.api.url,
    STORAGE_URL: doubles.redis.url,
    API_IMAGES_PER_MINUTE: '1000',
    POLL_MIN_INTERVAL_MS: '200',
    POLL_MAX_INTERVAL_MS: '1000',
    POLL_MAX_PER_SECOND: '50',
    ...extra,
  };
}

export interface ShardProcess {
  child: ChildProcess;
  exited: Promise<unknown[]>;
  /** Everything it printed on stdout so far (JSON log lines). */
  stdout(): string;
}

/**
 * Starts `src/main.ts` as shard `shard` of 2 (discord.js reads SHARDS and SHARD_COUNT) with only
 * `env` and PATH, in `cwd`; resolves once it serves. The child goes into `children`, for the
 * suite to kill after each test.
 */
export async function startShardProcess(
  shard: number,
  env: Record<string, string>,
  cwd: string,
  children: ChildProcess[],
): Promise<ShardProcess> {
  const child = spawn(process.execPath, [MAIN], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env, SHARDS: `[${shard}]`, SHARD_COUNT: '2' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.resume();
  // A failure in CI is explained by what the process said: its warnings and errors go with the
  // report. Outside vitest (`npm run soak`) there is no test to fail, and the hook would throw.
  if (process.env.VITEST) {
    onTestFailed(() => {
      for (const line of stdout
        .split('\n')
        .filter((l) => /"level":(4|5|6)0/.test(l))
        .slice(-40))
        console.error(`shard ${shard} log:`, line.slice(0, 2_000));
    });
  }
  await new Promise<void>((resolve, reject) => {
    const check = () => stdout.includes('qwen-imagine is running') && resolve();
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`shard ${shard} exited early (${code}): ${stdout.slice(-2000)}`)));
  });
  return { child, exited: once(child, 'exit'), stdout: () => stdout };
}
