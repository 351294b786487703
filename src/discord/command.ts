import type {
  AutocompleteInteraction,
  ButtonInteraction,
  ChatInputCommandInteraction,
  ContextMenuCommandBuilder,
  MessageContextMenuCommandInteraction,
  ModalSubmitInteraction,
  SlashCommandBuilder,
  SlashCommandOptionsOnlyBuilder,
  SlashCommandSubcommandsOnlyBuilder,
} from 'discord.js';
import type { Logger } from '../logger.ts';
import type { History } from '../usage/history.ts';
import type { GuildSettingsStore } from '../moderation/settings.ts';
import type { Price, UsageLedger } from '../usage/ledger.ts';
import type { ButtonAction } from './custom-id.ts';
import type { JobService } from '../jobs/service.ts';
import type { ImageStash, ReviewService } from '../moderation/review-types.ts';

/** What a command may use; handed in by the router, built once in main.ts. */
export interface BotContext {
  jobs: JobService;
  /** Moderator review of flagged and reported images. */
  review: ReviewService;
  /** Per-guild settings (`/imagine-settings`), shared through the store. */
  settings: GuildSettingsStore;
  logger: Logger;
  generation: {
    defaultSize: string;
    promptMaxLength: number;
    blockedTerms: readonly string[];
    maxImagesPerRequest?: number;
  };
  /** Each member's images, for /imagine-history. */
  history: History;
  /** The images of jobs that reached nobody, kept for /imagine-history's Get it (`src/moderation/image-stash.ts`). */
  stash?: Pick<ImageStash, 'get'>;
  /** Whether the storage answers; new jobs are refused while it does not (src/storage/health.ts). */
  storage?: { healthy(): boolean };
  /**
   * Installs for oneself (`src/discord/install.ts`): `enabled` false (USER_INSTALL=off) refuses
   * every place but servers that installed the bot. Absent: allowed.
   */
  userInstall?: { enabled: boolean };
  /**
   * When an image of duration key `key` (`durationKey` in `src/domain/tools.ts`) asked for now
   * would likely be ready (ms, `src/jobs/eta.ts`): where only the 15-minute interaction token can
   * answer, a wait past it is refused at once.
   */
  readyBy?(key: string): Promise<number>;
  /** The usage ledger and PRICE_PER_IMAGE, for `/imagine-usage`; `now` for tests. */
  usage?: { ledger: UsageLedger; price: Price | undefined; now?: () => number };
  /** UPSCALE_RESOLUTION (2k when absent), and the tools' prices for `/imagine-usage`. */
  tools?: { upscaleResolution: '2k' | '4k'; pricePerEdit?: string; pricePerUpscale?: string };
}

/** What came of an interaction, for the one log line the router writes (e.g. `started`, `refused:user_hourly`). */
export type Outcome = string | void;

/** One module per command in `commands/`, as in the discord.js guide: a slash command or a message menu entry. */
export type Command = SlashCommand | MessageMenuCommand;

interface Handlers {
  /** Button handlers this command owns, by the action in the custom id. */
  buttons?: Partial<
    Record<ButtonAction, (interaction: ButtonInteraction, id: string, ctx: BotContext) => Promise<Outcome>>
  >;
  /** Modal submit handlers this command owns, by the action in the modal's custom id. */
  modals?: Partial<
    Record<ButtonAction, (interaction: ModalSubmitInteraction, id: string, ctx: BotContext) => Promise<Outcome>>
  >;
}

/** A message context-menu command ("Apps → Imagine this" on a message). */
export interface MessageMenuCommand extends Handlers {
  data: ContextMenuCommandBuilder;
  execute(interaction: MessageContextMenuCommandInteraction, ctx: BotContext): Promise<Outcome>;
  autocomplete?: undefined;
}

export interface SlashCommand extends Handlers {
  data: SlashCommandBuilder | SlashCommandOptionsOnlyBuilder | SlashCommandSubcommandsOnlyBuilder;
  execute(interaction: ChatInputCommandInteraction, ctx: BotContext): Promise<Outcome>;
  autocomplete?(interaction: AutocompleteInteraction, ctx: BotContext): Promise<Outcome>;
}
