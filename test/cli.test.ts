/**
 * The operator's CLI generator (`src/cli/imagine.ts`) as a child process against the fake API. Each
 * child runs in its own empty temporary directory, so dotenv finds no `.env`, and gets only the
 * variables named here. The cases run concurrently (each with its own fake), because the
 * end-to-end case waits for the CLI's cold-start first poll.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it, type TestContext } from 'vitest';
import { startFakePpinfra, type FakePpinfra, type RecordedRequest } from './fakes/ppinfra.ts';

const CLI = resolve(import.meta.dirname, '..', 'src', 'cli', 'imagine.ts');
const WRONG_KEY = 'sk-wrong-cli-3c2b1a0f9e8d';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Started {
  done: Promise<Run>;
  /** Resolves once stderr matches `pattern`; rejects if the CLI exits first. */
  stderrMatches(pattern: RegExp): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

interface Setup {
  fake: FakePpinfra;
  dir: string;
  /** The variables the CLI needs for the fake, with `overrides` (undefined removes one). */
  env(overrides?: Record<string, string | undefined>): Record<string, string | undefined>;
  start(args: string[], env: Record<string, string | undefined>): Started;
  run(args: string[], env: Record<string, string | undefined>): Promise<Run>;
}

/**
 * A fake API (tasks take ~300 ms) and a temp dir for one test, both cleaned up after it. The
 * hook comes from the test's own context: with concurrent tests, the global one may attach to
 * another test.
 */
async function setup({ onTestFinished }: TestContext): Promise<Setup> {
  const fake = await startFakePpinfra({ script: () => ({ processingMs: 300 }) });
  const dir = await mkdtemp(join(tmpdir(), 'qwen-imagine-cli-'));
  const children: Array<() => void> = [];
  onTestFinished(async () => {
    for (const kill of children) kill();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  const start = (args: string[], env: Record<string, string | undefined>): Started => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    const watchers = new Set<() => void>();
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      for (const check of [...watchers]) check();
    });
    const done = new Promise<Run>((resolvePromise, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
    });
    return {
      done,
      stderrMatches: (pattern) =>
        new Promise<void>((resolvePromise, reject) => {
          const check = () => {
            if (!pattern.test(stderr)) return;
            watchers.delete(check);
            resolvePromise();
          };
          watchers.add(check);
          check();
          void done.then(() => reject(new Error(`the CLI exited before stderr matched ${pattern}:\n${stderr}`)));
        }),
      kill: (signal) => child.kill(signal),
    };
  };

  return {
    fake,
    dir,
    env: (overrides = {}) => ({
      PPINFRA_API_KEY: fake.apiKey,
      PPINFRA_BASE_URL: fake.url,
      POLL_MIN_INTERVAL_MS: '200',
      ...overrides,
    }),
    start,
    run: (args, env) => start(args, env).done,
  };
}

describe.concurrent('cli', () => {
  it('generates an image end to end and writes the served bytes', async (ctx) => {
    const { expect } = ctx;
    const { fake, dir, env, run } = await setup(ctx);
    const out = join(dir, 'fox.jpeg');

    const result = await run(['a red fox', '--size', '512x512', '--out', out], env());

    expect(result.code, result.stderr).toBe(0);
    expect(fake.tasks.size).toBe(1);
    const [task] = [...fake.tasks.values()];
    expect(task).toMatchObject({ prompt: 'a red fox', size: '512*512' });
    expect(fake.requests.find((r) => r.route === 'submit')!.body).toEqual({ prompt: 'a red fox', size: '512*512' });
    expect(result.stderr).toContain(`Submitted task ${task!.id} (512*512).`);
    expect(result.stderr).toMatch(/Done in [\d.]+s \(\d+ polls?\): wrote \d+ bytes \(image\/jpeg\) to /);
    const written = await readFile(out);
    expect(written.equals(Buffer.from(task!.image!))).toBe(true);
    expect(fake.count('image')).toBe(1);
  });

  it('exits 3 on a rejected key, naming the variable but never the key', async (ctx) => {
    const { expect } = ctx;
    const { fake, dir, env, run } = await setup(ctx);

    const result = await run(
      ['a red fox', '--size', '512x512', '--out', join(dir, 'x.jpeg')],
      env({ PPINFRA_API_KEY: WRONG_KEY }),
    );

    expect(result.code).toBe(3);
    expect(result.stderr).toContain('[auth]');
    expect(result.stderr).toContain('PPINFRA_API_KEY');
    expect(result.stderr + result.stdout).not.toContain(WRONG_KEY);
    expect(fake.count('submit')).toBe(1);
    expect(fake.tasks.size).toBe(0);
  });

  it.for(['99x99', 'huge', '2048*2048'])('exits 2 on the bad size %s without calling the API', async (size, ctx) => {
    const { expect } = ctx;
    const { fake, env, run } = await setup(ctx);

    const result = await run(['a red fox', '--size', size], env());

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Size must be W\*H/);
    expect(fake.requests).toHaveLength(0);
  });

  it('exits 2 when PPINFRA_API_KEY is missing, naming it', async (ctx) => {
    const { expect } = ctx;
    const { fake, env, run } = await setup(ctx);

    const result = await run(['a red fox'], env({ PPINFRA_API_KEY: undefined }));

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('PPINFRA_API_KEY is required');
    expect(fake.requests).toHaveLength(0);
  });

  it('exits 2 on an empty prompt without calling the API', async (ctx) => {
    const { expect } = ctx;
    const { fake, env, run } = await setup(ctx);

    const result = await run(['   '], env());

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Give a prompt');
    expect(fake.requests).toHaveLength(0);
  });

  it('exits 130 on Ctrl-C while a submit is in flight', async (ctx) => {
    const { expect } = ctx;
    const { fake, env, start } = await setup(ctx);
    // The submit stalls for longer than the test runs: only Ctrl-C can end it.
    fake.inject('submit', { delayHeadersMs: 60_000 });
    const cli = start(['a red fox'], env());
    // However long the child takes to start on a loaded machine (no deadline but the test's own),
    // as long as it has not exited first.
    const exitedFirst = cli.done.then((run) =>
      Promise.reject(new Error(`the CLI exited before submitting:\n${run.stderr}`)),
    );
    await Promise.race([fake.waitFor('request', (r: RecordedRequest) => r.route === 'submit', 0), exitedFirst]);
    cli.kill('SIGINT');

    const result = await cli.done;
    expect(result.code).toBe(130);
    expect(result.stderr).toContain('Cancelled.');
  });

  // Regression: Ctrl-C during a retry backoff used to end in a stack trace and exit code 1.
  it('exits 130 on Ctrl-C during a retry backoff', async (ctx) => {
    const { expect } = ctx;
    const { fake, env, start } = await setup(ctx);
    fake.inject('submit', { status: 429, retryAfterSec: 30 });
    const cli = start(['a red fox'], env());
    await cli.stderrMatches(/retrying PPInfra call/);
    cli.kill('SIGINT');

    const result = await cli.done;
    expect(fake.count('submit')).toBe(1);
    expect(result.stderr).toContain('Cancelled.');
    expect(result.code).toBe(130);
  });
});
