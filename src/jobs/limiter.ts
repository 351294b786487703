import { sleep as defaultSleep } from '../ppinfra/retry.ts';

/** Spaces calls evenly so all jobs together never exceed `perSecond` task-result requests. */
export interface RateLimiter {
  acquire(signal?: AbortSignal): Promise<void>;
}

export function createRateLimiter(deps: {
  perSecond: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}): RateLimiter {
  const spacing = 1000 / deps.perSecond;
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? defaultSleep;
  let nextFree = 0;
  return {
    async acquire(signal) {
      const t = now();
      const slot = Math.max(t, nextFree);
      nextFree = slot + spacing;
      if (slot > t) await sleep(slot - t, signal);
    },
  };
}
