/**
 * Why a job failed, as a stable string the rest of the bot switches on. The API's kinds come
 * first: `PpinfraError.kind` (src/ppinfra/errors.ts) carries them, and each maps to one sentence
 * in src/discord/messages.ts.
 */
export const ERROR_KINDS = [
  'auth',
  'quota',
  'invalid_request',
  'illegal_prompt',
  'task_not_found',
  'rate_limited',
  'server',
  'network',
  'timeout',
  'task_failed',
  'too_large',
  'aborted',
] as const;
export type PpinfraErrorKind = (typeof ERROR_KINDS)[number];

/**
 * Beyond the API's kinds: `interrupted` (cut off mid-submit by a crash), `queue_timeout` (waited
 * too long to be submitted), `upload_limit` (the image exceeds the server's upload limit).
 */
export type FailureKind = PpinfraErrorKind | 'interrupted' | 'internal' | 'queue_timeout' | 'upload_limit';
