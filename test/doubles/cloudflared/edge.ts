/**
 * The stand-in's "Cloudflare edge": an HTTP listener on loopback that forwards every request to the origin
 * the way a tunnel does — method, path, headers (Range included) and body streamed both ways, plus the
 * headers Cloudflare adds. Bodies are piped, never buffered, because a benchmark compares throughput through
 * it with nginx and because Frame.io pulls files of hundreds of gigabytes through it.
 */
import { randomBytes } from 'node:crypto';
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const hopByHop = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade',
]);

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
  /** Stops accepting; resolves when requests in flight finish or `graceMs` passes. */
  drain(graceMs: number): Promise<void>;
  close(): void;
}

function copyHeaders(source: IncomingMessage['headers']): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value !== undefined && !hopByHop.has(name)) out[name] = value;
  }
  return out;
}

function clientIp(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
}

export async function startEdge(opts: EdgeOptions): Promise<Edge> {
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  let active = 0;
  const idleWaiters = new Set<() => void>();

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const ray = `${randomBytes(8).toString('hex')}-${opts.colo.slice(0, 3).toUpperCase()}`;
    res.setHeader('server', 'cloudflare');
    res.setHeader('cf-ray', ray);
    edge.totalRequests++;
    if (!edge.connected) {
      res.writeHead(530, { 'content-type': 'text/plain; charset=UTF-8' }).end('error code: 1033');
      return;
    }
    if (active >= opts.maxInFlight) {
      res.writeHead(429, { 'content-type': 'text/plain; charset=UTF-8' }).end('error code: 1015');
      return;
    }
    active++;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      active--;
      if (active === 0) for (const wake of idleWaiters) wake();
    };
    res.on('close', done);

    const ip = clientIp(req);
    const headers = copyHeaders(req.headers);
    const prior = req.headers['x-forwarded-for'];
    headers['x-forwarded-for'] = prior ? `${String(prior)}, ${ip}` : ip;
    headers.host = opts.hostname;
    headers['x-forwarded-proto'] = 'https';
    headers['cf-connecting-ip'] = ip;
    headers['cf-ray'] = ray;
    headers['cf-visitor'] = '{"scheme":"https"}';
    headers['cdn-loop'] = 'cloudflare; loops=1';

    const upstream = request(
      {
        agent,
        protocol: opts.origin.protocol,
        hostname: opts.origin.hostname,
        port: opts.origin.port,
        method: req.method,
        path: req.url,
        headers,
      },
      (originRes) => {
        res.writeHead(originRes.statusCode ?? 502, originRes.statusMessage, copyHeaders(originRes.headers));
        originRes.pipe(res);
        originRes.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain; charset=UTF-8' }).end('error code: 502');
      else res.destroy();
    });
    // A puller that hangs up must hang up on the origin too, so its byte accounting sees the abort.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  };

  const server: Server = createServer({ keepAliveTimeout: 30_000, requestTimeout: 0, headersTimeout: 60_000 }, handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const edge: Edge = {
    url: `http://127.0.0.1:${port}`,
    connected: true,
    totalRequests: 0,
    inFlight: () => active,
    drain(graceMs) {
      server.close();
      server.closeIdleConnections();
      if (active === 0) return Promise.resolve();
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
      server.closeAllConnections();
      agent.destroy();
    },
  };
  return edge;
}
