// The health and metrics endpoint (METRICS_PORT) of the real bot, against the fakes: /healthz
// follows the Discord gateway and the store; /metrics is well-formed Prometheus text whose
// counters move as jobs run and moderators decide.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIMessage } from 'discord-api-types/v10';
import { Events } from 'discord.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { METRIC_NAMES } from '../../src/ops/metrics.ts';
import { skipWithoutRedis, startRedis, type FakeRedis } from '../fakes/redis.ts';
import { startFakeDiscord } from '../fakes/discord/server.ts';
import { MODERATED_GUILD, REVIEW } from './guilds.ts';
import { finished, startBotHarness, type BotHarness, type HarnessOptions } from './harness.ts';
import { dashboardMetricNames } from '../ops/dashboard.ts';
import { parseExposition, sampleValue } from '../ops/exposition.ts';

let h: BotHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});
/** METRICS_PORT=0: any free port; the app says which (`app.opsAddress`). */
const start = async (options: HarnessOptions = {}) =>
  (h = await startBotHarness({ ...options, env: { METRICS_PORT: '0', ...options.env } }));

const url = (bot: BotHarness, path: string) => {
  const address = bot.app.opsAddress;
  if (!address) throw new Error('the ops endpoint is not listening');
  return `http://${address.host}:${address.port}${path}`;
};
async function health(bot: BotHarness) {
  const res = await fetch(url(bot, '/healthz'));
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}
async function scrape(bot: BotHarness) {
  const res = await fetch(url(bot, '/metrics'));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

describe('/healthz', () => {
  it('is 200 while connected, 503 saying the gateway is down while Discord is unreachable, 200 again after discord.js resumes', async () => {
    const bot = await start();
    expect(await health(bot)).toEqual({
      status: 200,
      body: { status: 'ok', gateway: 'up', storage: 'up', classifier: 'up', classifierStatus: 'off' },
    });

    const client = bot.app.bot.client;
    const reconnecting = once(client, Events.ShardReconnecting);
    bot.discord.gateway.startOutage();
    await reconnecting;
    expect(await health(bot)).toEqual({
      status: 503,
      body: { status: 'down', gateway: 'down', storage: 'up', classifier: 'up', classifierStatus: 'off' },
    });
    const down = await scrape(bot);
    expect(sampleValue(down, 'qwen_imagine_gateway_up')).toBe(0);
    expect(sampleValue(down, 'qwen_imagine_storage_up')).toBe(1);

    const resumed = once(client, Events.ShardResume);
    bot.discord.gateway.endOutage();
    await resumed;
    expect(await health(bot)).toEqual({
      status: 200,
      body: { status: 'ok', gateway: 'up', storage: 'up', classifier: 'up', classifierStatus: 'off' },
    });
    expect(sampleValue(await scrape(bot), 'qwen_imagine_gateway_up')).toBe(1);
    expect(bot.discord.errors).toEqual([]);
  });

  it('reports the NSFW classifier: loading counts as up, ready once the model is in; its state on /metrics; closed with the bot', async () => {
    const bot = await start({ env: { NSFW_CLASSIFIER: 'on' } });
    const early = await health(bot);
    expect(early.status).toBe(200);
    expect(['loading', 'ready']).toContain(early.body.classifierStatus);
    await bot.waitForLog((l) => l.msg === 'NSFW classifier ready' && l.component === 'classifier');
    expect(await health(bot)).toEqual({
      status: 200,
      body: { status: 'ok', gateway: 'up', storage: 'up', classifier: 'up', classifierStatus: 'ready' },
    });
    const families = await scrape(bot);
    expect(sampleValue(families, 'qwen_imagine_classifier_status', { status: 'ready' })).toBe(1);
    expect(sampleValue(families, 'qwen_imagine_classifier_status', { status: 'loading' })).toBe(0);
    expect(bot.app.classifier.status()).toBe('ready');
    await bot.app.stop();
    await expect(bot.app.classifier.classify(new Uint8Array(8))).rejects.toMatchObject({
      name: 'ClassifierError',
      reason: 'unavailable',
    });
    h = undefined;
    await bot.discord.stop();
    await bot.api.close();
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    const bot = await start();
    expect((await fetch(url(bot, '/'))).status).toBe(404);
    expect((await fetch(url(bot, '/metrics/extra'))).status).toBe(404);
    expect((await fetch(url(bot, '/healthz'), { method: 'POST' })).status).toBe(405);
  });

  it('is not served at all without METRICS_PORT', async () => {
    h = await startBotHarness();
    expect(h.app.opsAddress).toBeUndefined();
  });
});

describe.skipIf(skipWithoutRedis)('/healthz on Redis', () => {
  let redis: FakeRedis | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('is 503 saying the storage is down while Redis is stopped, and 200 once it is back', async () => {
    const bot = await start({ env: { STORAGE_URL: `${redis!.url}/3`, QUEUE_LOCK_MS: '2000' } });
    expect(await health(bot)).toEqual({
      status: 200,
      body: { status: 'ok', gateway: 'up', storage: 'up', classifier: 'up', classifierStatus: 'off' },
    });
    // The BullMQ queue counts and the pacer's window come from Redis.
    const up = await scrape(bot);
    expect(sampleValue(up, 'qwen_imagine_jobs_queued')).toBe(0);
    expect(sampleValue(up, 'qwen_imagine_jobs_in_flight')).toBe(0);
    expect(sampleValue(up, 'qwen_imagine_ipm_budget_remaining')).toBe(20);

    await redis!.down();
    await bot.waitForLog((l) => l.msg === 'storage unavailable: new requests are paused until it answers again');
    expect(await health(bot)).toEqual({
      status: 503,
      body: { status: 'down', gateway: 'up', storage: 'down', classifier: 'up', classifierStatus: 'off' },
    });
    // A scrape still answers (sources that cannot reach Redis keep their last value).
    expect(sampleValue(await scrape(bot), 'qwen_imagine_storage_up')).toBe(0);

    await redis!.up();
    await bot.waitForLog((l) => l.msg === 'storage available again: accepting new requests');
    expect(await health(bot)).toEqual({
      status: 200,
      body: { status: 'ok', gateway: 'up', storage: 'up', classifier: 'up', classifierStatus: 'off' },
    });
  });
});

describe('/metrics', () => {
  it('is well-formed Prometheus text with every metric the dashboard uses, and no ids, tokens or secrets', async () => {
    const bot = await start();
    const families = await scrape(bot);
    for (const name of METRIC_NAMES) expect(families.has(name), name).toBe(true);
    // Every series the Grafana dashboard queries is one this bot exports.
    // (A labelled metric has no series before its first observation: its family must be declared.)
    const exported = (name: string) =>
      families.has(name) || families.get(name.replace(/_(bucket|sum|count)$/, ''))?.type === 'histogram';
    for (const name of dashboardMetricNames()) expect(exported(name), `dashboard queries ${name}`).toBe(true);
    // Node's default process metrics, on the bot's own registry.
    expect(families.has('process_cpu_user_seconds_total')).toBe(true);
    expect(families.get('qwen_imagine_jobs_finished_total')!.type).toBe('counter');
    expect(families.get('qwen_imagine_api_request_duration_seconds')!.type).toBe('histogram');
    expect(families.get('qwen_imagine_reviews_pending')!.type).toBe('gauge');
    // Pre-initialised outcomes, so a dashboard's rate() has series before the first job.
    expect(
      sampleValue(families, 'qwen_imagine_jobs_finished_total', { outcome: 'delivered', error_kind: 'none' }),
    ).toBe(0);
    expect(
      sampleValue(families, 'qwen_imagine_jobs_finished_total', { outcome: 'failed', error_kind: 'timeout' }),
    ).toBe(0);
    expect(sampleValue(families, 'qwen_imagine_ipm_limit')).toBe(20);
    expect(sampleValue(families, 'qwen_imagine_ipm_budget_remaining')).toBe(20);
    expect(sampleValue(families, 'qwen_imagine_gateway_up')).toBe(1);
    expect(sampleValue(families, 'qwen_imagine_storage_up')).toBe(1);
  });

  it('counts one /imagine: one accepted submission, its polls, one delivery, the API requests and the timings', async () => {
    const bot = await start();
    const before = await scrape(bot);
    expect(sampleValue(before, 'qwen_imagine_submissions_total', { result: 'accepted' })).toBe(0);

    const it = bot.discord.slash('imagine', { prompt: 'a red fox' });
    await it.waitForOriginal(finished, { timeoutMs: 15_000 });
    await bot.waitForLog((l) => l.msg === 'job delivered');
    const after = await scrape(bot);
    const polls = bot.api.count('result');
    expect(polls).toBeGreaterThan(0);

    expect(sampleValue(after, 'qwen_imagine_submissions_total', { result: 'accepted' })).toBe(1);
    expect(sampleValue(after, 'qwen_imagine_submissions_total', { result: 'error' })).toBe(0);
    expect(sampleValue(after, 'qwen_imagine_polls_per_job_count')).toBe(1);
    expect(sampleValue(after, 'qwen_imagine_polls_per_job_sum')).toBe(polls);
    expect(sampleValue(after, 'qwen_imagine_jobs_finished_total', { outcome: 'delivered', error_kind: 'none' })).toBe(
      1,
    );
    expect(sampleValue(after, 'qwen_imagine_request_to_delivery_seconds_count')).toBe(1);
    expect(sampleValue(after, 'qwen_imagine_completion_to_delivery_seconds_count')).toBe(1);
    expect(
      sampleValue(after, 'qwen_imagine_api_request_duration_seconds_count', { endpoint: 'submit', status: '200' }),
    ).toBe(1);
    expect(
      sampleValue(after, 'qwen_imagine_api_request_duration_seconds_count', { endpoint: 'task_result', status: '200' }),
    ).toBe(polls);
    expect(
      sampleValue(after, 'qwen_imagine_api_request_duration_seconds_count', { endpoint: 'download', status: '200' }),
    ).toBe(1);
    // One image of the 60-second window is spent.
    expect(sampleValue(after, 'qwen_imagine_ipm_budget_remaining')).toBe(19);
    expect(sampleValue(after, 'qwen_imagine_jobs_queued')).toBe(0);
    expect(bot.discord.errors).toEqual([]);
  });

  it('shows a job in flight while its task runs', async () => {
    const bot = await start({ script: () => ({ processingMs: 24 * 3600_000 }) });
    bot.discord.slash('imagine', { prompt: 'slow' });
    const task = await bot.api.waitFor('task-created');
    await bot.waitForLog((l) => l.msg === 'task submitted');
    expect(sampleValue(await scrape(bot), 'qwen_imagine_jobs_in_flight')).toBe(1);
    (task as { completedAt: number }).completedAt = Date.now();
    await bot.waitForLog((l) => l.msg === 'job delivered');
  });

  it('counts Discord REST errors by route template and code, never with an id or a token', async () => {
    const bot = await start();
    const it = bot.discord.slash('imagine', { prompt: 'a lighthouse' });
    bot.discord.failNext(/^PATCH \/webhooks\//, { status: 429, retryAfterSec: 0.05 });
    await it.waitForOriginal(finished, { timeoutMs: 15_000 });
    const text = await (await fetch(url(bot, '/metrics'))).text();
    const errors = parseExposition(text).get('qwen_imagine_discord_rest_errors_total')!.samples;
    expect(errors).toEqual([
      {
        name: 'qwen_imagine_discord_rest_errors_total',
        labels: { route: 'PATCH /webhooks/:id/:token/messages/@original', code: '429' },
        value: 1,
      },
    ]);
    for (const secret of [it.token, bot.discord.applicationId, bot.discord.token, bot.api.apiKey, it.channelId])
      expect(text).not.toContain(secret);
  });
});

describe('/metrics and moderation', () => {
  const labels = (m: APIMessage) =>
    ((m.components ?? []) as unknown as { components: { label?: string }[] }[]).flatMap((r) =>
      r.components.map((c) => c.label),
    );

  it('counts a flagged image held for review, the pending review, and the approval that clears it', async () => {
    const bot = await start({
      script: () => ({ processingMs: 100, nsfw: true }),
      discord: { guilds: [MODERATED_GUILD] },
      env: { REVIEW_CHANNEL_ID: REVIEW },
    });
    bot.discord.slash('imagine', { prompt: 'a poster' }, { channel: 'general' });
    const review = await bot.discord.waitForMessage((m) => m.channel_id === REVIEW && labels(m).includes('Approve'));
    await bot.waitForLog((l) => l.msg === 'flagged image held for review');
    const held = await scrape(bot);
    expect(sampleValue(held, 'qwen_imagine_flagged_results_total', { action: 'held' })).toBe(1);
    expect(sampleValue(held, 'qwen_imagine_flagged_results_total', { action: 'spoiler' })).toBe(0);
    // Held for the image service's flag (the classifier is off here), and for nothing else.
    expect(sampleValue(held, 'qwen_imagine_images_held_total', { reason: 'provider' })).toBe(1);
    expect(sampleValue(held, 'qwen_imagine_images_held_total', { reason: 'classifier_failed' })).toBe(0);
    expect(sampleValue(held, 'qwen_imagine_jobs_finished_total', { outcome: 'held', error_kind: 'none' })).toBe(1);
    expect(sampleValue(held, 'qwen_imagine_reviews_pending')).toBe(1);
    expect(sampleValue(held, 'qwen_imagine_moderation_decisions_total', { decision: 'approve' })).toBe(0);

    const click = bot.discord.click(review, 'Approve', { user: 'mod' });
    await bot.waitForLog((l) => l.msg === 'interaction handled' && l.interactionId === click.id);
    const approved = await scrape(bot);
    expect(sampleValue(approved, 'qwen_imagine_moderation_decisions_total', { decision: 'approve' })).toBe(1);
    expect(sampleValue(approved, 'qwen_imagine_reviews_pending')).toBe(0);
    expect(bot.discord.errors).toEqual([]);
  });
});

describe('npm start with METRICS_PORT in use', () => {
  it('exits 2 with one sentence naming METRICS_PORT, no stack trace', async () => {
    const discord = await startFakeDiscord();
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const { port } = taken.address() as AddressInfo;
    const cwd = mkdtempSync(join(tmpdir(), 'qi-ops-proc-'));
    try {
      const env = {
        PATH: process.env.PATH ?? '',
        DISCORD_TOKEN: discord.token,
        DISCORD_API_URL: discord.apiUrl,
        PPINFRA_API_KEY: 'a-key-never-used',
        STORAGE_URL: 'memory://',
        METRICS_PORT: String(port),
      };
      const child = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'src', 'main.ts')], {
        cwd,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(2);
      expect(stderr.trim()).toBe(
        `qwen-imagine cannot start: the health and metrics endpoint cannot listen on METRICS_PORT=${port}: port ${port} on 127.0.0.1 is already in use. Choose another METRICS_PORT (or METRICS_HOST), or leave METRICS_PORT unset.`,
      );
    } finally {
      taken.close();
      await discord.stop();
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
