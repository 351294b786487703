// Shared setup of the fake-Discord tests: a real discord.js Client logged in to the fake.
import { Client, Events, GatewayIntentBits, type Interaction } from 'discord.js';
import { startFakeDiscord, type FakeDiscord } from '../fakes/discord/server.ts';
import type { FakeDiscordOptions } from '../fakes/discord/types.ts';

export interface Harness {
  discord: FakeDiscord;
  client: Client;
  /** Replaces the interaction handler (errors are collected in `handlerErrors`). */
  onInteraction(handler: (interaction: Interaction) => Promise<unknown> | unknown): void;
  handlerErrors: unknown[];
  close(): Promise<void>;
}

export async function startHarness(options: FakeDiscordOptions = {}): Promise<Harness> {
  const discord = await startFakeDiscord(options);
  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    // Retries and timeout small enough for tests; discord.js appends /v10 to `api`.
    rest: { api: discord.apiUrl, retries: 3, timeout: 5000 },
  });
  let handler: (interaction: Interaction) => Promise<unknown> | unknown = () => undefined;
  const handlerErrors: unknown[] = [];
  client.on(Events.InteractionCreate, (interaction) => {
    Promise.resolve()
      .then(() => handler(interaction))
      .catch((error: unknown) => handlerErrors.push(error));
  });
  const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
  await client.login(discord.token);
  await ready;
  return {
    discord,
    client,
    handlerErrors,
    onInteraction(h) {
      handler = h;
    },
    async close() {
      await client.destroy();
      await discord.stop();
    },
  };
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** A promise the test settles itself: used as a gate for handlers instead of sleeps. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Runs `fn` and resolves with what it threw (or undefined). */
export async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
    return undefined;
  } catch (error) {
    return error;
  }
}
