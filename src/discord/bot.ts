import { Client, Events, GatewayIntentBits, Status, type Interaction } from 'discord.js';
import type { Logger } from '../logger.ts';

export interface BotOptions {
  token: string;
  /** REST base handed to discord.js (it appends /v10): a proxy, or the test double. */
  apiUrl?: string;
  logger: Logger;
  /** How long `login()` may take to reach Discord (REST and gateway) before it gives up (default 30 s). */
  loginTimeoutMs?: number;
  onInteraction: (interaction: Interaction) => Promise<void>;
}

/** discord.js' REST base when none is configured. */
const DISCORD_REST = 'https://discord.com/api';

/** Codes (anywhere in an error's cause chain) that mean the network never got us to Discord. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_SOCKET',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);

/** The start could not reach Discord at `url` (REST or gateway): the network, or DISCORD_API_URL. */
export class DiscordUnreachableError extends Error {
  override readonly name = 'DiscordUnreachableError';
  readonly url: string;
  readonly detail: string;
  constructor(url: string, detail: string, options?: { cause?: unknown }) {
    super(`Could not reach Discord at ${url} (${detail})`, options);
    this.url = url;
    this.detail = detail;
  }
}

/** The network code behind `e` (ECONNREFUSED, ENOTFOUND...), or 'timeout' for discord.js' own request timeout. */
export function unreachableCause(e: unknown): string | undefined {
  for (
    let cur: unknown = e, depth = 0;
    cur && typeof cur === 'object' && depth < 5;
    cur = (cur as { cause?: unknown }).cause, depth++
  ) {
    const { code, name } = cur as { code?: unknown; name?: unknown };
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return code;
    // @discordjs/rest aborts a request after its timeout (15 s) with a DOMException AbortError.
    if (name === 'AbortError' || name === 'TimeoutError') return 'timeout';
  }
  return undefined;
}

/** The discord.js client: only the Guilds intent, nothing privileged. */
export function createBot(options: BotOptions) {
  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    rest: options.apiUrl ? { api: options.apiUrl } : {},
    allowedMentions: { parse: [] },
  });
  client.once(Events.ClientReady, (ready) =>
    options.logger.info({ user: ready.user.tag, guilds: ready.guilds.cache.size }, 'logged in to Discord'),
  );
  client.on(Events.InteractionCreate, (interaction) => void options.onInteraction(interaction));
  client.on(Events.Error, (err) => options.logger.error({ err }, 'discord client error'));
  client.on(Events.Warn, (message) => options.logger.warn({ message }, 'discord client warning'));
  return {
    client,
    /**
     * Logs in and waits for READY, or fails within `loginTimeoutMs`: discord.js retries a gateway
     * it cannot reach forever (every 500 ms) and a silent REST endpoint for a minute, so the start
     * gives up with a DiscordUnreachableError naming the URL it could not reach.
     */
    async login() {
      const timeoutMs = options.loginTimeoutMs ?? 30_000;
      const restUrl = options.apiUrl ?? DISCORD_REST;
      let gatewayUrl: string | undefined;
      let gatewayFailed = false;
      // discord.js reports gateway connection failures only as debug lines, then retries.
      const onDebug = (message: string) => {
        const connecting = /Connecting to (\S+)/.exec(message);
        if (connecting) gatewayUrl = connecting[1]!.split('?')[0];
        if (/Failed to connect to the gateway/.test(message)) gatewayFailed = true;
      };
      client.on(Events.Debug, onDebug);
      const connected = (async () => {
        await client.login(options.token);
        if (!client.isReady()) await new Promise((resolve) => client.once(Events.ClientReady, resolve));
      })();
      // Once the deadline has won, a later rejection (after destroy) is nobody's business.
      connected.catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const url = gatewayFailed && gatewayUrl ? gatewayUrl : restUrl;
          reject(new DiscordUnreachableError(url, `no connection within ${Math.round(timeoutMs / 1000)} s`));
          void client.destroy();
        }, timeoutMs);
      });
      try {
        await Promise.race([connected, deadline]);
      } catch (e) {
        if (e instanceof DiscordUnreachableError) throw e;
        const cause = unreachableCause(e);
        if (cause) throw new DiscordUnreachableError(restUrl, cause, { cause: e });
        throw e;
      } finally {
        clearTimeout(timer);
        client.off(Events.Debug, onDebug);
      }
    },
    async destroy() {
      await client.destroy();
    },
    /** Connected to the gateway: logged in, and every shard this process runs is ready (not reconnecting or resuming). */
    connected(): boolean {
      return (
        client.isReady() &&
        client.ws.shards.size > 0 &&
        client.ws.shards.every((shard) => shard.status === Status.Ready)
      );
    },
  };
}
