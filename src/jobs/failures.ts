import { isPpinfraError } from '../ppinfra/errors.ts';
import type { FailureKind } from '../domain/failure.ts';

const REFUSED_BEFORE_CREATING: ReadonlySet<FailureKind> = new Set([
  'auth',
  'quota',
  'invalid_request',
  'illegal_prompt',
  'rate_limited',
]);

/**
 * Refund the member's quota only when no task can exist: a timeout, a reset or a gateway error
 * after sending may have created a billed task.
 */
export const certainlyNotCreated = (e: unknown) =>
  isPpinfraError(e) && (e.notSent || e.reason === 'CREATE_TASK_FAILED' || REFUSED_BEFORE_CREATING.has(e.kind));

/** Failures that say the API itself is unwell, and count towards the cool-down. */
export const UNHEALTHY: ReadonlySet<FailureKind> = new Set(['server', 'timeout', 'network']);
