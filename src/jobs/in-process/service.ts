import { budgetKey, tokenNoticeAt } from '../../domain/place.ts';
import { randomUUID } from 'node:crypto';
import { noopMetrics, type Metrics } from '../../ops/metrics.ts';
import { createFinisher } from '../finish.ts';
import { createProgressReporter } from '../progress.ts';
import type { JobStore } from '../store.ts';
import type { UsageRecorder } from '../../usage/ledger.ts';
import { queuedJob, type JobService } from '../service.ts';
import type { SharedState } from '../../storage/shared-state.ts';
import { holdsSlot, type Delivery, type Job, type Moderation } from '../../domain/job.ts';
import { createRunner, type RunDeps, type Waiting } from './run.ts';

export interface JobServiceDeps extends RunDeps {
  store: JobStore;
  delivery: Delivery;
  moderation: Moderation;
  /** Submissions and finished jobs (none recorded when absent). */
  metrics?: Metrics;
  now?: () => number;
  newId?: () => string;
  /** Told once per job at its end (`src/usage/ledger.ts`). */
  usage?: UsageRecorder;
  /** Where deliveries are claimed, so a job finished twice publishes once (`Finisher`). */
  claims?: Pick<SharedState, 'claim' | 'read'>;
}

/**
 * Runs jobs: submissions paced by the provider's images-per-minute budget, the rest in a
 * visible FIFO queue with estimated starts. Reports only through the Delivery port and the
 * store, and never imports discord.js.
 */
export function createJobService(deps: JobServiceDeps): JobService {
  const { client, store, delivery, estimator, limits, settings } = deps;
  const now = deps.now ?? Date.now;
  const newId = deps.newId ?? (() => randomUUID().replace(/-/g, '').slice(0, 12));
  const metrics = deps.metrics ?? noopMetrics;
  const shutdown = new AbortController();
  const waiting: Waiting[] = [];
  let nextSeq = 1;
  const running = new Map<string, Promise<void>>();
  const reserved = new Set<string>();
  let wake: NodeJS.Timeout | undefined;

  const finisher = createFinisher({
    client,
    store,
    delivery,
    moderation: deps.moderation,
    estimator,
    imageMaxBytes: settings.imageMaxBytes,
    now,
    metrics,
    usage: deps.usage,
    claims: deps.claims,
    deliveryLeaseMs: settings.reconcileIntervalMs,
  });
  let reconcileTimer: NodeJS.Timeout | undefined;
  const { run, fail } = createRunner({ deps, finisher, signal: shutdown.signal, waiting, now, metrics });
  const reporter = (job: Job) =>
    createProgressReporter({
      job,
      delivery,
      intervalMs: settings.progressEditIntervalMs,
      logger: deps.logger.child({ jobId: job.id }),
      now,
      noticeAt: tokenNoticeAt(job),
    });

  /**
   * Starts what may start: a job that already has a task needs no budget; a new one needs a
   * submission slot. Expires jobs that waited too long, shows everyone else their place and
   * estimated start, and sets one timer for the next slot or expiry.
   */
  function pump() {
    clearTimeout(wake);
    if (shutdown.signal.aborted) return;
    expireWaiting();
    while (running.size < settings.maxJobsInFlight && waiting.length) {
      if (!waiting[0]!.job.taskId && !deps.pacer.tryTake()) break;
      const next = waiting.shift()!;
      const done = run(next.job, next.progress).finally(() => {
        running.delete(next.job.id);
        pump();
      });
      running.set(next.job.id, done);
    }
    // Estimated starts only when the budget is what holds a job back, not the safety cap.
    const paced = running.size < settings.maxJobsInFlight;
    for (const [i, { progress }] of waiting.entries()) {
      const startsAt = paced ? deps.pacer.startsAt(i + 1) : 0;
      // A start within a second or two is news by the time anyone reads it: show the place only.
      progress.show({ phase: 'queued', position: i + 1, ...(startsAt > now() + 2_000 ? { startsAt } : {}) });
    }
    if (!waiting.length) return;
    const nextSlot = paced ? deps.pacer.startsAt(1) : Infinity;
    const nextExpiry = Math.min(...waiting.map((w) => w.job.createdAt + settings.queueTimeoutMs));
    wake = setTimeout(pump, Math.max(10, Math.min(nextSlot, nextExpiry) - now()));
    wake.unref();
  }

  /** A job may wait in the queue for `queueTimeoutMs`; past that it fails, nothing billed. */
  function expireWaiting() {
    const expired = waiting.filter((w) => !w.job.taskId && now() - w.job.createdAt >= settings.queueTimeoutMs);
    for (const w of expired) {
      waiting.splice(waiting.indexOf(w), 1);
      const log = deps.logger.child({ jobId: w.job.id, guildId: w.job.guildId, userId: w.job.userId });
      limits.release(w.job.userId, budgetKey(w.job), true, holdsSlot(w.job));
      void w.progress.stop().then(() => fail(w.job, new Error('waited too long in the queue'), log, 'queue_timeout'));
    }
  }

  /** Inserts by `seq`: replies are deferred and saved concurrently, so starts may finish out of order. */
  function enqueue(job: Job, seq: number) {
    const at = waiting.findIndex((w) => w.seq > seq);
    waiting.splice(at < 0 ? waiting.length : at, 0, { job, progress: reporter(job), seq });
    pump();
  }

  /** One process owns this queue: an unfinished job it neither waits on nor runs was lost by it. */
  async function reconcile(): Promise<number> {
    let recovered = 0;
    for (const job of await store.listActive()) {
      if (shutdown.signal.aborted) break;
      const tracked = running.has(job.id) || waiting.some((w) => w.job.id === job.id);
      if (tracked || now() - (job.updatedAt ?? job.createdAt) < settings.reconcileIntervalMs) continue;
      const log = deps.logger.child({ jobId: job.id, taskId: job.taskId, guildId: job.guildId, userId: job.userId });
      metrics.jobRecovered('not_running');
      log.warn({ state: job.state }, 'reconciler: an unfinished job had nothing moving it on');
      recovered++;
      // As at a restart: a submit that may have billed is reported, anything else picked up again.
      if (job.state === 'submitting') {
        await fail(job, new Error('interrupted while submitting'), log, 'interrupted');
        continue;
      }
      limits.take(job.userId, budgetKey(job), { quota: false, concurrent: holdsSlot(job) });
      enqueue(job, 0);
    }
    return recovered;
  }

  return {
    async reserve(request, options = {}) {
      const concurrent = !options.follower;
      const refusal = limits.check(request.userId, budgetKey(request), waiting.length, request.caps, { concurrent });
      if (refusal) return { ok: false, refusal };
      limits.take(request.userId, budgetKey(request), { concurrent });
      const ticket = { id: newId(), request, seq: nextSeq++, follower: !concurrent };
      reserved.add(ticket.id);
      return { ok: true, ticket };
    },

    async start(ticket, reply, batch) {
      reserved.delete(ticket.id);
      const job = queuedJob(ticket, reply, now(), batch);
      try {
        await store.save(job);
      } catch (e) {
        // Nothing was sent to the API: give the reservation back before reporting the failure.
        limits.release(job.userId, budgetKey(job), true, !ticket.follower);
        pump();
        throw e;
      }
      enqueue(job, ticket.seq);
      return job;
    },

    async release(ticket) {
      if (!reserved.delete(ticket.id)) return;
      limits.release(ticket.request.userId, budgetKey(ticket.request), true, !ticket.follower);
      pump();
    },

    get: (id) => store.get(id),

    dailyBudgetUsed: async (guildId) => limits.guildUsed(guildId),

    async resume() {
      const jobs = await store.listActive();
      for (const job of jobs) {
        const log = deps.logger.child({ jobId: job.id, taskId: job.taskId });
        if (job.state === 'submitting') {
          // The submit may or may not have created a task; resubmitting could bill twice.
          await fail(job, new Error('interrupted while submitting'), log, 'interrupted');
          continue;
        }
        limits.take(job.userId, budgetKey(job), { quota: false, concurrent: holdsSlot(job) });
        log.info({ state: job.state }, 'resuming job');
        // Jobs from before the restart were asked for first.
        enqueue(job, 0);
      }
      clearInterval(reconcileTimer);
      reconcileTimer = setInterval(() => {
        reconcile().catch((err: unknown) => deps.logger.error({ err }, 'reconciler failed'));
      }, settings.reconcileIntervalMs);
      reconcileTimer.unref();
      return jobs.length;
    },

    reconcile,

    counts: async () => ({ queued: waiting.length, inFlight: running.size }),

    async shutdown() {
      clearTimeout(wake);
      clearInterval(reconcileTimer);
      shutdown.abort(new Error('shutting down'));
      await Promise.all([...waiting.map((w) => w.progress.stop()), ...running.values()]);
      waiting.length = 0;
    },
  };
}
