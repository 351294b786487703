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

/** A loopback port nobody listens on (at the time of asking). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

export interface FakeRedis {
  url: string;
  port: number;
  /** Stops the server for good and removes its folder. */
  stop(): Promise<void>;
  /** An outage: the server exits (SIGKILL by default, like a crash; its data is gone unless `persist`). */
  down(signal?: NodeJS.Signals): Promise<void>;
  /** Starts a new server on the same port, as a restarted Redis would come back. */
  up(): Promise<void>;
}

function spawnRedis(port: number, dir: string, persist: boolean, password: string | undefined): Promise<ChildProcess> {
  // Persistence, when asked for, as an operator would run Redis: an append-only file synced on every write.
  const durability = persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const auth = password === undefined ? [] : ['--requirepass', password];
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...durability, ...auth, '--dir', dir],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise<ChildProcess>((resolve, reject) => {
    let seen = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('Ready to accept connections')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited early (${code}): ${seen.slice(-500)}`)));
  });
}

async function kill(child: ChildProcess | undefined, signal: NodeJS.Signals) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

/**
 * A real, throwaway Redis on loopback, without persistence (unless `persist`: then what it holds
 * survives `down()` and `up()`, even a SIGKILL), for the storage contract.
 */
export async function startRedis(options: { persist?: boolean; password?: string } = {}): Promise<FakeRedis> {
  const persist = options.persist ?? false;
  const { password } = options;
  if (!hasRedis) throw new Error('redis-server is not installed (apt-get install redis-server; .ci/run installs it)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'qi-redis-'));
  let child: ChildProcess | undefined = await spawnRedis(port, dir, persist, password);
  return {
    // As compose.yaml writes it: an empty user name, then the password.
    url:
      password === undefined
        ? `redis://127.0.0.1:${port}`
        : `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    port,
    async stop() {
      await kill(child, 'SIGTERM');
      child = undefined;
      rmSync(dir, { recursive: true, force: true });
    },
    async down(signal = 'SIGKILL') {
      await kill(child, signal);
    },
    async up() {
      await kill(child, 'SIGTERM');
      child = await spawnRedis(port, dir, persist, password);
    },
  };
}
