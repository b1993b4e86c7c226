import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { getEventListeners, once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import pino from 'pino';
import { createFrameioClient, type CallRecord, type FrameioClientOptions } from '../../src/frameio/client.ts';
import { createTokenProvider } from '../../src/frameio/ims.ts';
import { nextPageUrl } from '../../src/frameio/parse.ts';
import { createRateLimiter } from '../../src/frameio/rate-limit.ts';
import { writeTokenFile } from '../../src/frameio/token-file.ts';
import { startEmulator, type Emulator } from '../doubles/frameio/emulator.ts';

const logger = pino({ level: 'silent' });

interface Ctx {
  after: (fn: () => Promise<void> | void) => void;
}

async function setup(t: Ctx, extra: Partial<FrameioClientOptions> = {}, limiterOpts: { maxRequestsPerSecond?: number } = {}) {
  const emu = await startEmulator({ allowLoopbackSources: true });
  t.after(() => emu.close());
  const dir = await mkdtemp(join(tmpdir(), 'pf-client-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'refresh-token');
  await writeTokenFile(file, { refresh_token: emu.issueRefreshToken() });
  const tokens = createTokenProvider({ imsTokenUrl: emu.imsTokenUrl, clientId: emu.clientId, clientSecret: emu.clientSecret, refreshTokenFile: file, logger });
  t.after(() => tokens.close());
  const records: CallRecord[] = [];
  const client = createFrameioClient({
    apiUrl: emu.apiUrl,
    accountId: emu.accountId,
    clientId: emu.clientId,
    tokens,
    limiter: createRateLimiter({ maxRequestsPerSecond: limiterOpts.maxRequestsPerSecond ?? 50 }),
    logger,
    retryBaseMs: 50,
    onCall: (c) => records.push(c),
    ...extra,
  });
  return { emu, client, tokens, records };
}

const v4Calls = (emu: Emulator) => emu.calls().filter((c) => c.path.startsWith('/v4/'));

test('navigation: me, accounts (account id looked up when not configured), destinations', async (t) => {
  const { emu, client } = await setup(t, { accountId: '' });
  assert.equal(typeof (await client.me()).email, 'string');
  const accounts = await client.listAccounts();
  assert.deepEqual(accounts.map((a) => a.id), [emu.accountId]);
  assert.equal(await client.accountId(), emu.accountId);

  const fromProject = await client.resolveDestination(emu.projectId);
  assert.equal(fromProject.id, emu.rootFolderId, 'a project id means its root folder');
  assert.equal(fromProject.type, 'folder');
  assert.equal((await client.resolveDestination(emu.rootFolderId)).id, emu.rootFolderId);
  const project = await client.getProject(emu.projectId);
  assert.equal(project.root_folder_id, emu.rootFolderId);

  const ghost = randomUUID();
  await assert.rejects(client.resolveDestination(ghost), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'PF_ERR_FRAMEIO_DESTINATION_NOT_FOUND');
    assert.match(err.message, new RegExp(ghost));
    return true;
  });
  await assert.rejects(client.getFolder(ghost), { code: 'PF_ERR_FRAMEIO_NOT_FOUND', status: 404 });
});

test('listChildren follows every links.next and re-appends page_size and type', async (t) => {
  const { emu, client } = await setup(t);
  const made: string[] = [];
  for (let i = 0; i < 5; i++) made.push((await client.createFolder(emu.rootFolderId, `reel ${i}`)).id);
  await client.localUpload(emu.rootFolderId, 'a.mov', 10);
  await client.localUpload(emu.rootFolderId, 'b.mov', 10);

  const folders: string[] = [];
  for await (const a of client.listChildren(emu.rootFolderId, { type: 'folder', pageSize: 2 })) folders.push(a.id);
  assert.deepEqual(folders.sort(), made.sort());
  const pages = v4Calls(emu).filter((c) => c.operation === 'folders.index');
  assert.equal(pages.length, 3, '5 folders at 2 a page');
  for (const p of pages) {
    assert.match(p.path, /page_size=2/);
    assert.match(p.path, /type=folder/);
  }
  assert.match(pages[1]!.path, /after=/);

  const all: string[] = [];
  for await (const a of client.listChildren(emu.rootFolderId, { pageSize: 3 })) all.push(a.type);
  assert.equal(all.length, 7);
  assert.equal(all.filter((x) => x === 'file').length, 2);
});

test('nextPageUrl keeps a base prefix before /v4 and never duplicates a parameter', () => {
  assert.equal(
    nextPageUrl('http://h:1/v4', '/v4/accounts/a/folders/f/children?after=X', { page_size: '2', type: undefined }),
    'http://h:1/v4/accounts/a/folders/f/children?after=X&page_size=2',
  );
  assert.equal(
    nextPageUrl('http://h/proxy/v4/', '/v4/x?after=Y&page_size=9', { page_size: '2' }),
    'http://h/proxy/v4/x?after=Y&page_size=9',
  );
});

test('API errors carry the API detail and status; delete of a missing file is fine', async (t) => {
  const { emu, client } = await setup(t);
  await assert.rejects(client.createFolder(emu.rootFolderId, ''), (err: Error & { code?: string; status?: number; retryable?: boolean }) => {
    assert.equal(err.code, 'PF_ERR_FRAMEIO_API');
    assert.equal(err.status, 422);
    assert.equal(err.retryable, false);
    assert.match(err.message, /folders\.create/);
    assert.match(err.message, /name/i, 'the API detail is in the message');
    return true;
  });
  const { file } = await client.localUpload(emu.rootFolderId, 'gone.mov', 5);
  await client.deleteFile(file.id);
  await client.deleteFile(file.id); // 404: already gone
  await assert.rejects(client.getFile(file.id), { code: 'PF_ERR_FRAMEIO_NOT_FOUND' });
});

test('401 with a revoked access token: invalidated, refreshed once, call succeeds', async (t) => {
  const { emu, client } = await setup(t);
  await client.getFolder(emu.rootFolderId);
  emu.setFaults({ revokeAccessTokens: true });
  const folder = await client.getFolder(emu.rootFolderId);
  assert.equal(folder.id, emu.rootFolderId);
  const shows = v4Calls(emu).filter((c) => c.operation === 'folders.show').map((c) => c.status);
  assert.deepEqual(shows, [200, 401, 200]);
  assert.equal(emu.calls().filter((c) => c.operation === 'ims.token').length, 2);
  // Without x-api-key acceptance even a fresh token is refused: the second 401 surfaces.
  const wrongKey = createFrameioClient({
    apiUrl: emu.apiUrl,
    accountId: emu.accountId,
    clientId: 'someone-else',
    tokens: { getAccessToken: async () => emu.issueAccessToken(), invalidate: () => {} },
    limiter: createRateLimiter({ maxRequestsPerSecond: 50 }),
    logger,
  });
  await assert.rejects(wrongKey.getFolder(emu.rootFolderId), { code: 'PF_ERR_FRAMEIO_UNAUTHORIZED', status: 401 });
});

test('remote upload → status → file, version stack and move', async (t) => {
  const { emu, client } = await setup(t);
  const payload = randomBytes(300_000);
  const source = createServer((req, res) => {
    const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Number(range[2]) : payload.length - 1;
    res.writeHead(range ? 206 : 200, {
      'content-length': String(end - start + 1),
      'accept-ranges': 'bytes',
      'content-type': 'video/quicktime',
      ...(range ? { 'content-range': `bytes ${start}-${end}/${payload.length}` } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : payload.subarray(start, end + 1));
  });
  source.listen(0, '127.0.0.1');
  await once(source, 'listening');
  t.after(() => {
    source.closeAllConnections();
    source.close();
  });
  const url = `http://127.0.0.1:${(source.address() as AddressInfo).port}/tok/clip.mov`;
  const { file, statusPath } = await client.remoteUpload(emu.rootFolderId, 'clip.mov', url);
  assert.equal(file.name, 'clip.mov');
  assert.equal(statusPath, `/v4/accounts/${emu.accountId}/files/${file.id}/status`);
  let status = await client.fileStatus(file.id);
  for (let i = 0; i < 100 && !status.upload_complete && !status.upload_failed; i++) {
    await delay(50);
    status = await client.fileStatus(file.id);
  }
  assert.equal(status.upload_complete, true);
  const shown = await client.getFile(file.id);
  assert.equal(shown.file_size, payload.length);
  assert.match(shown.view_url, /^https?:\/\//);
  const entry = emu.ledger().find((e) => e.fileId === file.id);
  assert.equal(entry?.sha256, createHash('sha256').update(payload).digest('hex'));

  const local = await client.localUpload(emu.rootFolderId, 'clip.mov', payload.length);
  assert.ok(local.uploadUrls.length >= 1);
  assert.equal(local.uploadUrls.reduce((n, u) => n + u.size, 0), payload.length);
  const stack = await client.createVersionStack(emu.rootFolderId, [file.id, local.file.id]);
  assert.equal(stack.type, 'version_stack');
  assert.equal(stack.head_version.id, local.file.id, 'the last id is the newest version');
  const third = await client.localUpload(emu.rootFolderId, 'clip.mov', 10);
  const moved = await client.moveFile(third.file.id, stack.id);
  assert.equal(moved.parent_id, stack.id);
});

test('429 every 5th and 503 every 7th: 30 calls all succeed, Retry-After honoured, global cap never exceeded', async (t) => {
  const tag = new AsyncLocalStorage<number>();
  const attempts = new Map<number, { startedAt: number; endedAt: number; status: number; retryAfter: string | null }[]>();
  const taggedFetch: typeof fetch = async (input, init) => {
    const id = tag.getStore() ?? -1;
    const startedAt = Date.now();
    const res = await fetch(input, init);
    const list = attempts.get(id) ?? [];
    list.push({ startedAt, endedAt: Date.now(), status: res.status, retryAfter: res.headers.get('retry-after') });
    attempts.set(id, list);
    return res;
  };
  const cap = 20;
  const { emu, client, records } = await setup(t, { fetch: taggedFetch }, { maxRequestsPerSecond: cap });
  const files: string[] = [];
  for (let i = 0; i < 3; i++) files.push((await client.localUpload(emu.rootFolderId, `f${i}.mov`, 10)).file.id);
  emu.setFaults({ status429EveryN: 5, status503EveryN: 7, retryAfterSeconds: 1 });
  const started = Date.now();
  const jobs = Array.from({ length: 30 }, (_, i) =>
    tag.run(i, () => {
      const id = files[i % 3]!;
      // Five operations: a 429 blocks its own operation for Retry-After, the others go on.
      if (i % 5 === 0) return client.getFile(id).then((f) => f.id);
      if (i % 5 === 1) return client.fileStatus(id).then((s) => s.id);
      if (i % 5 === 2) return client.getProject(emu.projectId).then((p) => p.id);
      if (i % 5 === 3) return client.me().then((m) => m.id);
      return client.getFolder(emu.rootFolderId).then((f) => f.id);
    }),
  );
  const results = await Promise.allSettled(jobs);
  const elapsed = Date.now() - started;
  assert.deepEqual(results.filter((r) => r.status === 'rejected'), []);

  const faulted = v4Calls(emu).filter((c) => c.at >= started && (c.status === 429 || c.status === 503));
  assert.ok(faulted.filter((c) => c.status === 429).length >= 6, 'the emulator did answer 429s');
  assert.ok(faulted.filter((c) => c.status === 503).length >= 3, 'the emulator did answer 503s');

  // Retry-After: every retry of a logical call starts at least 1 s after the 429/503 it answers.
  let measured = 0;
  for (const list of attempts.values()) {
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      if (prev.status !== 429 && prev.status !== 503) continue;
      assert.equal(prev.retryAfter, '1');
      const gap = list[i]!.startedAt - prev.endedAt;
      assert.ok(gap >= 995, `retry ${gap} ms after a ${prev.status} with Retry-After: 1`);
      measured++;
    }
  }
  assert.ok(measured >= 9, `measured ${measured} retries`);

  // The global cap on the sends: no cap+1 calls inside any one-second window. (Not on the emulator's
  // arrival stamps: one pause of this process between a send and its arrival bunches them.)
  const at = [...attempts.values()].flat().map((a) => a.startedAt).sort((a, b) => a - b);
  assert.equal(at.length, v4Calls(emu).length, 'every call the emulator saw went through the recording fetch');
  for (let i = 0; i + cap < at.length; i++) {
    assert.ok(at[i + cap]! - at[i]! >= 1000, `${cap + 1} calls within ${at[i + cap]! - at[i]!} ms`);
  }
  assert.ok(elapsed < 15_000, `took ${elapsed} ms`);
  // Metrics hook saw every exchange, faults included.
  assert.ok(records.some((r) => r.status === 429 && r.attempt === 0));
  assert.ok(records.some((r) => r.status === 200 && r.attempt > 0));
});

test('a create is not blindly retried after a 5xx; a read is, up to maxRetries; a 429 on a create is retried', async (t) => {
  const { emu, client } = await setup(t, { maxRetries: 2 });
  emu.setFaults({ status503EveryN: 1, retryAfterSeconds: 0 });
  await assert.rejects(client.remoteUpload(emu.rootFolderId, 'x.mov', 'https://example.invalid/x.mov'), (err: Error & { code?: string; retryable?: boolean; status?: number }) => {
    assert.equal(err.code, 'PF_ERR_FRAMEIO_CREATE_UNCERTAIN');
    assert.equal(err.retryable, true);
    assert.equal(err.status, 503);
    assert.match(err.message, /look before creating/);
    return true;
  });
  assert.equal(v4Calls(emu).filter((c) => c.operation === 'files.create_remote_upload').length, 1);
  await assert.rejects(client.getFolder(emu.rootFolderId), { code: 'PF_ERR_FRAMEIO_API', status: 503, retryable: true });
  assert.equal(v4Calls(emu).filter((c) => c.operation === 'folders.show').length, 3, 'first try + 2 retries');

  emu.setFaults({ status503EveryN: 0, status429EveryN: 2 });
  const a = await client.createFolder(emu.rootFolderId, 'one');
  const b = await client.createFolder(emu.rootFolderId, 'two');
  assert.notEqual(a.id, b.id);
  const creates = v4Calls(emu).filter((c) => c.operation === 'folders.create').map((c) => c.status);
  assert.ok(creates.includes(429));
  assert.equal(creates.filter((s) => s === 201).length, 2);
});

test('network faults and malformed answers (a fake network)', async (t) => {
  let mode: 'reset' | 'refused' | 'html' | 'shape' = 'reset';
  let sent = 0;
  const fakeFetch: typeof fetch = async () => {
    sent++;
    if (mode === 'reset') throw new TypeError('fetch failed', { cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) });
    if (mode === 'refused') {
      if (sent === 1) throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) });
      return new Response(JSON.stringify({ data: { id: 'f1', name: 'n', type: 'folder' } }), { status: 201 });
    }
    if (mode === 'html') return new Response('<html>gateway</html>', { status: 200 });
    return new Response(JSON.stringify({ data: { name: 'no id' } }), { status: 200 });
  };
  const client = createFrameioClient({
    apiUrl: 'http://frameio.invalid/v4',
    accountId: 'acc',
    clientId: 'c',
    tokens: { getAccessToken: async () => 'at', invalidate: () => {} },
    limiter: createRateLimiter({ maxRequestsPerSecond: 100 }),
    logger,
    maxRetries: 2,
    fetch: fakeFetch,
    sleep: async () => {},
  });
  await assert.rejects(client.getFile('x'), (err: Error & { code?: string; retryable?: boolean }) => {
    assert.equal(err.code, 'PF_ERR_FRAMEIO_NETWORK');
    assert.equal(err.retryable, true);
    assert.match(err.message, /socket hang up|ECONNRESET/);
    return true;
  });
  assert.equal(sent, 3);
  sent = 0;
  await assert.rejects(client.createFolder('p', 'n'), { code: 'PF_ERR_FRAMEIO_CREATE_UNCERTAIN' });
  assert.equal(sent, 1, 'a create whose connection dropped is not re-sent');
  sent = 0;
  mode = 'refused';
  assert.equal((await client.createFolder('p', 'n')).id, 'f1', 'nothing was sent on a refused connection: safe to resend');
  assert.equal(sent, 2);
  mode = 'html';
  await assert.rejects(client.getFile('x'), { code: 'PF_ERR_FRAMEIO_BAD_RESPONSE' });
  mode = 'shape';
  await assert.rejects(client.getFile('x'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'PF_ERR_FRAMEIO_BAD_RESPONSE');
    assert.match(err.message, /file\.id/);
    return true;
  });
});

test('request timeout, caller abort, and no listener left on the caller signal (a server that never answers)', async (t) => {
  let held = 0;
  const server = createServer((req, res) => {
    if (req.url?.includes('/files/slow')) {
      held++;
      return; // never answers
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: { id: 'quick', name: 'q.mov', type: 'file' } }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  const client = createFrameioClient({
    apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v4`,
    accountId: 'acc',
    clientId: 'c',
    tokens: { getAccessToken: async () => 'at', invalidate: () => {} },
    limiter: createRateLimiter({ maxRequestsPerSecond: 100 }),
    logger,
    maxRetries: 1,
    requestTimeoutMs: 150,
    sleep: async () => {},
  });

  const started = Date.now();
  await assert.rejects(client.getFile('slow'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'PF_ERR_FRAMEIO_NETWORK');
    assert.match(err.message, /timeout/);
    return true;
  });
  assert.equal(held, 2, 'a timed-out read is retried once (maxRetries 1)');
  assert.ok(Date.now() - started < 5_000);

  // The job's signal lives for the whole job: each call must take its listener off it when it ends.
  const job = new AbortController();
  for (let i = 0; i < 5; i++) assert.equal((await client.getFile('quick', job.signal)).id, 'quick');
  assert.equal(getEventListeners(job.signal, 'abort').length, 0);

  const pending = client.getFile('slow', job.signal);
  await delay(50);
  job.abort(new Error('job cancelled'));
  await assert.rejects(pending, /job cancelled/);
  assert.equal(getEventListeners(job.signal, 'abort').length, 0);
});
