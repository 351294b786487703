// The Gateway (API v10, encoding=json): HELLO, heartbeats, IDENTIFY -> READY + GUILD_CREATE,
// RESUME with replay of missed events, INVALID_SESSION, and dispatches on demand. Sharded like
// Discord: a session identified with `shard: [i, n]` gets the guilds with
// `(guild_id >> 22) % n === i`, and the events of those guilds; events without a guild go to shard 0.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { guildCreatePayload, readyPayload } from './payloads.ts';
import { snowflake } from './snowflake.ts';
import type { Json, JsonObject } from './types.ts';
import type { World } from './world.ts';

export const Op = {
  Dispatch: 0,
  Heartbeat: 1,
  Identify: 2,
  PresenceUpdate: 3,
  VoiceStateUpdate: 4,
  Resume: 6,
  Reconnect: 7,
  RequestGuildMembers: 8,
  InvalidSession: 9,
  Hello: 10,
  HeartbeatAck: 11,
} as const;

const PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15);

/** The shard that holds a guild, by Discord's formula: `(guild_id >> 22) % num_shards`. */
export function shardOfGuild(guildId: string, shards: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(shards));
}

/**
 * A fresh snowflake (for a guild id) that lands on `shard` of `shards`: a new snowflake moved
 * back by less than `shards` milliseconds, so ids stay unique and plausible.
 */
export function snowflakeOnShard(shard: number, shards: number, at: number = Date.now()): string {
  if (!(Number.isInteger(shards) && shards >= 1 && Number.isInteger(shard) && shard >= 0 && shard < shards)) {
    throw new Error(`Fake Discord: no shard ${shard} of ${shards}`);
  }
  const id = BigInt(snowflake(at));
  const n = BigInt(shards);
  const ms = id >> 22n;
  const back = (((ms - BigInt(shard)) % n) + n) % n;
  return (((ms - back) << 22n) | (id & 0x3fffffn)).toString();
}

/** Discord keeps a bounded replay buffer per session. */
const HISTORY_LIMIT = 1000;

export interface GatewayHost {
  readonly token: string;
  readonly world: World;
  readonly applicationId: string;
  readonly heartbeatIntervalMs: number;
  readonly privilegedIntents: number;
  /** The shard count IDENTIFY must use (what GET /gateway/bot recommends). */
  readonly shards: number;
  resumeUrl(): string;
  /** A close with an error code (4004...), recorded like an HTTP error. */
  onCloseError(code: number, message: string, payload: string): void;
  onIdentify(): void;
}

export interface ReceivedPayload {
  op: number;
  /** `d` as sent by the bot, with the token redacted. */
  d: Json;
  at: number;
  sessionId: string | null;
}

export interface GatewaySession {
  id: string;
  seq: number;
  intents: number;
  shard: [number, number];
  /** Sent dispatches, kept for RESUME replay. */
  history: { s: number; text: string }[];
  connection: GatewayConnection | null;
  /** Became ready at least once (READY or RESUMED sent). */
  ready: boolean;
  /** No longer resumable (normal close, or invalidated by a test). */
  invalid: boolean;
}

interface GatewayConnection {
  ws: WebSocket;
  session: GatewaySession | null;
  path: string;
}

export interface GatewayEvents {
  ready: [GatewaySession];
  resumed: [GatewaySession];
  payload: [ReceivedPayload];
  connection: [string];
  /** A gateway connection closed (session id if it had identified or resumed, close code). */
  close: [string | null, number];
}

export class FakeGateway extends EventEmitter<GatewayEvents> {
  readonly sessions = new Map<string, GatewaySession>();
  /** Every payload the bot sent over the gateway, in order. */
  readonly received: ReceivedPayload[] = [];
  /** Paths (with query) of every gateway connection, in order, e.g. '/gateway?v=10&encoding=json'. */
  readonly connectionUrls: string[] = [];
  private readonly connections = new Set<GatewayConnection>();
  /** During an outage: connections accepted but left without HELLO, greeted when it ends. */
  private held: GatewayConnection[] | null = null;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly host: GatewayHost;

  constructor(host: GatewayHost) {
    super();
    this.setMaxListeners(0);
    this.host = host;
  }

  /** Called by the HTTP server for upgrade requests on /gateway and /gateway-resume. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, url));
  }

  private onConnection(ws: WebSocket, url: URL): void {
    const conn: GatewayConnection = { ws, session: null, path: url.pathname };
    this.connections.add(conn);
    this.connectionUrls.push(`${url.pathname}${url.search}`);
    this.emit('connection', `${url.pathname}${url.search}`);
    ws.on('close', (code) => this.onClose(conn, code));
    ws.on('error', () => undefined);
    ws.on('message', (raw, isBinary) => this.onMessage(conn, raw as Buffer, isBinary));

    const version = url.searchParams.get('v');
    const encoding = url.searchParams.get('encoding') ?? 'json';
    if (version !== '10') return this.closeWithError(conn, 4012, 'Invalid API version', url.search);
    // The fake speaks JSON only; `compress=zlib-stream` is ignored (frames are sent as plain text,
    // which discord.js accepts whatever compression it asked for).
    if (encoding !== 'json') return this.closeWithError(conn, 4002, 'Error while decoding payload.', url.search);
    if (this.held) return void this.held.push(conn);
    this.hello(conn);
  }

  private hello(conn: GatewayConnection): void {
    this.send(conn, {
      op: Op.Hello,
      d: { heartbeat_interval: this.host.heartbeatIntervalMs, _trace: ['["gateway-prd-fake",{"micros":0}]'] },
      s: null,
      t: null,
    });
  }

  private onClose(conn: GatewayConnection, code: number): void {
    this.connections.delete(conn);
    const session = conn.session;
    if (session) {
      if (session.connection === conn) session.connection = null;
      // Discord invalidates the session on a clean close (1000/1001); other codes (discord.js
      // uses 4200 before resuming) keep it resumable.
      if (code === 1000 || code === 1001) session.invalid = true;
    }
    this.emit('close', session?.id ?? null, code);
  }

  private onMessage(conn: GatewayConnection, raw: Buffer, isBinary: boolean): void {
    let payload: { op?: unknown; d?: unknown };
    try {
      payload = JSON.parse(isBinary ? raw.toString('utf8') : raw.toString()) as { op?: unknown; d?: unknown };
    } catch {
      return this.closeWithError(conn, 4002, 'Error while decoding payload.', raw.toString().slice(0, 200));
    }
    const op = typeof payload.op === 'number' ? payload.op : -1;
    const d = (payload.d ?? null) as Json;
    this.received.push({ op, d: redact(d), at: Date.now(), sessionId: conn.session?.id ?? null });
    this.emit('payload', this.received[this.received.length - 1]!);

    switch (op) {
      case Op.Heartbeat:
        return this.send(conn, { op: Op.HeartbeatAck, d: null, s: null, t: null });
      case Op.Identify:
        return this.identify(conn, d);
      case Op.Resume:
        return this.resume(conn, d);
      case Op.PresenceUpdate:
      case Op.VoiceStateUpdate:
      case Op.RequestGuildMembers:
        if (!conn.session) return this.closeWithError(conn, 4003, 'Not authenticated.', JSON.stringify(payload));
        return undefined; // accepted and ignored
      default:
        return this.closeWithError(conn, 4001, 'Unknown opcode.', JSON.stringify(payload));
    }
  }

  private identify(conn: GatewayConnection, d: Json): void {
    if (conn.session) return this.closeWithError(conn, 4005, 'Already authenticated.', 'IDENTIFY');
    const data = (d && typeof d === 'object' && !Array.isArray(d) ? d : {}) as JsonObject;
    if (data.token !== this.host.token) return this.closeWithError(conn, 4004, 'Authentication failed.', 'IDENTIFY');
    const intents = data.intents;
    if (typeof intents !== 'number' || !Number.isInteger(intents) || intents < 0)
      return this.closeWithError(conn, 4013, 'Invalid intent(s).', 'IDENTIFY');
    if ((intents & PRIVILEGED_INTENTS & ~this.host.privilegedIntents) !== 0)
      return this.closeWithError(conn, 4014, 'Disallowed intent(s).', 'IDENTIFY');
    // No `shard` means [0, 1], like Discord.
    const shardRaw = Array.isArray(data.shard) ? data.shard : [0, 1];
    const shard: [number, number] = [Number(shardRaw[0] ?? 0), Number(shardRaw[1] ?? 1)];
    if (
      !(
        Number.isInteger(shard[0]) &&
        Number.isInteger(shard[1]) &&
        shard[1] >= 1 &&
        shard[0] >= 0 &&
        shard[0] < shard[1]
      )
    ) {
      return this.closeWithError(conn, 4010, 'Invalid shard.', `IDENTIFY: shard ${JSON.stringify(shardRaw)}`);
    }
    // Discord closes 4011 when a session would hold too many guilds, and accepts more shards than
    // it recommends; the fake wants exactly the count it announces, so a wrong count is caught.
    const expected = this.host.shards;
    if (shard[1] !== expected) {
      return this.closeWithError(
        conn,
        4011,
        'Sharding required.',
        `IDENTIFY: shard [${shard[0]}, ${shard[1]}], the fake serves ${expected} shard(s)`,
      );
    }
    this.host.onIdentify();

    const session: GatewaySession = {
      id: randomBytes(16).toString('hex'),
      seq: 0,
      intents,
      shard,
      history: [],
      connection: conn,
      ready: false,
      invalid: false,
    };
    this.sessions.set(session.id, session);
    conn.session = session;
    const world = this.host.world;
    const guilds = world.installedGuilds().filter((g) => shardOfGuild(g.id, shard[1]) === shard[0]);
    const ready = readyPayload(world, {
      sessionId: session.id,
      resumeUrl: this.host.resumeUrl(),
      shard,
      applicationId: this.host.applicationId,
    });
    this.dispatchTo(session, 'READY', { ...ready, guilds: guilds.map((g) => ({ id: g.id, unavailable: true })) });
    for (const guild of guilds) this.dispatchTo(session, 'GUILD_CREATE', guildCreatePayload(world, guild, intents));
    session.ready = true;
    this.emit('ready', session);
  }

  private resume(conn: GatewayConnection, d: Json): void {
    const data = (d && typeof d === 'object' && !Array.isArray(d) ? d : {}) as JsonObject;
    const session = typeof data.session_id === 'string' ? this.sessions.get(data.session_id) : undefined;
    const seq = typeof data.seq === 'number' ? data.seq : -1;
    if (data.token !== this.host.token) return this.closeWithError(conn, 4004, 'Authentication failed.', 'RESUME');
    if (!session || session.invalid || seq > session.seq) {
      // Not resumable: the client must identify again (d: false).
      this.send(conn, { op: Op.InvalidSession, d: false, s: null, t: null });
      return;
    }
    const previous = session.connection;
    if (previous && previous !== conn) previous.ws.terminate();
    session.connection = conn;
    conn.session = session;
    for (const entry of session.history) if (entry.s > seq) conn.ws.send(entry.text);
    this.dispatchTo(session, 'RESUMED', { _trace: ['["gateway-prd-fake",{"micros":0}]'] });
    session.ready = true;
    this.emit('resumed', session);
  }

  /**
   * Sends a dispatch to every valid session of the shard it belongs to (buffered for replay when
   * its connection is down, like Discord): the shard holding the event's guild (`guild_id`, or
   * `id` of GUILD_CREATE/UPDATE/DELETE), shard 0 for events without a guild (DMs). Returns the
   * number of sessions it was queued for.
   */
  dispatch(t: string, d: unknown): number {
    const target = this.shardOf(guildOfEvent(t, d));
    let count = 0;
    for (const session of this.sessions.values()) {
      if (session.invalid || !session.ready || session.shard[0] !== target) continue;
      this.dispatchTo(session, t, d);
      count++;
    }
    return count;
  }

  /** The shard that receives the events of a guild (shard 0 for null: DMs). */
  shardOf(guildId: string | null): number {
    return guildId === null ? 0 : shardOfGuild(guildId, this.host.shards);
  }

  private dispatchTo(session: GatewaySession, t: string, d: unknown): void {
    session.seq++;
    const text = JSON.stringify({ op: Op.Dispatch, t, s: session.seq, d });
    session.history.push({ s: session.seq, text });
    if (session.history.length > HISTORY_LIMIT) session.history.shift();
    const conn = session.connection;
    if (conn && conn.ws.readyState === conn.ws.OPEN) conn.ws.send(text);
  }

  /** True when some session can receive dispatches (connected, or resumable). */
  get hasSession(): boolean {
    for (const s of this.sessions.values()) if (s.ready && !s.invalid) return true;
    return false;
  }

  /** True when some session of `shard` can receive dispatches (connected, or resumable). */
  hasSessionFor(shard: number): boolean {
    for (const s of this.sessions.values()) if (s.ready && !s.invalid && s.shard[0] === shard) return true;
    return false;
  }

  /** Sends op 7 RECONNECT: discord.js closes with 4200 and RESUMEs on resume_gateway_url. */
  requestReconnect(): void {
    for (const conn of this.connections)
      if (conn.session) this.send(conn, { op: Op.Reconnect, d: null, s: null, t: null });
  }

  /** Sends op 9 INVALID_SESSION (d = resumable). Non-resumable also invalidates the session. */
  invalidateSession(resumable = false): void {
    for (const conn of this.connections) {
      const session = conn.session;
      if (!session) continue;
      if (!resumable) session.invalid = true;
      this.send(conn, { op: Op.InvalidSession, d: resumable, s: null, t: null });
    }
  }

  /** Closes every gateway connection with `code` (e.g. 4000 to make the client resume). */
  disconnectAll(code = 4000, reason = 'Unknown error.'): void {
    for (const conn of this.connections) conn.ws.close(code, reason);
  }

  /**
   * A gateway outage: closes every connection with `code` (4000: resumable) and, until
   * `endOutage()`, accepts new connections without sending HELLO, so the client stays
   * reconnecting (discord.js waits 60 s for HELLO) instead of resuming at once.
   */
  startOutage(code = 4000, reason = 'Unknown error.'): void {
    this.held ??= [];
    this.disconnectAll(code, reason);
  }

  /** Ends the outage: held connections get their HELLO and resume (or identify) as usual. */
  endOutage(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const conn of held) if (this.connections.has(conn)) this.hello(conn);
  }

  /** Closes the connection of one session with `code` (e.g. 4000: that shard resumes, the others stay). */
  disconnectSession(sessionId: string, code = 4000, reason = 'Unknown error.'): void {
    this.sessions.get(sessionId)?.connection?.ws.close(code, reason);
  }

  /** Terminates every socket and the WebSocket server. */
  async close(): Promise<void> {
    for (const conn of this.connections) conn.ws.terminate();
    this.connections.clear();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private send(conn: GatewayConnection, payload: { op: number; d: unknown; s: number | null; t: string | null }): void {
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(JSON.stringify(payload));
  }

  private closeWithError(conn: GatewayConnection, code: number, message: string, detail: string): void {
    this.host.onCloseError(code, message, detail);
    conn.ws.close(code, message);
  }
}

/** The guild an event belongs to, or null (DMs, events of no guild). */
function guildOfEvent(t: string, d: unknown): string | null {
  if (!d || typeof d !== 'object' || Array.isArray(d)) return null;
  const o = d as Record<string, unknown>;
  if (typeof o.guild_id === 'string') return o.guild_id;
  if ((t === 'GUILD_CREATE' || t === 'GUILD_UPDATE' || t === 'GUILD_DELETE') && typeof o.id === 'string') return o.id;
  return null;
}

function redact(d: Json): Json {
  if (d && typeof d === 'object' && !Array.isArray(d) && typeof d.token === 'string')
    return { ...d, token: '[redacted]' };
  return d;
}
