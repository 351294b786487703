import type { SharedState } from '../storage/shared-state.ts';

const HOUR_MS = 3600_000;

export type ReportAllowance =
  | { allowed: true; giveBack(): Promise<void> }
  | { allowed: false; limit: number; retryAt: number };

/** How many reports one member of a guild may send in any hour, for every process of the bot. */
export interface ReportLimit {
  /** Takes one report from the member's hour; `giveBack` returns it when the report came to nothing. */
  take(guildId: string | null, userId: string): Promise<ReportAllowance>;
}

/**
 * A rolling hour as `perHour` slots per member, each a claim in the shared state that expires an
 * hour after it was taken (SET NX PX on Redis): a report takes a free slot, so of two processes
 * taking the last one at once only one gets it, and a report given back frees its slot at once.
 * A full hour's answer is when its oldest slot frees.
 */
export function createReportLimit(deps: {
  state: Pick<SharedState, 'claim' | 'release'>;
  perHour: number;
  now?: () => number;
}): ReportLimit {
  const now = deps.now ?? Date.now;
  return {
    async take(guildId, userId) {
      const taken: number[] = [];
      for (let slot = 0; slot < deps.perHour; slot++) {
        const key = `report-limit:${guildId ?? 'dm'}:${userId}:${slot}`;
        const at = now();
        let claim = await deps.state.claim(key, { at }, HOUR_MS);
        // Past its hour by this clock but not yet expired in the store (the store's clock runs
        // apart, as the injected one of a test does): free, though two processes may both see it so.
        if (!claim.won && claim.holder.at + HOUR_MS <= at) {
          await deps.state.release(key);
          claim = await deps.state.claim(key, { at }, HOUR_MS);
        }
        if (claim.won) return { allowed: true, giveBack: () => deps.state.release(key) };
        taken.push(claim.holder.at);
      }
      return { allowed: false, limit: deps.perHour, retryAt: Math.min(...taken) + HOUR_MS };
    },
  };
}
