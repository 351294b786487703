import { PpinfraError } from '../../src/ppinfra/errors.ts';

/** The PpinfraError a call rejects with; fails the test if it resolves or throws anything else. */
export async function caught(promise: Promise<unknown>): Promise<PpinfraError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof PpinfraError) return e;
    throw new Error(`expected a PpinfraError, got ${String(e)}`, { cause: e });
  }
  throw new Error('expected the call to fail');
}
