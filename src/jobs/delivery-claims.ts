/**
 * The claims that make a finished image published once, whichever run or process finishes it:
 * a lease while one run publishes, then a record of what was published.
 */
import type { DeliveryOutcome, Job } from '../domain/job.ts';

/** What a delivery claim records: enough to finish the job without publishing again. */
export interface DeliveryRecord {
  outcome: DeliveryOutcome;
  fileName?: string;
  published?: Job['published'];
  /** What the verdict saw (both signals, the reasons): the record shows what the image was published on. */
  nsfw?: Job['nsfw'];
  unseen?: Job['unseen'];
}

/**
 * Discord took the image, but the claim or the job's final save failed: the job must not be
 * reported failed over a delivered image. Tried again, the delivery claim (or Discord's own
 * de-duplication) keeps the member's message as it is while the bookkeeping is finished.
 */
export class DeliveredNotRecorded extends Error {
  constructor(cause: unknown) {
    super('the image was delivered but the job could not be recorded', { cause });
  }
}

export const deliveryClaim = (jobId: string) => `delivery:${jobId}`;
/** As long as the finished record itself lives. */
export const DELIVERY_CLAIM_TTL_MS = 7 * 24 * 3600_000;
/**
 * While one run publishes an image, another that finds the job `delivering` leaves it to that
 * run; should that run die before it claims the delivery, the lease lapses and the job is picked
 * up again (publishing again is harmless then: Discord keeps one copy, see
 * `src/discord/delivery.ts`).
 */
export const deliveryLease = (jobId: string) => `delivering:${jobId}`;
export const DELIVERY_LEASE_MS = 30_000;
