import type { Batch, Job, JobRequest, ReplyTarget } from '../domain/job.ts';
import type { Refusal } from './limits.ts';

/**
 * What the rest of the bot asks of jobs, whichever engine runs them: in this process
 * (`in-process/service.ts`, SQLite or memory) or on BullMQ (`bullmq/service.ts`, Redis).
 * `scheduler.ts` picks one; nothing else imports an engine.
 */
export interface JobSettings {
  /** From the submission: how long the API may take to produce the image. */
  timeoutMs: number;
  /** From the request: how long a job may wait in the queue before it is submitted. */
  queueTimeoutMs: number;
  pollMinIntervalMs: number;
  pollMaxIntervalMs: number;
  progressEditIntervalMs: number;
  imageMaxBytes: number;
  maxJobsInFlight: number;
  /** How often the reconciler looks for unfinished jobs nothing is moving on. */
  reconcileIntervalMs: number;
  /** EDIT_IMAGE_INPUT: how an edit's picture is sent (its URL by default). */
  editImageInput?: 'url' | 'base64';
}

/** A reservation taken before the reply is deferred; `start` or `release` consumes it. */
export interface Ticket {
  readonly id: string;
  readonly request: JobRequest;
  /** Place in line, taken at reservation: the queue is fair to the order people asked in. */
  readonly seq: number;
  /** A later image of a batch: counted against the quotas, not the concurrency (the batch is one request). */
  readonly follower?: boolean;
}

export type Reservation = { ok: true; ticket: Ticket } | { ok: false; refusal: Refusal };

export interface JobService {
  /** Checks the limits and, when allowed, counts the request: before the reply is deferred. */
  reserve(request: JobRequest, options?: { follower?: boolean }): Promise<Reservation>;
  /** `batch`: the job is one image of a request for several (see `JobRequest.batch`). */
  start(ticket: Ticket, reply: ReplyTarget, batch?: Batch): Promise<Job>;
  /** Gives back a reservation that never became a job (the defer failed). */
  release(ticket: Ticket): Promise<void>;
  get(id: string): Promise<Job | undefined>;
  /** Picks up jobs a previous process left unfinished, and starts the reconciler. Returns how many. */
  resume(): Promise<number>;
  /**
   * The safety net, run every `RECONCILE_INTERVAL_MS` once resumed (one process at a time on
   * Redis): every unfinished job that nothing is moving on, quiet for longer than it should be, is
   * re-queued or ended with the right failure and refund, its member told. Returns how many.
   */
  reconcile(): Promise<number>;
  /** Stops polling without failing jobs, so the next start resumes them. */
  shutdown(): Promise<void>;
  /**
   * For metrics: jobs waiting to be submitted, and jobs being submitted or submitted and not
   * finished. On BullMQ these are the queues' counts, for every process together.
   */
  counts(): Promise<{ queued: number; inFlight: number }>;
  /** Jobs the guild started in the last 24 h, the window its daily budget counts (`/imagine-usage`). */
  dailyBudgetUsed?(guildId: string): Promise<number>;
}

/** The record a started ticket becomes, the same on every engine: queued, not yet polled. */
export const queuedJob = (ticket: Ticket, reply: ReplyTarget, createdAt: number, batch?: Batch): Job => ({
  ...ticket.request,
  ...(batch ? { batch } : {}),
  id: ticket.id,
  state: 'queued',
  reply,
  createdAt,
  polls: 0,
});
