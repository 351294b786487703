// Validation of request bodies against Discord's published OpenAPI 3.1 spec (JSON Schema 2020-12).
// The spec (1.2 MB) is read lazily, once per process (per vitest worker), and each operation's
// validator is compiled on first use and cached at module level, so test startup stays fast.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv2020Module from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { FormErrors } from './rules.ts';
import type { DiscordHttpError } from './types.ts';

// ajv is CommonJS: under Node's ESM loader the default import is module.exports (the class),
// while the type declarations describe it as `{ default: class }`. Accept both.
type AjvCtor = typeof Ajv2020Module.default;
const Ajv2020: AjvCtor = ((Ajv2020Module as unknown as { default?: AjvCtor }).default ?? Ajv2020Module) as AjvCtor;

/** The copy the repository carries (`test/fakes/discord/openapi/`, MIT), or `$DISCORD_OPENAPI_SPEC`. */
export const DEFAULT_SPEC_PATH =
  process.env.DISCORD_OPENAPI_SPEC ?? fileURLToPath(new URL('./openapi/openapi.json', import.meta.url));

export function specExists(path: string = DEFAULT_SPEC_PATH): boolean {
  return existsSync(path);
}

interface SchemaNode {
  [key: string]: unknown;
}
interface Spec {
  paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: SchemaNode }> } }>>;
  components: { schemas: Record<string, SchemaNode> };
}

const BASE = 'https://fake-discord.invalid/openapi.json';

interface Loaded {
  spec: Spec;
  ajv: InstanceType<AjvCtor>;
  validators: Map<string, ValidateFunction | null>;
}

const loaded = new Map<string, Loaded>();

function load(path: string): Loaded {
  const cached = loaded.get(path);
  if (cached) return cached;
  const spec = JSON.parse(readFileSync(path, 'utf8')) as Spec;
  spec.components = tolerateCoercions(spec.components, false) as Spec['components'];
  // verbose: errors carry the offending value, used in the messages like Discord does.
  const ajv = new Ajv2020({
    strict: false,
    allErrors: false,
    validateSchema: false,
    validateFormats: true,
    verbose: true,
  });
  for (const format of [
    'snowflake',
    'int32',
    'int64',
    'uri',
    'double',
    'nonce',
    'date-time',
    'float',
    'uuid',
    'email',
  ]) {
    ajv.addFormat(format, true);
  }
  ajv.addSchema({ $id: BASE, components: spec.components });
  const entry: Loaded = { spec, ajv, validators: new Map() };
  loaded.set(path, entry);
  return entry;
}

/**
 * Discord's parser converts between numbers and strings where the spec is strict:
 * - int-parseable strings are accepted for integer fields (the spec's README says so, and
 *   discord.js sends e.g. default_member_permissions as a string);
 * - integers are accepted for snowflakes (Discord's own upload example sends attachments
 *   `[{ "id": 0 }]`).
 * ajv's coerceTypes is too broad (it turns 0 into null and breaks oneOf), so instead the schemas
 * are widened: integer/number schemas also admit strings matching a numeric pattern (`pattern`
 * only constrains strings, `minimum` only numbers) and snowflake strings admit integers >= 0.
 * Direct oneOf/anyOf branches are left alone: there the other type is usually its own branch
 * (e.g. nonce), and widening would make both match.
 */
function tolerateCoercions(node: unknown, isUnionBranch: boolean): unknown {
  if (Array.isArray(node)) return node.map((n) => tolerateCoercions(n, isUnionBranch));
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] =
      k === 'oneOf' || k === 'anyOf'
        ? Array.isArray(v)
          ? v.map((n) => tolerateCoercions(n, true))
          : v
        : k === 'properties' || k === '$defs' || k === 'schemas'
          ? Object.fromEntries(
              Object.entries(v as Record<string, unknown>).map(([name, n]) => [name, tolerateCoercions(n, false)]),
            )
          : tolerateCoercions(v, false);
  }
  const types = typeof out.type === 'string' ? [out.type] : Array.isArray(out.type) ? (out.type as unknown[]) : [];
  const numeric = types.includes('integer') ? 'integer' : types.includes('number') ? 'number' : null;
  if (numeric && !isUnionBranch && !types.includes('string') && out.enum === undefined && out.pattern === undefined) {
    out.type = [...types, 'string'];
    out.pattern = numeric === 'integer' ? '^-?\\d+$' : '^-?\\d+(\\.\\d+)?$';
  }
  if (out.format === 'snowflake' && !isUnionBranch && types.includes('string') && !types.includes('integer')) {
    out.type = [...types, 'integer'];
    out.minimum = 0;
  }
  return out;
}

/** Rewrites local refs ('#/components/...') of an operation schema to the registered spec document. */
function rebase(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rebase);
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#') ? `${BASE}${v}` : rebase(v);
    }
    return out;
  }
  return node;
}

function resolveRef(spec: Spec, node: SchemaNode): SchemaNode {
  const ref = node.$ref;
  if (typeof ref !== 'string') return node;
  const name = ref.replace('#/components/schemas/', '');
  return spec.components.schemas[name] ?? node;
}

/**
 * The callback route's body is an anyOf over callback types; validating the union reports the
 * failures of every branch. Pick the branch whose `type` enum admits the body's type so that the
 * reported error is the one that matters (e.g. data.content too long).
 */
function pickBranch(spec: Spec, schema: SchemaNode, body: unknown): { schema: SchemaNode; key: string } {
  const union = (schema.anyOf ?? schema.oneOf) as SchemaNode[] | undefined;
  if (!Array.isArray(union) || !body || typeof body !== 'object' || Array.isArray(body)) return { schema, key: 'all' };
  const type = (body as Record<string, unknown>).type;
  if (typeof type !== 'number') return { schema, key: 'all' };
  for (const [i, branch] of union.entries()) {
    const resolved = resolveRef(spec, branch);
    const typeSchema = (resolved.properties as Record<string, SchemaNode> | undefined)?.type;
    const allowed = typeSchema?.enum ?? (typeSchema?.const !== undefined ? [typeSchema.const] : undefined);
    if (Array.isArray(allowed) && allowed.includes(type)) return { schema: branch, key: `branch${i}` };
  }
  return { schema, key: 'all' };
}

function validatorFor(entry: Loaded, route: string, method: string, body: unknown): ValidateFunction | null {
  const op = entry.spec.paths[route]?.[method.toLowerCase()];
  const schema = op?.requestBody?.content?.['application/json']?.schema;
  if (!schema) return null;
  const branch = pickBranch(entry.spec, schema, body);
  const key = `${method} ${route} ${branch.key}`;
  if (entry.validators.has(key)) return entry.validators.get(key) ?? null;
  const validate = entry.ajv.compile(rebase(tolerateCoercions(branch.schema, false)) as object);
  entry.validators.set(key, validate);
  return validate;
}

/** True when the spec has an operation for this route template and method. */
export function hasOperation(route: string, method: string, path: string = DEFAULT_SPEC_PATH): boolean {
  return load(path).spec.paths[route]?.[method.toLowerCase()] !== undefined;
}

/**
 * Validates `body` against the JSON request body schema of `method route`. Returns the
 * Discord-shaped 50035 error, or null when valid (or when the operation has no JSON body).
 */
export function validateRequestBody(
  route: string,
  method: string,
  body: unknown,
  specPath: string = DEFAULT_SPEC_PATH,
): DiscordHttpError | null {
  const entry = load(specPath);
  const validate = validatorFor(entry, route, method, body);
  if (!validate) return null;
  if (validate(body === undefined ? null : body)) return null;
  return toFormError(validate.errors ?? []);
}

/**
 * ajv reports the alternatives of every oneOf/anyOf it tried. Keep the most specific error:
 * drop the "is not null" alternatives and union summaries, prefer the deepest instance path.
 */
function toFormError(errors: ErrorObject[]): DiscordHttpError {
  const relevant = errors.filter(
    (e) =>
      e.keyword !== 'anyOf' &&
      e.keyword !== 'oneOf' &&
      !(e.keyword === 'type' && (e.params as { type?: unknown }).type === 'null'),
  );
  const pool = relevant.length > 0 ? relevant : errors;
  const depth = (e: ErrorObject): number => (e.instancePath === '' ? 0 : e.instancePath.split('/').length);
  const deepest = Math.max(...pool.map(depth));
  const chosen = pool.filter((e) => depth(e) === deepest).slice(0, 1);
  const form = new FormErrors();
  for (const e of chosen) {
    const path = e.instancePath
      .split('/')
      .slice(1)
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (e.keyword === 'required') {
      form.add(
        [...path, String((e.params as { missingProperty?: unknown }).missingProperty)],
        'BASE_TYPE_REQUIRED',
        'This field is required',
      );
    } else {
      const { code, message } = describe(e);
      form.add(path, code, message);
    }
  }
  return form.toError();
}

function describe(e: ErrorObject): { code: string; message: string } {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'maxLength':
    case 'maxItems':
      return { code: 'BASE_TYPE_MAX_LENGTH', message: `Must be ${String(p.limit)} or fewer in length.` };
    case 'minLength':
    case 'minItems':
      return { code: 'BASE_TYPE_MIN_LENGTH', message: `Must be ${String(p.limit)} or more in length.` };
    case 'maximum':
      return { code: 'NUMBER_TYPE_MAX', message: `int value should be less than or equal to ${String(p.limit)}.` };
    case 'minimum':
      return { code: 'NUMBER_TYPE_MIN', message: `int value should be greater than or equal to ${String(p.limit)}.` };
    case 'enum':
    case 'const':
      return {
        code: 'BASE_TYPE_CHOICES',
        message: `Value must be one of ${JSON.stringify(p.allowedValues ?? p.allowedValue)}.`,
      };
    case 'type':
      return { code: 'BASE_TYPE_BAD_TYPE', message: `Value must be of type ${String(p.type)}.` };
    case 'pattern':
      // A string where the spec wants an integer/number (see tolerateCoercions).
      if (String(p.pattern).startsWith('^-?\\d+')) {
        return {
          code: 'NUMBER_TYPE_COERCE',
          message: `Value ${JSON.stringify(e.data)} is not ${String(p.pattern).includes('.') ? 'a number' : 'int'}.`,
        };
      }
      return { code: 'BASE_TYPE_INVALID', message: 'Value is not valid.' };
    default:
      return { code: 'BASE_TYPE_INVALID', message: e.message ?? 'Invalid value.' };
  }
}
