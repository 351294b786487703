import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';
import type { ClassifierStatus } from '../domain/moderation.ts';

/** What /healthz reports: each part up or down. */
export interface HealthSources {
  gatewayUp(): boolean;
  storageUp(): boolean;
  /** The local NSFW classifier; no `classifier` part in the body when absent. */
  classifier?(): ClassifierStatus;
}

/**
 * Whether the classifier part is up. `failed` (the model cannot load; retried with a growing
 * delay) is down: every image it should classify is held until it loads. `loading` is up: the
 * model loads in about a second at start and after a crash, a load that overruns a minute turns
 * into `failed`, and classifications sent meanwhile wait for it; counting it down would only make
 * a fresh container fail its first probe. `off` is the operator's choice, not a fault.
 */
export const classifierUp = (status: ClassifierStatus) => status !== 'failed';

export interface OpsServerOptions {
  host: string;
  /** 0: any free port (tests); `address.port` says which. */
  port: number;
  /** The registry the metrics live on. */
  registry: Registry;
  health: HealthSources;
  logger: Logger;
}

export interface OpsServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

/** The port is taken (or may not be bound): one sentence naming METRICS_PORT, for `npm start` to print. */
export class OpsPortError extends Error {
  override readonly name = 'OpsPortError';
}

/**
 * The operations endpoint: `GET /healthz` (200 when the Discord gateway is connected, the store
 * answers and the NSFW classifier has not failed, else 503; JSON says which part is down, and
 * `classifierStatus` the classifier's state) and `GET /metrics` (Prometheus text
 * exposition). Anything else is 404. No secret, no id ever appears in either.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { registry, health, logger } = options;

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
    if (path === '/healthz') {
      const gateway = health.gatewayUp();
      const storage = health.storageUp();
      const classifierStatus = health.classifier?.();
      const classifier = classifierStatus === undefined || classifierUp(classifierStatus);
      const ok = gateway && storage && classifier;
      const body = {
        status: ok ? 'ok' : 'down',
        gateway: gateway ? 'up' : 'down',
        storage: storage ? 'up' : 'down',
        ...(classifierStatus === undefined ? {} : { classifier: classifier ? 'up' : 'down', classifierStatus }),
      };
      return send(res, ok ? 200 : 503, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`);
    }
    if (path === '/metrics') {
      try {
        return send(res, 200, registry.contentType, await registry.metrics());
      } catch (err) {
        logger.error({ err }, 'could not collect metrics');
        return send(res, 500, 'text/plain; charset=utf-8', 'could not collect metrics\n');
      }
    }
    return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err }, 'ops endpoint failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  // Scrapers keep connections alive; close() must not wait for them.
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? `port ${options.port} on ${options.host} is already in use`
          : err.code === 'EACCES'
            ? `port ${options.port} on ${options.host} may not be bound by this user`
            : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND'
              ? `METRICS_HOST ${options.host} is not an address of this machine`
              : `it failed (${err.code ?? err.message})`;
      reject(
        new OpsPortError(
          `the health and metrics endpoint cannot listen on METRICS_PORT=${options.port}: ${why}. Choose another METRICS_PORT (or METRICS_HOST), or leave METRICS_PORT unset.`,
        ),
      );
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger.error({ err }, 'ops endpoint error'));
  const { port } = server.address() as AddressInfo;
  logger.info({ host: options.host, port }, 'health and metrics endpoint listening');

  return {
    address: { host: options.host, port },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, {
    'content-type': contentType,
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
