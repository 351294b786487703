/**
 * A clock on which no real time passes: every sleep is a timer, and `run` fires them in order
 * (ties in the order they were set), letting everything a timer set off (a poll, its result, the
 * next sleep) settle before the next. For the polling workloads of test/jobs/workloads.ts and
 * bench/virtual-family.ts, which run minutes of polls in milliseconds.
 */
export interface VirtualClock {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Drives the clock until `scenario` settles; throws when it waits on nothing. */
  run<T>(scenario: () => Promise<T>): Promise<T>;
}

export function createVirtualClock(): VirtualClock {
  let clock = 0;
  let seq = 0;
  const timers: { at: number; seq: number; fire: () => void }[] = [];
  return {
    now: () => clock,
    sleep: (ms) => new Promise<void>((fire) => void timers.push({ at: clock + Math.max(0, ms), seq: seq++, fire })),
    async run(scenario) {
      let done = false;
      const all = scenario().finally(() => {
        done = true;
      });
      while (!done) {
        await new Promise<void>((r) => setImmediate(r));
        if (done) break;
        if (!timers.length) throw new Error('the workload stalled');
        timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
        const next = timers.shift()!;
        clock = next.at;
        next.fire();
      }
      return all;
    },
  };
}
