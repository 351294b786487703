import { Client, Events, GatewayIntentBits, Status, type Interaction } from 'discord.js';
import type { Logger } from '../logger.ts';

export interface BotOptions {
  token: string;
  /** REST base handed to discord.js (it appends /v10): a proxy, or the test double. */
  apiUrl?: string;
  logger: Logger;
  onInteraction: (interaction: Interaction) => Promise<void>;
}

/** The discord.js client: only the Guilds intent, nothing privileged. */
export function createBot(options: BotOptions) {
  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    rest: options.apiUrl ? { api: options.apiUrl } : {},
    allowedMentions: { parse: [] },
  });
  client.once(Events.ClientReady, (ready) => options.logger.info({ user: ready.user.tag, guilds: ready.guilds.cache.size }, 'logged in to Discord'));
  client.on(Events.InteractionCreate, (interaction) => void options.onInteraction(interaction));
  client.on(Events.Error, (err) => options.logger.error({ err }, 'discord client error'));
  client.on(Events.Warn, (message) => options.logger.warn({ message }, 'discord client warning'));
  return {
    client,
    async login() {
      await client.login(options.token);
      if (!client.isReady()) await new Promise((resolve) => client.once(Events.ClientReady, resolve));
    },
    async destroy() {
      await client.destroy();
    },
    /** Connected to the gateway: logged in, and every shard this process runs is ready (not reconnecting or resuming). */
    connected(): boolean {
      return client.isReady() && client.ws.shards.size > 0 && client.ws.shards.every((shard) => shard.status === Status.Ready);
    },
  };
}
