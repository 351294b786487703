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
  /** Flagged by the API's NSFW detection; conservative, see `isFlagged`. */
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

/**
 * The API's NSFW signals are undocumented. The safest reading (docs/ppinfra-api.md section 6): a `true` in
 * `extra.has_nsfw_contents` at the image's index, or any non-null `nsfw_detection_result`,
 * means "needs review". A false positive costs a moderator's click; a false negative costs trust.
 */
function isFlagged(image: Json, index: number, flags: unknown[]): boolean {
  return flags[index] === true || (image.nsfw_detection_result !== null && image.nsfw_detection_result !== undefined);
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
  const flags = arr(obj(root.extra).has_nsfw_contents);
  const images = arr(root.images)
    .map(obj)
    .map((image, index) => ({
      url: text(image.image_url),
      type: text(image.image_type) || 'jpeg',
      ttlSeconds: num(image.image_url_ttl) > 0 ? num(image.image_url_ttl) : null,
      nsfw: isFlagged(image, index, flags),
      nsfwSignals: { hasNsfwContents: flags[index] ?? null, detectionResult: image.nsfw_detection_result ?? null },
    }))
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
