/**
 * The stand-in's "Cloudflare edge": a loopback listener that forwards every request to the origin the way a
 * tunnel does — method, path, headers (Range included) and body both ways, plus the headers Cloudflare adds.
 *
 * Speed matters (a benchmark compares pulls through it with nginx, and Frame.io pulls files of hundreds of
 * gigabytes through it), so it is not an HTTP-level proxy that re-parses every body chunk: it reads the
 * request head, rewrites it, and from then on splices raw bytes between the two sockets; the response head
 * is rewritten the same way. The heads alone say where a message ends (Content-Length; nothing for HEAD,
 * 1xx, 204 and 304), so counting the spliced bytes finds the next message on a connection.
 *
 * Connections persist on both sides because they do behind the real service: Cloudflare keeps HTTP/1.1
 * client connections open (400 s idle) and cloudflared keeps idle keep-alive connections to the origin
 * (originRequest keepAliveConnections 100, keepAliveTimeout 1m30s). A double that closed after every request
 * would hide the origin's keep-alive bugs and charge each request a connect, a fresh read buffer and a new
 * client connection — in the pull benchmark (8 MiB Range requests) about a quarter of this hop's CPU.
 * When a head leaves the length open (chunked, or until close), the bytes are spliced until a side closes
 * and neither connection is reused: finding the end would mean parsing the body. A chunked request body is
 * treated the same way.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';

const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade']);
const responseDrop = new Set(['connection', 'keep-alive', 'server']);
const MAX_HEAD = 64 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
/** Bytes read from the origin at a time, per origin connection. */
const SPLICE_BYTES = 256 * 1024;

export interface EdgeOptions {
  origin: URL;
  /** The public hostname; origins see it as Host, as behind a real tunnel without httpHostHeader. */
  hostname: string;
  colo: string;
  /** The quick-tunnel cap on requests in flight; beyond it the edge answers 429. */
  maxInFlight: number;
  /** How long a client connection may sit idle between requests (Cloudflare: 400 s). */
  clientIdleMs?: number;
  /** Idle origin connections kept for reuse (cloudflared originRequest keepAliveConnections: 100). */
  keepAliveConnections?: number;
  /** How long an origin connection stays pooled (cloudflared originRequest keepAliveTimeout: 1m30s). */
  keepAliveTimeoutMs?: number;
}

export interface Edge {
  url: string;
  /** False while the tunnel has no edge connection: requests get Cloudflare's 530 / error 1033. */
  connected: boolean;
  totalRequests: number;
  inFlight(): number;
  /** Breaks every request in flight and closes every idle connection, as a lost edge connection does. */
  cutActive(): void;
  /** Stops accepting; resolves when requests in flight finish or `graceMs` passes. */
  drain(graceMs: number): Promise<void>;
  close(): void;
}

interface Head {
  first: string;
  headers: Array<[string, string]>;
}

function parseHead(text: string): Head | null {
  const lines = text.split('\r\n');
  const first = lines.shift();
  if (!first) return null;
  const headers: Array<[string, string]> = [];
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) return null;
    headers.push([line.slice(0, i).trim(), line.slice(i + 1).trim()]);
  }
  return { first, headers };
}

function serialise(head: Head): Buffer {
  return Buffer.from(`${head.first}\r\n${head.headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`, 'latin1');
}

function plain(status: string, body: string, ray: string): Buffer {
  return Buffer.from(
    `HTTP/1.1 ${status}\r\nserver: cloudflare\r\ncf-ray: ${ray}\r\ncontent-type: text/plain; charset=UTF-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    'latin1',
  );
}

/** The comma-separated tokens of every `name` header, lower-cased. */
function tokens(headers: Array<[string, string]>, name: string): string[] {
  const out: string[] = [];
  for (const [k, v] of headers) {
    if (k.toLowerCase() === name) for (const t of v.split(',')) if (t.trim()) out.push(t.trim().toLowerCase());
  }
  return out;
}

/** Repeated or listed Content-Length values must agree; anything else leaves the framing unknown. */
function contentLength(headers: Array<[string, string]>): number | 'absent' | 'invalid' {
  let found: number | 'absent' = 'absent';
  for (const value of tokens(headers, 'content-length')) {
    if (!/^\d{1,15}$/.test(value)) return 'invalid';
    if (found !== 'absent' && found !== Number(value)) return 'invalid';
    found = Number(value);
  }
  return found;
}

/** HTTP/1.1 stays open unless told `close`; HTTP/1.0 only when it asks for `keep-alive`. */
function persistent(version: string | undefined, headers: Array<[string, string]>): boolean {
  const connection = tokens(headers, 'connection');
  if (version === 'HTTP/1.1') return !connection.includes('close');
  if (version === 'HTTP/1.0') return connection.includes('keep-alive');
  return false;
}

interface RequestPlan {
  method: string;
  /** A chunked body is spliced raw until the response ends, so neither connection can be reused. */
  body: 'none' | 'length' | 'chunked';
  length: number;
  keepAlive: boolean;
}

function planRequest(req: Head): RequestPlan | null {
  const parts = req.first.split(' ');
  const cl = contentLength(req.headers);
  if (parts.length !== 3 || cl === 'invalid') return null;
  const chunked = tokens(req.headers, 'transfer-encoding').length > 0;
  const length = typeof cl === 'number' ? cl : 0;
  const body = chunked ? 'chunked' : length > 0 ? 'length' : 'none';
  return { method: parts[0]!, body, length, keepAlive: !chunked && persistent(parts[2], req.headers) };
}

interface ResponsePlan {
  status: number;
  /** Body bytes that follow the head; -1 when only the origin closing ends it. */
  length: number;
  /** Whether the origin keeps the connection open for another request. */
  reusable: boolean;
}

function planResponse(res: Head, method: string): ResponsePlan | null {
  const m = /^(HTTP\/1\.[01]) (\d{3})(?: |$)/.exec(res.first);
  if (!m) return null;
  const status = Number(m[2]);
  const cl = contentLength(res.headers);
  let length: number;
  if (status === 101) length = -1;
  else if (method === 'HEAD' || status < 200 || status === 204 || status === 304) length = 0;
  else if (tokens(res.headers, 'transfer-encoding').length > 0 || typeof cl !== 'number') length = -1;
  else length = cl;
  return { status, length, reusable: length >= 0 && persistent(m[1], res.headers) };
}

/** What an origin connection reports to the exchange that holds it. */
interface OriginReader {
  /** One read (in the connection's reused buffer); returns false to pause reading. */
  fromOrigin(chunk: Buffer): boolean;
  originEnded(): void;
  originGone(): void;
  originDrained(): void;
}

/** One TCP connection to the origin, with the read buffer it keeps for its whole life. */
class OriginConn {
  readonly socket: Socket;
  reader: OriginReader | null = null;
  /** Taken from the pool: the origin may have closed it already, so a failure before any answer is retried. */
  reused = false;
  idleTimer: NodeJS.Timeout | undefined;

  constructor(host: string, port: number, pool: OriginPool) {
    // A buffer per connection, reused by every read (socket `onread`): a fresh 64 KiB buffer per read, as
    // `pipe` does, cost ~780 ms of CPU per GiB (allocation, page faults, GC). Reading pauses until the
    // client socket has taken each chunk, so the buffer is never refilled while its bytes are still queued.
    const buffer = Buffer.allocUnsafeSlow(SPLICE_BYTES);
    this.socket = connect({
      host,
      port,
      noDelay: true,
      onread: { buffer, callback: (n: number) => this.read(buffer.subarray(0, n)) },
    });
    this.socket.on('error', () => this.socket.destroy());
    this.socket.on('end', () => (this.reader ? this.reader.originEnded() : this.socket.destroy()));
    this.socket.on('drain', () => this.reader?.originDrained());
    this.socket.on('close', () => {
      pool.forget(this);
      this.reader?.originGone();
    });
  }

  private read(chunk: Buffer): boolean {
    if (this.reader) return this.reader.fromOrigin(chunk);
    // An idle origin has nothing to say; bytes now mean its framing and ours disagree.
    this.socket.destroy();
    return false;
  }
}

/** cloudflared's idle keep-alive connections to the origin, most recently used first. */
class OriginPool {
  private readonly idle: OriginConn[] = [];
  private readonly host: string;
  private readonly port: number;
  private readonly max: number;
  private readonly idleMs: number;
  closed = false;

  constructor(origin: URL, max: number, idleMs: number) {
    this.host = origin.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(origin.port || 80);
    this.max = max;
    this.idleMs = idleMs;
  }

  /** A pooled connection if `mayReuse` and one is alive, else a new one. */
  get(mayReuse: boolean): OriginConn {
    while (mayReuse && this.idle.length > 0) {
      const conn = this.idle.pop()!;
      clearTimeout(conn.idleTimer);
      if (conn.socket.destroyed || conn.socket.readableEnded || !conn.socket.writable) continue;
      conn.reused = true;
      return conn;
    }
    return new OriginConn(this.host, this.port, this);
  }

  put(conn: OriginConn): void {
    conn.reader = null;
    if (this.closed || this.idle.length >= this.max || conn.socket.destroyed) {
      conn.socket.destroy();
      return;
    }
    conn.idleTimer = setTimeout(() => conn.socket.destroy(), this.idleMs).unref();
    this.idle.push(conn);
    // Keep reading while idle, so a close by the origin is seen (and the connection dropped) at once.
    conn.socket.resume();
  }

  forget(conn: OriginConn): void {
    clearTimeout(conn.idleTimer);
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
  }

  closeIdle(): void {
    for (const conn of this.idle.splice(0)) {
      clearTimeout(conn.idleTimer);
      conn.socket.destroy();
    }
  }
}

interface EdgeState {
  opts: EdgeOptions;
  edge: Edge;
  pool: OriginPool;
  clients: Set<ClientConn>;
  active: Set<Exchange>;
  draining: boolean;
  clientIdleMs: number;
  quietWaiters: Set<() => void>;
}

/** The request head the origin sees: hop-by-hop headers out, Cloudflare's headers in. */
function upstreamHead(state: EdgeState, req: Head, ip: string, ray: string, keepAlive: boolean): Buffer {
  let prior: string | undefined;
  const headers: Array<[string, string]> = [];
  for (const [k, v] of req.headers) {
    const lower = k.toLowerCase();
    if (lower === 'x-forwarded-for') prior = v;
    else if (!hopByHop.has(lower) && lower !== 'host' && !lower.startsWith('cf-') && lower !== 'x-forwarded-proto') headers.push([k, v]);
  }
  headers.unshift(['Host', state.opts.hostname]);
  headers.push(
    ['X-Forwarded-For', prior ? `${prior}, ${ip}` : ip],
    ['X-Forwarded-Proto', 'https'],
    ['Cf-Connecting-Ip', ip],
    ['Cf-Ray', ray],
    ['Cf-Visitor', '{"scheme":"https"}'],
    ['Cdn-Loop', 'cloudflare; loops=1'],
    ['Connection', keepAlive ? 'keep-alive' : 'close'],
  );
  return serialise({ first: req.first, headers });
}

/** One request and its response, spliced between a client connection and an origin connection. */
class Exchange implements OriginReader {
  private readonly state: EdgeState;
  private readonly client: ClientConn;
  private readonly plan: RequestPlan;
  private readonly ray: string;
  private readonly head: Buffer;
  /** Body bytes that came with the head: kept, so a request on a stale pooled connection can be resent. */
  private readonly firstBody: Buffer;
  /** The whole request is in hand (no body, or all of it came with the head), so it can be resent. */
  private readonly replayable: boolean;
  private origin: OriginConn | null = null;
  /** Content-Length body bytes still to forward to the origin. */
  private bodyLeft: number;
  /** Bytes the client sent after this request: the start of its next one. */
  private pipelined: Buffer = EMPTY;
  /** The origin's response head so far; null once the final head has been forwarded. */
  private headAcc: Buffer | null = EMPTY;
  /** Response body bytes still to forward; -1 until the origin closes. */
  private resLeft = 0;
  private keepClient = false;
  private keepOrigin = false;
  private answerStarted = false;
  private retried = false;
  private done = false;

  constructor(state: EdgeState, client: ClientConn, req: Head, plan: RequestPlan, rest: Buffer, ray: string) {
    this.state = state;
    this.client = client;
    this.plan = plan;
    this.ray = ray;
    this.head = upstreamHead(state, req, client.ip, ray, plan.body !== 'chunked');
    const bodyPart = plan.body === 'chunked' ? rest.length : Math.min(plan.length, rest.length);
    this.firstBody = rest.subarray(0, bodyPart);
    this.pipelined = rest.subarray(bodyPart);
    this.bodyLeft = plan.body === 'length' ? plan.length - bodyPart : 0;
    this.replayable = plan.body !== 'chunked' && this.bodyLeft === 0;
  }

  start(): void {
    // A pooled connection may be closed by the origin at any moment; only a request we can resend risks it.
    this.attach(this.state.pool.get(this.replayable));
  }

  private attach(conn: OriginConn): void {
    this.origin = conn;
    conn.reader = this;
    conn.socket.write(this.head);
    if (this.firstBody.length > 0) conn.socket.write(this.firstBody);
  }

  fromClient(chunk: Buffer): void {
    if (this.plan.body === 'chunked') return this.toOrigin(chunk);
    if (this.bodyLeft > 0) {
      const n = Math.min(this.bodyLeft, chunk.length);
      this.bodyLeft -= n;
      this.toOrigin(chunk.subarray(0, n));
      chunk = chunk.subarray(n);
    }
    if (chunk.length === 0) return;
    this.pipelined = this.pipelined.length === 0 ? chunk : Buffer.concat([this.pipelined, chunk]);
    if (this.pipelined.length > MAX_HEAD) this.client.socket.pause();
  }

  private toOrigin(chunk: Buffer): void {
    if (this.origin && !this.origin.socket.write(chunk)) this.client.socket.pause();
  }

  originDrained(): void {
    if (this.pipelined.length <= MAX_HEAD) this.client.socket.resume();
  }

  fromOrigin(chunk: Buffer): boolean {
    this.answerStarted = true;
    return this.headAcc === null ? this.toClient(null, chunk) : this.headBytes(chunk);
  }

  private headBytes(chunk: Buffer): boolean {
    const acc = this.headAcc!.length === 0 ? chunk : Buffer.concat([this.headAcc!, chunk]);
    const end = acc.indexOf(CRLF2);
    if (end === -1) {
      if (acc.length > MAX_HEAD) return this.broken();
      // The chunk lives in the connection's reused buffer; a partial head must outlive the next read.
      this.headAcc = acc === chunk ? Buffer.from(chunk) : acc;
      return true;
    }
    const res = parseHead(acc.subarray(0, end).toString('latin1'));
    const plan = res && planResponse(res, this.plan.method);
    if (!res || !plan) return this.broken();
    const rest = acc.subarray(end + 4);
    if (plan.status < 200 && plan.status !== 101) {
      // An interim answer (100 Continue): forwarded; the final head follows on the same connection.
      this.client.socket.write(this.clientHead(res, null));
      this.headAcc = EMPTY;
      return rest.length === 0 || this.headBytes(rest);
    }
    this.headAcc = null;
    this.resLeft = plan.length;
    this.keepOrigin = plan.reusable && this.plan.body !== 'chunked';
    this.keepClient = this.plan.keepAlive && plan.length >= 0 && !this.state.draining;
    if (rest.length > 0 || plan.length === 0) return this.toClient(this.clientHead(res, this.keepClient), rest);
    this.client.socket.write(this.clientHead(res, this.keepClient));
    return true;
  }

  private clientHead(res: Head, keepAlive: boolean | null): Buffer {
    const headers = res.headers.filter(([k]) => !responseDrop.has(k.toLowerCase()));
    headers.push(['Server', 'cloudflare'], ['Cf-Ray', this.ray]);
    if (keepAlive !== null) headers.push(['Connection', keepAlive ? 'keep-alive' : 'close']);
    return serialise({ first: res.first, headers });
  }

  /**
   * Writes response bytes (the head, if given, goes first) and pauses the origin until the client socket
   * took them; the write of the last body byte ends the exchange.
   */
  private toClient(head: Buffer | null, body: Buffer): boolean {
    if (this.resLeft >= 0) {
      if (body.length > this.resLeft) return this.broken();
      this.resLeft -= body.length;
    }
    const last = this.resLeft === 0;
    const socket = this.client.socket;
    const after = (err?: Error | null) => {
      if (this.done) return;
      if (err) this.broken();
      else if (last) this.complete();
      else this.origin?.socket.resume();
    };
    if (head && body.length === 0) {
      socket.write(head, after);
    } else {
      if (head) socket.write(head);
      socket.write(body, after);
    }
    return false;
  }

  /** The response went out whole: each connection goes back for reuse if both sides allow it. */
  private complete(): void {
    const requestSent = this.plan.body !== 'chunked' && this.bodyLeft === 0;
    const origin = this.origin!;
    this.finish();
    if (this.keepOrigin && requestSent) this.state.pool.put(origin);
    else origin.socket.destroy();
    this.client.exchangeDone(this.keepClient && requestSent ? this.pipelined : null);
  }

  originEnded(): void {
    if (this.done) return;
    if (this.headAcc !== null || this.resLeft !== -1) return this.originGone();
    // A close-delimited body ends here; every byte was written before the end could be read.
    const origin = this.origin!;
    this.finish();
    origin.socket.destroy();
    this.client.exchangeDone(null);
  }

  originGone(): void {
    if (this.done) return;
    if (this.headAcc === null) {
      this.broken();
      return;
    }
    if (!this.answerStarted && this.origin?.reused && this.replayable && !this.retried) {
      this.retried = true;
      this.origin.reader = null;
      this.origin.socket.destroy();
      this.attach(this.state.pool.get(false));
      return;
    }
    this.badGateway();
  }

  private badGateway(): void {
    const origin = this.origin;
    this.finish();
    origin?.socket.destroy();
    this.client.fail(plain('502 Bad Gateway', 'error code: 502', this.ray));
  }

  /** Either side broke the exchange: the other side must see it break too. */
  broken(): false {
    const origin = this.origin;
    this.finish();
    origin?.socket.destroy();
    this.client.socket.destroy();
    return false;
  }

  /** A client that hangs up makes the origin see the abort (its byte accounting relies on it). */
  clientGone(): void {
    if (!this.done) this.broken();
  }

  private finish(): void {
    this.done = true;
    if (this.origin) this.origin.reader = null;
    const { active, quietWaiters } = this.state;
    if (active.delete(this) && active.size === 0) for (const wake of quietWaiters) wake();
  }
}

/** One client connection: reads a request head, runs the exchange, and waits for the next request. */
class ClientConn {
  readonly socket: Socket;
  readonly ip: string;
  private readonly state: EdgeState;
  private buffered: Buffer = EMPTY;
  private exchange: Exchange | null = null;
  /** Between requests, waiting for the next head. */
  idle = false;
  /** Told to close: whatever the client still sends is read and dropped. */
  private closing = false;

  constructor(socket: Socket, state: EdgeState) {
    this.socket = socket;
    this.state = state;
    this.ip = (socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
    state.clients.add(this);
    socket.on('error', () => socket.destroy());
    socket.on('timeout', () => socket.destroy());
    socket.on('close', () => {
      state.clients.delete(this);
      this.exchange?.clientGone();
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.awaitHead();
  }

  private onData(chunk: Buffer): void {
    if (this.exchange) return this.exchange.fromClient(chunk);
    if (this.closing) return;
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    this.tryHead();
  }

  private awaitHead(): void {
    this.idle = true;
    this.socket.setTimeout(this.state.clientIdleMs);
    this.socket.resume();
    this.tryHead();
  }

  private tryHead(): void {
    const end = this.buffered.indexOf(CRLF2);
    if (end === -1) {
      if (this.buffered.length > MAX_HEAD) this.socket.destroy();
      return;
    }
    this.idle = false;
    this.socket.setTimeout(0);
    const text = this.buffered.subarray(0, end).toString('latin1');
    const rest = this.buffered.subarray(end + 4);
    this.buffered = EMPTY;
    this.exchange = this.open(text, rest);
    this.exchange?.start();
  }

  private open(text: string, rest: Buffer): Exchange | null {
    const { edge, opts, active } = this.state;
    const ray = `${randomBytes(8).toString('hex')}-${opts.colo.slice(0, 3).toUpperCase()}`;
    edge.totalRequests++;
    const req = parseHead(text);
    const plan = req && planRequest(req);
    if (!req || !plan) return this.fail(plain('400 Bad Request', 'error code: 400', ray));
    if (!edge.connected) return this.fail(plain('530 Unknown', 'error code: 1033', ray));
    if (active.size >= opts.maxInFlight) return this.fail(plain('429 Too Many Requests', 'error code: 1015', ray));
    const exchange = new Exchange(this.state, this, req, plan, rest, ray);
    active.add(exchange);
    return exchange;
  }

  /** The exchange is over; `next` holds the start of the next request, or null to close. */
  exchangeDone(next: Buffer | null): void {
    this.exchange = null;
    if (next === null || this.state.draining) {
      this.close(null);
      return;
    }
    this.buffered = next;
    this.awaitHead();
  }

  /** Answers with an error and closes. */
  fail(response: Buffer): null {
    this.exchange = null;
    this.close(response);
    return null;
  }

  /**
   * Ends with a FIN and keeps reading: closing outright with unread bytes would send a reset, which can
   * destroy the response the client has not read yet.
   */
  private close(response: Buffer | null): void {
    this.closing = true;
    this.idle = false;
    if (response) this.socket.end(response);
    else this.socket.end();
    this.socket.setTimeout(this.state.clientIdleMs);
    this.socket.resume();
  }
}

export async function startEdge(opts: EdgeOptions): Promise<Edge> {
  // `state` is assigned below, before this function returns and so before any connection can arrive.
  const server: Server = createServer({ noDelay: true }, (socket) => void new ClientConn(socket, state));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const closeIdleClients = () => {
    for (const client of state.clients) if (client.idle) client.socket.destroy();
  };
  const edge: Edge = {
    url: `http://127.0.0.1:${port}`,
    connected: true,
    totalRequests: 0,
    inFlight: () => state.active.size,
    cutActive() {
      for (const client of state.clients) client.socket.destroy();
      for (const exchange of state.active) exchange.broken();
      state.pool.closeIdle();
    },
    drain(graceMs) {
      server.close();
      state.draining = true;
      state.pool.closed = true;
      closeIdleClients();
      state.pool.closeIdle();
      if (state.active.size === 0) return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(finish, graceMs);
        function finish() {
          clearTimeout(timer);
          state.quietWaiters.delete(finish);
          resolve();
        }
        state.quietWaiters.add(finish);
      });
    },
    close() {
      server.close();
      state.draining = true;
      state.pool.closed = true;
      edge.cutActive();
    },
  };
  const state: EdgeState = {
    opts,
    edge,
    pool: new OriginPool(opts.origin, opts.keepAliveConnections ?? 100, opts.keepAliveTimeoutMs ?? 90_000),
    clients: new Set(),
    active: new Set(),
    draining: false,
    clientIdleMs: opts.clientIdleMs ?? 400_000,
    quietWaiters: new Set(),
  };
  return edge;
}
