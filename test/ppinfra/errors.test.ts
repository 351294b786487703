import { describe, expect, it } from 'vitest';
import { fromResponse, fromTransportError, parseRetryAfter, type PpinfraErrorKind } from '../../src/ppinfra/errors.ts';

describe('fromResponse: the body reason decides before the status', () => {
  it.each<[number, string | undefined, PpinfraErrorKind]>([
    [400, 'MISSING_API_KEY', 'auth'],
    [403, 'INVALID_API_KEY', 'auth'],
    [401, undefined, 'auth'],
    [403, undefined, 'auth'],
    [400, 'BILLING_BALANCE_NOT_ENOUGH', 'quota'],
    [403, 'BILLING_BALANCE_NOT_ENOUGH', 'quota'],
    [403, 'NOT_ENOUGH_BALANCE', 'quota'],
    [400, 'INVALID_REQUEST_BODY', 'invalid_request'],
    [400, undefined, 'invalid_request'],
    [400, 'ILLEGAL_PROMPT', 'illegal_prompt'],
    [404, 'TASK_NOT_FOUND', 'task_not_found'],
    [429, 'RATE_LIMIT_EXCEEDED', 'rate_limited'],
    [429, undefined, 'rate_limited'],
    [500, 'TASK_FAILED', 'task_failed'],
    [500, 'CREATE_TASK_FAILED', 'server'],
    [500, 'GET_RESULT_FAILED', 'server'],
    [502, undefined, 'server'],
    [503, 'SERVICE_NOT_AVAILABLE', 'server'],
    [500, 'SOMETHING_NEW', 'server'],
  ])('HTTP %i with reason %s is %s', (status, reason, kind) => {
    const error = fromResponse(status, reason ? { code: status, reason, message: 'detail' } : undefined);
    expect(error.kind).toBe(kind);
    expect(error.status).toBe(status);
    expect(error.reason).toBe(reason);
  });

  it('keeps retry-after', () => {
    expect(fromResponse(429, undefined, 2000).retryAfterMs).toBe(2000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-25T10:00:00Z');
  it.each([
    [{ 'retry-after': '3' }, 3000],
    [{ 'retry-after': '0.5' }, 500],
    [{ 'retry-after': 'Wed, 25 Nov 2026 10:00:07 GMT' }, 7000],
    [{ 'retry-after': 'Wed, 25 Nov 2026 09:59:00 GMT' }, 0],
    [{ 'retry-after-ms': '250', 'retry-after': '9' }, 250],
    [{ 'retry-after': 'soon' }, undefined],
    [{}, undefined],
  ])('%o -> %s ms', (headers, expected) => {
    expect(parseRetryAfter(headers, now)).toBe(expected);
  });
});

describe('fromTransportError', () => {
  const codeError = (code: string) => Object.assign(new Error(code), { code });
  it.each([
    ['ECONNREFUSED', 'network', true],
    ['ENOTFOUND', 'network', true],
    ['UND_ERR_CONNECT_TIMEOUT', 'timeout', true],
    ['ECONNRESET', 'network', false],
    ['UND_ERR_SOCKET', 'network', false],
    ['UND_ERR_HEADERS_TIMEOUT', 'timeout', false],
    ['UND_ERR_BODY_TIMEOUT', 'timeout', false],
  ])('%s is %s (certainly not sent: %s)', (code, kind, notSent) => {
    const error = fromTransportError(codeError(code), undefined, 'Submitting');
    expect(error.kind).toBe(kind);
    expect(error.notSent).toBe(notSent);
  });

  it('finds the code on a cause chain', () => {
    const error = fromTransportError(
      new TypeError('fetch failed', { cause: codeError('ECONNREFUSED') }),
      undefined,
      'x',
    );
    expect(error).toMatchObject({ kind: 'network', notSent: true });
  });

  it('tells a deadline from a cancellation', () => {
    const timedOut = AbortSignal.abort(new DOMException('t', 'TimeoutError'));
    const cancelled = AbortSignal.abort(new DOMException('a', 'AbortError'));
    expect(fromTransportError(new Error('aborted'), timedOut, 'x').kind).toBe('timeout');
    expect(fromTransportError(new Error('aborted'), cancelled, 'x').kind).toBe('aborted');
  });
});
