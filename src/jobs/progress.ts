import type { Logger } from '../logger.ts';
import type { Delivery, Job, ProgressView } from '../domain/job.ts';

export interface ProgressReporter {
  /** Show this view; edits at most once per interval, the latest view wins. */
  show(view: ProgressView): void;
  /** Drops any pending edit and waits for the one in flight, before the final edit goes out. */
  stop(): Promise<void>;
}

/**
 * Throttles progress edits per message. Discord rate-limits message edits, and a busy server
 * with many jobs must never reach those limits, so a state change inside the interval waits
 * for its end and only the latest view is sent.
 */
export function createProgressReporter(deps: {
  job: Job;
  delivery: Delivery;
  intervalMs: number;
  logger: Logger;
  now?: () => number;
}): ProgressReporter {
  const now = deps.now ?? Date.now;
  let lastSentAt = -Infinity;
  let lastKey = '';
  let pending: ProgressView | undefined;
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> = Promise.resolve();
  let stopped = false;

  const send = (view: ProgressView) => {
    lastSentAt = now();
    lastKey = JSON.stringify(view);
    inflight = inflight
      .then(() => deps.delivery.progress(deps.job, view))
      .then((messageId) => {
        if (messageId) deps.job.messageId ??= messageId;
      })
      .catch((e: unknown) => deps.logger.warn({ err: e }, 'progress edit failed'));
  };

  const flush = () => {
    timer = undefined;
    if (stopped || !pending) return;
    const view = pending;
    pending = undefined;
    send(view);
  };

  return {
    show(view) {
      if (stopped || JSON.stringify(view) === (pending ? JSON.stringify(pending) : lastKey)) return;
      const wait = lastSentAt + deps.intervalMs - now();
      if (wait <= 0 && !timer) return send(view);
      pending = view;
      timer ??= setTimeout(flush, Math.max(wait, 0));
    },
    async stop() {
      stopped = true;
      pending = undefined;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await inflight;
    },
  };
}
