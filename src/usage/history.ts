import type { Job } from '../domain/job.ts';
import type { SharedState } from '../storage/shared-state.ts';

/** Images per page of /imagine-history. */
export const HISTORY_PAGE_SIZE = 10;
/** How long an image stays in the history: as long as its job record (src/jobs/store.ts). */
export const HISTORY_DAYS = 7;

export interface HistoryPage {
  /** Newest first. */
  images: Job[];
  page: number;
  pages: number;
}

export interface History {
  /** A job a member started; it shows once it has an image in a channel. */
  add(userId: string, jobId: string): Promise<void>;
  /** The member's images, newest first, `page` 0 being the latest. */
  page(userId: string, page: number): Promise<HistoryPage>;
}

/**
 * A job counts as an image once it was published: delivered, or approved after review; or, where
 * the bot is no member, once it was made but nobody saw it (withheld, or the member unreachable):
 * the history is where the member learns of it.
 */
const isImage = (job: Job) => Boolean(job.published) || job.state === 'delivered' || Boolean(job.unseen);

/**
 * A member's images, from the job records: a set of job ids per member in the shared state (so
 * every process on one Redis sees the same history, and it survives restarts). Job records
 * expire a week after they finish; ids whose record is gone are dropped as they are found.
 */
export function createHistory(deps: {
  state: SharedState;
  jobs: { get(id: string): Promise<Job | undefined> };
}): History {
  const setOf = (userId: string) => `history:${userId}`;
  return {
    async add(userId, jobId) {
      await deps.state.add(setOf(userId), jobId);
    },
    async page(userId, page) {
      const ids = await deps.state.members(setOf(userId));
      const jobs = await Promise.all(ids.map(async (id) => ({ id, job: await deps.jobs.get(id) })));
      await Promise.all(jobs.filter((j) => !j.job).map((j) => deps.state.remove(setOf(userId), j.id)));
      const images = jobs
        .flatMap((j) => (j.job && j.job.userId === userId && isImage(j.job) ? [j.job] : []))
        .sort((a, b) => b.createdAt - a.createdAt);
      const pages = Math.max(1, Math.ceil(images.length / HISTORY_PAGE_SIZE));
      const at = Math.min(Math.max(0, Math.trunc(page) || 0), pages - 1);
      return { images: images.slice(at * HISTORY_PAGE_SIZE, (at + 1) * HISTORY_PAGE_SIZE), page: at, pages };
    },
  };
}
