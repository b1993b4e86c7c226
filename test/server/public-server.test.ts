import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { renameSync, symlinkSync, unlinkSync, writeFileSync, appendFileSync, utimesSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { isPostflowError } from '../../src/errors.ts';
import { ERR_SERVER_LISTEN, ERR_SERVER_NOT_A_FILE } from '../../src/server/errors.ts';
import { createFileServer } from '../../src/server/public-server.ts';
import { pino } from 'pino';
import { rawRequest, sparseFile, startServer, tempDir } from './harness.ts';

const MiB = 1024 * 1024;

function writeRandom(path: string, size: number): Buffer {
  const data = randomBytes(size);
  writeFileSync(path, data);
  // An mtime in the past makes Last-Modified a strong validator for If-Range.
  utimesSync(path, new Date(Date.now() - 10_000), new Date(Date.now() - 10_000));
  return data;
}

test('full GET and HEAD: bytes, length, type, validators and safety headers', async (t) => {
  const s = await startServer(t);
  const data = writeRandom(join(s.dir, 'cut.mov'), 3 * MiB + 17);
  const e = await s.server.expose({ jobId: 'j1', path: join(s.dir, 'cut.mov'), name: 'cut "final" é.mov' });
  assert.equal(e.urlPath, `/${e.token}/${encodeURIComponent('cut "final" é.mov')}`);
  assert.equal(e.size, data.length);

  const res = await fetch(s.origin + e.urlPath);
  assert.equal(res.status, 200);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), data);
  assert.equal(res.headers.get('content-length'), String(data.length));
  assert.equal(res.headers.get('content-type'), 'video/quicktime');
  assert.equal(res.headers.get('accept-ranges'), 'bytes');
  assert.equal(res.headers.get('cache-control'), 'no-store, private');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('content-disposition'), `attachment; filename="cut _final_ _.mov"; filename*=UTF-8''cut%20%22final%22%20%C3%A9.mov`);
  assert.match(res.headers.get('etag') ?? '', /^"[A-Za-z0-9_-]+"$/);
  assert.ok(res.headers.get('last-modified'));
  assert.equal(res.headers.get('server'), null);
  assert.equal(res.headers.get('x-powered-by'), null);

  const head = await fetch(s.origin + e.urlPath, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(data.length));
  assert.equal((await head.arrayBuffer()).byteLength, 0);
  assert.equal(e.coverage.complete, true);
  assert.equal(e.bytesSent, data.length, 'HEAD sends no bytes');
});

test('every range form, 416 and If-Range', async (t) => {
  const s = await startServer(t);
  const data = writeRandom(join(s.dir, 'a.wav'), 100_000);
  const e = await s.server.expose({ jobId: 'j', path: join(s.dir, 'a.wav'), name: 'a.wav' });
  const url = s.origin + e.urlPath;
  const get = async (headers: Record<string, string>) => {
    const r = await fetch(url, { headers });
    return { status: r.status, body: Buffer.from(await r.arrayBuffer()), h: r.headers };
  };

  let r = await get({ range: 'bytes=10-19' });
  assert.equal(r.status, 206);
  assert.deepEqual(r.body, data.subarray(10, 20));
  assert.equal(r.h.get('content-range'), 'bytes 10-19/100000');
  assert.equal(r.h.get('content-length'), '10');
  assert.equal(r.h.get('cache-control'), 'no-store, private');

  r = await get({ range: 'bytes=99990-' });
  assert.deepEqual(r.body, data.subarray(99_990));
  assert.equal(r.h.get('content-range'), 'bytes 99990-99999/100000');

  r = await get({ range: 'bytes=-5' });
  assert.deepEqual(r.body, data.subarray(99_995));

  r = await get({ range: 'bytes=99000-500000' });
  assert.equal(r.status, 206);
  assert.equal(r.h.get('content-range'), 'bytes 99000-99999/100000');

  r = await get({ range: 'bytes=100000-' });
  assert.equal(r.status, 416);
  assert.equal(r.h.get('content-range'), 'bytes */100000');
  assert.equal(r.body.length, 0);

  r = await get({ range: 'bytes=0-1,5-9' });
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 100_000);

  r = await get({ range: 'bytes=oops' });
  assert.equal(r.status, 200);

  const etag = r.h.get('etag') as string;
  const lastModified = r.h.get('last-modified') as string;
  r = await get({ range: 'bytes=0-9', 'if-range': etag });
  assert.equal(r.status, 206);
  r = await get({ range: 'bytes=0-9', 'if-range': lastModified });
  assert.equal(r.status, 206);
  r = await get({ range: 'bytes=0-9', 'if-range': '"not-the-etag"' });
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 100_000);
});

test('parallel overlapping ranges: coverage is the union and complete is emitted once', async (t) => {
  const s = await startServer(t, { readChunkBytes: 256 * 1024 });
  const size = 8 * MiB + 3;
  const data = writeRandom(join(s.dir, 'p.mxf'), size);
  const e = await s.server.expose({ jobId: 'j', path: join(s.dir, 'p.mxf'), name: 'p.mxf' });
  let completes = 0;
  let progressEvents = 0;
  const requests: number[] = [];
  e.on('complete', () => completes++);
  e.on('progress', (p) => {
    progressEvents++;
    assert.ok(p.covered <= size);
  });
  e.on('request', (r) => requests.push(r.status));
  const part = Math.ceil(size / 4);
  const ranges: Array<[number, number]> = [];
  for (let i = 0; i < 4; i++) ranges.push([i * part, Math.min(size, (i + 1) * part + 100_000) - 1]); // overlaps
  ranges.push([0, part - 1]); // one piece pulled twice
  const bodies = await Promise.all(
    ranges.map(async ([a, b]) => {
      const r = await fetch(s.origin + e.urlPath, { headers: { range: `bytes=${a}-${b}` } });
      assert.equal(r.status, 206);
      return Buffer.from(await r.arrayBuffer());
    }),
  );
  bodies.forEach((b, i) => assert.deepEqual(b, data.subarray((ranges[i] as [number, number])[0], (ranges[i] as [number, number])[1] + 1)));
  assert.equal(e.coverage.covered, size);
  assert.deepEqual(e.coverage.ranges(), [[0, size]]);
  assert.equal(completes, 1);
  assert.ok(progressEvents >= 8);
  assert.deepEqual(requests, [206, 206, 206, 206, 206]);
  const expectedSent = ranges.reduce((n, [a, b]) => n + (b - a + 1), 0);
  assert.equal(e.bytesSent, expectedSent);
  assert.ok(e.lastServedAt !== undefined);
});

test('coverage counts bytes handed to the socket, not bytes requested', async (t) => {
  const s = await startServer(t, { readChunkBytes: 1 * MiB });
  const path = join(s.dir, 'big.mov');
  sparseFile(path, 512 * MiB);
  const e = await s.server.expose({ jobId: 'j', path, name: 'big.mov' });
  // A client that reads nothing: the kernel buffers fill and the server must stop counting there.
  const socket = (await import('node:net')).connect(s.port, '127.0.0.1');
  t.after(() => socket.destroy());
  socket.pause();
  socket.write(`GET ${e.urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(e.coverage.covered > 0, 'some bytes went out');
  assert.ok(e.coverage.covered < 64 * MiB, `counted ${e.coverage.covered} bytes though the client read none`);
  assert.equal(e.coverage.complete, false);
});

test('revoke: the URL answers an empty 404 at once and a pull in flight is cut', async (t) => {
  const s = await startServer(t, { readChunkBytes: 1 * MiB });
  const path = join(s.dir, 'r.mov');
  sparseFile(path, 8 * 1024 * MiB);
  const e = await s.server.expose({ jobId: 'j', path, name: 'r.mov' });
  assert.equal(s.server.activeCount(), 1);

  // The client reads as fast as it can; the file is far too big to finish before revoke comes.
  const inFlight = new Promise<{ bytes: number; error: boolean }>((resolve) => {
    http.get(s.origin + e.urlPath, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      res.on('error', () => undefined);
      res.on('close', () => resolve({ bytes, error: !res.complete }));
    });
  });
  await new Promise((r) => setTimeout(r, 200));
  const revokedAt = Date.now();
  let revokedEvents = 0;
  e.on('revoked', () => revokedEvents++);
  e.revoke();
  e.revoke();
  const after = await fetch(s.origin + e.urlPath);
  assert.equal(after.status, 404);
  assert.equal((await after.arrayBuffer()).byteLength, 0);
  const outcome = await inFlight;
  assert.ok(Date.now() - revokedAt < 1000, 'within a second');
  assert.equal(outcome.error, true, 'in-flight response destroyed');
  assert.ok(outcome.bytes > 0 && outcome.bytes < 8 * 1024 * MiB);
  assert.equal(revokedEvents, 1);
  assert.equal(s.server.activeCount(), 0);
});

test('tokens expire after the maximum lifetime even if nobody revokes them (injected clock)', async (t) => {
  let now = 1_000_000;
  const s = await startServer(t, { maxTokenLifetimeMs: 60_000, now: () => now });
  writeRandom(join(s.dir, 'x.mp4'), 1000);
  const e = await s.server.expose({ jobId: 'j', path: join(s.dir, 'x.mp4'), name: 'x.mp4' });
  const reasons: string[] = [];
  e.on('revoked', (r) => reasons.push(r.reason));
  assert.equal(e.expiresAt, 1_060_000);
  assert.equal((await fetch(s.origin + e.urlPath)).status, 200);
  now += 59_999;
  assert.equal((await fetch(s.origin + e.urlPath)).status, 200);
  now += 1;
  const r = await fetch(s.origin + e.urlPath);
  assert.equal(r.status, 404);
  assert.equal((await r.arrayBuffer()).byteLength, 0);
  assert.deepEqual(reasons, ['expired']);
  assert.equal(e.active, false);
  assert.equal(s.server.activeCount(), 0);
});

test('a file swapped, modified or replaced by a symlink after expose is not served', async (t) => {
  const s = await startServer(t);
  const changed: string[] = [];

  // Swapped: another file renamed into place (same name, new inode).
  const p1 = join(s.dir, 'swap.mov');
  writeRandom(p1, 5000);
  const e1 = await s.server.expose({ jobId: 'j1', path: p1, name: 'swap.mov' });
  e1.on('changed', (c) => changed.push(`swap:${c.reason}`));
  writeFileSync(join(s.dir, 'other'), 'SECRET-OTHER-CONTENT');
  renameSync(join(s.dir, 'other'), p1);
  let r = await fetch(s.origin + e1.urlPath);
  assert.equal(r.status, 404);
  assert.equal((await r.arrayBuffer()).byteLength, 0);

  // Modified in place: appended to.
  const p2 = join(s.dir, 'grow.mov');
  writeRandom(p2, 5000);
  const e2 = await s.server.expose({ jobId: 'j2', path: p2, name: 'grow.mov' });
  e2.on('changed', (c) => changed.push(`grow:${c.reason}`));
  appendFileSync(p2, 'more');
  assert.equal((await fetch(s.origin + e2.urlPath)).status, 404);

  // Symlinked: the path now points (via a link) at a file outside, even at the very same inode.
  const p3 = join(s.dir, 'link.mov');
  const real = join(s.dir, 'real.mov');
  writeRandom(p3, 5000);
  const e3 = await s.server.expose({ jobId: 'j3', path: p3, name: 'link.mov' });
  e3.on('changed', (c) => changed.push(`link:${c.reason}`));
  renameSync(p3, real);
  symlinkSync(real, p3);
  r = await fetch(s.origin + e3.urlPath);
  assert.equal(r.status, 404);
  assert.equal((await fetch(s.origin + e3.urlPath)).status, 404);

  // Deleted.
  const p4 = join(s.dir, 'gone.mov');
  writeRandom(p4, 10);
  const e4 = await s.server.expose({ jobId: 'j4', path: p4, name: 'gone.mov' });
  unlinkSync(p4);
  assert.equal((await fetch(s.origin + e4.urlPath)).status, 404);

  assert.deepEqual(changed, ['swap:replaced by another file', 'grow:size 5000 → 5004', 'link:ELOOP']);
});

test('expose refuses symlinks, directories and unsafe names', async (t) => {
  const s = await startServer(t);
  const real = join(s.dir, 'real.mov');
  writeFileSync(real, 'x');
  symlinkSync(real, join(s.dir, 'link.mov'));
  await assert.rejects(s.server.expose({ jobId: 'j', path: join(s.dir, 'link.mov'), name: 'link.mov' }), (err) => isPostflowError(err, ERR_SERVER_NOT_A_FILE));
  await assert.rejects(s.server.expose({ jobId: 'j', path: s.dir, name: 'dir' }), (err) => isPostflowError(err, ERR_SERVER_NOT_A_FILE));
  await assert.rejects(s.server.expose({ jobId: 'j', path: join(s.dir, 'missing'), name: 'm' }), (err) => isPostflowError(err, ERR_SERVER_NOT_A_FILE));
  for (const name of ['', 'a/b', '..', 'a\nb', 'a\u0000b']) {
    await assert.rejects(s.server.expose({ jobId: 'j', path: real, name }), { code: 'PF_ERR_SERVER_BAD_NAME' });
  }
  assert.equal(s.server.activeCount(), 0);
});

test('a sparse file past 4 GiB: HEAD length, a range near the end and one across 2^32', async (t) => {
  const s = await startServer(t);
  const path = join(s.dir, 'huge.mov');
  const size = 5 * 1024 * MiB;
  sparseFile(path, size, [[size - 10, 'END-MARKER'], [2 ** 32 - 1, '4G']]);
  const e = await s.server.expose({ jobId: 'j', path, name: 'huge.mov' });
  assert.equal(e.size, size);
  const head = await fetch(s.origin + e.urlPath, { method: 'HEAD' });
  assert.equal(head.headers.get('content-length'), String(size));

  let r = await fetch(s.origin + e.urlPath, { headers: { range: 'bytes=-10' } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), `bytes ${size - 10}-${size - 1}/${size}`);
  assert.equal(Buffer.from(await r.arrayBuffer()).toString(), 'END-MARKER');

  r = await fetch(s.origin + e.urlPath, { headers: { range: `bytes=${2 ** 32 - 1}-${2 ** 32}` } });
  assert.equal(Buffer.from(await r.arrayBuffer()).toString(), '4G');
  assert.deepEqual(e.coverage.ranges(), [[2 ** 32 - 1, 2 ** 32 + 1], [size - 10, size]]);
});

test('an empty file is served and completes', async (t) => {
  const s = await startServer(t);
  writeFileSync(join(s.dir, 'empty.srt'), '');
  const e = await s.server.expose({ jobId: 'j', path: join(s.dir, 'empty.srt'), name: 'empty.srt' });
  let completes = 0;
  e.on('complete', () => completes++);
  const r = await fetch(s.origin + e.urlPath, { headers: { range: 'bytes=0-' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-length'), '0');
  assert.equal(completes, 1);
});

test('logs name the file and never the token', async (t) => {
  const s = await startServer(t);
  writeRandom(join(s.dir, 'l.mov'), 1000);
  const e = await s.server.expose({ jobId: 'j', path: join(s.dir, 'l.mov'), name: 'l.mov' });
  await (await fetch(s.origin + e.urlPath, { headers: { range: 'bytes=0-9' } })).arrayBuffer();
  await (await fetch(`${s.origin}/${e.token}/wrong.mov`)).arrayBuffer();
  await (await fetch(`${s.origin}/${e.token}/l.mov`, { method: 'DELETE' })).arrayBuffer();
  e.revoke();
  await (await fetch(s.origin + e.urlPath)).arrayBuffer();
  const requestLines = s.logs.filter((l) => l.includes('"public request"'));
  assert.equal(requestLines.length, 4);
  const first = JSON.parse(requestLines[0] as string) as Record<string, unknown>;
  assert.deepEqual([first.method, first.path, first.range, first.status], ['GET', '/<redacted>/l.mov', 'bytes=0-9', 206]);
  for (const line of s.logs) assert.ok(!line.includes(e.token), `token leaked in ${line}`);
});

test('a busy port fails with PF_ERR_SERVER_LISTEN naming host:port and server.port', async (t) => {
  const blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  t.after(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const server = createFileServer({ host: '127.0.0.1', port, logger: pino({ level: 'silent' }) });
  t.after(() => server.close());
  await assert.rejects(server.listen(), (err) => {
    assert.ok(isPostflowError(err, ERR_SERVER_LISTEN));
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.match(err.message, /server\.port/);
    assert.match(err.message, /EADDRINUSE/);
    return true;
  });
});

test('other methods get an empty 405; unparsable requests an empty 400', async (t) => {
  const s = await startServer(t);
  writeRandom(join(s.dir, 'm.mov'), 100);
  const e = await s.server.expose({ jobId: 'j', path: join(s.dir, 'm.mov'), name: 'm.mov' });
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
    const r = await rawRequest(s.port, `${method} ${e.urlPath} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
    assert.equal(r.status, 405, method);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers['cache-control'], 'no-store, private');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
  }
  const bad = await rawRequest(s.port, `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(bad.status, 400);
  assert.equal(bad.body.length, 0);
  assert.equal(bad.headers['x-content-type-options'], 'nosniff');
  const garbage = await rawRequest(s.port, 'HELLO\r\n\r\n');
  assert.equal(garbage.status, 400);
  assert.equal(garbage.body.length, 0);
});

test('allowHost restricts the Host header to the names given', async (t) => {
  const s = await startServer(t, { allowHost: (h) => h === 'words.trycloudflare.com' });
  writeRandom(join(s.dir, 'h.mov'), 10);
  const e = await s.server.expose({ jobId: 'j', path: join(s.dir, 'h.mov'), name: 'h.mov' });
  const ok = await rawRequest(s.port, `GET ${e.urlPath} HTTP/1.1\r\nHost: words.trycloudflare.com\r\nConnection: close\r\n\r\n`);
  assert.equal(ok.status, 200);
  assert.equal(ok.body.length, 10);
  const other = await rawRequest(s.port, `GET ${e.urlPath} HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nConnection: close\r\n\r\n`);
  assert.equal(other.status, 404);
  assert.equal(other.body.length, 0);
});

test('close() ends every exposure and cuts pulls in flight promptly', async (t) => {
  const s = await startServer(t);
  const path = join(s.dir, 'c.mov');
  sparseFile(path, 8 * 1024 * MiB);
  const e = await s.server.expose({ jobId: 'j', path, name: 'c.mov' });
  const reasons: string[] = [];
  e.on('revoked', (r) => reasons.push(r.reason));
  const pulled = new Promise<boolean>((resolve) => {
    http.get(s.origin + e.urlPath, (res) => {
      res.resume();
      res.on('error', () => undefined);
      res.on('close', () => resolve(res.complete));
    });
  });
  await new Promise((r) => setTimeout(r, 150));
  const t0 = Date.now();
  await s.server.close();
  assert.equal(await pulled, false);
  assert.ok(Date.now() - t0 < 1000, `close took ${Date.now() - t0} ms`);
  assert.deepEqual(reasons, ['closed']);
  assert.equal(s.server.activeCount(), 0);
  await assert.rejects(s.server.expose({ jobId: 'j', path, name: 'c.mov' }), { code: 'PF_ERR_SERVER_CLOSED' });
});

test('long and unusual file names are served under their encoded urlPath', async (t) => {
  const s = await startServer(t);
  writeFileSync(join(s.dir, 'f'), 'hello');
  for (const name of ['a'.repeat(200) + '.mov', 'é'.repeat(120) + '.mov', "Ep 1 (final) — 'v2' #3 ?&=+;%.mov", '日本語.mxf']) {
    const e = await s.server.expose({ jobId: 'j', path: join(s.dir, 'f'), name });
    const r = await fetch(s.origin + e.urlPath);
    assert.equal(r.status, 200, name);
    assert.equal(await r.text(), 'hello');
    e.revoke();
  }
});
