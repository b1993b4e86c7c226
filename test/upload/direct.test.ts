/**
 * The direct (local_upload) path: part PUTs against a recording HTTP server (headers, slices, parallelism,
 * retries, refusal), and whole jobs through the real runner against the emulator's presigned storage
 * (hash-only mode: parts hashed in order, nothing kept), including expired URLs, failing parts, a tunnel
 * that stays down, and an attempt interrupted half way whose Frame.io file the next attempt deletes.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { isPostflowError } from '../../src/errors.ts';
import { createFrameioClient } from '../../src/frameio/client.ts';
import { createTokenProvider } from '../../src/frameio/ims.ts';
import { createRateLimiter } from '../../src/frameio/rate-limit.ts';
import { writeTokenFile } from '../../src/frameio/token-file.ts';
import { openSqliteStore } from '../../src/jobs/sqlite-store.ts';
import type { Job } from '../../src/jobs/store.ts';
import { createFileServer } from '../../src/server/public-server.ts';
import { planParts, putParts, s3ErrorText, UrlsRefused, type PartSlice } from '../../src/upload/direct.ts';
import { ERR_UPLOAD_PART_FAILED, ERR_UPLOAD_PARTS_MISMATCH } from '../../src/upload/errors.ts';
import type { FolderUploadSetting } from '../../src/upload/path-choice.ts';
import type { TunnelView } from '../../src/upload/ports.ts';
import { createJobRunner, type UploadSettings } from '../../src/upload/run-job.ts';
import { startEmulator, type Emulator, type LedgerEntry } from '../doubles/frameio/emulator.ts';

type Line = Record<string, unknown> & { event?: string; msg?: string };

async function tempDir(t: { after: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pf-direct-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('planParts cuts the file in order by the returned sizes and refuses sizes that do not add up', () => {
  const parts = planParts([{ size: 5, url: 'http://s/1' }, { size: 5, url: 'http://s/2' }, { size: 2, url: 'http://s/3' }], 12);
  assert.deepEqual(parts.map((p) => [p.number, p.offset, p.size]), [[1, 0, 5], [2, 5, 5], [3, 10, 2]]);
  assert.throws(() => planParts([{ size: 5, url: 'http://s/1' }], 12), (e) => isPostflowError(e, ERR_UPLOAD_PARTS_MISMATCH) && /adding up to 5 bytes, expected 12/.test(e.message));
  assert.throws(() => planParts([], 0), (e) => isPostflowError(e, ERR_UPLOAD_PARTS_MISMATCH));
});

test('s3ErrorText reads the code and message of an S3 XML error', () => {
  assert.equal(s3ErrorText('<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>'), 'AccessDenied: Request has expired');
  assert.equal(s3ErrorText('upstream broke'), 'upstream broke');
});

/** A storage double that records every PUT; `answer` decides the status per (part, try). */
async function storage(t: { after: (fn: () => unknown) => void }, answer: (part: number, tryNo: number) => number = () => 200) {
  const got = new Map<number, Buffer>();
  const tries = new Map<number, number>();
  const headers: IncomingMessage['headers'][] = [];
  let inFlight = 0;
  let peak = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const part = Number(/part-(\d+)/.exec(req.url ?? '')?.[1]);
    const tryNo = (tries.get(part) ?? 0) + 1;
    tries.set(part, tryNo);
    headers.push(req.headers);
    inFlight++;
    peak = Math.max(peak, inFlight);
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => {
      // Hold each answer a moment so parallel parts overlap measurably.
      setTimeout(() => {
        inFlight--;
        const status = answer(part, tryNo);
        if (status === 200) got.set(part, Buffer.concat(chunks));
        res.writeHead(status, { 'content-type': 'application/xml' });
        res.end(status === 200 ? '' : `<Error><Code>${status === 403 ? 'AccessDenied' : 'InternalError'}</Code><Message>${status === 403 ? 'Request has expired' : 'try again'}</Message></Error>`);
      }, 30);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((r) => server.close(r)));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, got, tries, headers, peak: () => peak };
}

async function fileOf(t: { after: (fn: () => unknown) => void }, bytes: number): Promise<{ path: string; data: Buffer }> {
  const dir = await tempDir(t);
  const data = randomBytes(bytes);
  const path = join(dir, 'clip.mov');
  await writeFile(path, data);
  return { path, data };
}

function slices(url: string, sizes: number[]): PartSlice[] {
  let offset = 0;
  return sizes.map((size, i) => {
    const p = { number: i + 1, offset, size, url: `${url}/bucket/part-${i + 1}?X-Amz-Signature=x` };
    offset += size;
    return p;
  });
}

test('putParts sends each slice with the media type and x-amz-acl, at most `concurrency` at once, and counts the bytes', async (t) => {
  const s = await storage(t);
  const { path, data } = await fileOf(t, 700_001);
  const parts = slices(s.url, [100_000, 100_000, 100_000, 100_000, 100_000, 100_000, 100_001]);
  let sent = 0;
  await putParts({ path, parts, contentType: 'video/quicktime', concurrency: 3, idleTimeoutMs: 5000, signal: new AbortController().signal, onBytes: (n) => (sent += n) });
  for (const p of parts) assert.ok(s.got.get(p.number)!.equals(data.subarray(p.offset, p.offset + p.size)), `part ${p.number} carries its slice`);
  assert.equal(sent, data.length);
  assert.equal(s.peak(), 3, 'three parts overlapped, never more');
  for (const h of s.headers) {
    assert.equal(h['content-type'], 'video/quicktime');
    assert.equal(h['x-amz-acl'], 'private');
  }
});

test('a failed part is retried after the configured waits, its bytes counted once', async (t) => {
  const s = await storage(t, (part, tryNo) => (part === 2 && tryNo <= 2 ? 500 : 200));
  const { path, data } = await fileOf(t, 3000);
  const parts = slices(s.url, [1000, 1000, 1000]);
  let sent = 0;
  const started = Date.now();
  await putParts({ path, parts, contentType: 'application/octet-stream', retryDelaysMs: [100, 200, 400], idleTimeoutMs: 5000, signal: new AbortController().signal, onBytes: (n) => (sent += n) });
  assert.equal(s.tries.get(2), 3);
  assert.ok(Date.now() - started >= 300, 'waited 100 ms then 200 ms');
  assert.ok(s.got.get(2)!.equals(data.subarray(1000, 2000)));
  assert.equal(sent, data.length, 'the failed tries are taken back from the count');
});

test('a part that keeps failing ends the attempt with PF_ERR_UPLOAD_PART_FAILED after 1 + retries tries', async (t) => {
  const s = await storage(t, (part) => (part === 1 ? 500 : 200));
  const { path } = await fileOf(t, 2000);
  await assert.rejects(
    putParts({ path, parts: slices(s.url, [1000, 1000]), contentType: 'video/mp4', retryDelaysMs: [10, 20, 40], idleTimeoutMs: 5000, signal: new AbortController().signal }),
    (e) => isPostflowError(e, ERR_UPLOAD_PART_FAILED) && /part 1 of 2 could not be uploaded in 4 tries \(last: storage answered 500 \(InternalError: try again\)\)/.test(e.message),
  );
  assert.equal(s.tries.get(1), 4);
});

test('a refused URL (403) is not retried: UrlsRefused at once', async (t) => {
  const s = await storage(t, (part) => (part === 2 ? 403 : 200));
  const { path } = await fileOf(t, 2000);
  await assert.rejects(
    putParts({ path, parts: slices(s.url, [1000, 1000]), contentType: 'video/mp4', concurrency: 1, retryDelaysMs: [10, 20, 40], idleTimeoutMs: 5000, signal: new AbortController().signal }),
    (e) => e instanceof UrlsRefused && e.part === 2 && e.status === 403 && e.message === 'AccessDenied: Request has expired',
  );
  assert.equal(s.tries.get(2), 1);
});

/** A tunnel that is ready or not as the test says; the direct path never needs it. */
class TunnelSwitch extends EventEmitter implements TunnelView {
  ready: boolean;
  constructor(ready: boolean) {
    super();
    this.ready = ready;
  }
  state() {
    return { status: this.ready ? 'ready' : 'down' };
  }
  waitReady(signal?: AbortSignal): Promise<string> {
    if (this.ready) return Promise.resolve('http://127.0.0.1:9');
    return new Promise((resolve, reject) => {
      const onReady = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve('http://127.0.0.1:9');
      };
      const onAbort = () => {
        this.off('ready', onReady);
        reject(signal!.reason);
      };
      this.once('ready', onReady);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

async function rig(t: { after: (fn: () => unknown) => void }, o: { setting?: FolderUploadSetting; tunnelReady?: boolean; settings?: Partial<UploadSettings>; store?: 'disk' | 'hash' } = {}) {
  const lines: Line[] = [];
  const waiters = new Set<() => void>();
  const logger = pino({ level: 'debug' }, {
    write(s: string) {
      lines.push(JSON.parse(s) as Line);
      for (const w of waiters) w();
    },
  });
  const emu = await startEmulator({ localUploadStore: o.store ?? 'hash' });
  t.after(() => emu.close());
  const dir = await tempDir(t);
  const tokenFile = join(dir, 'refresh-token');
  await writeTokenFile(tokenFile, { refresh_token: emu.issueRefreshToken() });
  const quiet = pino({ level: 'silent' });
  const tokens = createTokenProvider({ imsTokenUrl: emu.imsTokenUrl, clientId: emu.clientId, clientSecret: emu.clientSecret, refreshTokenFile: tokenFile, logger: quiet });
  t.after(() => tokens.close());
  const frameio = createFrameioClient({ apiUrl: emu.apiUrl, accountId: emu.accountId, clientId: emu.clientId, tokens, limiter: createRateLimiter({ maxRequestsPerSecond: 100 }), logger: quiet, retryBaseMs: 50 });
  const server = createFileServer({ host: '127.0.0.1', port: 0, logger: quiet });
  await server.listen();
  t.after(() => server.close());
  const tunnel = new TunnelSwitch(o.tunnelReady ?? true);
  const store = await openSqliteStore({ path: join(dir, 'jobs.db') });
  t.after(() => store.close());
  const progress: number[] = [];
  const runner = createJobRunner({
    store,
    server,
    tunnel,
    frameio,
    auth: { isLost: () => false, waitRestored: async () => undefined },
    logger,
    settings: { maxAttempts: 3, stallTimeoutMs: 5_000, statusPollMs: 200, retryBaseMs: 100, retryMaxMs: 1_000, directRetryDelaysMs: [50, 100, 200], ...o.settings },
    uploadSetting: () => o.setting ?? 'direct',
    onProgress: (_job, p) => progress.push(p.covered),
  });
  return {
    emu,
    lines,
    store,
    frameio,
    progress,
    runner,
    async queue(name: string, bytes: number): Promise<{ job: Job; sha256: string }> {
      const path = join(dir, name);
      const data = randomBytes(bytes);
      await writeFile(path, data);
      const st = await stat(path);
      const job = await store.discover({ folderIndex: 0, root: dir, path, relPath: name, name, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, destination: emu.rootFolderId });
      await store.transition(job.id, 'discovered', 'stable');
      await store.transition(job.id, 'stable', 'queued');
      return { job: (await store.get(job.id))!, sha256: createHash('sha256').update(data).digest('hex') };
    },
    async runToEnd(id: string): Promise<Job> {
      for (;;) {
        const job = (await store.get(id))!;
        if (job.state !== 'queued') return job;
        await runner(job, new AbortController().signal);
      }
    },
    waitLine(pred: (l: Line) => boolean, what: string, timeoutMs = 20_000): Promise<Line> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find(pred);
          if (!hit) return;
          done();
          resolve(hit);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${what}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

const named = (emu: Emulator, name: string): LedgerEntry[] => emu.ledger().filter((e) => e.name === name);

test('a folder set to "direct": the file goes as a local_upload in parts, done after /status, the bytes Frame.io assembled are the file', async (t) => {
  const r = await rig(t, { setting: 'direct' });
  const { job, sha256 } = await r.queue('reel.mov', 25_000_000); // three parts at the emulator's split
  const end = await r.runToEnd(job.id);
  assert.equal(end.state, 'done', String(end.lastError));
  assert.equal(end.attempts, 1);
  const entries = named(r.emu, 'reel.mov');
  assert.deepEqual(entries.map((e) => [e.kind, e.status]), [['local_upload', 'complete']]);
  assert.equal(entries[0]!.sha256, sha256);
  assert.equal(entries[0]!.requests.filter((q) => q.method === 'PUT' && q.status === 200).length, 3);
  assert.equal(end.frameioFileId, entries[0]!.fileId);
  assert.ok(end.viewUrl, 'the view URL is stored');
  const path = r.lines.find((l) => l.event === 'path')!;
  assert.equal(path.reason, 'folder-direct');
  assert.ok(r.lines.some((l) => l.event === 'progress' && l.percent === 100 && /^100% 23\.8 MiB of 23\.8 MiB at /.test(String(l.msg))), 'the same progress line as the remote path');
  assert.equal(r.progress.at(-1), 25_000_000, 'progress reported up to the whole file');
  assert.ok(r.lines.some((l) => l.event === 'done'));
});

test('a file over the remote-upload cap goes direct even in a folder set to "remote"', async (t) => {
  const r = await rig(t, { setting: 'remote', settings: { remoteUploadLimit: 1_000_000 } });
  const { job, sha256 } = await r.queue('big.mxf', 1_000_001);
  const end = await r.runToEnd(job.id);
  assert.equal(end.state, 'done', String(end.lastError));
  assert.equal(r.lines.find((l) => l.event === 'path')!.reason, 'over-remote-limit');
  assert.equal(named(r.emu, 'big.mxf')[0]!.sha256, sha256);
  assert.equal(r.emu.ledger().filter((e) => e.kind === 'remote_upload').length, 0, 'remote_upload never asked');
});

test('"auto" with the tunnel down past directAfterTunnelDownMs: the waiting job switches to the direct path', async (t) => {
  const r = await rig(t, { setting: 'auto', tunnelReady: false, settings: { directAfterTunnelDownMs: 400 } });
  const { job, sha256 } = await r.queue('night.mov', 300_000);
  const end = await r.runToEnd(job.id);
  assert.equal(end.state, 'done', String(end.lastError));
  assert.ok(r.lines.some((l) => l.event === 'exposing'), 'it first waited for the tunnel on the remote path');
  assert.equal(r.lines.find((l) => l.event === 'path')!.reason, 'tunnel-down');
  assert.equal(named(r.emu, 'night.mov')[0]!.sha256, sha256);
});

test('expired part URLs (403): the file is deleted and the upload starts over with a fresh one, same attempt', async (t) => {
  const r = await rig(t);
  r.emu.setFaults({ expireUploadUrlsNext: 1 });
  const { job, sha256 } = await r.queue('late.mov', 12_000_000);
  const end = await r.runToEnd(job.id);
  assert.equal(end.state, 'done', String(end.lastError));
  assert.equal(end.attempts, 1);
  const entries = named(r.emu, 'late.mov');
  assert.deepEqual(entries.map((e) => e.status), ['deleted', 'complete']);
  assert.equal(entries[1]!.sha256, sha256);
  assert.ok(entries[0]!.requests.some((q) => q.status === 403), 'storage refused the first file\'s URLs');
  const fresh = r.lines.find((l) => l.event === 'fresh-file')!;
  assert.equal(fresh.frameioFileId, entries[0]!.fileId);
  assert.equal(end.frameioFileId, entries[1]!.fileId);
});

test('URLs refused for every fresh file: the attempt fails with the reason and leaves no file behind', async (t) => {
  const r = await rig(t, { settings: { maxAttempts: 1 } });
  r.emu.setFaults({ expireUploadUrlsNext: 100 });
  const { job } = await r.queue('never.mov', 100_000);
  const end = await r.runToEnd(job.id);
  assert.equal(end.state, 'failed');
  assert.match(String(end.lastError), /PF_ERR_UPLOAD_URLS_REFUSED: storage refused part 1 with 403 \(AccessDenied: Request has expired\) after 3 fresh file/);
  const entries = named(r.emu, 'never.mov');
  assert.equal(entries.length, 4, 'the first file and three fresh ones');
  assert.ok(entries.every((e) => e.status === 'deleted'), JSON.stringify(entries.map((e) => e.status)));
});

test('failing part PUTs (500) are retried within the attempt and the upload completes', async (t) => {
  const r = await rig(t);
  r.emu.setFaults({ failUploadPartsNext: 2 });
  const { job, sha256 } = await r.queue('flaky.mov', 12_000_000);
  const end = await r.runToEnd(job.id);
  assert.equal(end.state, 'done', String(end.lastError));
  assert.equal(end.attempts, 1);
  assert.equal(r.lines.filter((l) => l.event === 'part-retry').length, 2);
  assert.equal(named(r.emu, 'flaky.mov')[0]!.sha256, sha256);
});

test('interrupted half way (shutdown): the next attempt deletes the half-uploaded file and uploads once', async (t) => {
  // Disk mode: part 2 is stored while part 1 waits out a long retry, so the file is really half there.
  const r = await rig(t, { store: 'disk', settings: { directConcurrency: 2, directRetryDelaysMs: [60_000] } });
  r.emu.setFaults({ failUploadPartsNext: 1 });
  const { job, sha256 } = await r.queue('cut.mov', 12_000_000);
  const ac = new AbortController();
  const first = r.runner((await r.store.get(job.id))!, ac.signal);
  await r.waitLine((l) => l.event === 'part-retry', 'part 1 to fail once');
  const half = await waitFor(() => named(r.emu, 'cut.mov').find((e) => e.bytesReceived > 0), 'another part stored');
  ac.abort('shutdown');
  await first;
  const mid = (await r.store.get(job.id))!;
  assert.equal(mid.state, 'queued');
  assert.equal(mid.frameioFileId, half.fileId, 'the half-uploaded file is on record');
  const end = await r.runToEnd(job.id);
  assert.equal(end.state, 'done', String(end.lastError));
  const entries = named(r.emu, 'cut.mov');
  assert.deepEqual(entries.map((e) => e.status), ['deleted', 'complete']);
  assert.equal(entries[1]!.sha256, sha256);
});

test('crash between local_upload sent and its answer stored: the next attempt finds the stray file by name and deletes it', async (t) => {
  const r = await rig(t);
  const { job, sha256 } = await r.queue('window.mov', 200_000);
  // What a crash in that window leaves: importRequestedAt on record, a file at Frame.io, no id stored.
  await r.store.transition(job.id, 'queued', 'exposing');
  await r.store.transition(job.id, 'exposing', 'importing', { importRequestedAt: Date.now() });
  const stray = await r.frameio.localUpload(r.emu.rootFolderId, 'window.mov', 200_000);
  await r.store.transition(job.id, 'importing', 'queued', { attempts: 0 });
  const end = await r.runToEnd(job.id);
  assert.equal(end.state, 'done', String(end.lastError));
  const entries = named(r.emu, 'window.mov');
  assert.equal(entries.find((e) => e.fileId === stray.file.id)!.status, 'deleted');
  assert.deepEqual(entries.filter((e) => e.status === 'complete').map((e) => e.sha256), [sha256]);
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
