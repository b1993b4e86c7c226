/**
 * The local admin listener: status page, JSON API, Prometheus metrics and a live event stream. It is a
 * separate Fastify instance bound to a loopback address (the config refuses anything else) and never shares
 * a port or a route with the public file server, so nothing here is reachable through the tunnel.
 *
 * Loopback is not enough on its own against a web page the operator happens to have open: a DNS-rebinding
 * page reaches 127.0.0.1 under a foreign Host name, and a cross-site form can POST. So every request must
 * name a loopback Host, and a state-changing request that carries an Origin must come from this listener.
 */
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import type { Logger } from 'pino';
import { describeError, isPostflowError } from '../errors.ts';
import type { JobState } from '../jobs/states.ts';
import type { Job } from '../jobs/store.ts';
import { parseStateFilter } from './actions.ts';
import type { JobRow, StatusView } from './view.ts';
import { jobRow } from './view.ts';

export interface AdminHandlers {
  status(): Promise<StatusView>;
  jobs(q: { state?: JobState | undefined; limit: number }): Promise<JobRow[]>;
  retry(idOrPrefix: string): Promise<Job>;
  retryFailed(): Promise<{ retried: Job[]; skipped: Array<{ id: string; reason: string }> }>;
  logLevel(): string;
  setLogLevel(level: unknown): { from: string; to: string };
  metrics(): Promise<{ contentType: string; body: string }>;
}

export interface AdminServerOptions {
  host: string;
  port: number;
  logger: Logger;
  handlers: AdminHandlers;
  /** How often /events pushes the status. Default 1 s. */
  eventIntervalMs?: number;
}

export interface AdminServer {
  /** Resolves with the listener's URL, e.g. `http://127.0.0.1:41234`. */
  listen(): Promise<{ url: string; port: number }>;
  close(): Promise<void>;
}

const PAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'page');
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // Everything the page needs comes from this listener; links out to Frame.io are plain navigation.
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
} as const;

/** True for `127.x.y.z`, `[::1]` and `localhost`, with or without a port. */
export function isLoopbackHost(hostHeader: string | undefined): boolean {
  if (!hostHeader) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(hostHeader.trim().toLowerCase());
  if (!m) return false;
  const name = m[1]!;
  return name === 'localhost' || name === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

function statusOf(err: unknown): number {
  if (isPostflowError(err)) return err.status ?? 500;
  const code = (err as { statusCode?: unknown }).statusCode;
  return typeof code === 'number' && code >= 400 && code < 600 ? code : 500;
}

export function createAdminServer(opts: AdminServerOptions): AdminServer {
  const { handlers, logger: log } = opts;
  const eventEvery = opts.eventIntervalMs ?? 1000;
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 });
  const assets = new Map<string, Buffer>();
  const streams = new Set<ServerResponse>();
  let ticker: NodeJS.Timeout | undefined;

  app.addHook('onRequest', async (req, reply) => {
    if (!isLoopbackHost(req.headers.host)) {
      return reply.code(421).headers(SECURITY_HEADERS).send({ error: 'PF_ERR_ADMIN_HOST', message: 'the admin listener answers only to a loopback Host' });
    }
    const origin = req.headers.origin;
    if (req.method !== 'GET' && req.method !== 'HEAD' && origin !== undefined && origin !== `http://${req.headers.host}`) {
      return reply.code(403).headers(SECURITY_HEADERS).send({ error: 'PF_ERR_ADMIN_ORIGIN', message: 'cross-origin requests may not change anything here' });
    }
    reply.headers(SECURITY_HEADERS);
    return undefined;
  });
  app.setErrorHandler((err, _req, reply) => {
    const status = statusOf(err);
    if (status >= 500) log.error({ err: describeError(err) }, `admin request failed: ${describeError(err)}`);
    void reply.code(status).send({ error: isPostflowError(err) ? err.code : 'PF_ERR_ADMIN_REQUEST', message: err instanceof Error ? err.message : String(err) });
  });
  app.setNotFoundHandler((_req, reply) => {
    void reply.code(404).send({ error: 'PF_ERR_ADMIN_NOT_FOUND', message: 'no such admin path' });
  });

  for (const [path, asset] of Object.entries(ASSETS)) {
    app.get(path, async (_req, reply) => {
      let body = assets.get(asset.file);
      if (!body) {
        body = await readFile(join(PAGE_DIR, asset.file));
        assets.set(asset.file, body);
      }
      return reply.type(asset.type).send(body);
    });
  }

  app.get('/api/status', async () => handlers.status());

  app.get<{ Querystring: { state?: string; limit?: string } }>('/api/jobs', async (req) => {
    const state = parseStateFilter(req.query.state);
    const limit = Math.min(10_000, Math.max(1, Number(req.query.limit ?? 100) || 100));
    return { jobs: await handlers.jobs({ state, limit }) };
  });

  app.post<{ Params: { id: string } }>('/api/jobs/:id/retry', async (req) => {
    const job = await handlers.retry(req.params.id);
    log.info({ event: 'retry', job: job.id, file: job.path, source: 'admin' }, 'failed job re-queued by an operator');
    return { job: jobRow(job) };
  });

  app.post('/api/retry-failed', async () => {
    const { retried, skipped } = await handlers.retryFailed();
    if (retried.length > 0) log.info({ event: 'retry', jobs: retried.length, source: 'admin' }, `${retried.length} failed job(s) re-queued by an operator`);
    return { retried: retried.map(jobRow), skipped };
  });

  app.get('/api/log-level', async () => ({ level: handlers.logLevel() }));
  app.put<{ Body: { level?: unknown } | undefined }>('/api/log-level', async (req) => {
    const change = handlers.setLogLevel(req.body?.level);
    return { level: change.to, previous: change.from };
  });

  app.get('/metrics', async (_req, reply) => {
    const m = await handlers.metrics();
    return reply.type(m.contentType).send(m.body);
  });

  // Server-sent events: the status every `eventEvery` ms to every open page, computed once per tick.
  app.get('/events', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    streams.add(res);
    req.raw.on('close', () => {
      streams.delete(res);
      if (streams.size === 0 && ticker) {
        clearInterval(ticker);
        ticker = undefined;
      }
    });
    void push([res]);
    ticker ??= setInterval(() => void push([...streams]), eventEvery);
  });

  async function push(to: ServerResponse[]): Promise<void> {
    if (to.length === 0) return;
    let data: string;
    try {
      data = JSON.stringify(await handlers.status());
    } catch (err) {
      log.warn({ err: describeError(err) }, 'status for the event stream failed');
      return;
    }
    for (const res of to) if (!res.destroyed) res.write(`event: status\ndata: ${data}\n\n`);
  }

  return {
    async listen() {
      await app.listen({ host: opts.host, port: opts.port });
      const addr = app.server.address();
      if (!addr || typeof addr === 'string') throw new Error('admin listener has no TCP address');
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      return { url: `http://${host}:${addr.port}`, port: addr.port };
    },
    async close() {
      if (ticker) clearInterval(ticker);
      ticker = undefined;
      for (const res of streams) res.destroy();
      streams.clear();
      await app.close();
    },
  };
}
