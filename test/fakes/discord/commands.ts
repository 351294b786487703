// Application command registration (global and per guild), stored the way Discord returns them.
// Bulk overwrite keeps the id of a command whose name and type are unchanged, like Discord does.
import { snowflake } from './snowflake.ts';
import type { Json, JsonObject } from './types.ts';

export interface RegisteredCommand {
  id: string;
  application_id: string;
  version: string;
  default_member_permissions: string | null;
  type: number;
  name: string;
  name_localizations: Record<string, string> | null;
  description: string;
  description_localizations: Record<string, string> | null;
  guild_id?: string;
  dm_permission?: boolean;
  contexts: number[] | null;
  integration_types: number[];
  nsfw: boolean;
  options?: CommandOption[];
}

export interface CommandOption {
  type: number;
  name: string;
  description?: string;
  required?: boolean;
  autocomplete?: boolean;
  choices?: { name: string; value: string | number }[];
  options?: CommandOption[];
  min_value?: number;
  max_value?: number;
  min_length?: number;
  max_length?: number;
  channel_types?: number[];
}

export class CommandStore {
  private readonly global: RegisteredCommand[] = [];
  private readonly guild = new Map<string, RegisteredCommand[]>();
  private readonly applicationId: string;

  constructor(applicationId: string) {
    this.applicationId = applicationId;
  }

  list(guildId?: string): RegisteredCommand[] {
    return guildId === undefined ? this.global : (this.guild.get(guildId) ?? []);
  }

  /** The command a user would invoke by name in `guildId`: guild commands shadow global ones. */
  find(name: string, guildId: string | null, type = 1): RegisteredCommand | undefined {
    const scoped = guildId ? this.guild.get(guildId)?.find((c) => c.name === name && c.type === type) : undefined;
    return scoped ?? this.global.find((c) => c.name === name && c.type === type);
  }

  overwrite(bodies: JsonObject[], guildId?: string): RegisteredCommand[] {
    const previous = this.list(guildId);
    const next = bodies.map((b) => {
      const type = typeof b.type === 'number' ? b.type : 1;
      const old = previous.find((c) => c.name === b.name && c.type === type);
      return this.normalize(b, guildId, old?.id);
    });
    this.setList(next, guildId);
    return next;
  }

  /** POST: creates, or updates the command of the same name (Discord's upsert). */
  upsert(body: JsonObject, guildId?: string): { command: RegisteredCommand; created: boolean } {
    const list = [...this.list(guildId)];
    const type = typeof body.type === 'number' ? body.type : 1;
    const index = list.findIndex((c) => c.name === body.name && c.type === type);
    const command = this.normalize(body, guildId, index >= 0 ? list[index]?.id : undefined);
    if (index >= 0) list[index] = command;
    else list.push(command);
    this.setList(list, guildId);
    return { command, created: index < 0 };
  }

  get(id: string, guildId?: string): RegisteredCommand | undefined {
    return this.list(guildId).find((c) => c.id === id);
  }

  patch(id: string, body: JsonObject, guildId?: string): RegisteredCommand | undefined {
    const list = [...this.list(guildId)];
    const index = list.findIndex((c) => c.id === id);
    const current = list[index];
    if (!current) return undefined;
    const merged = this.normalize({ ...(structuredClone(current) as unknown as JsonObject), ...body }, guildId, id);
    list[index] = merged;
    this.setList(list, guildId);
    return merged;
  }

  remove(id: string, guildId?: string): boolean {
    const list = this.list(guildId);
    const next = list.filter((c) => c.id !== id);
    this.setList(next, guildId);
    return next.length !== list.length;
  }

  private setList(list: RegisteredCommand[], guildId?: string): void {
    if (guildId === undefined) this.global.splice(0, this.global.length, ...list);
    else this.guild.set(guildId, list);
  }

  private normalize(b: JsonObject, guildId: string | undefined, id: string | undefined): RegisteredCommand {
    const perms = b.default_member_permissions;
    const command: RegisteredCommand = {
      id: id ?? snowflake(),
      application_id: this.applicationId,
      version: snowflake(),
      default_member_permissions: perms === null || perms === undefined ? null : String(perms),
      type: typeof b.type === 'number' ? b.type : 1,
      name: String(b.name),
      name_localizations: (b.name_localizations as Record<string, string> | undefined) ?? null,
      description: typeof b.description === 'string' ? b.description : '',
      description_localizations: (b.description_localizations as Record<string, string> | undefined) ?? null,
      contexts: Array.isArray(b.contexts) ? (b.contexts as number[]) : null,
      integration_types: Array.isArray(b.integration_types) ? (b.integration_types as number[]) : [0],
      nsfw: b.nsfw === true,
    };
    if (guildId !== undefined) command.guild_id = guildId;
    else command.dm_permission = b.dm_permission !== false;
    const options = normalizeOptions(b.options);
    if (options) command.options = options;
    return command;
  }
}

function normalizeOptions(raw: Json | undefined): CommandOption[] | undefined {
  if (!Array.isArray(raw) || raw.length === 0) return undefined;
  return raw.map((o) => {
    const opt = structuredClone(o) as unknown as CommandOption & Record<string, unknown>;
    // Discord omits `required: false` and null fields in what it returns.
    if (opt.required === false) delete opt.required;
    for (const [k, v] of Object.entries(opt)) if (v === null || v === undefined) delete opt[k];
    const nested = normalizeOptions(opt.options as unknown as Json);
    if (nested) opt.options = nested;
    return opt;
  });
}
