// `npm start` as one shard of two, in a child process: what the multi-process suites run.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { onTestFailed } from 'vitest';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'main.ts');

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
export async function startShardProcess(shard: number, env: Record<string, string>, cwd: string, children: ChildProcess[]): Promise<ShardProcess> {
  const child = spawn(process.execPath, [MAIN], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env, SHARDS: `[${shard}]`, SHARD_COUNT: '2' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.resume();
  // A failure in CI is explained by what the process said: its warnings and errors go with the report.
  onTestFailed(() => {
    for (const line of stdout.split('\n').filter((l) => /"level":(4|5|6)0/.test(l)).slice(-40)) console.error(`shard ${shard} log:`, line.slice(0, 2_000));
  });
  await new Promise<void>((resolve, reject) => {
    const check = () => stdout.includes('qwen-imagine is running') && resolve();
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`shard ${shard} exited early (${code}): ${stdout.slice(-2000)}`)));
  });
  return { child, exited: once(child, 'exit'), stdout: () => stdout };
}
