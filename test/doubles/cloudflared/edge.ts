/**
 * The stand-in's "Cloudflare edge": a loopback listener that forwards every request to the origin the way a
 * tunnel does — method, path, headers (Range included) and body both ways, plus the headers Cloudflare adds.
 *
 * Speed matters (a benchmark compares pulls through it with nginx, and Frame.io pulls files of hundreds of
 * gigabytes through it), so it is not an HTTP-level proxy that re-parses every body chunk: it reads the
 * request head, rewrites it, and from then on splices raw bytes between the two sockets; the response head
 * is rewritten the same way. Each client connection carries one request (`Connection: close`), which keeps
 * the splice exact without parsing bodies; HTTP clients simply open a new connection for the next request.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';

const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade']);
const MAX_HEAD = 64 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n');
/** Bytes read from the origin at a time, per connection. */
const SPLICE_BYTES = 256 * 1024;

export interface EdgeOptions {
  origin: URL;
  /** The public hostname; origins see it as Host, as behind a real tunnel without httpHostHeader. */
  hostname: string;
  colo: string;
  /** The quick-tunnel cap on requests in flight; beyond it the edge answers 429. */
  maxInFlight: number;
}

export interface Edge {
  url: string;
  /** False while the tunnel has no edge connection: requests get Cloudflare's 530 / error 1033. */
  connected: boolean;
  totalRequests: number;
  inFlight(): number;
  /** Breaks every request in flight, as a lost edge connection does. */
  cutActive(): void;
  /** Stops accepting; resolves when requests in flight finish or `graceMs` passes. */
  drain(graceMs: number): Promise<void>;
  close(): void;
}

/** Reads up to the end of an HTTP head; the socket is left paused with the bytes after it returned. */
function readHead(socket: Socket): Promise<{ head: string; rest: Buffer } | null> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const end = buf.indexOf(CRLF2);
      if (end !== -1) {
        cleanup();
        socket.pause();
        resolve({ head: buf.subarray(0, end).toString('latin1'), rest: buf.subarray(end + 4) });
      } else if (buf.length > MAX_HEAD) {
        cleanup();
        resolve(null);
      }
    };
    const onEnd = () => {
      cleanup();
      resolve(null);
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
  });
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

export async function startEdge(opts: EdgeOptions): Promise<Edge> {
  const originPort = Number(opts.origin.port || 80);
  const originHost = opts.origin.hostname.replace(/^\[|\]$/g, '');
  const pending = new Set<Socket>();
  const active = new Set<{ client: Socket; upstream: Socket }>();
  const idleWaiters = new Set<() => void>();

  const finished = (pair: { client: Socket; upstream: Socket }) => {
    if (!active.delete(pair)) return;
    if (active.size === 0) for (const wake of idleWaiters) wake();
  };

  const handle = async (client: Socket) => {
    client.setNoDelay(true);
    client.on('error', () => client.destroy());
    pending.add(client);
    const got = await readHead(client);
    pending.delete(client);
    if (!got) {
      client.destroy();
      return;
    }
    const ray = `${randomBytes(8).toString('hex')}-${opts.colo.slice(0, 3).toUpperCase()}`;
    edge.totalRequests++;
    const req = parseHead(got.head);
    if (!req) {
      client.end(plain('400 Bad Request', 'error code: 400', ray));
      return;
    }
    if (!edge.connected) {
      client.end(plain('530 Unknown', 'error code: 1033', ray));
      return;
    }
    if (active.size >= opts.maxInFlight) {
      client.end(plain('429 Too Many Requests', 'error code: 1015', ray));
      return;
    }

    const ip = (client.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
    let prior: string | undefined;
    const headers: Array<[string, string]> = [];
    for (const [k, v] of req.headers) {
      const lower = k.toLowerCase();
      if (lower === 'x-forwarded-for') prior = v;
      else if (!hopByHop.has(lower) && lower !== 'host' && !lower.startsWith('cf-') && lower !== 'x-forwarded-proto') headers.push([k, v]);
    }
    headers.unshift(['Host', opts.hostname]);
    headers.push(
      ['X-Forwarded-For', prior ? `${prior}, ${ip}` : ip],
      ['X-Forwarded-Proto', 'https'],
      ['Cf-Connecting-Ip', ip],
      ['Cf-Ray', ray],
      ['Cf-Visitor', '{"scheme":"https"}'],
      ['Cdn-Loop', 'cloudflare; loops=1'],
      ['Connection', 'close'],
    );

    // The response is read into one buffer reused for the whole connection (socket `onread`): a fresh
    // 64 KiB buffer per read, as `pipe` does, cost ~780 ms of CPU per GiB (allocation, page faults, GC) and
    // made this hop the slowest part of an import. Reading pauses until the client socket has taken each
    // chunk, so the buffer is never refilled while its bytes are still queued.
    const spliceBuf = Buffer.allocUnsafeSlow(SPLICE_BYTES);
    let headAcc: Buffer | null = Buffer.alloc(0); // null once the response head has been forwarded
    let answered = false;
    const upstream: Socket = connect({
      host: originHost,
      port: originPort,
      noDelay: true,
      onread: { buffer: spliceBuf, callback: (n: number, buf: Uint8Array) => fromOrigin(Buffer.from(buf.buffer, buf.byteOffset, n)) },
    });
    const pair = { client, upstream };
    active.add(pair);
    const badGateway = () => {
      if (answered || client.destroyed) return;
      answered = true;
      client.end(plain('502 Bad Gateway', 'error code: 502', ray));
    };
    upstream.on('error', () => {
      if (!answered) badGateway();
      else client.destroy();
      upstream.destroy();
    });
    upstream.on('end', () => {
      if (headAcc !== null) badGateway();
      else client.end();
    });
    upstream.on('close', () => {
      finished(pair);
      if (!answered) client.destroy();
    });
    client.on('close', () => {
      finished(pair);
      // A puller that hangs up must hang up on the origin too, so its byte accounting sees the abort.
      upstream.destroy();
    });

    /** One read from the origin; returns false to pause reading until the client took the bytes. */
    function fromOrigin(chunk: Buffer): boolean {
      if (headAcc === null) {
        client.write(chunk, () => {
          if (!upstream.destroyed) upstream.resume();
        });
        return false;
      }
      // Head bytes are copied out of the shared buffer (concat), so they may wait.
      headAcc = Buffer.concat([headAcc, chunk]);
      const end = headAcc.indexOf(CRLF2);
      if (end === -1) {
        if (headAcc.length > MAX_HEAD) {
          client.destroy();
          upstream.destroy();
        }
        return true;
      }
      const parsed = parseHead(headAcc.subarray(0, end).toString('latin1'));
      const rest = headAcc.subarray(end + 4);
      headAcc = null;
      answered = true;
      if (!parsed) {
        client.destroy();
        upstream.destroy();
        return false;
      }
      const out = parsed.headers.filter(([k]) => {
        const lower = k.toLowerCase();
        return lower !== 'connection' && lower !== 'keep-alive' && lower !== 'server';
      });
      out.push(['Server', 'cloudflare'], ['Cf-Ray', ray], ['Connection', 'close']);
      client.write(serialise({ first: parsed.first, headers: out }));
      if (rest.length > 0) client.write(rest);
      return true;
    }

    upstream.write(serialise({ first: req.first, headers }));
    if (got.rest.length > 0) upstream.write(got.rest);
    client.pipe(upstream);
  };

  const server: Server = createServer({ noDelay: true }, (socket) => void handle(socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const edge: Edge = {
    url: `http://127.0.0.1:${port}`,
    connected: true,
    totalRequests: 0,
    inFlight: () => active.size,
    cutActive() {
      for (const { client, upstream } of active) {
        client.destroy();
        upstream.destroy();
      }
    },
    drain(graceMs) {
      server.close();
      for (const s of pending) s.destroy();
      if (active.size === 0) return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(finish, graceMs);
        function finish() {
          clearTimeout(timer);
          idleWaiters.delete(finish);
          resolve();
        }
        idleWaiters.add(finish);
      });
    },
    close() {
      server.close();
      for (const s of pending) s.destroy();
      edge.cutActive();
    },
  };
  return edge;
}
