import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../logger.ts';
import type { SharedState } from '../storage/shared-state.ts';

/** How long one batch message edit may hold the cross-process lock, and how long another waits for it. */
const BATCH_LOCK_TTL_MS = 15_000;
const BATCH_LOCK_WAIT_MS = 20_000;

/**
 * The edits of one batch message (`/imagine count`), one at a time. Every edit reads the
 * message's current attachments and writes back the ones it keeps, so two edits running together
 * would undo each other: two images finishing at once, or two moderators removing two images.
 * The delivery and the review desk share one instance, so their edits of a message queue up too.
 */
export interface BatchEdits {
  run<T>(batchId: string, edit: () => Promise<T>): Promise<T>;
}

/**
 * In this process a promise chain per batch; across processes (several on Redis) a short claim
 * in the shared state, `batch-edit:<batchId>`, as well.
 */
export function createBatchEdits(deps: {
  lock?: Pick<SharedState, 'claim' | 'release' | 'read'>;
  logger: Logger;
}): BatchEdits {
  const chains = new Map<string, Promise<void>>();

  async function locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const lock = deps.lock;
    if (!lock) return fn();
    const name = `batch-edit:${key}`;
    const holder = randomUUID();
    const giveUpAt = Date.now() + BATCH_LOCK_WAIT_MS;
    let won = (await lock.claim(name, holder, BATCH_LOCK_TTL_MS)).won;
    // Another process is editing the same message (a few hundred ms); past the wait, edit anyway rather than lose an image.
    while (!won && Date.now() < giveUpAt) {
      await delay(25 + Math.random() * 50);
      won = (await lock.claim(name, holder, BATCH_LOCK_TTL_MS)).won;
    }
    try {
      return await fn();
    } finally {
      // Only a lock still ours: an edit that outlived the lock (a slow upload) must not free the
      // next editor's, or a third edit would run beside it and put back an image it removed.
      if (won)
        await releaseIfHeld(lock, name, holder).catch((err: unknown) =>
          deps.logger.debug({ err, batchId: key }, 'could not release the batch lock'),
        );
    }
  }

  return {
    run(key, fn) {
      const result = (chains.get(key) ?? Promise.resolve()).then(() => locked(key, fn));
      const tail = result.then(
        () => undefined,
        () => undefined,
      );
      chains.set(key, tail);
      void tail.then(() => {
        if (chains.get(key) === tail) chains.delete(key);
      });
      return result;
    },
  };
}

/** Releases `name` when `holder` still holds it (a read, then the release: a claim taken between the two is the rare loss). */
async function releaseIfHeld(lock: Pick<SharedState, 'release' | 'read'>, name: string, holder: string) {
  if ((await lock.read<string>(name)) === holder) await lock.release(name);
}
