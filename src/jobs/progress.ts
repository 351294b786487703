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
  /**
   * Where only the interaction token answers, when to say the image will come by DM instead
   * (`tokenNoticeAt`): shown once, through the same throttle, unless the reporter stopped first
   * (the job reached its end); after it, no other view replaces it.
   */
  noticeAt?: number;
}): ProgressReporter {
  const now = deps.now ?? Date.now;
  let lastSentAt = -Infinity;
  let lastKey = '';
  let pending: ProgressView | undefined;
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> = Promise.resolve();
  let stopped = false;
  let noticed = false;
  const notice =
    deps.noticeAt === undefined
      ? undefined
      : setTimeout(
          () => {
            show({ phase: 'expiring' });
            noticed = true;
          },
          Math.max(0, deps.noticeAt - now()),
        );
  notice?.unref();

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

  function show(view: ProgressView) {
    if (stopped || noticed || JSON.stringify(view) === (pending ? JSON.stringify(pending) : lastKey)) return;
    const wait = lastSentAt + deps.intervalMs - now();
    if (wait <= 0 && !timer) return send(view);
    pending = view;
    timer ??= setTimeout(flush, Math.max(wait, 0));
  }

  return {
    show,
    async stop() {
      stopped = true;
      clearTimeout(notice);
      pending = undefined;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await inflight;
    },
  };
}
