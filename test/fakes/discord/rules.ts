// Discord's documented message limits, answered the way Discord answers them:
// 400 code 50035 "Invalid Form Body" with an `errors` tree, 50006 for empty messages,
// 413 code 40005 for uploads above the limit.
import { DiscordHttpError, type ErrorTree, type Json, type JsonObject } from './types.ts';

export const LIMITS = {
  content: 2000,
  embeds: 10,
  embedTitle: 256,
  embedDescription: 4096,
  embedFields: 25,
  fieldName: 256,
  fieldValue: 1024,
  footerText: 2048,
  authorName: 256,
  embedTotal: 6000,
  actionRows: 5,
  componentsPerRow: 5,
  attachments: 10,
  customId: 100,
  buttonLabel: 80,
  autocompleteChoices: 25,
} as const;

export const DEFAULT_UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024;

type PathPart = string | number;

/** Collects form errors into Discord's nested `{ a: { 0: { b: { _errors: [...] } } } }` shape. */
export class FormErrors {
  readonly tree: ErrorTree = {};
  private count = 0;

  add(path: PathPart[], code: string, message: string): void {
    let node: ErrorTree = this.tree;
    for (const part of path) {
      const key = String(part);
      const next = node[key];
      if (next === undefined || Array.isArray(next)) {
        const created: ErrorTree = {};
        node[key] = created;
        node = created;
      } else {
        node = next;
      }
    }
    node._errors ??= [];
    node._errors.push({ code, message });
    this.count++;
  }

  get empty(): boolean {
    return this.count === 0;
  }

  throwIfAny(): void {
    if (!this.empty) throw this.toError();
  }

  toError(): DiscordHttpError {
    return invalidFormBody(this.tree);
  }
}

export function invalidFormBody(errors: ErrorTree): DiscordHttpError {
  return new DiscordHttpError(400, { message: 'Invalid Form Body', code: 50035, errors });
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: Json | undefined): string {
  return typeof v === 'string' ? v : '';
}

function maxLength(errors: FormErrors, path: PathPart[], value: Json | undefined, max: number): void {
  if (typeof value === 'string' && value.length > max) {
    errors.add(path, 'BASE_TYPE_MAX_LENGTH', `Must be ${max} or fewer in length.`);
  }
}

/** Checks the message fields of a create/edit body. `prefix` is ['data'] for interaction callbacks. */
export function checkMessageLimits(body: JsonObject, prefix: PathPart[], fileCount: number): void {
  const errors = new FormErrors();
  maxLength(errors, [...prefix, 'content'], body.content, LIMITS.content);

  const embeds = body.embeds;
  if (Array.isArray(embeds)) {
    if (embeds.length > LIMITS.embeds) {
      errors.add([...prefix, 'embeds'], 'BASE_TYPE_MAX_LENGTH', `Must be ${LIMITS.embeds} or fewer in length.`);
    }
    let total = 0;
    embeds.forEach((embed, i) => {
      if (!isObject(embed)) return;
      const at = [...prefix, 'embeds', i];
      maxLength(errors, [...at, 'title'], embed.title, LIMITS.embedTitle);
      maxLength(errors, [...at, 'description'], embed.description, LIMITS.embedDescription);
      total += str(embed.title).length + str(embed.description).length;
      const footer = embed.footer;
      if (isObject(footer)) {
        maxLength(errors, [...at, 'footer', 'text'], footer.text, LIMITS.footerText);
        total += str(footer.text).length;
      }
      const author = embed.author;
      if (isObject(author)) {
        maxLength(errors, [...at, 'author', 'name'], author.name, LIMITS.authorName);
        total += str(author.name).length;
      }
      const fields = embed.fields;
      if (Array.isArray(fields)) {
        if (fields.length > LIMITS.embedFields) {
          errors.add([...at, 'fields'], 'BASE_TYPE_MAX_LENGTH', `Must be ${LIMITS.embedFields} or fewer in length.`);
        }
        fields.forEach((field, j) => {
          if (!isObject(field)) return;
          for (const key of ['name', 'value'] as const) {
            if (typeof field[key] !== 'string' || field[key] === '') {
              errors.add([...at, 'fields', j, key], 'BASE_TYPE_REQUIRED', 'This field is required');
            }
          }
          maxLength(errors, [...at, 'fields', j, 'name'], field.name, LIMITS.fieldName);
          maxLength(errors, [...at, 'fields', j, 'value'], field.value, LIMITS.fieldValue);
          total += str(field.name).length + str(field.value).length;
        });
      }
    });
    if (total > LIMITS.embedTotal) {
      errors.add(
        [...prefix, 'embeds'],
        'MAX_EMBED_SIZE_EXCEEDED',
        `Embed size exceeds maximum size of ${LIMITS.embedTotal}`,
      );
    }
  }

  checkComponents(errors, prefix, body.components, body.flags);

  const attachments = body.attachments;
  if (Array.isArray(attachments) && attachments.length > LIMITS.attachments) {
    errors.add([...prefix, 'attachments'], 'BASE_TYPE_MAX_LENGTH', `Must be ${LIMITS.attachments} or fewer in length.`);
  }
  if (fileCount > LIMITS.attachments) {
    errors.add(['files'], 'BASE_TYPE_MAX_LENGTH', `Must be ${LIMITS.attachments} or fewer in length.`);
  }
  errors.throwIfAny();
}

const IS_COMPONENTS_V2 = 1 << 15;

function checkComponents(
  errors: FormErrors,
  prefix: PathPart[],
  components: Json | undefined,
  flags: Json | undefined,
): void {
  if (!Array.isArray(components)) return;
  const v2 = typeof flags === 'number' && (flags & IS_COMPONENTS_V2) !== 0;
  if (!v2 && components.length > LIMITS.actionRows) {
    errors.add([...prefix, 'components'], 'BASE_TYPE_MAX_LENGTH', `Must be ${LIMITS.actionRows} or fewer in length.`);
  }
  const seen = new Set<string>();
  const walk = (node: Json, path: PathPart[]): void => {
    if (!isObject(node)) return;
    const customId = node.custom_id;
    if (typeof customId === 'string') {
      if (seen.has(customId)) {
        errors.add(
          [...path, 'custom_id'],
          'COMPONENT_CUSTOM_ID_DUPLICATED',
          'Component custom id cannot be duplicated',
        );
      }
      seen.add(customId);
      maxLength(errors, [...path, 'custom_id'], customId, LIMITS.customId);
    }
    if (node.type === 1 && Array.isArray(node.components) && node.components.length > LIMITS.componentsPerRow) {
      errors.add(
        [...path, 'components'],
        'BASE_TYPE_MAX_LENGTH',
        `Must be ${LIMITS.componentsPerRow} or fewer in length.`,
      );
    }
    if (node.type === 2) maxLength(errors, [...path, 'label'], node.label, LIMITS.buttonLabel);
    const children = node.components;
    if (Array.isArray(children)) for (const [i, child] of children.entries()) walk(child, [...path, 'components', i]);
    const accessory = node.accessory;
    if (accessory !== undefined) walk(accessory, [...path, 'accessory']);
  };
  for (const [i, c] of components.entries()) walk(c, [...prefix, 'components', i]);
}

/** Discord refuses to create a message with nothing to show (content, embeds, files, components, poll, stickers). */
export function checkNotEmpty(message: {
  content: string;
  embeds: unknown[];
  attachments: unknown[];
  components?: unknown[];
  poll?: unknown;
  sticker_items?: unknown[];
}): void {
  const empty =
    message.content === '' &&
    message.embeds.length === 0 &&
    message.attachments.length === 0 &&
    (message.components?.length ?? 0) === 0 &&
    message.poll === undefined &&
    (message.sticker_items?.length ?? 0) === 0;
  if (empty) throw new DiscordHttpError(400, { message: 'Cannot send an empty message', code: 50006 });
}

export function checkUploadSize(totalBytes: number, limit: number): void {
  if (totalBytes > limit) throw new DiscordHttpError(413, { message: 'Request entity too large', code: 40005 });
}

export function checkAutocompleteChoices(data: Json | undefined): void {
  if (!isObject(data)) return;
  const choices = data.choices;
  if (Array.isArray(choices) && choices.length > LIMITS.autocompleteChoices) {
    const errors = new FormErrors();
    errors.add(
      ['data', 'choices'],
      'BASE_TYPE_MAX_LENGTH',
      `Must be ${LIMITS.autocompleteChoices} or fewer in length.`,
    );
    errors.throwIfAny();
  }
}

const COMMAND_NAME = /^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$/u;

/**
 * Rules Discord enforces on command registration that the OpenAPI schema cannot express:
 * lower-case names for chat-input commands and options, a description for them, unique names,
 * required options before optional ones.
 */
export function checkCommands(bodies: JsonObject[]): void {
  const errors = new FormErrors();
  const seen = new Set<string>();
  bodies.forEach((cmd, i) => {
    const type = typeof cmd.type === 'number' ? cmd.type : 1;
    const name = typeof cmd.name === 'string' ? cmd.name : '';
    const key = `${type}:${name}`;
    if (seen.has(key))
      errors.add([i, 'name'], 'APPLICATION_COMMANDS_DUPLICATE_NAME', `Application command names must be unique`);
    seen.add(key);
    if (type === 1) checkChatInputNode(errors, [i], cmd);
  });
  errors.throwIfAny();
}

function checkChatInputNode(errors: FormErrors, path: PathPart[], node: JsonObject): void {
  const name = typeof node.name === 'string' ? node.name : '';
  if (!COMMAND_NAME.test(name) || name !== name.toLowerCase()) {
    errors.add([...path, 'name'], 'APPLICATION_COMMAND_INVALID_NAME', `Command name is invalid`);
  }
  const description = node.description;
  if (typeof description !== 'string' || description.length < 1 || description.length > 100) {
    errors.add([...path, 'description'], 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 100 in length.');
  }
  const options = node.options;
  if (!Array.isArray(options)) return;
  let optionalSeen = false;
  const names = new Set<string>();
  options.forEach((opt, j) => {
    if (!isObject(opt)) return;
    const at = [...path, 'options', j];
    const optName = typeof opt.name === 'string' ? opt.name : '';
    if (names.has(optName))
      errors.add([...at, 'name'], 'APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS', 'Option names must be unique');
    names.add(optName);
    const isSub = opt.type === 1 || opt.type === 2;
    if (!isSub) {
      if (opt.required === true && optionalSeen) {
        errors.add(
          [...path, 'options'],
          'APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID',
          'Required options must be placed before non-required options',
        );
      }
      if (opt.required !== true) optionalSeen = true;
      if (opt.autocomplete === true && Array.isArray(opt.choices) && opt.choices.length > 0) {
        errors.add(
          [...at, 'autocomplete'],
          'AUTOCOMPLETE_AND_CHOICES_ERROR',
          'Autocomplete cannot be set to true if choices are present',
        );
      }
    }
    checkChatInputNode(errors, at, opt);
  });
}
