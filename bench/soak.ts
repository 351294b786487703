/**
 * `npm run soak`: two bot processes (`src/main.ts`, one gateway shard each) on one real Redis,
 * against the fake Discord and the fake PPInfra, serve a few minutes of `/imagine` from many
 * members while seeded faults hit them: task-result 404 TASK_NOT_FOUND for a task's first polls,
 * 5xx and 429 on submit, task-result and image downloads, slow downloads, Discord 5xx on message
 * edits, one SIGKILL of one bot process (restarted after a few seconds, as an orchestrator would)
 * and one Redis restart (with an append-only file, as an operator runs it).
 *
 * Then it checks, per request, what members and the operator would see: exactly one final
 * outcome (the image, a failure or notice, or an immediate refusal), at most one submission to
 * the API, each image shown and uploaded once, and at the end no concurrency slot, queued step or
 * unfinished job record left in Redis. Violations are printed one per line; exit code 1 when
 * there are any.
 *
 * Options (flag or environment): --jobs / SOAK_JOBS (200), --members / SOAK_MEMBERS (50),
 * --guilds / SOAK_GUILDS (4), --duration / SOAK_DURATION_S (180, seconds over which requests
 * are sent), --seed / SOAK_SEED (random; printed, and the same seed draws the same workload and
 * faults; the interleaving of two processes is not replayable, only the plan).
 *
 * `runSoak()` is the same driver for `test/e2e/soak.test.ts`, at a smaller scale.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import type { APIMessage } from 'discord-api-types/v10';
import { Redis } from 'ioredis';
import { t, type MessageKey } from '../src/discord/i18n.ts';
import { ERROR_KINDS } from '../src/ppinfra/errors.ts';
import { finished } from '../test/e2e/harness.ts';
import { sharedRedisEnv, startShardProcess, type ShardProcess } from '../test/e2e/shard-process.ts';
import { startFakeDiscord, type FakeDiscord, type FakeInteraction } from '../test/fakes/discord/server.ts';
import {
  startFakePpinfra,
  type Fault as ApiFault,
  type FakePpinfra,
  type FakeTaskScript,
  type Route,
} from '../test/fakes/ppinfra.ts';
import { mulberry32 } from '../test/fakes/random.ts';
import { startRedis, type FakeRedis } from '../test/fakes/redis.ts';

export interface SoakOptions {
  jobs: number;
  members: number;
  /** Spread over the two shards (guild k on shard k % 2), so both processes get interactions. */
  guilds: number;
  /** Requests are sent at seeded random moments over this span. */
  durationMs: number;
  seed: number;
  /** Share of tasks whose first 1-3 task-result polls answer 404 TASK_NOT_FOUND. */
  notFoundShare: number;
  /** Injected API faults (each hits the next 1-3 requests of its route). */
  apiFaults: number;
  /** Requests whose message edits get Discord 5xx (sometimes more than discord.js retries). */
  discordFaults: number;
  /** How long the killed process stays down, and how long Redis is away. */
  downMs: number;
  /** QUEUE_LOCK_MS: how soon the other process takes over the killed one's steps. */
  lockMs: number;
  /** JOB_TIMEOUT_MS: the bot's own deadline for a submitted task. */
  jobTimeoutMs: number;
  /** Waited beyond the last request's JOB_TIMEOUT_MS and two lock periods before a request counts as unanswered. */
  graceMs: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface SoakReport {
  seed: number;
  violations: string[];
  /** The whole report, as `npm run soak` prints it. */
  text: string;
}

export const FULL: Omit<SoakOptions, 'seed'> = {
  jobs: 200,
  members: 50,
  guilds: 4,
  durationMs: 180_000,
  notFoundShare: 0.15,
  apiFaults: 60,
  discordFaults: 20,
  downMs: 3_000,
  lockMs: 5_000,
  jobTimeoutMs: 60_000,
  graceMs: 30_000,
};

/** RECONCILE_INTERVAL_MS for the soak: a few lock periods, so a pass comes well within a run. */
const reconcileMs = (o: Pick<SoakOptions, 'lockMs'>) => 2 * o.lockMs;

/** A seeded generator (mulberry32), so a seed always draws the same plan. */
function generator(seed: number) {
  const random = mulberry32(seed);
  const between = (lo: number, hi: number) => lo + random() * (hi - lo);
  const int = (lo: number, hi: number) => Math.floor(between(lo, hi + 1));
  const pick = <T>(items: readonly [T, number][]): T => {
    let r = random() * items.reduce((n, [, w]) => n + w, 0);
    for (const [item, weight] of items) {
      r -= weight;
      if (r < 0) return item;
    }
    return items[items.length - 1]![0];
  };
  const shuffle = <T>(items: T[]) => {
    for (let i = items.length - 1; i > 0; i--) {
      const j = int(0, i);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  };
  return { random, between, int, pick, shuffle };
}

interface Planned {
  n: number;
  /** ms after the start. */
  at: number;
  member: string;
  guild: number;
  prompt: string;
  script: FakeTaskScript;
  /** Discord 5xx on this request's edits, some time after it is sent. */
  editFault?: { afterMs: number; status: 500 | 502 | 503; times: number };
}

interface Plan {
  requests: Planned[];
  apiFaults: { at: number; route: Route; fault: ApiFault; times: number }[];
  kill: { at: number; shard: number };
  redisAt: number;
}

function makePlan(o: SoakOptions): Plan {
  const g = generator(o.seed);
  const members = Array.from({ length: o.members }, (_, i) => `m${String(i).padStart(2, '0')}`);
  // Every member asks about as often as the others, at random moments.
  const askers = g.shuffle(Array.from({ length: o.jobs }, (_, i) => i % o.members));
  const times = Array.from({ length: o.jobs }, () => g.between(0, o.durationMs)).sort((a, b) => a - b);
  const width = String(o.jobs).length;
  const requests: Planned[] = times.map((at, n) => {
    const m = askers[n]!;
    const script: FakeTaskScript = {
      queuedMs: Math.round(g.between(0, 1_000)),
      processingMs: Math.round(g.between(1_500, 6_000)),
    };
    if (g.random() < o.notFoundShare) script.notFoundPolls = g.int(1, 3);
    // Fixed-width numbers: no prompt is the start of another, so a message's quoted prompt names one request.
    return {
      n,
      at,
      member: members[m]!,
      guild: m % o.guilds,
      prompt: `soak ${o.seed} job ${String(n).padStart(width, '0')} by ${members[m]}`,
      script,
    };
  });
  for (const r of g.shuffle([...requests]).slice(0, o.discordFaults)) {
    r.editFault = {
      afterMs: Math.round(g.between(0, 8_000)),
      status: g.pick([
        [500, 1],
        [502, 1],
        [503, 1],
      ] as const),
      times: g.int(1, 4),
    };
  }
  const apiFaults: Plan['apiFaults'] = [];
  for (let i = 0; i < o.apiFaults; i++) {
    const at = g.between(0.05, 0.95) * o.durationMs;
    const route = g.pick<Route>([
      ['submit', 0.25],
      ['result', 0.4],
      ['image', 0.35],
    ]);
    if (route === 'submit') {
      // A 500 is CREATE_TASK_FAILED, which the client retries; a 502/503 fails the job (a task may exist).
      const fault = g.pick<ApiFault>([
        [{ status: 500 }, 0.4],
        [{ status: 429, retryAfterSec: 1 }, 0.3],
        [{ status: 503 }, 0.15],
        [{ status: 502 }, 0.15],
      ]);
      apiFaults.push({ at, route, fault, times: 1 });
    } else if (route === 'result') {
      const fault = g.pick<ApiFault>([
        [{ status: 500 }, 1],
        [{ status: 503 }, 1],
        [{ status: 502 }, 1],
        [{ status: 429, retryAfterSec: 1 }, 1],
      ]);
      apiFaults.push({ at, route, fault, times: g.int(1, 3) });
    } else {
      const fault = g.pick<ApiFault>([
        [{ delayBodyMs: Math.round(g.between(2_000, 6_000)) }, 2],
        [{ status: 500 }, 1],
        [{ status: 503 }, 1],
        [{ status: 429, retryAfterSec: 1 }, 1],
      ]);
      apiFaults.push({ at, route, fault, times: g.int(1, 2) });
    }
  }
  apiFaults.sort((a, b) => a.at - b.at);
  return { requests, apiFaults, kill: { at: 0.35 * o.durationMs, shard: g.int(0, 1) }, redisAt: 0.65 * o.durationMs };
}

/** Every fake image carries its task id (test/fakes/images.ts). */
const TASK_TAG = /qwen-imagine fake ppinfra image ([0-9a-f-]{36})/;

/** Member-visible sentences back to the kind that produced them, from the bot's own English table. */
function sentenceMatcher(prefix: 'error' | 'refusal', kinds: readonly string[]) {
  const patterns = kinds.map((kind) => {
    const template = t('en-US', `${prefix}.${kind}` as MessageKey);
    const escaped = template.split(/\{\w+\}/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    return [kind, new RegExp(`^${escaped.join('.*?')}$`, 's')] as const;
  });
  return (text: string) => patterns.find(([, re]) => re.test(text))?.[0] ?? `other: ${text.slice(0, 80)}`;
}
const failureKind = sentenceMatcher('error', [
  ...ERROR_KINDS,
  'interrupted',
  'internal',
  'queue_timeout',
  'upload_limit',
]);
const refusalKind = sentenceMatcher('refusal', [
  'user_concurrent',
  'user_hourly',
  'guild_daily',
  'queue_full',
  'api_cooling',
  'storage_unavailable',
]);

interface Sent extends Planned {
  shard: number;
  sentAt?: number;
  it?: FakeInteraction;
  sendError?: string;
}

/** One final state of a message: the image of some task(s), or a failure or notice line. */
interface Final {
  messageId: string;
  tasks: string[];
  line: string;
}

/** What members see of one request: its messages' final states, or the refusal it was answered with. */
interface Seen {
  finals: Final[];
  refusal?: string;
  /** Set when a message that had reached its final state was later edited into something else. */
  overwrittenBy?: string;
  messageIds: string[];
}

const firstLine = (text: string) => text.split('\n')[0] ?? '';
const quote = (text: string) => JSON.stringify(text.length > 90 ? `${text.slice(0, 90)}…` : text);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A channel post starts with a line that pings the member; the answer follows it. */
const body = (m: APIMessage) => (m.content.startsWith('<@') ? m.content.split('\n').slice(1).join('\n') : m.content);
const isFinal = (m: APIMessage) => finished({ ...m, content: body(m) });

/** Reads the fake Discord and the fake API: which messages belong to which request, and what they show. */
function observer(d: FakeDiscord, a: FakePpinfra) {
  const taskOfAttachment = new Map<string, string | undefined>();
  const taskOf = (attachmentId: string) => {
    if (!taskOfAttachment.has(attachmentId)) {
      let task: string | undefined;
      try {
        task = TASK_TAG.exec(d.attachmentBytes(attachmentId).toString('latin1'))?.[1];
      } catch {}
      taskOfAttachment.set(attachmentId, task);
    }
    return taskOfAttachment.get(attachmentId);
  };
  const tasksIn = (m: APIMessage) => m.attachments.map((att) => taskOf(att.id) ?? `unknown attachment ${att.id}`);
  const promptOfTask = (taskId: string) => a.tasks.get(taskId)?.prompt;

  /** Every message the bot wrote, by the request it belongs to (`undefined`: none claims it). */
  function attribute(sent: Sent[]) {
    const byInteraction = new Map(sent.filter((r) => r.it).map((r) => [r.it!.id, r]));
    const byPrompt = new Map(sent.map((r) => [r.prompt, r]));
    const owned = new Map<Sent | undefined, string[]>();
    for (const m of d.store.list()) {
      const stored = d.store.get(m.id)!;
      // Messages quote their prompt (`> prompt`, or the embed's description for an image).
      const quoted = m.content
        .split('\n')
        .find((l) => l.startsWith('> ') && byPrompt.has(l.slice(2)))
        ?.slice(2);
      const described = m.embeds.map((e) => e.description).find((text) => text !== undefined && byPrompt.has(text));
      const shown = tasksIn(m)
        .map(promptOfTask)
        .find((p) => p !== undefined);
      const owner =
        (stored.interactionId ? byInteraction.get(stored.interactionId) : undefined) ??
        byPrompt.get(quoted ?? described ?? shown ?? '');
      owned.set(owner, [...(owned.get(owner) ?? []), m.id]);
    }
    return owned;
  }

  function finalsOf(messageId: string): { finals: Final[]; overwrittenBy?: string } {
    const finals: Final[] = [];
    let overwrittenBy: string | undefined;
    for (const state of d.messageHistory(messageId)) {
      if (!isFinal(state)) {
        if (finals.length > 0) overwrittenBy ??= firstLine(body(state)) || '(an empty message)';
        continue;
      }
      const final: Final = { messageId, tasks: tasksIn(state), line: firstLine(body(state)) };
      const last = finals.at(-1);
      // The same answer edited again (a re-upload) is one outcome; the uploads are counted apart.
      if (last && last.line === final.line && last.tasks.join() === final.tasks.join()) continue;
      finals.push(final);
    }
    return { finals, ...(overwrittenBy === undefined ? {} : { overwrittenBy }) };
  }

  function seen(sent: Sent[]): { byRequest: Map<Sent, Seen>; unclaimed: string[] } {
    const owned = attribute(sent);
    const byRequest = new Map<Sent, Seen>();
    for (const r of sent) {
      const messageIds = owned.get(r) ?? [];
      const view: Seen = { finals: [], messageIds };
      const response = r.it?.response;
      if (response?.type === 4) {
        const data = response.data as { content?: string } | undefined;
        view.refusal = data?.content ?? '';
      }
      for (const id of messageIds) {
        const { finals, overwrittenBy } = finalsOf(id);
        view.finals.push(...finals);
        if (overwrittenBy !== undefined) view.overwrittenBy ??= overwrittenBy;
      }
      byRequest.set(r, view);
    }
    return { byRequest, unclaimed: owned.get(undefined) ?? [] };
  }

  return { seen, taskOf };
}

/** A broken invariant: `kind` groups them in the report's count. */
interface Violation {
  kind: string;
  text: string;
}

const answered = (v: Seen) => v.refusal !== undefined || v.finals.length > 0;

interface Leftovers {
  /** Member name -> job ids still in its concurrency set. */
  slots: Map<string, string[]>;
  /** Queue name -> counts of steps not finished. */
  queues: Map<string, Record<string, number>>;
  failedSteps: number;
  /** Job id -> its BullMQ steps still in Redis, as `check 3: delayed`. */
  steps: Map<string, string[]>;
  /** Job records in Redis, by prompt. */
  jobs: Map<string, { id: string; state: string; polls?: number; taskId?: string; error?: { kind: string } }>;
}

/**
 * What Redis still holds once every request has its answer: the concurrency sets
 * (`qi:limits:running:<user>`, src/jobs/bullmq/limits.ts), the BullMQ steps of both queues, and
 * the job records. Read again for up to `waitMs` while anything is left, since a slot is freed
 * just after the member is answered.
 */
async function redisLeftovers(url: string, d: FakeDiscord, members: string[], waitMs: number): Promise<Leftovers> {
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  const queues = ['qi-submit', 'qi-check'].map((name) => new Queue(name, { connection: redis }));
  const nameOf = new Map(members.map((name) => [d.user(name).id, name]));
  try {
    const read = async (): Promise<Leftovers> => {
      const slots = new Map<string, string[]>();
      for (const key of await redis.keys('qi:limits:running:*')) {
        const ids = await redis.smembers(key);
        const user = key.slice('qi:limits:running:'.length);
        if (ids.length) slots.set(nameOf.get(user) ?? user, ids);
      }
      const counts = new Map<string, Record<string, number>>();
      let failedSteps = 0;
      for (const queue of queues) {
        const {
          failed = 0,
          completed: _completed,
          ...rest
        } = await queue.getJobCounts(
          'waiting',
          'active',
          'delayed',
          'prioritized',
          'waiting-children',
          'failed',
          'completed',
        );
        failedSteps += failed;
        const open = Object.fromEntries(Object.entries(rest).filter(([, n]) => n > 0));
        if (Object.keys(open).length) counts.set(queue.name, open);
      }
      // The job records (src/jobs/bullmq/store.ts): a hash per job, `qi:job:<id>`, its JSON in `data`.
      const jobs: Leftovers['jobs'] = new Map();
      for (const key of await redis.keys('qi:job:*')) {
        const raw = await redis.hget(key, 'data');
        const job = raw
          ? (JSON.parse(raw) as {
              id: string;
              prompt: string;
              state: string;
              polls?: number;
              taskId?: string;
              error?: { kind: string };
            })
          : undefined;
        if (job?.prompt) jobs.set(job.prompt, job);
      }
      const steps: Leftovers['steps'] = new Map();
      for (const queue of queues) {
        for (const key of await redis.keys(`bull:${queue.name}:*-*`)) {
          const stepId = key.slice(`bull:${queue.name}:`.length);
          const match = /^([0-9a-f]{12})-(.+)$/.exec(stepId);
          if (!match) continue;
          const state = await queue.getJobState(stepId);
          steps.set(match[1]!, [...(steps.get(match[1]!) ?? []), `${queue.name.slice(3)} ${match[2]}: ${state}`]);
        }
      }
      return { slots, queues: counts, failedSteps, jobs, steps };
    };
    const giveUpAt = Date.now() + waitMs;
    let left = await read();
    while ((left.slots.size || left.queues.size) && Date.now() < giveUpAt) {
      await sleep(500);
      left = await read();
    }
    return left;
  } finally {
    await Promise.all(queues.map((q) => q.close()));
    redis.disconnect();
  }
}

function judge(input: {
  o: SoakOptions;
  d: FakeDiscord;
  a: FakePpinfra;
  sent: Sent[];
  seen: Map<Sent, Seen>;
  unclaimed: string[];
  firstFinalAt: Map<string, number>;
  cap: number;
  left: Leftovers;
  taskOf: (attachmentId: string) => string | undefined;
}) {
  const { d, a, sent, seen, firstFinalAt, cap, left } = input;
  const violations: Violation[] = [];
  const flag = (kind: string, text: string) => violations.push({ kind, text });
  const guildName = new Map(d.guilds.map((g, k) => [k, g.name]));
  const label = (r: Sent) => `#${r.n} ${r.member} in ${guildName.get(r.guild)} (shard ${r.shard})`;
  const finalAt = (r: Sent) => {
    const v = seen.get(r)!;
    if (v.refusal !== undefined) return r.it?.response?.at;
    const times = v.messageIds.map((id) => firstFinalAt.get(id)).filter((at) => at !== undefined);
    return times.length ? Math.min(...times) : undefined;
  };
  const tasksOf = new Map<string, string[]>();
  for (const task of a.tasks.values()) tasksOf.set(task.prompt, [...(tasksOf.get(task.prompt) ?? []), task.id]);
  const promptOfTask = (id: string) => a.tasks.get(id)?.prompt;
  const uploadsOf = new Map<string, string[]>();
  for (const req of d.requests) {
    if (req.status < 200 || req.status >= 300) continue;
    for (const file of req.files) {
      const task = TASK_TAG.exec(file.bytes.toString('latin1'))?.[1];
      if (task)
        uploadsOf.set(task, [
          ...(uploadsOf.get(task) ?? []),
          `${req.method} ${req.route?.includes('webhooks') ? 'reply' : 'channel'}`,
        ]);
    }
  }
  const shownIn = new Map<string, string[]>();
  for (const m of d.store.list())
    for (const att of m.attachments) {
      const task = input.taskOf(att.id);
      if (task) shownIn.set(task, [...(shownIn.get(task) ?? []), m.id]);
    }
  const story = (r: Sent) => {
    const job = left.jobs.get(r.prompt);
    const tasks = tasksOf.get(r.prompt) ?? [];
    if (!job) return `no job record; ${tasks.length} task(s) submitted`;
    const polls = a.requests
      .filter((req) => req.route === 'result' && req.query.task_id === job.taskId)
      .map((req) => req.status);
    const steps = left.steps.get(job.id);
    return [
      `job ${job.id} is ${job.state} in Redis (polls ${job.polls ?? 0}, task ${job.taskId ?? 'none'}${job.error ? `, error ${job.error.kind}` : ''})`,
      `task-result answered ${polls.length ? polls.join(' ') : 'nothing'}${r.script.notFoundPolls ? ` (the task was planned to answer 404 to its first ${r.script.notFoundPolls})` : ''}`,
      `steps in Redis: ${steps?.join(', ') ?? 'none'}`,
    ].join('; ');
  };

  const told = new Set<string>();
  const outcomes = new Map<string, number>();
  const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  const durations: { r: Sent; ms: number; outcome: string }[] = [];

  for (const r of sent) {
    const v = seen.get(r)!;
    if (r.sendError) {
      flag('not sent', `${label(r)}: the harness could not send it (${r.sendError})`);
      continue;
    }
    const it = r.it!;
    if (!it.response) {
      const late = it.callbacks.map((c) => `${c.status} after ${c.afterMs} ms`).join(', ');
      flag(
        'never answered',
        `${label(r)}: the interaction was never answered${late ? ` (refused callbacks: ${late})` : ''}`,
      );
      count('never answered');
      continue;
    }
    let outcome: string;
    if (v.refusal?.startsWith('❌')) {
      // An error answered at once (e.g. Redis lost mid-interaction): one answer, a failure.
      outcome = `failed: ${failureKind(v.refusal.replace(/^❌\s*/, ''))} (answered at once)`;
    } else if (v.refusal !== undefined) {
      const kind = refusalKind(v.refusal);
      outcome = `refused: ${kind}`;
      if (kind === 'user_concurrent') {
        // Unfinished: asked by then (a process may reserve requests sent together in any order),
        // deferred, and answered after (almost) the refusal. The slot is freed just after a
        // delivery, later while Redis is away: a leak outlasts any slack, and shows at the end.
        const refusedAt = it.response.at;
        const slackMs = input.o.downMs + 2_000;
        const busy = sent.filter(
          (o) =>
            o.member === r.member &&
            o !== r &&
            (o.sentAt ?? Infinity) <= refusedAt &&
            o.it?.deferred &&
            (finalAt(o) ?? Infinity) > refusedAt - slackMs,
        );
        if (busy.length < cap)
          flag(
            'refused with a free slot',
            `${label(r)}: refused as having ${cap} images in progress, while ${busy.length} of the member's requests were unfinished (a slot leaked)`,
          );
      }
    } else if (v.finals.length === 0) {
      const reply = it.original();
      flag(
        'no final message',
        `${label(r)}: no final message by the deadline; the reply shows ${quote(reply ? firstLine(reply.content) || '(thinking…)' : '(nothing)')}; ${story(r)}`,
      );
      const job = left.jobs.get(r.prompt);
      if (job) told.add(job.id);
      outcome = 'no final message';
    } else {
      const last = v.finals.at(-1)!;
      outcome = last.tasks.length
        ? 'delivered'
        : last.line.startsWith('❌')
          ? `failed: ${failureKind(last.line.replace(/^❌\s*/, ''))}`
          : `notice: ${last.line.slice(0, 40)}`;
      if (v.finals.length > 1) {
        const shown = v.finals
          .map((f) => (f.tasks.length ? `image of task ${f.tasks.join('+')}` : quote(f.line)))
          .join(' → ');
        flag('several final outcomes', `${label(r)}: ${v.finals.length} final outcomes: ${shown}`);
      }
    }
    count(outcome);
    if (v.overwrittenBy !== undefined)
      flag('final message replaced', `${label(r)}: its final message was later replaced by ${quote(v.overwrittenBy)}`);
    const at = finalAt(r);
    if (at !== undefined && r.sentAt !== undefined) durations.push({ r, ms: at - r.sentAt, outcome });

    const tasks = tasksOf.get(r.prompt) ?? [];
    if (v.refusal !== undefined && tasks.length > 0)
      flag(
        'refused yet submitted',
        `${label(r)}: answered at once (${quote(v.refusal)}), yet submitted (tasks ${tasks.join(', ')})`,
      );
    if (tasks.length > 1)
      flag('submitted more than once', `${label(r)}: submitted ${tasks.length} times (tasks ${tasks.join(', ')})`);
    for (const task of tasks) {
      const shown = shownIn.get(task) ?? [];
      if (shown.length > 1)
        flag(
          'image shown more than once',
          `${label(r)}: the image of task ${task} is shown ${shown.length} times (messages ${shown.join(', ')})`,
        );
      const uploads = uploadsOf.get(task) ?? [];
      if (uploads.length > 1)
        flag(
          'image uploaded more than once',
          `${label(r)}: the image of task ${task} was uploaded ${uploads.length} times (${uploads.join(', ')})`,
        );
    }
    for (const f of v.finals)
      for (const task of f.tasks) {
        if (promptOfTask(task) !== r.prompt)
          flag(
            'image of another request',
            `${label(r)}: message ${f.messageId} shows the image of ${promptOfTask(task) ? `another request (${quote(promptOfTask(task)!)})` : task}`,
          );
      }
  }
  for (const id of input.unclaimed)
    flag('unclaimed message', `a message no request claims: ${quote(d.message(id)?.content ?? id)}`);
  for (const [member, ids] of left.slots) {
    const states = ids.map((id) => [...left.jobs.values()].find((j) => j.id === id)?.state ?? 'no record');
    flag(
      'slot still held',
      `Redis: ${member}'s concurrency slot is still held by ${ids.map((id, i) => `job ${id} (${states[i]})`).join(', ')}`,
    );
  }
  for (const [queue, counts] of left.queues)
    flag(
      'steps still queued',
      `Redis: queue ${queue} still holds steps: ${Object.entries(counts)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
  for (const job of left.jobs.values()) {
    // A request left without an answer already tells its job's story.
    if (!['delivered', 'held', 'failed'].includes(job.state) && !told.has(job.id))
      flag(
        'job unfinished',
        `Redis: job ${job.id} is still ${job.state} (polls ${job.polls ?? 0}, task ${job.taskId ?? 'none'})`,
      );
  }

  const by = (prefix: string) =>
    [...outcomes]
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, n]) => `${k.slice(prefix.length)} ${n}`)
      .join(', ') || 'none';
  const submits = a.requests.filter((req) => req.route === 'submit');
  const statuses = (reqs: typeof submits) => {
    const n = new Map<number, number>();
    for (const req of reqs) n.set(req.status, (n.get(req.status) ?? 0) + 1);
    return [...n]
      .sort(([x], [y]) => x - y)
      .map(([s, k]) => `${s} ×${k}`)
      .join(', ');
  };
  durations.sort((x, y) => x.ms - y.ms);
  const pct = (p: number) => durations[Math.min(durations.length - 1, Math.floor(p * durations.length))]?.ms ?? 0;
  const slowest = durations.at(-1);
  const summary = [
    `requests: ${sent.length}; delivered ${outcomes.get('delivered') ?? 0}, failed ${[...outcomes].filter(([k]) => k.startsWith('failed: ')).reduce((n, [, k]) => n + k, 0)}, refused ${[...outcomes].filter(([k]) => k.startsWith('refused: ')).reduce((n, [, k]) => n + k, 0)}, notices ${[...outcomes].filter(([k]) => k.startsWith('notice: ')).reduce((n, [, k]) => n + k, 0)}, no final message ${(outcomes.get('no final message') ?? 0) + (outcomes.get('never answered') ?? 0)}`,
    `failures by kind (as members saw them): ${by('failed: ')}`,
    `refusals by kind: ${by('refused: ')}`,
    `submissions: ${a.tasks.size} tasks for ${sent.length} requests (submit answers: ${statuses(submits)}); task-result answers: ${statuses(a.requests.filter((req) => req.route === 'result'))}; image downloads: ${statuses(a.requests.filter((req) => req.route === 'image'))}`,
    `Discord: ${[...uploadsOf.values()].reduce((n, u) => n + u.length, 0)} image uploads; ${d.requests.filter((req) => req.injected).length} injected 5xx answered; ${left.failedSteps} BullMQ steps failed for good`,
    `request → final message: median ${seconds(pct(0.5))}, p95 ${seconds(pct(0.95))}, slowest ${slowest ? `${seconds(slowest.ms)} (${label(slowest.r)}, ${slowest.outcome})` : 'none'}`,
  ];
  return { violations, summary };
}

function describeFaults(plan: Plan, o: SoakOptions): string {
  const notFound = plan.requests.filter((r) => r.script.notFoundPolls).length;
  const api = (['submit', 'result', 'image'] as const).map((route) => {
    const n = new Map<string, number>();
    for (const f of plan.apiFaults.filter((x) => x.route === route)) {
      const key = 'delayBodyMs' in f.fault ? 'slow' : 'status' in f.fault ? String(f.fault.status) : 'other';
      n.set(key, (n.get(key) ?? 0) + f.times);
    }
    return `${route} ${[...n].map(([k, c]) => `${k}×${c}`).join(' ') || 'none'}`;
  });
  const edits = plan.requests.filter((r) => r.editFault);
  const beyond = edits.filter((r) => r.editFault!.times > 3).length;
  return [
    `${notFound} tasks answer 404 TASK_NOT_FOUND to their first 1-3 polls`,
    `API ${api.join('; ')}`,
    `Discord 5xx on the reply edits of ${edits.length} requests (${beyond} beyond discord.js' 3 retries)`,
    `SIGKILL of shard ${plan.kill.shard} at ${seconds(plan.kill.at)} (back after ${seconds(o.downMs)})`,
    `Redis killed at ${seconds(plan.redisAt)} or later, back after ${seconds(o.downMs)}`,
  ].join('; ');
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => undefined);
  const plan = makePlan(o);
  const scripts = new Map(plan.requests.map((r) => [r.prompt, r.script]));
  const cwd = mkdtempSync(join(tmpdir(), 'qi-soak-'));
  const children: ChildProcess[] = [];
  const launched: { shard: number; proc: ShardProcess }[] = [];
  const expectedExits = new Set<ChildProcess>();
  const events: string[] = [];
  const crashes: Violation[] = [];
  let redis: FakeRedis | undefined;
  let discord: FakeDiscord | undefined;
  let api: FakePpinfra | undefined;
  let keepLogs = false;
  let stopping = false;
  const started = Date.now();
  // The plan's clock starts once both processes serve: requests planned during the start-up
  // would otherwise all arrive at once.
  let start = started;
  const elapsed = () => seconds(Date.now() - start);
  const note = (line: string) => {
    events.push(`${elapsed()}: ${line}`);
    log(`[${elapsed().padStart(8)}] ${line}`);
  };

  try {
    redis = await startRedis({ persist: true });
    const memberNames = [...new Set(plan.requests.map((r) => r.member))].sort();
    const guildOf = new Map(plan.requests.map((r) => [r.member, r.guild]));
    const guildSpecs = Array.from({ length: o.guilds }, (_, k) => ({
      name: `Soak ${k}`,
      members: memberNames.filter((m) => guildOf.get(m) === k).map((user) => ({ user })),
    }));
    // Discord wants the first answer within 3 s; on a loaded CI machine a late defer is the
    // machine's doing, and the soak is about what happens to jobs, so the fake waits longer.
    discord = await startFakeDiscord({ shards: 2, guilds: guildSpecs, callbackDeadlineMs: 10_000 });
    api = await startFakePpinfra({ script: ({ prompt }) => scripts.get(prompt) ?? {} });
    const d = discord;
    const a = api;
    const fakeRedis = redis;
    const guildIds = d.guilds.map((g) => g.id);
    const watch = observer(d, a);
    const cap = 2;
    const env = sharedRedisEnv(
      { discord: d, api: a, redis },
      {
        QUEUE_LOCK_MS: String(o.lockMs),
        JOB_TIMEOUT_MS: String(o.jobTimeoutMs),
        RECONCILE_INTERVAL_MS: String(reconcileMs(o)),
        USER_MAX_CONCURRENT: String(cap),
        // Budgets and the breaker out of the way: the soak is about every job's bookkeeping, and a
        // refusal the limits allow would only hide a request from it.
        USER_HOURLY_QUOTA: '10000',
        GUILD_DAILY_BUDGET: '1000000',
        QUEUE_MAX: '10000',
        BREAKER_THRESHOLD: '100',
      },
    );

    // A gate per shard, closed while its process is down: Discord would tell members "the
    // application did not respond", which no bot can do anything about.
    const gates = new Map<number, { wait: Promise<void>; open?: () => void }>(
      [0, 1].map((s) => [s, { wait: Promise.resolve() }]),
    );
    const closeGate = (shard: number) => {
      const gate = gates.get(shard)!;
      if (!gate.open) gate.wait = new Promise<void>((resolve) => (gate.open = resolve));
    };
    const openGate = (shard: number) => {
      const gate = gates.get(shard)!;
      gate.open?.();
      gate.open = undefined;
    };
    const procs = new Map<number, ShardProcess>();
    const launch = async (shard: number): Promise<void> => {
      const proc = await startShardProcess(shard, env, cwd, children);
      procs.set(shard, proc);
      launched.push({ shard, proc });
      proc.child.once('exit', (code, signal) => {
        if (expectedExits.has(proc.child) || stopping) return;
        // A crash is a finding; an orchestrator's answer to it is a restart.
        crashes.push({
          kind: 'process crashed',
          text: `the bot process of shard ${shard} exited on its own at ${elapsed()} (code ${code}, signal ${signal})`,
        });
        note(`shard ${shard} exited on its own (code ${code}, signal ${signal}); restarting it`);
        closeGate(shard);
        void sleep(o.downMs)
          .then(() => launch(shard))
          .then(
            () => openGate(shard),
            (err: unknown) => note(`could not restart shard ${shard}: ${String(err)}`),
          );
      });
    };
    await launch(0);
    await launch(1);
    start = Date.now();
    note(
      `seed ${o.seed}: ${o.jobs} jobs from ${memberNames.length} members in ${o.guilds} guilds over ${seconds(o.durationMs)}; both processes serve`,
    );

    const sent: Sent[] = plan.requests.map((r) => ({ ...r, shard: d.shardOf(guildIds[r.guild]!) }));
    const firstFinalAt = new Map<string, number>();
    d.store.on('message', (stored) => {
      if (!firstFinalAt.has(stored.data.id) && isFinal(stored.data)) firstFinalAt.set(stored.data.id, Date.now());
    });
    const unanswered = () => {
      const { byRequest } = watch.seen(sent);
      return sent.filter((r) => r.it && !answered(byRequest.get(r)!));
    };

    const sendAll = Promise.all(
      sent.map(async (r) => {
        await sleep(Math.max(0, start + r.at - Date.now()));
        await gates.get(r.shard)!.wait;
        for (let tries = 0; !r.it; tries++) {
          try {
            r.it = d.slash('imagine', { prompt: r.prompt }, { guild: guildIds[r.guild]!, user: r.member });
            r.sentAt = Date.now();
          } catch (err) {
            // No session on the shard (a gateway reconnecting): try again for a while.
            if (tries >= 40) {
              r.sendError = String(err);
              return;
            }
            await sleep(250);
            await gates.get(r.shard)!.wait;
          }
        }
        if (r.editFault) {
          const { afterMs, status, times } = r.editFault;
          await sleep(afterMs);
          d.failNext(`PATCH /webhooks/${d.applicationId}/${r.it.token}/messages/@original`, { status }, times);
        }
      }),
    );
    const injectApiFaults = Promise.all(
      plan.apiFaults.map(async (f) => {
        await sleep(Math.max(0, start + f.at - Date.now()));
        a.inject(f.route, f.fault, f.times);
      }),
    );
    const disasters = (async () => {
      await sleep(Math.max(0, start + plan.kill.at - Date.now()));
      const { shard } = plan.kill;
      // The kill lands between interactions: each one sent to the process has its answer and a
      // second to store its job, so what is tested is the jobs it holds.
      closeGate(shard);
      const pending = sent.filter((r) => r.shard === shard && r.it && !r.it.response);
      await Promise.all(pending.map((r) => r.it!.waitForCallback({ timeoutMs: 5_000 }).catch(() => undefined)));
      await sleep(1_000);
      const doomed = procs.get(shard)!;
      expectedExits.add(doomed.child);
      doomed.child.kill('SIGKILL');
      await doomed.exited;
      note(`SIGKILL shard ${shard}; ${unanswered().length} requests in flight`);
      await sleep(o.downMs);
      await launch(shard);
      openGate(shard);
      note(`shard ${shard} restarted`);

      await sleep(Math.max(1_000, start + plan.redisAt - Date.now()));
      await fakeRedis.down();
      note(`Redis killed; ${unanswered().length} requests in flight`);
      await sleep(o.downMs);
      await fakeRedis.up();
      note('Redis back, from its append-only file');
    })();
    const progress = setInterval(() => {
      note(
        `sent ${sent.filter((r) => r.it).length}/${o.jobs}, answered ${sent.filter((r) => r.it?.response).length}, still without a final message ${unanswered().length}`,
      );
    }, 15_000);
    progress.unref();

    try {
      await Promise.all([sendAll, injectApiFaults, disasters]);
      // Generous: a job may wait out the lock of a killed process, then run to its own deadline.
      // And the promise: every job ends within its deadline plus one reconcile pass.
      const deadline =
        Math.max(...sent.map((r) => r.sentAt ?? 0)) + o.jobTimeoutMs + 2 * o.lockMs + reconcileMs(o) + o.graceMs;
      note(`all sent; waiting for every final message (deadline in ${seconds(deadline - Date.now())})`);
      while (Date.now() < deadline && unanswered().length > 0) await sleep(500);
      // A late duplicate (a step taken over from a process thought dead) comes after the first answer.
      const settleMs = Math.max(3_000, 2 * o.lockMs);
      note(
        `${unanswered().length} requests without a final message; watching ${seconds(settleMs)} more for late duplicates`,
      );
      await sleep(settleMs);
    } finally {
      clearInterval(progress);
    }

    const left = await redisLeftovers(fakeRedis.url, d, memberNames, o.lockMs);
    const { byRequest, unclaimed } = watch.seen(sent);
    const result = judge({ o, d, a, sent, seen: byRequest, unclaimed, firstFinalAt, cap, left, taskOf: watch.taskOf });
    const violations = [...crashes, ...result.violations];
    keepLogs = violations.length > 0;
    const kinds = new Map<string, number>();
    for (const v of violations) kinds.set(v.kind, (kinds.get(v.kind) ?? 0) + 1);
    const text = [
      `soak: seed ${o.seed} (SOAK_SEED=${o.seed} draws the same plan), ${o.jobs} jobs from ${memberNames.length} members in ${o.guilds} guilds over ${seconds(o.durationMs)}; the run took ${seconds(Date.now() - started)}`,
      `faults: ${describeFaults(plan, o)}`,
      'events:',
      ...events.filter((e) => !/: sent \d/.test(e)).map((e) => `  ${e}`),
      ...result.summary,
      `violations: ${violations.length}${kinds.size ? ` (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}`,
      ...violations.map((v) => `  ${v.text}`),
      ...(keepLogs ? [`bot logs (JSON lines, one file per process started): ${cwd}`] : []),
    ].join('\n');
    return { seed: o.seed, violations: violations.map((v) => v.text), text };
  } finally {
    stopping = true;
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (keepLogs)
      for (const [i, { shard, proc }] of launched.entries())
        writeFileSync(join(cwd, `${i}-shard-${shard}.log`), proc.stdout());
    await discord?.stop();
    await api?.close();
    await redis?.stop();
    if (!keepLogs) rmSync(cwd, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const flags = {
    jobs: { type: 'string' },
    members: { type: 'string' },
    guilds: { type: 'string' },
    duration: { type: 'string' },
    seed: { type: 'string' },
  } as const;
  const values = (() => {
    try {
      return parseArgs({ options: flags }).values;
    } catch (err) {
      console.error(
        `${(err as Error).message}\nusage: npm run soak -- [--jobs N] [--members N] [--guilds N] [--duration SECONDS] [--seed N]`,
      );
      process.exit(2);
    }
  })();
  const option = (flag: string | undefined, env: string, fallback: number, min: number) => {
    const raw = flag ?? process.env[env];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) {
      console.error(`${env} (or its flag) must be a whole number of at least ${min}, got ${JSON.stringify(raw)}`);
      process.exit(2);
    }
    return n;
  };
  const jobs = option(values.jobs, 'SOAK_JOBS', FULL.jobs, 1);
  const report = await runSoak({
    ...FULL,
    jobs,
    members: option(values.members, 'SOAK_MEMBERS', FULL.members, 1),
    guilds: option(values.guilds, 'SOAK_GUILDS', FULL.guilds, 2),
    durationMs: option(values.duration, 'SOAK_DURATION_S', FULL.durationMs / 1000, 10) * 1000,
    seed: option(values.seed, 'SOAK_SEED', Math.floor(Math.random() * 1_000_000), 0),
    // Faults scale with the workload, at the full run's density.
    apiFaults: Math.round((jobs * FULL.apiFaults) / FULL.jobs),
    discordFaults: Math.round((jobs * FULL.discordFaults) / FULL.jobs),
    log: (line) => console.log(line),
  });
  console.log(`\n${report.text}`);
  process.exit(report.violations.length > 0 ? 1 : 0);
}
