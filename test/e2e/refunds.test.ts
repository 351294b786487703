// The hourly quota after a failure, as a member notices it: when no task can exist (the API
// refused the prompt, or never received it), the image did not count and they may ask again at
// once; when a task may have been created and billed, it counts.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RecordedRequest } from '../fakes/ppinfra.ts';
import { finished, startBotHarness, type BotHarness, type HarnessOptions } from './harness.ts';

let h: BotHarness | undefined;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** Generous: a wait that ends in an event, not a bound on how fast the bot must be. */
const WAIT = { timeoutMs: 15_000 };

const submitOf = (prompt: string) => (r: RecordedRequest) =>
  r.route === 'submit' && (r.body as { prompt?: string } | undefined)?.prompt === prompt;

/**
 * An address that refuses connections (nothing listens there) until `open` forwards it to the
 * fake API, like a network that comes back.
 */
async function refusingAddress() {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  const address = {
    url: `http://127.0.0.1:${port}`,
    async open(target: string) {
      const to = new URL(target);
      server = createServer((socket) => {
        const upstream = connect(Number(to.port), to.hostname);
        for (const s of [socket, upstream]) {
          sockets.add(s);
          s.on('error', () => undefined).on('close', () => {
            sockets.delete(s);
            socket.destroy();
            upstream.destroy();
          });
        }
        socket.pipe(upstream).pipe(socket);
      });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(port, '127.0.0.1', () => resolve());
      });
    },
  };
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
  });
  return address;
}

interface Case {
  name: string;
  /** Whether the member gets the image back on their hourly quota. */
  refunded: boolean;
  /** What the member is told about the failure. */
  told: RegExp;
  options?: HarnessOptions;
  /** Before the member asks: faults for their request. */
  arrange?: (bot: BotHarness) => void;
  /** Unreachable API: PPINFRA_BASE_URL refuses connections until the member has been told. */
  refusedConnection?: true;
}

/** The member's first request ('first try') fails; everyone else's succeed. */
const onlyFirstTry =
  (failing: object) =>
  ({ prompt }: { prompt: string }) =>
    prompt === 'first try' ? failing : { processingMs: 100 };

// Which is which follows src/jobs/failures.ts (`certainlyNotCreated`): refused before a task was
// created (auth, quota, invalid, illegal, 429, CREATE_TASK_FAILED) or never sent, versus sent and
// perhaps created (a timeout or reset after sending, a 5xx other than CREATE_TASK_FAILED) or
// certainly created (a failed task, a task past JOB_TIMEOUT_MS).
const cases: Case[] = [
  {
    name: 'a rejected API key',
    refunded: true,
    told: /rejected this bot’s API key/,
    arrange: (b) => b.api.inject('submit', { status: 403, reason: 'INVALID_API_KEY' }),
  },
  {
    name: 'an exhausted balance',
    refunded: true,
    told: /credit has run out/,
    arrange: (b) => b.api.inject('submit', { status: 400, reason: 'BILLING_BALANCE_NOT_ENOUGH' }),
  },
  {
    name: 'an invalid request',
    refunded: true,
    told: /could not accept this request/,
    arrange: (b) => b.api.inject('submit', { status: 400, reason: 'INVALID_REQUEST_BODY' }),
  },
  {
    name: 'an illegal prompt',
    refunded: true,
    told: /refused this prompt as inappropriate/,
    arrange: (b) => b.api.inject('submit', { status: 400, reason: 'ILLEGAL_PROMPT' }),
  },
  {
    // The client's 4 attempts take 3 x 2 s, longer than the queue deadline, so the job fails
    // instead of going back to the queue.
    name: 'a 429 on every attempt',
    refunded: true,
    told: /busy right now/,
    options: { env: { QUEUE_TIMEOUT_MS: '5000' } },
    arrange: (b) => b.api.inject('submit', { status: 429, retryAfterSec: 2 }, 4),
  },
  {
    name: 'CREATE_TASK_FAILED on every attempt',
    refunded: true,
    told: /having trouble right now/,
    arrange: (b) => b.api.inject('submit', { status: 500, reason: 'CREATE_TASK_FAILED', retryAfterSec: 0 }, 4),
  },
  {
    name: 'a refused connection (nothing was sent)',
    refunded: true,
    told: /could not reach the image service/,
    refusedConnection: true,
  },
  {
    name: 'a timeout after the prompt was sent',
    refunded: false,
    told: /took too long/,
    // The fake creates the task, then holds the answer for longer than the test runs.
    options: { env: { HTTP_HEADERS_TIMEOUT_MS: '1000' } },
    arrange: (b) => b.api.inject('submit', { delayHeadersMs: 60_000 }),
  },
  {
    name: 'a reset after the API created the task',
    refunded: false,
    told: /could not reach the image service/,
    arrange: (b) => b.api.inject('submit', { resetAfterProcessing: true }),
  },
  {
    name: 'a 503 on submit (the task may exist)',
    refunded: false,
    told: /having trouble right now/,
    arrange: (b) => b.api.inject('submit', { status: 503, reason: 'SERVICE_NOT_AVAILABLE' }),
  },
  {
    name: 'a failed task',
    refunded: false,
    told: /could not be generated \(GPU fell over\)/,
    options: { script: onlyFirstTry({ processingMs: 100, outcome: 'fail', reason: 'GPU fell over' }) },
  },
  {
    name: 'a task past JOB_TIMEOUT_MS',
    refunded: false,
    told: /took too long/,
    options: { env: { JOB_TIMEOUT_MS: '1000' }, script: onlyFirstTry({ processingMs: 10 * 60_000 }) },
  },
];

describe('the hourly quota after a failed image (USER_HOURLY_QUOTA=1)', () => {
  it.each(cases)('$name: refunded $refunded', async (c) => {
    const address = c.refusedConnection ? await refusingAddress() : undefined;
    h = await startBotHarness({
      script: () => ({ processingMs: 100 }),
      ...c.options,
      env: {
        USER_HOURLY_QUOTA: '1',
        // One job at a time: the bystander's job below starts only once the member's has ended.
        MAX_JOBS_IN_FLIGHT: '1',
        // Pacing is another test's subject: here it never holds a submission back.
        API_IMAGES_PER_MINUTE: '60000',
        ...c.options?.env,
        ...(address ? { PPINFRA_BASE_URL: address.url } : {}),
      },
    });
    const bot = h;
    c.arrange?.(bot);

    const first = bot.discord.slash('imagine', { prompt: 'first try' }, { user: 'alice' });
    const failed = await first.waitForOriginal(finished, WAIT);
    expect(failed.content).toMatch(/^❌/);
    expect(failed.content).toMatch(c.told);
    await address?.open(bot.api.url);
    const firstSubmits = bot.api.requests.filter(submitOf('first try')).length;

    // The member is told before the bot has quite finished with the job (the quota is settled
    // just after). A bystander's job starts only after it (one job at a time), so once their
    // prompt reaches the API, the member's quota is settled; their own request is refused by the
    // API, so their job ends at once and frees the slot.
    bot.api.inject('submit', { status: 400, reason: 'INVALID_REQUEST_BODY' });
    bot.discord.slash('imagine', { prompt: 'bystander' }, { user: 'bob' });
    await bot.api.waitFor('request', submitOf('bystander'), 0);

    const again = bot.discord.slash('imagine', { prompt: 'second try' }, { user: 'alice' });
    const callback = await again.waitForCallback(WAIT);
    if (c.refunded) {
      // Accepted (a public defer, no refusal), and the prompt goes to the API.
      expect(callback.type).toBe(5);
      expect(again.isEphemeral).toBeFalsy();
      await bot.api.waitFor('request', submitOf('second try'), 0);
      expect(bot.api.requests.filter(submitOf('second try'))).toHaveLength(1);
    } else {
      expect(callback.type).toBe(4);
      expect(again.isEphemeral).toBe(true);
      expect((callback.data as { content: string }).content).toMatch(/reached your limit of 1 images per hour/);
      expect(bot.api.requests.filter(submitOf('second try'))).toEqual([]);
    }
    // The first try was not sent again behind the member's back.
    expect(bot.api.requests.filter(submitOf('first try'))).toHaveLength(firstSubmits);
  });
});
