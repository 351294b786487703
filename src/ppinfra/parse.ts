import { PpinfraError } from './errors.ts';

/**
 * Lenient normalisers from the raw task-result JSON to typed results. The docs type the same
 * fields as numbers in one place and strings in another, and omit arrays while a task runs
 * (docs/ppinfra-api.md section 4), so nothing here trusts a type.
 */

export type TaskStatus = 'queued' | 'processing' | 'succeed' | 'failed';

export interface ResultImage {
  url: string;
  type: string;
  /** Seconds the URL stays valid; null when the API says 0 or nothing (not a signed URL). */
  ttlSeconds: number | null;
  /** Flagged by the API's NSFW detection, read generously: see `isFlag`. */
  nsfw: boolean;
  /** The raw signals behind `nsfw`, kept for the moderator who reviews the image. */
  nsfwSignals: { hasNsfwContents: unknown; detectionResult: unknown };
}

export interface TaskResult {
  taskId: string;
  status: TaskStatus;
  rawStatus: string;
  reason: string;
  etaSeconds: number;
  progressPercent: number;
  images: ResultImage[];
}

const STATUSES: Record<string, TaskStatus> = {
  TASK_STATUS_QUEUED: 'queued',
  TASK_STATUS_PROCESSING: 'processing',
  TASK_STATUS_SUCCEED: 'succeed',
  TASK_STATUS_FAILED: 'failed',
};

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

/** Numbers and numeric strings alike; anything else is `fallback`. */
export function num(v: unknown, fallback = 0): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return fallback;
}

/** Strings that say "no" outright; any other non-empty string is read as a flag (see `isFlag`). */
const NO_WORDS: ReadonlySet<string> = new Set(['', 'false', '0', 'no', 'none', 'null', 'n/a']);

/**
 * One NSFW signal read generously (docs/ppinfra-api.md section 6): the fields are undocumented,
 * so anything that could mean "flagged" is a flag. A false positive costs a moderator's click;
 * a false negative costs trust.
 * - `true`, a number other than 0 (`1`, a confidence), a string other than a plain "no"
 *   (`"true"` in any case, `"1"`, `"yes"`, a label; `"false"`, `"0"`, `""` are not);
 * - an array holding any flag (`[]` and `[false]` are not);
 * - an object with at least one field, whatever its fields say (`{ valid: false }` too: what
 *   `valid` means is documented nowhere). `{}` carries nothing and is not a flag: a provider that
 *   answers `{}` for every image would otherwise hold them all, and the local classifier still
 *   looks at the image.
 * `null`, `undefined`, `false` and `0` are not flags.
 */
export function isFlag(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value);
  if (typeof value === 'string') {
    const word = value.trim().toLowerCase();
    const n = num(word, Number.NaN);
    return Number.isNaN(n) ? !NO_WORDS.has(word) : n !== 0;
  }
  if (Array.isArray(value)) return value.some(isFlag);
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return false;
}

/**
 * This image's part of `extra.has_nsfw_contents`. An array as long as `images` is read by index
 * (the documented shape); any other value (a single `true`, an object, an array of another
 * length, whose positions cannot be trusted) speaks for every image of the task.
 */
function ownNsfwContents(raw: unknown, index: number, imageCount: number): unknown {
  if (Array.isArray(raw) && (raw.length === imageCount || raw.length === 0)) return raw[index] ?? null;
  return raw ?? null;
}

export function parseTaskResult(body: unknown, requestedTaskId: string): TaskResult {
  const root = obj(body);
  const task = obj(root.task);
  const rawStatus = text(task.status);
  const status = STATUSES[rawStatus];
  const taskId = text(task.task_id) || requestedTaskId;
  if (!status) {
    throw new PpinfraError('task_failed', `PPInfra reported an unknown task status "${rawStatus || '(none)'}"`, {
      reason: rawStatus || 'MISSING_STATUS',
      taskId,
    });
  }
  const flags = obj(root.extra).has_nsfw_contents;
  const raw = arr(root.images).map(obj);
  const images = raw
    .map((image, index) => {
      const nsfwSignals = {
        hasNsfwContents: ownNsfwContents(flags, index, raw.length),
        detectionResult: image.nsfw_detection_result ?? null,
      };
      return {
        url: text(image.image_url),
        type: text(image.image_type) || 'jpeg',
        ttlSeconds: num(image.image_url_ttl) > 0 ? num(image.image_url_ttl) : null,
        // Either signal flags the image.
        nsfw: isFlag(nsfwSignals.hasNsfwContents) || isFlag(nsfwSignals.detectionResult),
        nsfwSignals,
      };
    })
    .filter((image) => /^https?:\/\//.test(image.url));
  if (status === 'succeed' && images.length === 0) {
    throw new PpinfraError('task_failed', 'PPInfra reported success without an image', { reason: 'NO_IMAGES', taskId });
  }
  return {
    taskId,
    status,
    rawStatus,
    reason: text(task.reason),
    etaSeconds: num(task.eta),
    progressPercent: num(task.progress_percent),
    images,
  };
}

export function parseTaskId(body: unknown): string {
  const id = text(obj(body).task_id);
  if (!id) throw new PpinfraError('server', 'PPInfra accepted the request but returned no task id', { status: 200 });
  return id;
}
