// The cross-process lock on a batch message's edits: an edit that outlives its lock (a slow
// upload, retried) must not free the lock of the edit that took it over.
import { describe, expect, it } from 'vitest';
import { createBatchEdits } from '../../src/discord/batch-edits.ts';
import { silentLogger } from '../../src/logger.ts';
import { createLocalSharedState } from '../../src/storage/shared-state.ts';
import { createMemoryKeyValue } from '../../src/storage/key-value.ts';

const LOCK = 'batch-edit:batch';

/** A promise and the function that settles it. */
function gate() {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe('the batch edit lock across processes', () => {
  it('an edit that outlived its lock leaves the next editor’s lock in place', async () => {
    const state = createLocalSharedState(createMemoryKeyValue());
    const [one, two] = [0, 1].map(() => createBatchEdits({ lock: state, logger: silentLogger }));
    const firstEditing = gate();
    const firstDone = gate();
    const secondEditing = gate();
    const secondDone = gate();

    const first = one!.run('batch', async () => {
      firstEditing.open();
      await firstDone.opened;
    });
    await firstEditing.opened;
    // The first edit's lock expires while it still runs (what its TTL does to a slow edit).
    await state.release(LOCK);
    const second = two!.run('batch', async () => {
      secondEditing.open();
      await secondDone.opened;
    });
    await secondEditing.opened;
    const secondsLock = await state.read<string>(LOCK);
    expect(secondsLock).toBeDefined();

    // The first ends: the lock is the second's, and stays so while the second edits.
    firstDone.open();
    await first;
    expect(await state.read<string>(LOCK)).toBe(secondsLock);
    secondDone.open();
    await second;
    expect(await state.read<string>(LOCK)).toBeUndefined();
  });
});
