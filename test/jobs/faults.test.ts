// The fault matrix, on both engines: the in-process queue and BullMQ on a real redis-server, each
// against the fake PPInfra API. Whatever fails (the API, Redis, a process killed at any point, a
// step run twice), one invariant is checked after every case: every job ends in exactly one
// terminal state and its member is told once; one submission per job, or the member told why
// not; at most one delivery per image and one learned duration per job; every slot free again.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createBullmqJobService } from '../../src/jobs/bullmq/service.ts';
import { createDurationEstimator, type DurationEstimator } from '../../src/jobs/estimator.ts';
import { createRateLimiter } from '../../src/jobs/limiter.ts';
import { createLimits, type LimitSettings } from '../../src/jobs/limits.ts';
import { createSubmitPacer } from '../../src/jobs/pacer.ts';
import { createRedisLimits, createRedisPacer, type SharedLimits } from '../../src/jobs/bullmq/limits.ts';
import { createRedisJobStore } from '../../src/jobs/bullmq/store.ts';
import { createJobService } from '../../src/jobs/in-process/service.ts';
import { createJobStore, type JobStore } from '../../src/jobs/store.ts';
import { TERMINAL_STATES, type Delivery, type Job, type JobRequest } from '../../src/domain/job.ts';
import { silentLogger } from '../../src/logger.ts';
import { noopMetrics, type Metrics, type RecoveryReason } from '../../src/ops/metrics.ts';
import { createPpinfraClient, type PpinfraClient } from '../../src/ppinfra/client.ts';
import { createLocalSharedState, createRedisSharedState, type SharedState } from '../../src/storage/shared-state.ts';
import {
  startFakePpinfra,
  type Fault,
  type FakePpinfra,
  type FakeTaskScript,
  type RecordedRequest,
  type Route,
} from '../fakes/ppinfra.ts';
import { skipWithoutRedis, startRedis, type FakeRedis } from '../fakes/redis.ts';
import type { FailureKind } from '../../src/domain/failure.ts';
import { createMemoryKeyValue } from '../../src/storage/key-value.ts';
import type { JobService } from '../../src/jobs/service.ts';

const SIZE = '1024*1024';
const JOBS = 3;
const LIMITS: LimitSettings = {
  userMaxConcurrent: 1,
  userHourlyQuota: 50,
  guildDailyBudget: 500,
  maxJobsInFlight: 500,
  queueMax: 100,
  breakerThreshold: 50,
  breakerCooldownMs: 60_000,
};
const SETTINGS = {
  queueTimeoutMs: 600_000,
  timeoutMs: 30_000,
  pollMinIntervalMs: 200,
  pollMaxIntervalMs: 1_000,
  progressEditIntervalMs: 50,
  imageMaxBytes: 1_000_000,
  maxJobsInFlight: 500,
  reconcileIntervalMs: 1_000,
};
/** Every case ends well within a job's deadline plus one reconcile pass. */
const ENDS_WITHIN_MS = SETTINGS.timeoutMs + SETTINGS.reconcileIntervalMs;

/**
 * What members see, across every process: each job's messages, in order. Publishing a job's
 * result again edits the same reply with the same image (Discord keeps one copy: the deferred
 * reply is edited, a channel post carries a nonce), so a member sees a repeat as nothing new.
 */
class Members implements Delivery {
  readonly told = new Map<string, string[]>();
  private waiters: (() => void)[] = [];
  private say(job: Job, what: string) {
    this.told.set(job.id, [...(this.told.get(job.id) ?? []), what]);
    for (const w of this.waiters.splice(0)) w();
  }
  async progress() {
    return undefined;
  }
  async deliver(job: Job) {
    this.say(job, 'delivered');
    return 'delivered' as const;
  }
  async notice() {}
  async fail(job: Job, error: { kind: FailureKind }) {
    this.say(job, `failed:${error.kind}`);
  }
  /** Resolves once every job in `ids` has been told its outcome. */
  async allTold(ids: readonly string[]) {
    while (!ids.every((id) => this.told.has(id))) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

/** Durations learned, per size: once per job is the promise. */
function countingEstimator(): DurationEstimator & { recorded: number } {
  const inner = createDurationEstimator();
  const counting = {
    recorded: 0,
    estimate: inner.estimate,
    load: inner.load,
    async record(size: string, ms: number, startedAt?: number) {
      counting.recorded++;
      await inner.record(size, ms, startedAt);
    },
  };
  return counting;
}

interface SpawnOptions {
  /** A save that never returns: the process dies in the middle of it. */
  hang?: (job: Job) => boolean;
  /** A save the storage refuses, every time. */
  refuse?: (job: Job) => boolean;
  now?: () => number;
  metrics?: Metrics;
  /** True once the process is dead: from then on nothing it saves arrives. */
  dead?: () => boolean;
}

const faultyStore = (store: JobStore, options: SpawnOptions): JobStore => ({
  get: (id) => store.get(id),
  listActive: () => store.listActive(),
  async save(job) {
    if (options.dead?.() || options.hang?.(job)) return new Promise<never>(() => undefined);
    if (options.refuse?.(job)) throw new Error('the storage refused the write');
    return store.save(job);
  },
});

interface Process {
  service: JobService;
  /** Dies at once, as SIGKILL would: nothing more is saved; on BullMQ its locks lapse. */
  crash(): void;
  /** Its event loop stalls past the lock (BullMQ: lock renewals stop) while its work goes on. */
  stall(): void;
  stop(): Promise<void>;
}

interface Rig {
  api: FakePpinfra;
  members: Members;
  estimator: ReturnType<typeof countingEstimator>;
  store: JobStore;
  redis?: FakeRedis;
  spawn(options?: SpawnOptions): Promise<Process>;
  /** Jobs counted in flight (BullMQ's shared count; 0 in-process, where a restart starts from none). */
  inFlight(): Promise<number>;
  close(): Promise<void>;
}

type Engine = (api: FakePpinfra, client: PpinfraClient) => Promise<Rig>;

const seeded = (estimator: DurationEstimator) =>
  Promise.all(Array.from({ length: 8 }, () => estimator.record(SIZE, 150)));

const inProcess: Engine = async (api, client) => {
  const members = new Members();
  const estimator = countingEstimator();
  await seeded(estimator);
  estimator.recorded = 0;
  const store = createJobStore(createMemoryKeyValue());
  const claims = createLocalSharedState(createMemoryKeyValue());
  const processes: Process[] = [];
  return {
    api,
    members,
    estimator,
    store,
    async spawn(options = {}) {
      let dead = false;
      const service = createJobService({
        client,
        store: faultyStore(store, { ...options, dead: () => dead }),
        delivery: members,
        moderation: { verdict: async () => 'deliver', hold: async () => 'held' as const },
        estimator,
        limits: createLimits(LIMITS),
        pollLimiter: createRateLimiter({ perSecond: 100 }),
        pacer: createSubmitPacer({ perMinute: 1_000 }),
        settings: SETTINGS,
        logger: silentLogger,
        claims,
        now: options.now,
        metrics: options.metrics,
      });
      await service.resume();
      // Dying stops its timers and cuts its polls; what it had not saved stays unsaved, and it
      // saves nothing more (a submit already sent still creates its task).
      const crash = () => {
        dead = true;
        void service.shutdown();
      };
      // One process owns its queue: a stall changes nothing it does. What runs a job a second
      // time here is another process resuming it meanwhile.
      const proc: Process = { service, crash, stall: () => undefined, stop: () => service.shutdown() };
      processes.push(proc);
      return proc;
    },
    inFlight: async () => 0,
    async close() {
      for (const p of processes) p.crash();
    },
  };
};

let redisServer: FakeRedis | undefined;
let spawned = 0;
let rigs = 0;
const bullmq: Engine = async (api, client) => {
  const members = new Members();
  const estimator = countingEstimator();
  await seeded(estimator);
  estimator.recorded = 0;
  const prefix = `f${++rigs}`;
  const url = redisServer!.url;
  const admin = new Redis(url, { maxRetriesPerRequest: null });
  const limits = (redis: Redis): SharedLimits => createRedisLimits(redis, LIMITS, { prefix: `${prefix}:limits:` });
  const closers: (() => Promise<unknown>)[] = [];
  return {
    api,
    members,
    estimator,
    store: createRedisJobStore(admin, { prefix: `${prefix}:` }),
    redis: redisServer,
    async spawn(options = {}) {
      // Every connection the process opens, so that it can die with all of them.
      const redis = new Redis(url, { maxRetriesPerRequest: null });
      const workers: Redis[] = [];
      const duplicate = redis.duplicate.bind(redis);
      redis.duplicate = (...args: Parameters<Redis['duplicate']>) => {
        const connection = duplicate(...args);
        workers.push(connection);
        return connection;
      };
      const claims: SharedState = createRedisSharedState(url, `${prefix}:`);
      const service = createBullmqJobService({
        redis,
        client,
        store: faultyStore(createRedisJobStore(redis, { prefix: `${prefix}:` }), options),
        delivery: members,
        moderation: { verdict: async () => 'deliver', hold: async () => 'held' as const },
        estimator,
        limits: limits(redis),
        pacer: createRedisPacer(redis, { perMinute: 1_000, prefix: `${prefix}:pace:` }),
        settings: { ...SETTINGS, pollMaxPerSecond: 100, lockMs: 1_000, submitWindowMs: 1_500, stepBackoffMs: 50 },
        now: options.now,
        metrics: options.metrics,
        logger: process.env.FAULTS_LOG
          ? (await import('pino')).pino({ level: 'debug' }).child({ proc: ++spawned })
          : silentLogger,
        claims,
        prefix,
      });
      await service.resume();
      let dead = false;
      const crash = () => {
        if (dead) return;
        dead = true;
        for (const connection of [redis, ...workers]) connection.disconnect();
        void claims.close();
      };
      const proc: Process = {
        service,
        crash,
        stall: () => {
          for (const connection of workers) connection.disconnect();
        },
        async stop() {
          if (dead) return;
          dead = true;
          await service.shutdown();
          await Promise.all([redis.quit(), claims.close()]);
        },
      };
      closers.push(() => proc.stop());
      return proc;
    },
    inFlight: () => limits(admin).inFlight(),
    async close() {
      await Promise.all(closers.map((close) => close().catch(() => undefined)));
      await admin.quit();
    },
  };
};

const request = (i: number): JobRequest => ({
  prompt: `prompt ${i}`,
  size: SIZE,
  userId: `member${i}`,
  userName: `member${i}`,
  guildId: 'g',
  channelId: 'c',
  channelNsfw: false,
  locale: 'en-US',
});

async function ask(service: JobService, i: number): Promise<Job> {
  const reservation = await service.reserve(request(i));
  if (!reservation.ok) throw new Error(`refused: ${reservation.refusal.kind}`);
  return service.start(reservation.ticket, { applicationId: 'a', token: 't', createdAt: Date.now() });
}

/** A promise and the function that settles it, for a fault that must happen before the crash. */
function signal() {
  let fire!: () => void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  return { fire, fired };
}

type Crash =
  | 'before submit'
  | 'after submit, before its save'
  | 'mid-poll'
  | 'mid-download'
  | 'after delivery, before its save';

interface Case {
  name: string;
  script?: FakeTaskScript;
  faults?: [Route, Fault, number][];
  crash?: Crash;
  /** Redis dies (SIGKILL) while jobs run and comes back with what it had saved (AOF). */
  redisRestart?: boolean;
  /** A step runs again while its first run goes on (a stall taken over by another process). */
  twice?: boolean;
  /** What every member sees in the end (default: the image). */
  outcome?: string;
  /** How many members ask (default `JOBS`): one, where a fault must reach that job's engine. */
  jobs?: number;
  /** The engines the case means something on. */
  only?: 'BullMQ';
}

/** A save that moves a job into `state`: where a process dies for the crashes between steps. */
const savingInto = (state: Job['state']) => (job: Job) => job.state === state;
const HANG_ON_SAVE: Partial<Record<Crash, (job: Job) => boolean>> = {
  'before submit': savingInto('submitting'),
  'after submit, before its save': (job) => job.state === 'polling' && Boolean(job.taskId),
  'after delivery, before its save': savingInto('delivered'),
};
/** A request to the API that never answers: where a process dies for the crashes mid-request. */
const HANG_ON_REQUEST: Partial<Record<Crash, Route>> = { 'mid-poll': 'result', 'mid-download': 'image' };
const FOREVER = { delayHeadersMs: 10 * 60_000 };

const CASES: Case[] = [
  { name: 'task-result 404 for 0 polls', script: { processingMs: 400, notFoundPolls: 0 } },
  { name: 'task-result 404 for 1 poll', script: { processingMs: 400, notFoundPolls: 1 } },
  { name: 'task-result 404 for 3 polls', script: { processingMs: 400, notFoundPolls: 3 } },
  // A 5xx on submit after sending may have created a task: never resent, the member told.
  { name: '5xx on submit', faults: [['submit', { status: 503 }, JOBS]], outcome: 'failed:server' },
  // A few 5xx and 429 on reads: the client's own retries absorb them.
  { name: '5xx on task-result', faults: [['result', { status: 502 }, 4]] },
  { name: '5xx on the image download', faults: [['image', { status: 503 }, 3]] },
  { name: '429 on task-result', faults: [['result', { status: 429, retryAfterSec: 0 }, 4]] },
  { name: '429 on the image download', faults: [['image', { status: 429, retryAfterSec: 0 }, 3]] },
  // Faults that outlast the client's retries (4 submits, 6 reads), so the engine itself sees them.
  {
    name: '429 on submit past the client’s retries',
    jobs: 1,
    faults: [['submit', { status: 429, retryAfterSec: 0 }, 4]],
  },
  {
    name: '5xx on task-result past the client’s retries',
    jobs: 1,
    faults: [['result', { status: 502 }, 6]],
    outcome: 'failed:server',
  },
  {
    name: '5xx on the image download past the client’s retries',
    jobs: 1,
    faults: [['image', { status: 503 }, 6]],
    outcome: 'failed:server',
  },
  { name: 'a process killed before submit', crash: 'before submit' },
  // The submit may have billed a task whose id was never saved: reported, never resent.
  {
    name: 'a process killed after submit, before its save',
    crash: 'after submit, before its save',
    outcome: 'failed:interrupted',
  },
  { name: 'a process killed mid-poll', crash: 'mid-poll' },
  { name: 'a process killed mid-download', crash: 'mid-download' },
  { name: 'a process killed after delivery, before its save', crash: 'after delivery, before its save' },
  { name: 'a step run twice', twice: true },
  // Redis is the BullMQ engine's own storage; the in-process engine does not use it.
  { name: 'redis-server killed and restarted mid-run', redisRestart: true, only: 'BullMQ' },
];

function faultMatrix(name: 'in-process' | 'BullMQ', engine: () => Engine) {
  describe(`fault matrix: ${name}`, () => {
    let api: FakePpinfra | undefined;
    let client: PpinfraClient | undefined;
    let rig: Rig | undefined;
    afterEach(async () => {
      await rig?.close();
      // The fake first: a request a dead process left hanging is cut, so the client can close.
      await api?.close();
      await client?.close();
      rig = client = api = undefined;
    });

    for (const c of CASES.filter((c) => !c.only || c.only === name)) {
      it(`${c.name}: every job ends once, submitted at most once, delivered at most once, slots freed`, {
        timeout: ENDS_WITHIN_MS + 20_000,
      }, async () => {
        api = await startFakePpinfra({ script: () => c.script ?? { processingMs: c.twice ? 1_000 : 300 } });
        client = createPpinfraClient({ baseUrl: api.url, apiKey: api.apiKey, headersTimeoutMs: 60_000 });
        rig = await engine()(api, client);
        for (const [route, fault, times] of c.faults ?? []) api.inject(route, fault, times);

        const crashed = signal();
        const hang = c.crash && HANG_ON_SAVE[c.crash];
        const hangRoute = c.crash && HANG_ON_REQUEST[c.crash];
        // The job whose request hangs is the one caught at the crash point (its task id is in the
        // task-result query, or in the image's path).
        const caughtTasks = new Set<string>();
        if (hangRoute) {
          api.inject(hangRoute, FOREVER);
          void api
            .waitFor('request', (r) => r.route === hangRoute, 0)
            .then(
              (r: RecordedRequest) => {
                for (const id of api!.tasks.keys())
                  if (r.query.task_id === id || r.path.includes(id)) caughtTasks.add(id);
                crashed.fire();
              },
              () => undefined,
            );
        }
        if (c.twice) {
          // The first run of a check step is held up in its download while another process runs it again.
          api.inject('image', { delayHeadersMs: 2_500 });
          void api.waitFor('request', (r) => r.route === 'image', 0).then(crashed.fire, () => undefined);
        }
        // The jobs caught at the crash point: the case's outcome is theirs; the others are delivered.
        const caught = new Set<string>();
        const catching = (job: Job) => {
          if (!hang?.(job)) return false;
          caught.add(job.id);
          crashed.fire();
          return true;
        };
        const first = await rig.spawn({ hang: catching });
        const jobs: Job[] = [];
        for (let i = 0; i < (c.jobs ?? JOBS); i++) jobs.push(await ask(first.service, i));
        const ids = jobs.map((j) => j.id);

        let live = first;
        if (c.crash || c.twice) {
          await crashed.fired;
          if (c.twice) first.stall();
          else first.crash();
          live = await rig.spawn();
        }
        if (c.redisRestart) {
          // Every task generating (a submit caught by the outage is the crash cases' concern).
          await expect
            .poll(async () =>
              (await Promise.all(ids.map((id) => rig!.store.get(id)))).every((j) => j?.state === 'polling'),
            )
            .toBe(true);
          await rig.redis!.down('SIGKILL');
          await rig.redis!.up();
        }
        await rig.members.allTold(ids);
        await expect
          .poll(
            async () =>
              (await Promise.all(ids.map((id) => rig!.store.get(id)))).every((j) => j && TERMINAL_STATES.has(j.state)),
            { timeout: 10_000 },
          )
          .toBe(true);
        // The first run of the step run twice goes on to its end (nothing left in its hands), and
        // whatever it does then counts.
        if (c.twice) {
          await expect.poll(() => first.service.counts(), { timeout: 10_000 }).toEqual({ queued: 0, inFlight: 0 });
          await first.stop();
        }
        const taskOf = (job: Job) => [...api!.tasks.values()].find((t) => t.prompt === job.prompt);
        // A job reported interrupted had its submit sent, by a process that may have died while
        // the request was on its way: it reaches the API.
        for (const job of jobs) {
          if (rig.members.told.get(job.id)?.[0] === 'failed:interrupted')
            await expect.poll(() => taskOf(job) !== undefined, { timeout: 10_000 }).toBe(true);
        }
        for (const job of jobs) if (caughtTasks.has(taskOf(job)?.id ?? '')) caught.add(job.id);

        // One outcome per job, the one the case expects, and a record that says the same. A job
        // caught at the crash point was delivered or failed before it: never published again.
        for (const job of jobs) {
          const told = rig.members.told.get(job.id) ?? [];
          // The kill may catch other jobs mid-submit too: reported, never sent again, and only if
          // their submit reached the API (else they are sent by the process that takes over).
          const reported = Boolean(c.crash) && taskOf(job) !== undefined && told[0] === 'failed:interrupted';
          const expected =
            !c.crash || caught.has(job.id) ? (c.outcome ?? 'delivered') : reported ? 'failed:interrupted' : 'delivered';
          expect([...new Set(told)], job.prompt).toEqual([expected]);
          if (caught.has(job.id) || !c.crash) expect(told, job.prompt).toHaveLength(1);
          const stored = await rig.store.get(job.id);
          expect(stored?.state, job.prompt).toBe(expected === 'delivered' ? 'delivered' : 'failed');
          // One submission per job at most; none only when the member was told why.
          const submissions = [...api.tasks.values()].filter((t) => t.prompt === job.prompt).length;
          expect(submissions, job.prompt).toBeLessThanOrEqual(1);
          if (expected === 'delivered') expect(submissions).toBe(1);
        }
        // One learned duration per finished task, however many runs saw it finish.
        const finished = (await Promise.all(jobs.map((j) => rig!.store.get(j.id)))).filter(
          (j) => j?.completedAt !== undefined,
        );
        expect(rig.estimator.recorded).toBe(finished.length);
        // Every member may ask again (their one concurrent slot is free), and nothing counts as in
        // flight, once the process that finished the jobs has nothing left to do.
        await expect.poll(() => live.service.counts(), { timeout: 10_000 }).toEqual({ queued: 0, inFlight: 0 });
        for (let i = 0; i < JOBS; i++) {
          const again = await live.service.reserve(request(i));
          expect(again.ok, `member${i}`).toBe(true);
          if (again.ok) await live.service.release(again.ticket);
        }
        expect(await rig.inFlight()).toBe(0);
      });
    }
  });
}

/** The net under the matrix: what ends a job when its own steps cannot. */
function theNet(name: 'in-process' | 'BullMQ', engine: () => Engine) {
  describe(`the net under the fault matrix: ${name}`, () => {
    let api: FakePpinfra | undefined;
    let client: PpinfraClient | undefined;
    let rig: Rig | undefined;
    beforeEach(async () => {
      api = await startFakePpinfra({ script: () => ({ processingMs: 300 }) });
      client = createPpinfraClient({ baseUrl: api.url, apiKey: api.apiKey });
      rig = await engine()(api, client);
    });
    afterEach(async () => {
      await rig?.close();
      await api?.close();
      await client?.close();
      rig = client = api = undefined;
    });

    it('a job whose saves the storage keeps refusing ends as failed, its member told once and their slot freed, nothing submitted', async () => {
      const p = await rig!.spawn({ refuse: (job) => job.state === 'submitting' });
      const job = await ask(p.service, 0);
      await rig!.members.allTold([job.id]);
      expect(rig!.members.told.get(job.id)).toEqual(['failed:internal']);
      expect((await rig!.store.get(job.id))?.state).toBe('failed');
      expect(api!.tasks.size).toBe(0);
      await expect.poll(() => p.service.counts()).toEqual({ queued: 0, inFlight: 0 });
      const again = await p.service.reserve(request(0));
      expect(again.ok).toBe(true);
    });

    it('the reconciler delivers an unfinished job that nothing is moving on, once, and counts it', async () => {
      // A job with a task, saved as generating, whose next step was never queued (lost with the
      // process that planned it), as a process whose clock says two minutes later finds it.
      const later = () => Date.now() + 120_000;
      const taskId = await client!.submit({ prompt: 'prompt 0', size: SIZE });
      const lost: Job = {
        ...request(0),
        id: 'lostjob00001',
        state: 'polling',
        reply: { applicationId: 'a', token: 't', createdAt: Date.now() },
        createdAt: later(),
        polls: 1,
        taskId,
        submittedAt: later(),
        step: { id: 'lostjob00001-check-9', kind: 'check', dueAt: Date.now() },
      };
      const reasons: RecoveryReason[] = [];
      const p = await rig!.spawn({
        now: later,
        metrics: { ...noopMetrics, jobRecovered: (reason) => reasons.push(reason) },
      });
      await rig!.store.save(lost);
      // The pass that runs on its own may be first; either way the job is picked up once.
      await p.service.reconcile();
      await rig!.members.allTold([lost.id]);
      expect(rig!.members.told.get(lost.id)).toEqual(['delivered']);
      await expect.poll(async () => (await rig!.store.get(lost.id))?.state).toBe('delivered');
      await p.service.reconcile();
      expect(reasons).toEqual([name === 'in-process' ? 'not_running' : 'step_missing']);
      expect(api!.tasks.size).toBe(1);
    });
  });
}

faultMatrix('in-process', () => inProcess);
theNet('in-process', () => inProcess);

describe.skipIf(skipWithoutRedis)('on Redis', () => {
  beforeAll(async () => {
    redisServer = await startRedis({ persist: true });
  });
  afterAll(() => redisServer?.stop());
  faultMatrix('BullMQ', () => bullmq);
  theNet('BullMQ', () => bullmq);
});
