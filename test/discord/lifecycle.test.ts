import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startFakeDiscord } from '../fakes/discord/server.ts';

describe('fake Discord lifecycle', () => {
  it('listens on 127.0.0.1 only', async () => {
    const discord = await startFakeDiscord();
    expect(discord.address.address).toBe('127.0.0.1');
    expect(discord.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api$/);
    expect(discord.gatewayUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/gateway$/);
    await discord.stop();
    await discord.stop(); // idempotent
  });

  it('after client.destroy() and discord.stop() a process exits on its own', async () => {
    const script = fileURLToPath(new URL('./fixtures/lifecycle-child.ts', import.meta.url));
    // process.execPath is the Node (>= 22.18, type stripping) running vitest.
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // Only to end a child that hangs (that is the failure): generous, since a loaded machine may
    // take seconds just to start Node and load discord.js; below the 20 s test timeout.
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    clearTimeout(timer);
    expect({ code, signal, stderr: stderr.replace(/.*ExperimentalWarning.*\n?/g, '') }).toEqual({
      code: 0,
      signal: null,
      stderr: expect.any(String),
    });
    expect(JSON.parse(stdout)).toEqual({ errors: [], address: '127.0.0.1' });
  });
});
