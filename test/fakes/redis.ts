import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** True when Debian's redis-server is installed (.ci/run installs it). */
export const hasRedis = spawnSync('redis-server', ['--version']).status === 0;

/**
 * Redis suites skip only on a developer machine without redis-server; in CI (`CI` set, as
 * `.ci/run` does) they run, and fail loudly if it is missing, instead of passing by skipping.
 */
export const skipWithoutRedis = !hasRedis && !process.env.CI;

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** A real, throwaway Redis on loopback, without persistence, for the storage contract. */
export async function startRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (!hasRedis) throw new Error('redis-server is not installed (apt-get install redis-server; .ci/run installs it)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'qi-redis-'));
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('Ready to accept connections')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited early (${code})`)));
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
