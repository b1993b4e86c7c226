/**
 * The one public listener behind the cloudflared tunnel. Everything reachable from the internet is here,
 * so it answers exactly one shape of request, `GET|HEAD /<token>/<name>` of an active exposure, and gives
 * every other request the same empty 404 (405 for other methods, 400 for unparsable HTTP): no body, no
 * path, no version, no stack. The request path is only ever compared with what was registered; the file
 * served is the path stored with the token, re-checked on every request.
 */
import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify from 'fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import { BufferPool } from './buffer-pool.ts';
import { ERR_SERVER_BAD_NAME, ERR_SERVER_CLOSED, ERR_SERVER_LISTEN, ERR_SERVER_NOT_A_FILE } from './errors.ts';
import { FileExposure, identityDiff, identityOf } from './exposure.ts';
import type { Exposure } from './exposure.ts';
import { contentRange, ifRangeAllows, parseRange } from './range.ts';
import type { RangeDecision } from './range.ts';
import { hostOf, parseTarget } from './request-target.ts';
import type { SendShaper } from '../shaping/shaper.ts';
import { sendRange } from './send-range.ts';
import { sendRangeZeroCopy, socketFd } from './send-zero-copy.ts';
import { loadSendfile } from './zero-copy.ts';
import type { SendfileLoad } from './zero-copy.ts';
import { TokenRegistry } from './tokens.ts';

export type { Exposure, ExposureEvents, ProgressEvent, RequestEvent, ChangedEvent, RevokeReason } from './exposure.ts';

export interface FileServerOptions {
  /** Interface to bind; loopback in production (cloudflared connects locally). */
  host: string;
  /** 0 picks a free port. Config key `server.port`. */
  port: number;
  logger: Logger;
  /** Hard lifetime of a URL token even if its job hangs. Default 24 h. */
  maxTokenLifetimeMs?: number;
  /** Open connections in total; more are refused by the kernel-level accept cap. Default 256. */
  maxConnections?: number;
  /** Concurrent requests on one token; more get an empty 503. Default 32. */
  maxConnectionsPerToken?: number;
  /** Time a client has to send complete request headers (slowloris). Default 10 s. */
  headersTimeoutMs?: number;
  /** A connection with no byte moving either way for this long is destroyed. Default 60 s. */
  idleTimeoutMs?: number;
  /** Idle time allowed between keep-alive requests. Default 5 s. */
  keepAliveTimeoutMs?: number;
  /**
   * Size of each file read (and of each pooled read buffer). Default 1 MiB: the same server CPU per byte as
   * 2 MiB in bench/server-throughput.ts, half the memory per pull (issue 6 target 2).
   */
  readChunkBytes?: number;
  /**
   * Host names accepted in the Host header (e.g. the tunnel's public host and 127.0.0.1). Default: any
   * syntactically valid host, since a quick tunnel's name is only known after the server starts.
   */
  allowHost?: (hostname: string) => boolean;
  /** Clock for token expiry and lastServedAt. */
  now?: () => number;
  /** Bandwidth caps (global and per watch folder): every response body asks it before its bytes go. */
  shaper?: SendShaper;
  /**
   * The sendfile(2) addon, or why it is not used. Default `loadSendfile()` (process.env, built addon); an
   * `{ addon: undefined }` value keeps the read+write path.
   */
  zeroCopy?: SendfileLoad;
}

export interface FileServer {
  listen(): Promise<{ port: number; origin: string }>;
  /** Registers `path` (stat'ed now; a symlink or non-file is refused) and returns its public exposure. */
  expose(file: { jobId: string; path: string; name: string; folderIndex?: number }): Promise<Exposure>;
  /** Exposures currently serving (not revoked, not expired). */
  activeCount(): number;
  close(): Promise<void>;
}

const BASE_HEADERS = {
  'cache-control': 'no-store, private',
  'x-content-type-options': 'nosniff',
} as const;

const EMPTY_HEADERS = { ...BASE_HEADERS, 'content-length': '0' } as const;

// Raw responses for errors Node raises before a request object exists (bad request line, header overflow,
// header timeout): same headers, no body, connection closed.
function rawEmpty(status: number, reason: string): string {
  return (
    `HTTP/1.1 ${status} ${reason}\r\ncache-control: ${BASE_HEADERS['cache-control']}\r\n` +
    `x-content-type-options: ${BASE_HEADERS['x-content-type-options']}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`
  );
}
const RAW_400 = rawEmpty(400, 'Bad Request');
const RAW_408 = rawEmpty(408, 'Request Timeout');

function sendEmpty(res: ServerResponse, status: number, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { ...EMPTY_HEADERS, ...extra });
  res.end();
}

function originFor(host: string, port: number): string {
  const h = host === '' || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return h.includes(':') ? `http://[${h}]:${port}` : `http://${h}:${port}`;
}

function countHostHeaders(req: IncomingMessage): number {
  let n = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]?.toLowerCase() === 'host') n++;
  return n;
}

export function createFileServer(opts: FileServerOptions): FileServer {
  const log = opts.logger;
  const now = opts.now ?? Date.now;
  const maxPerToken = opts.maxConnectionsPerToken ?? 32;
  const chunkBytes = opts.readChunkBytes ?? 1024 * 1024;
  // Enough kept buffers for every pull of a busy import to reuse them; dropped while the server is idle.
  const pool = new BufferPool(chunkBytes, 16);
  const headersTimeout = opts.headersTimeoutMs ?? 10_000;
  const idleTimeout = opts.idleTimeoutMs ?? 60_000;
  const allowHost = opts.allowHost ?? (() => true);
  let closed = false;
  const zeroCopy = opts.zeroCopy ?? loadSendfile();
  // File systems (st_dev) where sendfile(2) was refused: their files go by read+write without trying again.
  const noSendfile = new Set<bigint>();

  const registry = new TokenRegistry<FileExposure>({
    maxLifetimeMs: opts.maxTokenLifetimeMs ?? 24 * 60 * 60 * 1000,
    now,
    onExpire: (exposure) => {
      log.info({ job: exposure.jobId, file: exposure.name }, 'file URL expired');
      exposure.end('expired');
    },
  });
  // Expiry is also checked on every lookup; the sweep makes an idle expired token end (and tell its job).
  const sweeper = setInterval(() => {
    registry.sweep();
    if (pool.inUse === 0) pool.trim();
  }, 1000);
  sweeper.unref();

  const app = Fastify({
    logger: false,
    exposeHeadRoutes: false,
    return503OnClosing: false,
    forceCloseConnections: true,
    serverFactory: (handler) => {
      const server = http.createServer(
        {
          headersTimeout,
          requestTimeout: headersTimeout * 2,
          keepAliveTimeout: opts.keepAliveTimeoutMs ?? 5_000,
          // Node checks header/request timeouts on this period (30 s by default): too coarse for slowloris.
          connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 4))),
          // A missing Host gets our empty 404 instead of Node's own bare 400.
          requireHostHeader: false,
          maxHeaderSize: 16 * 1024,
          noDelay: true,
        },
        handler,
      );
      server.maxConnections = opts.maxConnections ?? 256;
      // Socket inactivity: a reader that stops reading, or a client that goes silent, is cut off.
      server.setTimeout(idleTimeout);
      // Node's headersTimeout only starts once a first byte arrives; a connection that sends nothing would
      // hold one of the capped slots until the idle timeout. Give it the headers timeout instead.
      const answered = new WeakSet<Socket>();
      server.on('request', (req: IncomingMessage) => answered.add(req.socket));
      server.on('connection', (socket: Socket) => {
        const timer = setTimeout(() => {
          if (!answered.has(socket)) socket.destroy();
        }, headersTimeout);
        timer.unref();
        socket.once('close', () => clearTimeout(timer));
      });
      return server;
    },
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      if (socket.writable && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
        socket.end(err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? RAW_408 : RAW_400);
      }
      socket.destroy();
    },
    frameworkErrors: (_err, request, reply) => {
      reply.hijack();
      finishEmpty(request.raw, reply.raw, 404);
    },
  });

  app.setErrorHandler((err, request, reply) => {
    log.warn({ err: describeError(err) }, 'public server request failed');
    reply.hijack();
    finishEmpty(request.raw, reply.raw, 404);
  });
  app.setNotFoundHandler((request, reply) => {
    reply.hijack();
    finishEmpty(request.raw, reply.raw, request.raw.method === 'GET' || request.raw.method === 'HEAD' ? 404 : 405);
  });
  // Before any body is read: other methods are refused whatever their path or payload.
  app.addHook('onRequest', (request, reply, done) => {
    const method = request.raw.method;
    if (method === 'GET' || method === 'HEAD') return done();
    reply.hijack();
    finishEmpty(request.raw, reply.raw, 405, { allow: 'GET, HEAD', connection: 'close' });
  });
  app.route({ method: ['GET', 'HEAD'], url: '/*', handler: onFileRequest });

  function logLine(req: IncomingMessage, path: string, status: number, extra: Record<string, unknown> = {}): void {
    log.debug({ method: req.method, path, range: req.headers.range, status, ...extra }, 'public request');
  }

  function finishEmpty(req: IncomingMessage, res: ServerResponse, status: number, extra: Record<string, string> = {}): void {
    sendEmpty(res, status, extra);
    logLine(req, '/<redacted>', status);
  }

  function onFileRequest(request: FastifyRequest, reply: FastifyReply): void {
    reply.hijack();
    const req = request.raw;
    const res = reply.raw;
    const host = hostOf(req.headers.host);
    const target = host !== undefined && allowHost(host) && countHostHeaders(req) === 1 ? parseTarget(req.url) : undefined;
    // Same work for unknown and known tokens up to here; the registry lookup itself is constant-time.
    const exposure = target === undefined ? undefined : registry.lookup(target.token);
    if (exposure === undefined || target === undefined || !exposure.active || target.name !== exposure.name) {
      finishEmpty(req, res, 404);
      return;
    }
    serveFile(exposure, req, res).catch((err: unknown) => {
      log.warn({ job: exposure.jobId, file: exposure.name, err: describeError(err) }, 'serving file failed');
      if (!res.headersSent) sendEmpty(res, 404);
      else res.destroy();
    });
  }

  async function serveFile(exposure: FileExposure, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = `/<redacted>/${exposure.name}`;
    const method = req.method ?? 'GET';
    const rangeHeader = req.headers.range;
    const respond = (status: number): void => {
      exposure.emit('request', { method, range: rangeHeader, status });
    };
    if (exposure.inFlight >= maxPerToken) {
      sendEmpty(res, 503, { 'retry-after': '1', connection: 'close' });
      respond(503);
      logLine(req, path, 503);
      return;
    }
    exposure.track(res);

    let fh: FileHandle | undefined;
    const startedAt = Date.now();
    try {
      let problem: string | undefined;
      try {
        // O_NOFOLLOW: a symlink put in the file's place is refused, whatever it points at.
        fh = await open(exposure.path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
        problem = identityDiff(exposure.identity, await fh.stat({ bigint: true }));
      } catch (err) {
        problem = (err as NodeJS.ErrnoException).code ?? describeError(err);
      }
      if (!exposure.active || res.destroyed) {
        if (!res.headersSent) sendEmpty(res, 404);
        return;
      }
      if (problem !== undefined) {
        log.warn({ job: exposure.jobId, file: exposure.name, reason: problem }, 'exposed file changed; not serving it');
        sendEmpty(res, 404);
        respond(404);
        logLine(req, path, 404, { changed: problem });
        exposure.markChanged(problem);
        return;
      }

      const size = exposure.size;
      let decision: RangeDecision =
        method === 'GET' ? parseRange(rangeHeader, size) : { kind: 'full' }; // Range is undefined for HEAD
      if (
        decision.kind !== 'full' &&
        !ifRangeAllows(req.headers['if-range'] as string | undefined, { etag: exposure.etag, lastModifiedMs: exposure.lastModifiedMs, nowMs: Date.now() })
      ) {
        decision = { kind: 'full' };
      }
      const fileHeaders = {
        ...BASE_HEADERS,
        'accept-ranges': 'bytes',
        etag: exposure.etag,
        'last-modified': exposure.lastModified,
        'content-disposition': exposure.contentDisposition,
      };
      if (decision.kind === 'unsatisfiable') {
        res.writeHead(416, { ...fileHeaders, 'content-range': contentRange(decision, size) as string, 'content-length': '0' });
        res.end();
        respond(416);
        logLine(req, path, 416);
        return;
      }
      const start = decision.kind === 'partial' ? decision.start : 0;
      const end = decision.kind === 'partial' ? decision.end : size - 1;
      const status = decision.kind === 'partial' ? 206 : 200;
      const headers: Record<string, string> = {
        ...fileHeaders,
        'content-type': exposure.contentType,
        'content-length': String(end - start + 1),
      };
      const cr = contentRange(decision, size);
      if (cr !== undefined) headers['content-range'] = cr;
      res.writeHead(status, headers);
      respond(status);
      if (method === 'HEAD' || end < start) {
        res.end();
        if (method === 'GET') exposure.checkComplete(); // an empty file is whole once sent
        logLine(req, path, status);
        return;
      }
      const { shaper } = opts;
      const common = {
        onSent: (position: number, length: number) => exposure.sent(position, length),
        ...(shaper
          ? { shape: { take: (n: number) => shaper.take(n, exposure.folderIndex), sliceBytes: () => shaper.sliceBytes(exposure.folderIndex) } }
          : {}),
      };
      let from = start;
      let whole: boolean | undefined;
      const dev = exposure.identity.dev;
      if (zeroCopy.addon !== undefined && !noSendfile.has(dev) && socketFd(res) !== undefined) {
        const sent = await sendRangeZeroCopy(res, { ...common, addon: zeroCopy.addon, fd: (fh as FileHandle).fd, start, end });
        if (sent.kind === 'unsupported') {
          if (!noSendfile.has(dev)) {
            noSendfile.add(dev);
            log.warn({ job: exposure.jobId, file: exposure.name, code: sent.code }, 'sendfile refused on this file system; its files are sent with read+write');
          }
          from = sent.position;
        } else {
          whole = sent.kind === 'done';
        }
      }
      whole ??= await sendRange(fh as FileHandle, res, { ...common, start: from, end, pool });
      if (whole) res.end();
      logLine(req, path, status, { bytes: end - start + 1, aborted: !whole, ms: Date.now() - startedAt });
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  return {
    async listen() {
      try {
        await app.listen({ host: opts.host, port: opts.port });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? describeError(err);
        const e = ERR_SERVER_LISTEN(opts.host, opts.port, code);
        (e as Error).cause = err;
        throw e;
      }
      const address = app.server.address();
      const port = typeof address === 'object' && address !== null ? address.port : opts.port;
      const origin = originFor(opts.host, port);
      log.info(
        { sending: zeroCopy.addon ? 'sendfile' : 'read+write' },
        zeroCopy.addon ? 'public file server sends with zero-copy sendfile' : `public file server sends with read+write (${zeroCopy.reason})`,
      );
      log.info({ origin }, 'public file server listening');
      return { port, origin };
    },

    async expose(file) {
      if (closed) throw ERR_SERVER_CLOSED();
      const { name } = file;
      if (name.length === 0 || name.length > 255 || name === '.' || name === '..' || /[/\\\u0000-\u001f\u007f]/.test(name)) {
        throw ERR_SERVER_BAD_NAME(name);
      }
      let fh: FileHandle;
      try {
        fh = await open(file.path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw ERR_SERVER_NOT_A_FILE(file.path, code === 'ELOOP' ? 'a symbolic link' : (code ?? describeError(err)));
      }
      let exposure: FileExposure;
      try {
        const st = await fh.stat({ bigint: true });
        if (!st.isFile()) throw ERR_SERVER_NOT_A_FILE(file.path, st.isDirectory() ? 'a directory' : 'a special file');
        let token = '';
        exposure = new FileExposure({
          jobId: file.jobId,
          path: file.path,
          name,
          folderIndex: file.folderIndex,
          identity: identityOf(st),
          mtimeMs: Number(st.mtimeMs),
          now,
          unregister: () => {
            registry.revoke(token);
          },
        });
        if (closed) throw ERR_SERVER_CLOSED();
        const issued = registry.issue(exposure);
        token = issued.token;
        exposure.bind(issued.token, issued.expiresAt);
      } finally {
        await fh.close();
      }
      log.info({ job: file.jobId, file: name, size: exposure.size }, 'file exposed');
      return exposure;
    },

    activeCount() {
      registry.sweep();
      return registry.size;
    },

    async close() {
      closed = true;
      clearInterval(sweeper);
      for (const exposure of registry.values()) exposure.end('closed');
      await app.close();
    },
  };
}
