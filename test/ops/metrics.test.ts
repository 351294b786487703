// The metrics module and the ops HTTP endpoint on their own: registered names, label hygiene,
// scrape-time sources that fail or hang, a port already in use.
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { OpsPortError, startOpsServer } from '../../src/ops/http.ts';
import { FAILURE_KINDS, METRIC_NAMES, noopMetrics, restRouteLabel } from '../../src/ops/metrics.ts';
import { parseExposition, sampleValue } from './exposition.ts';
import { createMetrics } from '../../src/ops/prometheus.ts';

const fresh = (options: { sourceTimeoutMs?: number } = {}) => {
  const registry = new Registry();
  return { registry, metrics: createMetrics({ registry, defaultMetrics: false, ...options }) };
};

describe('createMetrics', () => {
  it('registers exactly METRIC_NAMES on the registry it is given, never on the global one', async () => {
    const { registry } = fresh();
    expect(
      registry
        .getMetricsAsArray()
        .map((m) => m.name)
        .sort(),
    ).toEqual([...METRIC_NAMES].sort());
    // Two apps in one process: no "already registered" collision.
    expect(() => fresh()).not.toThrow();
    const families = parseExposition(await registry.metrics());
    expect([...families.keys()].sort()).toEqual([...METRIC_NAMES].sort());
  });

  it('records through typed recorders, with every failure kind pre-initialised', async () => {
    const { registry, metrics } = fresh();
    metrics.jobFinished('failed', 'queue_timeout');
    metrics.apiRequest('task_result', 'timeout', 30);
    metrics.pollsPerJob(4);
    metrics.flaggedResult('spoiler');
    metrics.imageHeld('classifier_failed');
    metrics.moderationDecision('keep');
    metrics.submission('rate_limited');
    const families = parseExposition(await registry.metrics());
    for (const kind of FAILURE_KINDS)
      expect(sampleValue(families, 'qwen_imagine_jobs_finished_total', { outcome: 'failed', error_kind: kind })).toBe(
        kind === 'queue_timeout' ? 1 : 0,
      );
    expect(
      sampleValue(families, 'qwen_imagine_api_request_duration_seconds_count', {
        endpoint: 'task_result',
        status: 'timeout',
      }),
    ).toBe(1);
    expect(sampleValue(families, 'qwen_imagine_polls_per_job_bucket', { le: '4' })).toBe(1);
    expect(sampleValue(families, 'qwen_imagine_polls_per_job_bucket', { le: '3' })).toBe(0);
    expect(sampleValue(families, 'qwen_imagine_flagged_results_total', { action: 'spoiler' })).toBe(1);
    // Every reason is exported from the start, so a dashboard shows a zero rather than nothing.
    for (const reason of ['provider', 'classifier', 'classifier_failed', 'review_all'])
      expect(sampleValue(families, 'qwen_imagine_images_held_total', { reason })).toBe(
        reason === 'classifier_failed' ? 1 : 0,
      );
    expect(sampleValue(families, 'qwen_imagine_moderation_decisions_total', { decision: 'keep' })).toBe(1);
    expect(sampleValue(families, 'qwen_imagine_submissions_total', { result: 'rate_limited' })).toBe(1);
  });

  it('reads scrape-time gauges from their sources; one that fails or hangs keeps its last value and the scrape still answers', async () => {
    const { registry, metrics } = fresh({ sourceTimeoutMs: 50 });
    let jobs: () => Promise<{ queued: number; inFlight: number }> = async () => ({ queued: 3, inFlight: 7 });
    let pendingCalls = 0;
    metrics.watch({
      jobs: () => jobs(),
      ipmLimit: () => 20,
      ipmBudgetRemaining: () => 12,
      reviewsPending: async () => ++pendingCalls,
      gatewayUp: () => true,
      storageUp: () => false,
    });
    let families = parseExposition(await registry.metrics());
    expect(sampleValue(families, 'qwen_imagine_jobs_queued')).toBe(3);
    expect(sampleValue(families, 'qwen_imagine_jobs_in_flight')).toBe(7);
    expect(sampleValue(families, 'qwen_imagine_ipm_limit')).toBe(20);
    expect(sampleValue(families, 'qwen_imagine_ipm_budget_remaining')).toBe(12);
    expect(sampleValue(families, 'qwen_imagine_reviews_pending')).toBe(1);
    expect(sampleValue(families, 'qwen_imagine_gateway_up')).toBe(1);
    expect(sampleValue(families, 'qwen_imagine_storage_up')).toBe(0);

    jobs = () => new Promise(() => undefined); // Redis away: the command never answers
    families = parseExposition(await registry.metrics());
    expect(sampleValue(families, 'qwen_imagine_jobs_queued')).toBe(3);
    jobs = async () => {
      throw new Error('connection lost');
    };
    families = parseExposition(await registry.metrics());
    expect(sampleValue(families, 'qwen_imagine_jobs_in_flight')).toBe(7);
    expect(sampleValue(families, 'qwen_imagine_reviews_pending')).toBe(3);
  });

  it('counts local classifications by outcome and reason, timing those that gave scores', async () => {
    const { registry, metrics } = fresh();
    metrics.classification('ok', 'none', 0.06);
    metrics.classification('ok', 'none', 0.4);
    metrics.classification('failed', 'timeout', 10);
    const families = parseExposition(await registry.metrics());
    expect(sampleValue(families, 'qwen_imagine_classifications_total', { outcome: 'ok', reason: 'none' })).toBe(2);
    expect(sampleValue(families, 'qwen_imagine_classifications_total', { outcome: 'failed', reason: 'timeout' })).toBe(
      1,
    );
    for (const reason of ['unavailable', 'decode', 'crashed'])
      expect(sampleValue(families, 'qwen_imagine_classifications_total', { outcome: 'failed', reason })).toBe(0);
    expect(sampleValue(families, 'qwen_imagine_classification_seconds_count')).toBe(2);
    expect(sampleValue(families, 'qwen_imagine_classification_seconds_bucket', { le: '0.1' })).toBe(1);
    expect(sampleValue(families, 'qwen_imagine_classification_seconds_bucket', { le: '0.5' })).toBe(2);
  });

  it('shows the classifier status as one state of four, read at scrape time', async () => {
    const { registry, metrics } = fresh();
    let status: 'off' | 'loading' | 'ready' | 'failed' = 'loading';
    metrics.watch({ classifierStatus: () => status });
    const states = async () => {
      const families = parseExposition(await registry.metrics());
      return Object.fromEntries(
        ['off', 'loading', 'ready', 'failed'].map((s) => [
          s,
          sampleValue(families, 'qwen_imagine_classifier_status', { status: s }),
        ]),
      );
    };
    expect(await states()).toEqual({ off: 0, loading: 1, ready: 0, failed: 0 });
    status = 'failed';
    expect(await states()).toEqual({ off: 0, loading: 0, ready: 0, failed: 1 });
  });

  it('has a no-op default that records nothing and throws nothing', () => {
    expect(() => {
      noopMetrics.jobFinished('delivered', 'none');
      noopMetrics.watch({ gatewayUp: () => true });
    }).not.toThrow();
  });
});

describe('restRouteLabel', () => {
  it.each([
    ['patch', '/webhooks/:id/:token/messages/%40original', 'PATCH /webhooks/:id/:token/messages/@original'],
    [
      'POST',
      '/webhooks/123456789012345678/aW50ZXJhY3Rpb246OjEyMzQ1Njc4OTAxMjM0NTY3ODpYWVo',
      'POST /webhooks/:id/:token',
    ],
    ['POST', '/interactions/:id/:token/callback', 'POST /interactions/:id/:token/callback'],
    [
      'POST',
      '/interactions/123456789012345678/secret.token-value/callback?with_response=true',
      'POST /interactions/:id/:token/callback',
    ],
    ['GET', '/channels/123456789012345678/messages/876543210987654321', 'GET /channels/:id/messages/:id'],
    [
      'PUT',
      '/channels/1/messages/2/reactions/%F0%9F%A6%8A/@me',
      'PUT /channels/:id/messages/:id/reactions/:reaction/:reaction',
    ],
    ['GET', '/guilds/:id/some.weird=segment', 'GET /guilds/:id/:param'],
  ])('%s %s -> %s', (method, path, label) => {
    expect(restRouteLabel(method, path)).toBe(label);
  });
});

describe('startOpsServer', () => {
  const health = { gatewayUp: () => true, storageUp: () => true };

  it('refuses a port in use with one sentence naming METRICS_PORT', async () => {
    const taken = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const { port } = taken.address() as AddressInfo;
    try {
      const started = startOpsServer({
        host: '127.0.0.1',
        port,
        registry: new Registry(),
        health,
        logger: silentLogger,
      });
      await expect(started).rejects.toBeInstanceOf(OpsPortError);
      await expect(started).rejects.toThrow(
        `the health and metrics endpoint cannot listen on METRICS_PORT=${port}: port ${port} on 127.0.0.1 is already in use. Choose another METRICS_PORT (or METRICS_HOST), or leave METRICS_PORT unset.`,
      );
    } finally {
      taken.close();
    }
  });

  it.each([
    ['ready', 200, 'up'],
    ['off', 200, 'up'],
    ['loading', 200, 'up'],
    ['failed', 503, 'down'],
  ] as const)(
    '/healthz with the NSFW classifier %s: %i, its part %s, its state in the body',
    async (classifierStatus, status, part) => {
      const ops = await startOpsServer({
        host: '127.0.0.1',
        port: 0,
        registry: new Registry(),
        health: { ...health, classifier: () => classifierStatus },
        logger: silentLogger,
      });
      try {
        const res = await fetch(`http://127.0.0.1:${ops.address.port}/healthz`);
        expect(res.status).toBe(status);
        expect(await res.json()).toEqual({
          status: status === 200 ? 'ok' : 'down',
          gateway: 'up',
          storage: 'up',
          classifier: part,
          classifierStatus,
        });
      } finally {
        await ops.close();
      }
    },
  );

  it('serves HEAD, and answers 500 (not a crash) when collecting fails', async () => {
    const registry = new Registry();
    registry.registerMetric({ name: 'broken', get: async () => Promise.reject(new Error('boom')) } as never);
    const ops = await startOpsServer({
      host: '127.0.0.1',
      port: 0,
      registry,
      health: { gatewayUp: () => false, storageUp: () => true },
      logger: silentLogger,
    });
    try {
      const base = `http://127.0.0.1:${ops.address.port}`;
      const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
      expect(head.status).toBe(503);
      expect(await head.text()).toBe('');
      expect((await fetch(`${base}/metrics`)).status).toBe(500);
    } finally {
      await ops.close();
    }
  });
});
