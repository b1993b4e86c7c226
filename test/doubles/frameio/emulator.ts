/**
 * A faithful stand-in for Frame.io V4 and Adobe IMS on one loopback HTTP server, built from the public
 * shapes in shared/reference: IMS tokens (rotating refresh tokens, PKCE), the V4 navigation and upload
 * endpoints with their envelopes, errors and x-ratelimit headers, and remote imports that really pull the
 * source with parallel Range requests and record the sha256 of what arrived. Fault switches make it
 * misbehave on purpose; a small `/_emulator/*` control API lets other processes drive and inspect it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Ims } from './ims.ts';
import { probeSource, runRemoteImport } from './importer.ts';
import { LocalUploads } from './local-upload.ts';
import { DEFAULT_FAULTS, type CallRecord, type Faults, type LedgerEntry } from './model.ts';
import { RateLimiter } from './rate-limits.ts';
import { resolveSource } from './source.ts';
import { isoMicros, Store, type FileAsset, type FolderAsset } from './store.ts';
import { createV4Routes, errors, matchRoute, type V4Answer } from './v4-api.ts';

export type { CallRecord, Faults, LedgerEntry, LedgerRequest } from './model.ts';

export interface EmulatorOptions {
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (a free one). */
  port?: number;
  /** The Developer Console client id (also the required x-api-key); default 'postflow-test-client'. */
  clientId?: string;
  clientSecret?: string;
  /** Lifetime of access tokens; default 3600. */
  accessTokenTtlSeconds?: number;
  /** Tunnel hostname registry (test/doubles/tunnel-registry.ts) used as DNS for source URLs. */
  registryDir?: string;
  /** Allow http://127.0.0.1 / localhost sources; default false, like the real service. */
  allowLoopbackSources?: boolean;
  /** Parallel Range requests per import; default 4. */
  pullConcurrency?: number;
  /** Bytes per Range request; default 8 MiB. */
  pullChunkBytes?: number;
  /** Retries of one failed chunk (or HEAD) before the import fails; default 3. */
  pullRetries?: number;
  /** Look-ups of a source hostname that does not resolve before the import fails; default 5, 1 s apart. */
  dnsRetries?: number;
  dnsRetryDelayMs?: number;
  /** Largest source remote_upload accepts; default 50 GB (decimal, as the docs say). */
  remoteUploadMaxBytes?: number;
  /** Lifetime of local_upload presigned part URLs; default 3600. */
  uploadUrlTtlSeconds?: number;
  /** Where local_upload parts go: 'disk' (spooled, then hashed; default) or 'hash' (hashed in part order, nothing kept: for 50+ GB tests). */
  localUploadStore?: 'disk' | 'hash';
  /** Name of the project created at start; default 'Postflow Test Project'. */
  projectName?: string;
  faults?: Partial<Faults>;
  /** Import lifecycle and progress lines go here when given. */
  logger?: Logger;
}

export interface Emulator {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `url + '/v4'` */
  apiUrl: string;
  imsTokenUrl: string;
  imsAuthorizeUrl: string;
  clientId: string;
  clientSecret: string;
  accountId: string;
  workspaceId: string;
  projectId: string;
  rootFolderId: string;
  /** A valid refresh token, to seed a postflow refresh-token file. */
  issueRefreshToken(): string;
  /** A valid access token, for tests that call /v4 directly. */
  issueAccessToken(): string;
  /** Every refresh and access token issued so far (secrets a test can search logs for). */
  issuedTokens(): string[];
  /** Another project in the same workspace (for several-destination tests). */
  createProject(name: string): { projectId: string; rootFolderId: string };
  setFaults(f: Partial<Faults>): void;
  faults(): Faults;
  ledger(): LedgerEntry[];
  calls(): CallRecord[];
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('body too large'));
        req.destroy();
      } else parts.push(b);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (status === 204 || body === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

function checkFaults(f: Partial<Faults>): Partial<Faults> {
  if (typeof f !== 'object' || f === null) throw new Error('faults must be a JSON object');
  for (const [k, v] of Object.entries(f)) {
    if (!(k in DEFAULT_FAULTS)) throw new Error(`unknown fault ${JSON.stringify(k)}; known: ${Object.keys(DEFAULT_FAULTS).join(', ')}`);
    const want = typeof DEFAULT_FAULTS[k as keyof Faults];
    if (typeof v !== want) throw new Error(`fault ${k} must be a ${want}, got ${JSON.stringify(v)}`);
  }
  return f;
}

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const clientId = opts.clientId ?? 'postflow-test-client';
  const clientSecret = opts.clientSecret ?? 'test-secret';
  const ims = new Ims({ clientId, clientSecret, accessTokenTtlSeconds: opts.accessTokenTtlSeconds ?? 3600 });
  const store = new Store();
  const project = store.createProject(opts.projectName ?? 'Postflow Test Project');
  const limiter = new RateLimiter();
  const uploads = new LocalUploads(opts.localUploadStore ?? 'disk');
  const faults: Faults = { ...DEFAULT_FAULTS };
  const ledger = new Map<string, LedgerEntry>();
  const calls: CallRecord[] = [];
  const imports = new Map<string, AbortController>();
  const running = new Set<Promise<void>>();
  const tuning = {
    concurrency: opts.pullConcurrency ?? 4,
    chunkBytes: opts.pullChunkBytes ?? 8 * 1024 * 1024,
    chunkRetries: opts.pullRetries ?? 3,
    retryBaseMs: 250,
  };
  const maxRemoteBytes = opts.remoteUploadMaxBytes ?? 50_000_000_000;
  let apiCalls = 0;
  let baseUrl = '';

  const setFaults = (f: Partial<Faults>): void => {
    Object.assign(faults, checkFaults(f));
    if (f.revokeRefreshTokens) ims.revokeRefreshTokens();
    if (f.revokeAccessTokens) ims.revokeAccessTokens();
  };
  setFaults(opts.faults ?? {});

  const newEntry = (file: FileAsset, folder: FolderAsset, kind: LedgerEntry['kind'], sourceUrl: string | null): LedgerEntry => {
    const entry: LedgerEntry = {
      fileId: file.id,
      kind,
      name: file.name,
      folderId: folder.id,
      sourceUrl,
      size: file.fileSize,
      bytesReceived: 0,
      sha256: null,
      status: 'importing',
      requests: [],
      firstRequestAt: null,
      completedAt: null,
    };
    ledger.set(file.id, entry);
    return entry;
  };

  const failEntry = (file: FileAsset, entry: LedgerEntry, reason: string): void => {
    if (entry.status !== 'importing') return;
    entry.status = 'failed';
    entry.error = reason;
    entry.completedAt = Date.now();
    file.uploadFailed = true;
    opts.logger?.warn({ fileId: file.id, name: file.name, reason }, 'import failed');
  };

  const remoteUpload = async (folder: FolderAsset, name: string, sourceUrl: string): Promise<FileAsset> => {
    const file = store.createFile(folder, name, 0);
    const entry = newEntry(file, folder, 'remote_upload', sourceUrl);
    const resolve = () =>
      resolveSource(sourceUrl, {
        registryDir: opts.registryDir,
        allowLoopbackSources: opts.allowLoopbackSources ?? false,
        dnsDelayMs: faults.sourceDnsDelayMs,
        now: Date.now(),
      });
    if (faults.failImportsNext > 0) {
      faults.failImportsNext--;
      setTimeout(() => failEntry(file, entry, 'import failed on purpose (failImportsNext fault)'), 20).unref();
      return file;
    }
    if (faults.stallPullsNext > 0) {
      // A stalled importer: the 202 goes out, then not one byte is requested. Deleting the file ends it.
      faults.stallPullsNext--;
      opts.logger?.warn({ fileId: file.id, name }, 'import stalled on purpose (stallPullsNext fault)');
      return file;
    }
    const ac = new AbortController();
    imports.set(file.id, ac);
    // The real service touches the source before it answers: the 202 already carries file_size.
    const probed = await probeSource(resolve(), entry, AbortSignal.any([ac.signal, AbortSignal.timeout(5000)]));
    if (probed) {
      file.fileSize = probed.size;
      entry.size = probed.size;
      if (probed.size > maxRemoteBytes) {
        imports.delete(file.id);
        setTimeout(() => failEntry(file, entry, `source is ${probed.size} bytes, over the remote upload limit of ${maxRemoteBytes}`), 20).unref();
        return file;
      }
    }
    const job = runRemoteImport({
      file,
      entry,
      faults: () => faults,
      resolve,
      tuning,
      dnsRetries: opts.dnsRetries ?? 5,
      dnsRetryDelayMs: opts.dnsRetryDelayMs ?? 1000,
      signal: ac.signal,
      logger: opts.logger,
      maxBytes: maxRemoteBytes,
      ...(probed ? { probed } : {}),
    }).finally(() => {
      imports.delete(file.id);
      running.delete(job);
    });
    running.add(job);
    return file;
  };

  const localUpload = (folder: FolderAsset, name: string, fileSize: number) => {
    const file = store.createFile(folder, name, fileSize);
    newEntry(file, folder, 'local_upload', null);
    let ttlSeconds = opts.uploadUrlTtlSeconds ?? 3600;
    if (faults.expireUploadUrlsNext > 0) {
      faults.expireUploadUrlsNext--;
      ttlSeconds = -1;
    }
    const uploadUrls = uploads.plan(baseUrl, file.id, fileSize, file.mediaType, ttlSeconds, Date.now());
    return { file, uploadUrls };
  };

  const deleteAsset = (id: string): void => {
    for (const fileId of store.delete(id)) {
      imports.get(fileId)?.abort(new Error('file deleted'));
      uploads.forget(fileId);
      const entry = ledger.get(fileId);
      if (entry) {
        if (entry.status === 'importing') entry.error = 'deleted while importing';
        entry.status = 'deleted';
        entry.completedAt ??= Date.now();
      }
    }
  };

  const writable = (folder: { id: string; parentId: string | null }): boolean => {
    const readOnly = new Set(faults.readOnlyFolderIds);
    for (let at: { id: string; parentId: string | null } | undefined = folder; at; at = at.parentId ? (store.assets.get(at.parentId) as typeof at) : undefined) {
      if (readOnly.has(at.id)) return false;
    }
    return true;
  };
  const routes = createV4Routes({ store, remoteUpload, localUpload, deleteAsset, writable });

  const handleV4 = async (req: IncomingMessage, res: ServerResponse, url: URL, call: CallRecord): Promise<void> => {
    const answer = (a: V4Answer, headers: Record<string, string> = {}): void => {
      call.status = a.status;
      sendJson(res, a.status, a.body, headers);
    };
    const m = matchRoute(routes, req.method ?? 'GET', url.pathname);
    if (m === undefined || m === 'method') {
      await readBody(req).catch(() => undefined);
      return answer(errors(404, { detail: 'Not found', title: 'Not found' }));
    }
    call.operation = m.route.operation;
    const rate = limiter.take(m.route.operation, faults.enforceRateLimits);
    const headers: Record<string, string> = rate
      ? { 'x-ratelimit-limit': String(rate.limit), 'x-ratelimit-remaining': String(rate.remaining), 'x-ratelimit-window': String(rate.windowMs) }
      : {};
    const raw = await readBody(req).catch(() => undefined);
    if (raw === undefined) return answer(errors(413, { detail: 'Request body is larger than 1 MiB' }), headers);

    if (req.headers['x-api-key'] !== clientId) {
      return answer(errors(401, { detail: 'Missing or invalid x-api-key header: it must be the client id of the credential', title: 'Unauthorized' }), headers);
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
    const check = bearer ? ims.checkAccessToken(bearer) : 'unknown';
    if (check !== 'ok') {
      const detail = check === 'expired' ? 'Access token has expired' : 'Missing or invalid access token';
      return answer(errors(401, { detail, title: 'Unauthorized' }), { ...headers, 'www-authenticate': 'Bearer' });
    }

    apiCalls++;
    const retryAfter = { 'retry-after': String(faults.retryAfterSeconds) };
    if (faults.status429EveryN > 0 && apiCalls % faults.status429EveryN === 0) {
      return answer(errors(429, { detail: 'Too many requests', title: 'Too many requests' }), { ...headers, ...retryAfter });
    }
    if (faults.status503EveryN > 0 && apiCalls % faults.status503EveryN === 0) {
      return answer(errors(503, { detail: 'Service unavailable', title: 'Service unavailable' }), { ...headers, ...retryAfter });
    }
    if (rate && !rate.allowed) return answer(errors(429, { detail: 'Too many requests', title: 'Too many requests' }), headers);
    if (faults.apiDelayMs > 0) await sleep(faults.apiDelayMs);

    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return answer(errors(400, { detail: 'Request body is not valid JSON', title: 'Bad request' }), headers);
      }
    }
    answer(await m.route.handle({ params: m.params, query: url.searchParams, body }), headers);
  };

  const handleIms = async (req: IncomingMessage, res: ServerResponse, url: URL, call: CallRecord): Promise<void> => {
    if (url.pathname === '/ims/authorize/v2' && req.method === 'GET') {
      call.operation = 'ims.authorize';
      const a = ims.authorize(url.searchParams);
      call.status = a.status;
      if (a.location) {
        res.writeHead(302, { location: a.location });
        res.end();
      } else sendJson(res, a.status, a.body);
      return;
    }
    call.operation = 'ims.token';
    const raw = await readBody(req);
    if (req.method !== 'POST') {
      call.status = 405;
      return sendJson(res, 405, { error: 'invalid_request', error_description: 'use POST' });
    }
    if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      call.status = 400;
      return sendJson(res, 400, { error: 'invalid_request', error_description: 'body must be application/x-www-form-urlencoded' });
    }
    let basic: { id: string; secret: string } | undefined;
    const auth = /^Basic\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
    if (auth) {
      const [id = '', secret = ''] = Buffer.from(auth, 'base64').toString('utf8').split(':');
      basic = { id: decodeURIComponent(id), secret: decodeURIComponent(secret) };
    }
    const a = ims.token(new URLSearchParams(raw.toString('utf8')), basic);
    call.status = a.status;
    sendJson(res, a.status, a.body, { 'cache-control': 'no-store' });
  };

  const handleS3 = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const m = /^\/_s3\/frameio-uploads\/([^/]+)\/part-(\d+)$/.exec(url.pathname);
    const fileId = m?.[1] ?? '';
    const part = Number(m?.[2]);
    const entry = ledger.get(fileId);
    const file = store.get(fileId, 'file');
    const p = uploads.planFor(fileId)?.parts[part - 1];
    const rec = { method: req.method ?? 'PUT', range: p ? `bytes=${p.offset}-${p.offset + p.size - 1}` : null, status: 0, at: Date.now() };
    if (entry) {
      entry.requests.push(rec);
      entry.firstRequestAt ??= rec.at;
    }
    if (file && !file.uploadedAt) file.uploadedAt = isoMicros(rec.at);
    let a: { status: number; xml?: string | undefined; done?: { sha256: string; size: number } | undefined };
    if (req.method === 'PUT' && m && faults.failUploadPartsNext > 0) {
      faults.failUploadPartsNext--;
      a = { status: 500, xml: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>' };
    } else {
      a = req.method === 'PUT' && m ? await uploads.put(req, fileId, part, url.searchParams, Date.now()) : { status: 405, xml: undefined, done: undefined };
    }
    if (a.status !== 200) req.resume();
    rec.status = a.status;
    if (p && a.status === 200 && entry) entry.bytesReceived += p.size;
    if (a.done && entry && file) {
      entry.sha256 = a.done.sha256;
      entry.status = 'complete';
      entry.completedAt = Date.now();
      file.status = 'uploaded';
      file.uploadComplete = true;
      file.uploadCompletedAt = isoMicros(entry.completedAt);
      opts.logger?.info({ fileId, name: file.name, size: a.done.size, sha256: a.done.sha256 }, 'local upload complete');
    }
    res.writeHead(a.status, a.xml ? { 'content-type': 'application/xml' } : { etag: `"${fileId}-${part}"` });
    res.end(a.xml);
  };

  const state = () => ({
    url: baseUrl,
    apiUrl: `${baseUrl}/v4`,
    imsTokenUrl: `${baseUrl}/ims/token/v3`,
    imsAuthorizeUrl: `${baseUrl}/ims/authorize/v2`,
    clientId,
    clientSecret,
    accountId: store.accountId,
    workspaceId: store.workspaceId,
    projectId: project.id,
    rootFolderId: project.rootFolderId,
  });

  const handleControl = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const raw = await readBody(req);
    const key = `${req.method} ${url.pathname}`;
    try {
      switch (key) {
        case 'GET /_emulator/ledger':
          return sendJson(res, 200, [...ledger.values()]);
        case 'GET /_emulator/calls':
          return sendJson(res, 200, calls);
        case 'GET /_emulator/state':
          return sendJson(res, 200, state());
        case 'GET /_emulator/faults':
          return sendJson(res, 200, faults);
        case 'POST /_emulator/faults':
          setFaults(JSON.parse(raw.toString('utf8') || '{}') as Partial<Faults>);
          return sendJson(res, 200, faults);
        case 'POST /_emulator/refresh-token':
          return sendJson(res, 200, { refresh_token: ims.issueRefreshToken() });
        case 'POST /_emulator/access-token':
          return sendJson(res, 200, { access_token: ims.issueAccessToken(), expires_in: ims.accessTokenTtlSeconds });
        case 'POST /_emulator/projects': {
          const { name } = JSON.parse(raw.toString('utf8') || '{}') as { name?: unknown };
          const p = store.createProject(typeof name === 'string' && name ? name : 'Another Project');
          return sendJson(res, 201, { projectId: p.id, rootFolderId: p.rootFolderId });
        }
        default:
          return sendJson(res, 404, { error: `no control endpoint ${key}` });
      }
    } catch (e) {
      sendJson(res, 400, { error: e instanceof Error ? e.message : String(e) });
    }
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    const call: CallRecord = { at: Date.now(), method: req.method ?? 'GET', path: req.url ?? '/', operation: 'unknown', status: 0 };
    let work: Promise<void>;
    if (url.pathname.startsWith('/_emulator/')) work = handleControl(req, res, url);
    else if (url.pathname.startsWith('/_s3/')) work = handleS3(req, res, url);
    else {
      calls.push(call);
      if (url.pathname.startsWith('/ims/')) work = handleIms(req, res, url, call);
      else if (url.pathname.startsWith('/v4/')) work = handleV4(req, res, url, call);
      else {
        call.status = 404;
        req.resume();
        sendJson(res, 404, errors(404, { detail: 'Not found' }).body);
        return;
      }
    }
    work.catch((e: unknown) => {
      opts.logger?.error({ err: e instanceof Error ? e.message : String(e), path: url.pathname }, 'emulator handler failed');
      call.status = 500;
      if (!res.headersSent) sendJson(res, 500, { errors: [{ detail: 'Internal server error' }] });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  // A part PUT may legitimately take minutes (GBs, or waiting for earlier parts in 'hash' mode).
  server.requestTimeout = 0;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const hostForUrl = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  baseUrl = `http://${hostForUrl}:${addr.port}`;

  return {
    ...state(),
    issueRefreshToken: () => ims.issueRefreshToken(),
    issueAccessToken: () => ims.issueAccessToken(),
    issuedTokens: () => [...ims.issued],
    createProject(name: string) {
      const p = store.createProject(name);
      return { projectId: p.id, rootFolderId: p.rootFolderId };
    },
    setFaults,
    faults: () => ({ ...faults }),
    // Deep copies: a test holding a ledger must not see it change under it.
    ledger: () => structuredClone([...ledger.values()]),
    calls: () => structuredClone(calls),
    async close() {
      for (const ac of imports.values()) ac.abort(new Error('emulator closing'));
      await Promise.allSettled([...running]);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await uploads.close();
    },
  };
}
