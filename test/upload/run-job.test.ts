/**
 * One job's life in-process, against the real pieces around it: the public file server, the Frame.io V4
 * client and IMS provider talking to the emulator (which really pulls the file with parallel Range
 * requests), a SQLite store in memory, and a tunnel double that is a real TCP proxy in front of the file
 * server — it can be cut (sockets destroyed, port closed, 'down'), reconnected on the same URL, or replaced
 * by one on a new port (a quick tunnel's new hostname, 'url').
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { mkdtemp, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { createFrameioClient } from '../../src/frameio/client.ts';
import { createTokenProvider } from '../../src/frameio/ims.ts';
import { createRateLimiter } from '../../src/frameio/rate-limit.ts';
import { writeTokenFile } from '../../src/frameio/token-file.ts';
import { openSqliteStore } from '../../src/jobs/sqlite-store.ts';
import type { Job } from '../../src/jobs/store.ts';
import { createFileServer } from '../../src/server/public-server.ts';
import type { TunnelView } from '../../src/upload/ports.ts';
import { createJobRunner, type UploadSettings } from '../../src/upload/run-job.ts';
import { startEmulator, type Emulator, type LedgerEntry } from '../doubles/frameio/emulator.ts';

type Line = Record<string, unknown> & { event?: string; msg?: string };

/** A tunnel that is a TCP proxy to the file server's origin, so cutting it really breaks pulls in flight. */
class TunnelDouble extends EventEmitter implements TunnelView {
  readonly #target: { host: string; port: number };
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  #waiters: Array<(url: string) => void> = [];
  base: string | undefined;
  ready = false;

  constructor(origin: string) {
    super();
    const u = new URL(origin);
    this.#target = { host: u.hostname, port: Number(u.port) };
  }

  /** Listens on `port` (0: a new one, i.e. a new URL) and becomes ready. */
  async up(port = 0): Promise<string> {
    const server = createServer((client) => {
      const upstream = createConnection(this.#target);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    this.#server = server;
    const previous = this.base;
    this.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.ready = true;
    if (this.base !== previous) this.emit('url', this.base, previous ?? null);
    this.emit('ready', this.base);
    for (const w of this.#waiters.splice(0)) w(this.base);
    return this.base;
  }

  /** Edge lost: every connection in flight broken, nothing accepted until `up()`. */
  async cut(): Promise<number> {
    const port = Number(new URL(this.base!).port);
    this.ready = false;
    const server = this.#server!;
    this.#server = undefined;
    const closed = new Promise((resolve) => server.close(resolve));
    for (const s of this.#sockets) s.destroy();
    await closed;
    this.emit('down', 'cut by the test');
    return port;
  }

  waitReady(signal?: AbortSignal): Promise<string> {
    if (this.ready && this.base) return Promise.resolve(this.base);
    return new Promise((resolve, reject) => {
      const w = (url: string) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(url);
      };
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(w);
    });
  }

  async close(): Promise<void> {
    if (this.#server) await this.cut();
  }
}

interface Rig {
  emu: Emulator;
  dir: string;
  lines: Line[];
  tunnel: TunnelDouble;
  /** Writes a file of `bytes` random bytes and queues a job for it. */
  queue(name: string, bytes: number, opts?: { sparse?: boolean }): Promise<{ job: Job; sha256: string }>;
  /** Runs the job attempt after attempt (ignoring retry delays) until it is done, failed or cancelled. */
  runToEnd(id: string): Promise<Job>;
  runner: (job: Job, signal: AbortSignal) => Promise<void>;
  waitLine(pred: (l: Line) => boolean, what: string, timeoutMs?: number): Promise<Line>;
}

async function rig(t: { after: (fn: () => unknown) => void }, settings: Partial<UploadSettings> = {}): Promise<Rig> {
  const lines: Line[] = [];
  const lineWaiters = new Set<() => void>();
  const logger = pino({ level: 'debug' }, {
    write(s: string) {
      lines.push(JSON.parse(s) as Line);
      for (const w of lineWaiters) w();
    },
  });
  const emu = await startEmulator({ allowLoopbackSources: true, pullChunkBytes: 256 * 1024, pullConcurrency: 4 });
  t.after(() => emu.close());
  const dir = await mkdtemp(join(tmpdir(), 'pf-run-job-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'refresh-token');
  await writeTokenFile(tokenFile, { refresh_token: emu.issueRefreshToken() });
  const quiet = pino({ level: 'silent' });
  const tokens = createTokenProvider({ imsTokenUrl: emu.imsTokenUrl, clientId: emu.clientId, clientSecret: emu.clientSecret, refreshTokenFile: tokenFile, logger: quiet });
  t.after(() => tokens.close());
  const frameio = createFrameioClient({
    apiUrl: emu.apiUrl,
    accountId: emu.accountId,
    clientId: emu.clientId,
    tokens,
    limiter: createRateLimiter({ maxRequestsPerSecond: 100 }),
    logger: quiet,
    retryBaseMs: 50,
  });
  const server = createFileServer({ host: '127.0.0.1', port: 0, logger: quiet });
  const { origin } = await server.listen();
  t.after(() => server.close());
  const tunnel = new TunnelDouble(origin);
  await tunnel.up();
  t.after(() => tunnel.close());
  const store = await openSqliteStore({ path: join(dir, 'jobs.db') });
  t.after(() => store.close());
  const runner = createJobRunner({
    store,
    server,
    tunnel,
    frameio,
    auth: { isLost: () => false, waitRestored: async () => undefined },
    logger,
    settings: { maxAttempts: 3, stallTimeoutMs: 5_000, statusPollMs: 200, retryBaseMs: 100, retryMaxMs: 1_000, ...settings },
  });
  return {
    emu,
    dir,
    lines,
    tunnel,
    runner,
    async queue(name, bytes, opts = {}) {
      const path = join(dir, name);
      const data = opts.sparse ? Buffer.alloc(0) : randomBytes(bytes);
      await writeFile(path, data);
      if (opts.sparse) await truncate(path, bytes); // costs no disk
      const st = await stat(path);
      const job = await store.discover({ folderIndex: 0, root: dir, path, relPath: name, name, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, destination: emu.rootFolderId });
      await store.transition(job.id, 'discovered', 'stable');
      await store.transition(job.id, 'stable', 'queued');
      return { job: (await store.get(job.id))!, sha256: createHash('sha256').update(data).digest('hex') };
    },
    async runToEnd(id) {
      for (;;) {
        const job = (await store.get(id))!;
        if (job.state !== 'queued') return job;
        await runner(job, new AbortController().signal);
      }
    },
    waitLine(pred, what, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find(pred);
          if (!hit) return;
          done();
          resolve(hit);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${what}; last lines: ${lines.slice(-6).map((l) => `${l.event ?? ''} ${l.msg ?? ''}`).join(' | ')}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          lineWaiters.delete(check);
        };
        lineWaiters.add(check);
        check();
      });
    },
  };
}

const named = (emu: Emulator, name: string): LedgerEntry[] => emu.ledger().filter((e) => e.name === name);
const statuses = (entries: LedgerEntry[]) => entries.map((e) => e.status);

test('an import runs to done: the bytes Frame.io received are the file, one attempt', async (t) => {
  const r = await rig(t);
  const { job, sha256 } = await r.queue('clip.mov', 3 * 1024 * 1024 + 5);
  const end = await r.runToEnd(job.id);
  assert.equal(end.state, 'done', String(end.lastError));
  assert.equal(end.attempts, 1);
  const entries = named(r.emu, 'clip.mov');
  assert.deepEqual(statuses(entries), ['complete']);
  assert.equal(entries[0]!.sha256, sha256);
  assert.ok(entries[0]!.requests.filter((q) => q.range).length >= 4, 'pulled in Range requests');
});

test('done follows the last byte within moments, not after the slow status-poll pace', async (t) => {
  // A 30 s poll pace and a ~4 s pull: by then the backoff waits 4 s between polls. The last byte leaving
  // must cut that wait short, so `done` comes right after Frame.io completes.
  const r = await rig(t, { statusPollMs: 30_000 });
  r.emu.setFaults({ pullBytesPerSecond: 2 * 1024 * 1024 });
  const { job } = await r.queue('paced.mov', 8 * 1024 * 1024);
  const end = await r.runToEnd(job.id);
  assert.equal(end.state, 'done', String(end.lastError));
  const completedAt = named(r.emu, 'paced.mov')[0]!.completedAt!;
  const done = r.lines.find((l) => l.event === 'done')!;
  const lag = Number(done.time) - completedAt;
  assert.ok(lag < 1200, `done logged ${lag} ms after the import completed`);
});

test('tunnel URL changes mid-import: re-issued on the new URL, the old half-import deleted, no attempt spent', async (t) => {
  const r = await rig(t);
  r.emu.setFaults({ pullBytesPerSecond: 2 * 1024 * 1024 });
  const { job, sha256 } = await r.queue('reel.mov', 6 * 1024 * 1024);
  const running = r.runToEnd(job.id);
  await r.waitLine((l) => l.event === 'importing', 'the import to start');
  const first = await waitFor(() => named(r.emu, 'reel.mov').find((e) => e.bytesReceived > 512 * 1024), 'some bytes pulled');
  await r.tunnel.cut();
  r.emu.setFaults({ pullBytesPerSecond: 0 });
  const newBase = await r.tunnel.up(); // a new port: a new public URL
  const end = await running;

  assert.equal(end.state, 'done', String(end.lastError));
  assert.equal(end.attempts, 1, 'a tunnel change is not an attempt of the file');
  const entries = named(r.emu, 'reel.mov');
  assert.equal(entries.filter((e) => e.status === 'complete').length, 1, `exactly one complete import: ${JSON.stringify(statuses(entries))}`);
  assert.equal(entries.find((e) => e.status === 'complete')!.sha256, sha256);
  assert.equal(entries.find((e) => e.fileId === first.fileId)!.status, 'deleted', 'the half-imported file of the old URL is deleted');
  assert.ok(entries.every((e) => e.status === 'complete' || e.status === 'deleted'), JSON.stringify(statuses(entries)));
  assert.ok(entries.find((e) => e.status === 'complete')!.sourceUrl!.startsWith(newBase + '/'), 'the new import uses the new URL');
  assert.ok(r.lines.some((l) => l.event === 'reissue'), 'the re-issue is logged');
});

test('tunnel down and back on the same URL: a pull broken by the outage waits for the tunnel and is re-issued without spending an attempt', async (t) => {
  const r = await rig(t, { maxAttempts: 1 });
  r.emu.setFaults({ pullBytesPerSecond: 2 * 1024 * 1024 });
  const { job, sha256 } = await r.queue('mix.wav', 6 * 1024 * 1024);
  const running = r.runToEnd(job.id);
  const first = await waitFor(() => named(r.emu, 'mix.wav').find((e) => e.bytesReceived > 512 * 1024), 'some bytes pulled');
  const port = await r.tunnel.cut();
  // The emulator gives up on the source (its chunk retries find the port closed) and reports upload_failed.
  await waitFor(() => named(r.emu, 'mix.wav').find((e) => e.fileId === first.fileId && e.status !== 'importing'), 'the broken import to end');
  const reissue = await r.waitLine((l) => l.event === 'reissue', 'the job to blame the tunnel, not the file');
  assert.equal(reissue.reason, 'tunnel-lost');
  // While the tunnel is down the job waits: no new import is requested and the job is not failed.
  await new Promise((res) => setTimeout(res, 500));
  assert.equal(named(r.emu, 'mix.wav').length, 1, 'no import requested while the tunnel is down');
  r.emu.setFaults({ pullBytesPerSecond: 0 });
  await r.tunnel.up(port);
  const end = await running;

  assert.equal(end.state, 'done', String(end.lastError));
  assert.equal(end.attempts, 1, 'with maxAttempts 1 the job would have failed had the outage cost an attempt');
  const entries = named(r.emu, 'mix.wav');
  assert.deepEqual(statuses(entries), ['deleted', 'complete']);
  assert.equal(entries[1]!.sha256, sha256);
});

test('a stalled pull is retried from scratch (stalled import deleted) and then completes', async (t) => {
  const r = await rig(t, { stallTimeoutMs: 700 });
  r.emu.setFaults({ stallPullsNext: 1 });
  const { job, sha256 } = await r.queue('stall.mov', 1024 * 1024);
  const end = await r.runToEnd(job.id);
  assert.equal(end.state, 'done', String(end.lastError));
  assert.equal(end.attempts, 2);
  const entries = named(r.emu, 'stall.mov');
  assert.deepEqual(statuses(entries), ['deleted', 'complete']);
  assert.equal(entries[0]!.requests.length, 0, 'the stalled import pulled nothing');
  assert.equal(entries[1]!.sha256, sha256);
  const retry = r.lines.find((l) => l.event === 'retry');
  assert.match(String(retry?.err), /no bytes were pulled for 0\.7s \(0 of 1048576 bytes served\)/);
});

test('imports Frame.io keeps failing end failed after maxAttempts with the reason, nothing left behind; the next job goes on', async (t) => {
  const r = await rig(t, { maxAttempts: 3, retryBaseMs: 100, retryMaxMs: 1_000 });
  r.emu.setFaults({ failImportsNext: 3 });
  const bad = await r.queue('bad.mov', 256 * 1024);
  const good = await r.queue('good.mov', 256 * 1024);
  const end = await r.runToEnd(bad.job.id);
  assert.equal(end.state, 'failed');
  assert.equal(end.attempts, 3);
  assert.match(String(end.lastError), /reported the import of file .+ as failed \(upload_failed\)/);
  assert.doesNotMatch(String(end.lastError), /retrying/, 'a final failure does not promise a retry');
  assert.deepEqual(statuses(named(r.emu, 'bad.mov')), ['deleted', 'deleted', 'deleted'], 'no failed import is left in Frame.io');
  const failed = r.lines.find((l) => l.event === 'failed');
  assert.equal(failed?.attempts, 3);

  // Exponential backoff with jitter: retry n waits within [base·2^(n-1)/2, base·2^(n-1)].
  const delays = r.lines.filter((l) => l.event === 'retry').map((l) => Number(l.delayMs));
  assert.equal(delays.length, 2);
  assert.ok(delays[0]! >= 50 && delays[0]! <= 100, `first retry delay ${delays[0]}`);
  assert.ok(delays[1]! >= 100 && delays[1]! <= 200, `second retry delay ${delays[1]}`);

  const next = await r.runToEnd(good.job.id);
  assert.equal(next.state, 'done');
  assert.equal(named(r.emu, 'good.mov')[0]!.sha256, good.sha256);
});

async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}
