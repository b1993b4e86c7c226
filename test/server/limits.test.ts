/**
 * Abuse limits over real sockets: slow headers (slowloris), readers that stop reading, too many
 * connections in total and per token. Each test also shows a legitimate pull still being served.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { sparseFile, startServer } from './harness.ts';

const MiB = 1024 * 1024;

function openSocket(t: TestContext, port: number): Socket {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  t.after(() => socket.destroy());
  return socket;
}

/**
 * Resolves when the socket is closed, however: a slow client whose next byte crosses the server's close
 * gets an RST (ECONNRESET), which is a cut like any other (`once` would reject on that 'error').
 */
function closed(socket: Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

test('slow-header connections are cut after the headers timeout while a real pull is served', async (t) => {
  const s = await startServer(t, { headersTimeoutMs: 2000, maxConnections: 64 });
  const data = randomBytes(4 * MiB);
  writeFileSync(join(s.dir, 'cut.mov'), data);
  const e = await s.server.expose({ jobId: 'j', path: join(s.dir, 'cut.mov'), name: 'cut.mov' });

  // 30 slowloris clients: one header byte every 100 ms, never finishing.
  const request = `GET ${e.urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(200)}`;
  const slow = Array.from({ length: 30 }, () => {
    const socket = openSocket(t, s.port);
    let i = 0;
    const received: Buffer[] = [];
    socket.on('data', (c: Buffer) => received.push(c));
    const timer = setInterval(() => {
      if (socket.writable && i < request.length) socket.write(request[i++] as string);
    }, 100);
    socket.on('close', () => clearInterval(timer));
    t.after(() => clearInterval(timer));
    return { socket, received };
  });
  await new Promise((r) => setTimeout(r, 300));

  const startedAt = Date.now();
  const good = await fetch(s.origin + e.urlPath);
  assert.equal(good.status, 200);
  assert.deepEqual(Buffer.from(await good.arrayBuffer()), data);
  assert.ok(slow.every(({ socket }) => !socket.closed), 'served while every slow client still holds its connection');

  await Promise.all(slow.map(({ socket }) => closed(socket)));
  const heldFor = Date.now() - startedAt + 300;
  assert.ok(heldFor >= 1500 && heldFor < 4500, `slow connections cut after ${heldFor} ms`);
  for (const { received } of slow) {
    const text = Buffer.concat(received).toString('latin1');
    // Either nothing or an empty 408: never a file byte, never a body.
    assert.ok(text === '' || /^HTTP\/1\.1 408 [^\r]*\r\n[\s\S]*content-length: 0\r\n[\s\S]*\r\n\r\n$/i.test(text), text);
  }
});

test('idle connections over the total cap are refused; the cap frees up after the headers timeout', async (t) => {
  const s = await startServer(t, { headersTimeoutMs: 600, maxConnections: 8 });
  const data = randomBytes(100_000);
  writeFileSync(join(s.dir, 'a.mov'), data);
  const e = await s.server.expose({ jobId: 'j', path: join(s.dir, 'a.mov'), name: 'a.mov' });

  const hogs = Array.from({ length: 8 }, () => openSocket(t, s.port));
  await Promise.all(hogs.map((h) => once(h, 'connect')));
  await new Promise((r) => setTimeout(r, 100));
  const extra = openSocket(t, s.port);
  extra.write(`GET ${e.urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  const got: Buffer[] = [];
  extra.on('data', (c: Buffer) => got.push(c));
  await closed(extra);
  assert.equal(Buffer.concat(got).length, 0, 'connection over the cap served nothing');

  // Connections that never send a request do not hold the server for ever.
  await Promise.all(hogs.map((h) => closed(h)));
  const good = await fetch(s.origin + e.urlPath);
  assert.equal(good.status, 200);
  assert.deepEqual(Buffer.from(await good.arrayBuffer()), data);
});

test('per-token cap: extra concurrent pulls of one token get an empty 503; other tokens are unaffected', async (t) => {
  const s = await startServer(t, { maxConnectionsPerToken: 2, idleTimeoutMs: 10_000 });
  const big = join(s.dir, 'big.mov');
  sparseFile(big, 1024 * MiB);
  writeFileSync(join(s.dir, 'small.mov'), 'small');
  const e = await s.server.expose({ jobId: 'j', path: big, name: 'big.mov' });
  const other = await s.server.expose({ jobId: 'k', path: join(s.dir, 'small.mov'), name: 'small.mov' });

  // Two pulls that never read keep their responses in flight.
  const holders = [0, 1].map(() => {
    const socket = openSocket(t, s.port);
    socket.pause();
    socket.write(`GET ${e.urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    return socket;
  });
  const statuses: number[] = [];
  e.on('request', (r) => statuses.push(r.status));
  while (statuses.length < 2) await new Promise((r) => setTimeout(r, 20));

  const third = await fetch(s.origin + e.urlPath, { headers: { range: 'bytes=0-9' } });
  assert.equal(third.status, 503);
  assert.equal((await third.arrayBuffer()).byteLength, 0);
  assert.equal(third.headers.get('cache-control'), 'no-store, private');

  const ok = await fetch(s.origin + other.urlPath);
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), 'small');

  for (const h of holders) h.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const again = await fetch(s.origin + e.urlPath, { headers: { range: 'bytes=0-9' } });
  assert.equal(again.status, 206, 'slots free again once the holders are gone');
  await again.arrayBuffer();
});

test('a reader that stops reading is cut off after the idle timeout, freeing its slot', async (t) => {
  const s = await startServer(t, { idleTimeoutMs: 500, maxConnectionsPerToken: 1 });
  const big = join(s.dir, 'big.mov');
  sparseFile(big, 1024 * MiB);
  const e = await s.server.expose({ jobId: 'j', path: big, name: 'big.mov' });

  const stalled = openSocket(t, s.port);
  stalled.pause();
  stalled.write(`GET ${e.urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  const startedAt = Date.now();
  while (!s.logs.some((l) => l.includes('"aborted":true'))) {
    assert.ok(Date.now() - startedAt < 4000, 'stalled response still open after 4 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  const cutAfter = Date.now() - startedAt;
  assert.ok(cutAfter >= 400, `cut too early (${cutAfter} ms)`);
  assert.ok(e.coverage.covered < e.size);

  const r = await fetch(s.origin + e.urlPath, { headers: { range: 'bytes=-4' } });
  assert.equal(r.status, 206, 'the single per-token slot is free again');
  assert.equal((await r.arrayBuffer()).byteLength, 4);
});
