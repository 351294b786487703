/**
 * The container stack as files: the Dockerfile, compose.yaml, the Prometheus and Grafana
 * provisioning and the dashboard. No Docker engine needed: what `docker build` and
 * `docker compose up` would trip over (a COPY of a missing or ignored file, a mount of a path that
 * does not exist, a dashboard reading a metric the bot does not export) fails here first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, posix } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import { NODE_FLAGS } from '../../src/node-flags.ts';
import { redactStorageUrl, storageSecrets } from '../../src/storage/open.ts';
import {
  dashboardExpressions,
  dashboardMetricNames,
  dashboardPanels,
  loadDashboard,
  promqlMetricNames,
  ROOT,
} from './dashboard.ts';

// ---- Dockerfile ---------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions in order: line continuations joined, comments and parser directives dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { parts: string[]; line: number } | undefined;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    // Comment lines are removed before continuations are joined, also inside an instruction.
    if (line.startsWith('#')) return;
    if (!pending) {
      if (!line) return;
      pending = { parts: [], line: i + 1 };
    }
    const continued = /\\$/.test(line);
    pending.parts.push(continued ? line.slice(0, -1).trim() : line);
    if (continued) return;
    const joined = pending.parts.filter(Boolean).join(' ');
    const [keyword = '', ...rest] = joined.split(/\s+/);
    out.push({ keyword: keyword.toUpperCase(), args: rest.join(' '), line: pending.line });
    pending = undefined;
  });
  if (pending) throw new Error(`Dockerfile ends inside a continued instruction (line ${pending.line})`);
  return out;
}

/** Stages split at FROM: `name` is the `AS` alias (or the index). */
function stages(instructions: Instruction[]) {
  const list: { name: string; from: string; body: Instruction[] }[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const [from = '', as, alias] = ins.args.split(/\s+/);
      list.push({ name: as?.toUpperCase() === 'AS' && alias ? alias : String(list.length), from, body: [] });
    } else if (list.length) list.at(-1)!.body.push(ins);
    else if (ins.keyword !== 'ARG') throw new Error(`${ins.keyword} before FROM (line ${ins.line})`);
  }
  return list;
}

/** `COPY [--flag=value ...] src... dest`, shell or JSON form. */
function copyArgs(args: string) {
  const words = args.split(/\s+/);
  const flags: Record<string, string> = {};
  while (words[0]?.startsWith('--')) {
    const [key = '', value = ''] = words.shift()!.slice(2).split('=');
    flags[key] = value;
  }
  const rest = words.join(' ');
  const paths = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
  return { flags, sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

/** `ENV a=b c=d` (and the legacy `ENV a b`). */
function envOf(args: string): Record<string, string> {
  if (!args.includes('=')) {
    const [key = '', ...value] = args.split(/\s+/);
    return { [key]: value.join(' ') };
  }
  return Object.fromEntries(
    args.split(/\s+/).map((pair) => pair.split('=', 2).map((s) => s.replace(/^"|"$/g, '')) as [string, string]),
  );
}

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const dockerfile = parseDockerfile(read('Dockerfile'));
const allStages = stages(dockerfile);
const final = allStages.at(-1)!;
const dockerignore = read('.dockerignore')
  .split(/\r?\n/)
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

/** Whether a build-context path is excluded by .dockerignore (literal patterns and `*.ext`). */
function ignored(path: string): boolean {
  const clean = posix.normalize(path).replace(/^\.\/|\/$/g, '');
  let out = false;
  for (const raw of dockerignore) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).replace(/^\/|\/$/g, '');
    const re = new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')}(/.*)?$`,
    );
    if (re.test(clean)) out = !negated;
  }
  return out;
}

describe('Dockerfile', () => {
  it('parses: continuations joined, comments skipped, stages found', () => {
    expect(parseDockerfile('FROM a AS b\n# c\nRUN x \\\n  # inside\n  && y\nCMD ["z"]\n')).toEqual([
      { keyword: 'FROM', args: 'a AS b', line: 1 },
      { keyword: 'RUN', args: 'x && y', line: 3 },
      { keyword: 'CMD', args: '["z"]', line: 6 },
    ]);
    expect(allStages.length).toBeGreaterThanOrEqual(2);
    expect(final.from).toMatch(/^node:24/);
  });

  it('copies only what exists in the repository and is not in .dockerignore', () => {
    const copies = dockerfile.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD').map((i) => copyArgs(i.args));
    const fromContext = copies.filter((c) => !c.flags.from).flatMap((c) => c.sources);
    expect(fromContext).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src', 'commands']));
    for (const source of fromContext) {
      expect(existsSync(join(ROOT, source)), `COPY ${source}: not in the repository`).toBe(true);
      expect(ignored(source), `COPY ${source}: excluded by .dockerignore`).toBe(false);
    }
    // --from names a stage of this Dockerfile.
    for (const c of copies.filter((c) => c.flags.from)) expect(allStages.map((s) => s.name)).toContain(c.flags.from);
  });

  it('runs as a non-root user, with production dependencies only', () => {
    const user = final.body.filter((i) => i.keyword === 'USER').at(-1)?.args;
    expect(user).toBeTruthy();
    expect(user!.split(':')[0]).not.toMatch(/^(root|0)$/);
    // The final stage's node_modules come from a stage that installed without dev dependencies.
    const modules = final.body
      .map((i) => (i.keyword === 'COPY' ? copyArgs(i.args) : undefined))
      .find((c) => c?.sources.some((s) => /node_modules/.test(s)));
    const installer = modules?.flags.from ? allStages.find((s) => s.name === modules.flags.from) : final;
    const installs = installer!.body.filter((i) => i.keyword === 'RUN' && /\bnpm (ci|install|i)\b/.test(i.args));
    expect(installs.length).toBeGreaterThan(0);
    for (const run of installs) expect(run.args).toMatch(/npm ci\b.*--omit=dev/);
    for (const run of dockerfile.filter((i) => i.keyword === 'RUN')) expect(run.args).not.toMatch(/npm (install|i)\b/);
    expect(existsSync(join(ROOT, 'package-lock.json'))).toBe(true);
  });

  it('serves /healthz and /metrics on 0.0.0.0:9464 and checks its health with node', () => {
    const env = Object.assign({}, ...final.body.filter((i) => i.keyword === 'ENV').map((i) => envOf(i.args)));
    expect(env).toMatchObject({ NODE_ENV: 'production', METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0' });
    expect(final.body.filter((i) => i.keyword === 'EXPOSE').map((i) => i.args)).toContain('9464');
    const healthchecks = final.body.filter((i) => i.keyword === 'HEALTHCHECK');
    expect(healthchecks).toHaveLength(1);
    const options = healthchecks[0]!.args.split(/\s+CMD\s+/)[0]!;
    for (const option of ['interval', 'timeout', 'start-period', 'retries']) expect(options).toContain(`--${option}=`);
    const stop = final.body.find((i) => i.keyword === 'STOPSIGNAL');
    expect(stop?.args ?? 'SIGTERM').toBe('SIGTERM');
    const cmd = JSON.parse(final.body.find((i) => i.keyword === 'CMD')!.args) as string[];
    expect(cmd[0]).toBe('node');
    expect(existsSync(join(ROOT, cmd.at(-1)!))).toBe(true);
  });

  it('runs the bot with the same V8 memory flags as npm start (src/node-flags.ts)', () => {
    const cmd = JSON.parse(final.body.find((i) => i.keyword === 'CMD')!.args) as string[];
    expect(cmd.slice(1, -1)).toEqual([...NODE_FLAGS]);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(['node', ...NODE_FLAGS, 'src/main.ts'].join(' '));
  });

  describe('the HEALTHCHECK command against a real HTTP server', () => {
    const servers: Server[] = [];
    const probes: ChildProcess[] = [];
    afterAll(async () => {
      for (const child of probes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      for (const server of servers) server.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    });

    /** A /healthz answering `status`, or one that never answers (`status` undefined); `asked` lists the paths requested. */
    async function healthz(status: number | undefined): Promise<{ port: number; asked: string[] }> {
      const asked: string[] = [];
      const server = createServer((req, res) => {
        asked.push(req.url ?? '');
        if (status === undefined) return;
        res.writeHead(req.url === '/healthz' ? status : 404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: status === 200, gateway: 'up', storage: status === 200 ? 'up' : 'down' }));
      });
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { port: (server.address() as AddressInfo).port, asked };
    }

    /** Runs the Dockerfile's HEALTHCHECK CMD (exec form; `node` is this Node) with METRICS_PORT, to its exit code. */
    async function probe(port: number): Promise<number | null> {
      const args = healthcheckCommand();
      const child = spawn(process.execPath, args.slice(1), {
        env: { ...process.env, METRICS_PORT: String(port) },
        stdio: 'ignore',
      });
      probes.push(child);
      return new Promise<number | null>((r) => child.once('exit', r));
    }

    // Nothing here is timed: the test's timeout only catches a probe that never gives up (fetch
    // alone waits minutes for an answer); that it gives up in time is read from the Dockerfile.
    it('is healthy on 200, unhealthy on 503, a closed port, or no answer', { timeout: 60_000 }, async () => {
      expect(healthcheckCommand()[0]).toBe('node');
      expect(await probe((await healthz(200)).port)).toBe(0);
      expect(await probe((await healthz(503)).port)).toBe(1);
      const closed = (await healthz(200)).port;
      await new Promise((r) => servers.pop()!.close(r));
      expect(await probe(closed)).toBe(1);
      // The silent server holds the request open until the end of the file: the probe that
      // asked it ends only by giving up on its own.
      const silent = await healthz(undefined);
      expect(await probe(silent.port)).toBe(1);
      expect(silent.asked).toEqual(['/healthz']);
    });

    it('gives up on a silent /healthz before the HEALTHCHECK --timeout, leaving Node a second to start', () => {
      const args = final.body.find((i) => i.keyword === 'HEALTHCHECK')!.args;
      const dockerTimeoutMs = seconds(/--timeout=(\S+)/.exec(args)?.[1] ?? '30s') * 1_000;
      const script = healthcheckCommand().at(-1)!;
      const ownTimeoutMs = Number(/AbortSignal\.timeout\((\d+)\)/.exec(script)?.[1]);
      // Past Docker's timeout the probe is killed and counted as a failure without its own answer.
      expect(ownTimeoutMs).toBeGreaterThan(0);
      expect(ownTimeoutMs).toBeLessThanOrEqual(dockerTimeoutMs - 1_000);
    });
  });
});

function healthcheckCommand(): string[] {
  const args = final.body.find((i) => i.keyword === 'HEALTHCHECK')!.args;
  return JSON.parse(args.slice(args.indexOf('CMD ') + 4)) as string[];
}

describe('.dockerignore', () => {
  it('keeps secrets, local data and dependencies out of the build context', () => {
    for (const path of [
      'node_modules',
      '.env',
      'data',
      'coverage',
      '.git',
      'data/qwen-imagine.sqlite',
      'node_modules/x/index.js',
    ])
      expect(ignored(path), path).toBe(true);
    for (const path of ['src', 'commands', 'package.json', 'package-lock.json'])
      expect(ignored(path), path).toBe(false);
  });
});

// ---- compose.yaml --------------------------------------------------------------------------

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string> | string[];
  env_file?: string | (string | { path: string })[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
  profiles?: string[];
  restart?: string;
  stop_grace_period?: string;
  deploy?: { replicas?: number };
}

// Compose reads YAML merge keys (`<<: *bot`).
const compose = parseYaml(read('compose.yaml'), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;
const environment = (s: ComposeService): Record<string, string> =>
  Array.isArray(s.environment)
    ? Object.fromEntries(s.environment.map((e) => [e.split('=')[0]!, e.slice(e.indexOf('=') + 1)]))
    : { ...s.environment };
const botNames = Object.keys(services).filter((name) => services[name]!.build !== undefined);
const bots = botNames.map((name) => services[name]!);
const seconds = (d: string) => {
  const m = /^(\d+)(s|m)$/.exec(d);
  return m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : Number.NaN;
};

/** A value compose takes from a variable that must be set: `${NAME:?message}`. */
const REQUIRED = (name: string) => new RegExp(`^\\$\\{${name}:\\?[^}]+\\}$`);

/**
 * Compose's interpolation of `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`,
 * `${NAME?message}` and `$$`, as `docker compose config` applies it: the text with the values in,
 * and the `NAME: message` of each required variable that is missing (compose refuses to start).
 */
function interpolate(text: string, env: Record<string, string>): { text: string; missing: string[] } {
  const missing: string[] = [];
  const out = text.replace(
    /\$\$|\$\{(\w+)(?:(:?)([-?])([^}]*))?\}/g,
    (whole, name: string | undefined, colon: string, op: string, arg: string) => {
      if (whole === '$$') return '$';
      const value = env[name!];
      const unset = value === undefined || (colon === ':' && value === '');
      if (op === '?' && unset) missing.push(`${name}: ${arg}`);
      if (op === '-' && unset) return arg;
      return value ?? '';
    },
  );
  return { text: out, missing };
}

/** A volume entry's host side when it is a bind mount (a path), undefined for a named volume. */
function bindSource(v: ComposeService['volumes'] extends (infer T)[] | undefined ? T : never): string | undefined {
  const source = typeof v === 'string' ? v.split(':')[0]! : v.source;
  return source && /^[./~]/.test(source) ? source : undefined;
}

describe('compose.yaml', () => {
  it('runs Redis with an append-only file in a named volume and a redis-cli health check', () => {
    const redis = services.redis!;
    expect(redis.image).toMatch(/^redis:\d+\.\d+/);
    expect([redis.command].flat().join(' ')).toMatch(/--appendonly yes/);
    const data = redis
      .volumes!.map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`))
      .find((v) => v.endsWith(':/data'));
    expect(data).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(data!.split(':')[0]);
    expect([redis.healthcheck?.test].flat().join(' ')).toMatch(/redis-cli ping/);
  });

  it('makes Redis require a password that .env must set, and the health check log in with it', () => {
    const redis = services.redis!;
    const command = [redis.command].flat() as string[];
    expect(command[command.indexOf('--requirepass') + 1]).toMatch(REQUIRED('REDIS_PASSWORD'));
    // redis-cli reads REDISCLI_AUTH; the check passes on PONG only, not on a NOAUTH error.
    expect(environment(redis).REDISCLI_AUTH).toMatch(REQUIRED('REDIS_PASSWORD'));
    expect([redis.healthcheck?.test].flat().join(' ')).toMatch(/redis-cli ping \| grep -q PONG/);
  });

  it('gives the bots the password in STORAGE_URL, in a form the bot accepts and never shows', () => {
    const up = interpolate(read('compose.yaml'), { REDIS_PASSWORD: 'f00dcafe1234', GRAFANA_ADMIN_PASSWORD: 'g' });
    expect(up.missing).toEqual([]);
    const resolved = parseYaml(up.text, { merge: true }) as { services: Record<string, ComposeService> };
    for (const name of botNames) {
      const url = environment(resolved.services[name]!).STORAGE_URL!;
      expect(url).toBe('redis://:f00dcafe1234@redis:6379');
      const loaded = loadConfig({ DISCORD_TOKEN: 'token-value', PPINFRA_API_KEY: 'key-value', STORAGE_URL: url });
      expect(loaded.ok).toBe(true);
      expect(storageSecrets(url)).toEqual(['f00dcafe1234']);
      expect(redactStorageUrl(url)).toBe('redis://***@redis:6379');
    }
  });

  it('refuses to start without REDIS_PASSWORD, and the monitoring profile without GRAFANA_ADMIN_PASSWORD', () => {
    const missing = interpolate(read('compose.yaml'), {}).missing;
    expect(missing.some((m) => /^REDIS_PASSWORD: set REDIS_PASSWORD in \.env/.test(m))).toBe(true);
    expect(missing.some((m) => /^GRAFANA_ADMIN_PASSWORD: set GRAFANA_ADMIN_PASSWORD in \.env/.test(m))).toBe(true);
    // Wherever the file names them, they are required: no `:-default`, no bare `${VAR}`.
    for (const name of ['REDIS_PASSWORD', 'GRAFANA_ADMIN_PASSWORD']) {
      const uses = [...read('compose.yaml').matchAll(new RegExp(`\\$\\{${name}([^}]*)\\}`, 'g'))].map((m) => m[1]);
      expect(uses.length, name).toBeGreaterThan(0);
      for (const rest of uses) expect(rest, name).toMatch(/^:\?.+/);
    }
  });

  it('runs two bot processes built from the Dockerfile, sharing the jobs on Redis', () => {
    // Two processes: each one gateway shard (Discord sends an interaction to every session of
    // its shard, so two copies of one shard would both answer it), jobs shared on BullMQ.
    const processes = bots.reduce((n, b) => n + (b.deploy?.replicas ?? 1), 0);
    expect(processes).toBe(2);
    const shards = bots.map((b) => environment(b));
    for (const env of shards) {
      expect(env.STORAGE_URL).toMatch(/^redis:\/\/:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379$/);
      expect(Number(env.SHARD_COUNT)).toBe(processes);
    }
    expect(shards.flatMap((env) => JSON.parse(env.SHARDS!) as number[]).sort((a, b) => a - b)).toEqual([
      ...Array(processes).keys(),
    ]);
    for (const bot of bots) {
      expect(bot.deploy?.replicas ?? 1).toBe(1); // replicas of one shard would answer twice
      expect(bot.env_file).toEqual('.env');
      expect(bot.depends_on).toMatchObject({ redis: { condition: 'service_healthy' } });
      expect(bot.restart).toMatch(/^(unless-stopped|always|on-failure)/);
      // main.ts forces an exit 15 s after SIGTERM: Docker must not SIGKILL before.
      expect(seconds(bot.stop_grace_period ?? '10s')).toBeGreaterThan(15);
      expect(bot.profiles).toBeUndefined();
    }
    expect(existsSync(join(ROOT, '.env.example'))).toBe(true);
  });

  it('builds from and mounts only paths that exist in the repository', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.build !== undefined) {
        const build = typeof service.build === 'string' ? { context: service.build } : service.build;
        const context = join(ROOT, build.context ?? '.');
        expect(statSync(context).isDirectory(), `${name}: build context`).toBe(true);
        expect(existsSync(join(context, build.dockerfile ?? 'Dockerfile')), `${name}: Dockerfile`).toBe(true);
      }
      for (const volume of service.volumes ?? []) {
        const source = bindSource(volume);
        if (source) expect(existsSync(join(ROOT, source)), `${name}: mounts ${source}`).toBe(true);
        else {
          const named = typeof volume === 'string' ? volume.split(':')[0]! : volume.source!;
          expect(Object.keys(compose.volumes ?? {}), `${name}: volume ${named} declared`).toContain(named);
        }
      }
      for (const dependency of Array.isArray(service.depends_on)
        ? service.depends_on
        : Object.keys(service.depends_on ?? {}))
        expect(services).toHaveProperty(dependency);
    }
  });

  it('pins every image to a patch release: major.minor.patch, not latest, not a major or minor alone', () => {
    const external = Object.entries(services).filter(([, service]) => service.build === undefined);
    expect(external.map(([name]) => name).sort()).toEqual(['grafana', 'prometheus', 'redis']);
    for (const [name, service] of external)
      expect(service.image, name).toMatch(/^[\w./-]+:v?\d+\.\d+\.\d+(-[a-z][\w.]*)?$/);
  });

  it.each([
    'redis:7.4-alpine',
    'redis:7-alpine',
    'redis:alpine',
    'grafana/grafana:latest',
    'grafana/grafana:12',
    'prom/prometheus:v3.5',
  ])('the pin check refuses %s', (image) => {
    expect(image).not.toMatch(/^[\w./-]+:v?\d+\.\d+\.\d+(-[a-z][\w.]*)?$/);
  });

  it('starts Prometheus and Grafana only with the monitoring profile', () => {
    expect(services.prometheus?.profiles).toEqual(['monitoring']);
    expect(services.grafana?.profiles).toEqual(['monitoring']);
    const always = Object.entries(services)
      .filter(([, s]) => !s.profiles?.length)
      .map(([name]) => name)
      .sort();
    expect(always).toEqual(['redis', ...botNames].sort());
  });

  it('keeps Grafana closed to anonymous viewers unless asked, with an admin password .env must set', () => {
    const env = environment(services.grafana!);
    expect(env.GF_AUTH_ANONYMOUS_ENABLED).toMatch(/^\$\{GRAFANA_ANONYMOUS:-false\}$/);
    // Required, with no default: `admin` (or any fixed word) would be everyone's password.
    expect(env.GF_SECURITY_ADMIN_PASSWORD).toMatch(REQUIRED('GRAFANA_ADMIN_PASSWORD'));
  });
});

// ---- Prometheus and Grafana ------------------------------------------------------------------

/** Where compose mounts `repoPath` inside `service` (a file or a folder above it). */
function mountedAt(service: ComposeService, repoPath: string): string | undefined {
  for (const volume of service.volumes ?? []) {
    if (typeof volume !== 'string') continue;
    const [source = '', target = ''] = volume.split(':');
    const relative = posix.relative(posix.normalize(source), repoPath);
    if (!relative.startsWith('..')) return relative ? posix.join(target, relative) : target;
  }
  return undefined;
}

describe('Prometheus', () => {
  const config = parseYaml(read('ops/prometheus/prometheus.yml')) as {
    scrape_configs: {
      job_name: string;
      metrics_path?: string;
      static_configs?: { targets: string[] }[];
      dns_sd_configs?: { names: string[]; port: number }[];
    }[];
  };

  it('reads the config compose mounts, and scrapes /metrics of every bot process on 9464', () => {
    const command = [services.prometheus!.command].flat().join(' ');
    const configFile = /--config\.file=(\S+)/.exec(command)?.[1] ?? '/etc/prometheus/prometheus.yml';
    expect(mountedAt(services.prometheus!, 'ops/prometheus/prometheus.yml')).toBe(configFile);
    const job = config.scrape_configs.find((j) => j.job_name === 'qwen-imagine')!;
    expect(job.metrics_path ?? '/metrics').toBe('/metrics');
    const targets = [
      ...(job.static_configs ?? []).flatMap((s) => s.targets),
      ...(job.dns_sd_configs ?? []).flatMap((d) => d.names.map((n) => `${n}:${d.port}`)),
    ];
    expect(targets.sort()).toEqual(botNames.map((name) => `${name}:9464`).sort());
  });
});

describe('Grafana provisioning', () => {
  const grafana = services.grafana!;
  const datasources = parseYaml(read('ops/grafana/provisioning/datasources/prometheus.yaml')) as {
    datasources: { uid: string; type: string; url: string }[];
  };
  const providers = parseYaml(read('ops/grafana/provisioning/dashboards/qwen-imagine.yaml')) as {
    providers: { type: string; options: { path: string } }[];
  };

  it('mounts the provisioning folder and provides the Prometheus of compose.yaml', () => {
    expect(mountedAt(grafana, 'ops/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    const [prometheus] = datasources.datasources;
    expect(prometheus).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    // Every query of the dashboard names the provisioned datasource by uid.
    const uids = new Set(
      dashboardPanels()
        .flatMap((p) => [p.datasource?.uid, ...(p.targets ?? []).map((t) => t.datasource?.uid)])
        .filter(Boolean),
    );
    expect([...uids]).toEqual([prometheus!.uid]);
  });

  it('loads the dashboard from where compose mounts it', () => {
    const [provider] = providers.providers;
    expect(provider!.type).toBe('file');
    const inContainer = mountedAt(grafana, 'ops/grafana/qwen-imagine.json');
    expect(inContainer).toBeDefined();
    expect(posix.dirname(inContainer!)).toBe(provider!.options.path.replace(/\/$/, ''));
    const home = environment(grafana).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    if (home) expect(home).toBe(inContainer);
  });
});

// ---- the dashboard -------------------------------------------------------------------------

/**
 * The metrics the bot exports: the contract between the dashboard and src/ops.
 * Counters and gauges appear under their own name, histograms as _bucket, _sum and _count.
 */
const CONTRACT: Record<string, 'counter' | 'gauge' | 'histogram'> = {
  qwen_imagine_jobs_finished_total: 'counter',
  qwen_imagine_jobs_in_flight: 'gauge',
  qwen_imagine_jobs_queued: 'gauge',
  qwen_imagine_submissions_total: 'counter',
  qwen_imagine_ipm_limit: 'gauge',
  qwen_imagine_ipm_budget_remaining: 'gauge',
  qwen_imagine_api_request_duration_seconds: 'histogram',
  qwen_imagine_polls_per_job: 'histogram',
  qwen_imagine_request_to_delivery_seconds: 'histogram',
  qwen_imagine_completion_to_delivery_seconds: 'histogram',
  qwen_imagine_discord_rest_errors_total: 'counter',
  qwen_imagine_flagged_results_total: 'counter',
  qwen_imagine_images_held_total: 'counter',
  qwen_imagine_moderation_decisions_total: 'counter',
  qwen_imagine_reviews_pending: 'gauge',
  qwen_imagine_gateway_up: 'gauge',
  qwen_imagine_storage_up: 'gauge',
  qwen_imagine_jobs_recovered_total: 'counter',
  qwen_imagine_classification_seconds: 'histogram',
  qwen_imagine_classifications_total: 'counter',
  qwen_imagine_classifier_status: 'gauge',
};

const seriesOf = (name: string, type: string) =>
  type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];

/** prom-client's default metrics, as this prom-client names them. */
async function defaultMetricSeries(): Promise<string[]> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return (await registry.getMetricsAsJSON()).flatMap((m) => seriesOf(m.name, String(m.type)));
}

describe('the Grafana dashboard', () => {
  const dashboard = loadDashboard();
  const panels = dashboardPanels(dashboard);

  it('is a dashboard Grafana 11+ loads: uid, schema version, unique panel ids, panels inside the 24-column grid', () => {
    expect(dashboard.uid).toBe('qwen-imagine');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      expect(p.gridPos, p.title).toBeDefined();
      expect(p.gridPos!.x + p.gridPos!.w, p.title).toBeLessThanOrEqual(24);
      if (p.type !== 'row') expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
    const refIds = panels.map((p) => (p.targets ?? []).map((t) => t.refId));
    for (const list of refIds) expect(new Set(list).size).toBe(list.length);
  });

  it('has the panels the operator watches', () => {
    const titles = panels.map((p) => p.title);
    for (const title of [
      'Images per hour by outcome',
      'Queue depth',
      'Request to delivery',
      'Completion to delivery',
      'API errors (non-2xx)',
      'Jobs failed by kind',
      'Flagged results and pending reviews',
      'Moderator decisions',
      'Images-per-minute budget',
      'Discord REST errors',
      'Memory',
      'CPU',
      'Event loop lag p99',
    ])
      expect(titles).toContain(title);
  });

  it('reads only metrics the bot exports, and shows every one of them', async () => {
    const exported = new Set([
      ...Object.entries(CONTRACT).flatMap(([name, type]) => seriesOf(name, type)),
      ...(await defaultMetricSeries()),
    ]);
    const used = dashboardMetricNames(dashboard);
    expect(used.filter((name) => !exported.has(name))).toEqual([]);
    const families = new Set(used.map((name) => name.replace(/_(bucket|sum|count)$/, '')));
    expect(
      Object.keys(CONTRACT).filter(
        (name) => !families.has(name) && !families.has(name.replace(/_(bucket|sum|count)$/, '')),
      ),
    ).toEqual([]);
    expect(used).toEqual(
      expect.arrayContaining([
        'process_resident_memory_bytes',
        'process_cpu_seconds_total',
        'nodejs_eventloop_lag_p99_seconds',
      ]),
    );
  });

  it('aggregates global gauges with max() and counters over processes with sum()', () => {
    for (const { panel, expr } of dashboardExpressions(dashboard)) {
      for (const gauge of [
        'qwen_imagine_jobs_queued',
        'qwen_imagine_jobs_in_flight',
        'qwen_imagine_reviews_pending',
        'qwen_imagine_ipm_limit',
        'qwen_imagine_ipm_budget_remaining',
      ])
        if (expr.includes(gauge)) expect(expr, panel).toContain(`max(${gauge})`);
      for (const name of promqlMetricNames(expr).filter(
        (n) => n.startsWith('qwen_imagine_') && /_(total|bucket|sum|count)$/.test(n),
      )) {
        expect(expr, panel).toMatch(new RegExp(`rate\\(${name}[{\\[]`));
        expect(expr, panel).toMatch(/\bsum\b/);
      }
    }
  });

  it('finds metric names in PromQL, not functions, labels, keywords or durations', () => {
    expect(
      promqlMetricNames(
        'histogram_quantile(0.95, sum by (le, endpoint) (rate(a_bucket{status!~"2..",x="y z"}[$__rate_interval])))',
      ),
    ).toEqual(['a_bucket']);
    expect(promqlMetricNames('sum(rate(b_total[5m])) / on(instance) group_left c offset 1h and 1e3 * d:rec')).toEqual([
      'b_total',
      'c',
      'd:rec',
    ]);
  });
});
