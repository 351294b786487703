// Counting events in sliding windows, for the pacing tests.
/** The most events inside any window of `windowMs` (a sliding window over sorted times). */
export function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

/**
 * The events that came sooner than a budget of `budget` per `windowMs` allows, for a budget
 * unused at `since`: no window holds more than `budget`, so the k-th event (from 0) cannot come
 * before `since + floor(k / budget) * windowMs`. Times taken where the events arrive (the fake
 * API) can only be later than the decision to send them, so a slow machine can make an event
 * look later, never sooner: unlike a window count on arrival times, this cannot fail spuriously.
 */
export function soonerThanBudget(
  times: number[],
  since: number,
  budget: number,
  windowMs: number,
): { nth: number; atMs: number; earliestMs: number }[] {
  return [...times]
    .sort((a, b) => a - b)
    .flatMap((at, k) => {
      const earliest = since + Math.floor(k / budget) * windowMs;
      return at < earliest ? [{ nth: k + 1, atMs: at - since, earliestMs: earliest - since }] : [];
    });
}
