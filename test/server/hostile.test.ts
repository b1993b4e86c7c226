/**
 * A small fuzz of the public surface: thousands of generated hostile requests over real sockets, each
 * a mutation of a real, active URL (wrong or flipped tokens, other names, traversal, encodings, NUL,
 * overlong, absolute-form, odd Host, other methods, revoked tokens). Every answer must be an empty
 * 400/404/405 and no byte of any file may come back; a real pull interleaved throughout must keep working.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rawRequest, startServer } from './harness.ts';
import type { RawResponse } from './harness.ts';
import { seededRandom } from '../seeded-random.ts';

const TOTAL = 10_000;
const CONCURRENCY = 48;


test(`${TOTAL} hostile requests: all empty 400/404/405, no byte of any file served`, { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { headersTimeoutMs: 5_000 });
  // Distinctive content so a leak of any part of any file is recognisable in a response.
  const marker = (label: string) => Buffer.concat([Buffer.from(`<<${label}-${randomBytes(8).toString('hex')}>>`), randomBytes(2000)]);
  const active = marker('ACTIVE');
  const revoked = marker('REVOKED');
  const secret = marker('SECRET');
  writeFileSync(join(s.dir, 'cut.mov'), active);
  writeFileSync(join(s.dir, 'old.mov'), revoked);
  writeFileSync(join(s.dir, 'secret.txt'), secret);
  const a = await s.server.expose({ jobId: 'a', path: join(s.dir, 'cut.mov'), name: 'cut.mov' });
  const r = await s.server.expose({ jobId: 'r', path: join(s.dir, 'old.mov'), name: 'old.mov' });
  r.revoke();
  const T = a.token;
  const R = r.token;
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

  const rand = seededRandom(0xc0ffee);
  const pick = <V>(xs: readonly V[]): V => xs[Math.floor(rand() * xs.length)] as V;
  const randomToken = () => Array.from({ length: 43 }, () => pick([...B64])).join('');
  const flipped = () => {
    const i = Math.floor(rand() * 43);
    const c = T[i] === 'A' ? 'B' : 'A';
    return T.slice(0, i) + c + T.slice(i + 1);
  };
  const junk = (n: number) => Array.from({ length: n }, () => String.fromCharCode(Math.floor(rand() * 256))).join('');
  const names = [
    'secret.txt', '../secret.txt', '..%2fsecret.txt', '%2e%2e%2fsecret.txt', '%2E%2E%2Fsecret.txt', 'cut.mov%00',
    'cut.mov%00.jpg', 'CUT.MOV', 'cut.mov/', 'cut.mov/.', 'cut.mov%2f', 'cut%2emov/../cut.mov', '.', '..', '%2e', '%2e%2e',
    'cut.mov%5c..%5csecret.txt', '..\\secret.txt', 'cut.mov;x', 'cut.mov%20', 'cut.mov%09', '%63ut.mov%20', 'old.mov', '%', '%zz',
    '%c0%ae%c0%ae%2fsecret.txt', 'cut.mov'.repeat(500), '',
  ];
  const paths = (): string => {
    switch (Math.floor(rand() * 16)) {
      case 0: return `/${randomToken()}/cut.mov`;
      case 1: return `/${flipped()}/cut.mov`;
      case 2: return `/${T}/${pick(names)}`;
      case 3: return `/${R}/old.mov`;
      case 4: return `/${R}/${pick(names)}`;
      case 5: return pick([`/${T}/../secret.txt`, `/${T}/./cut.mov`, `//${T}/cut.mov`, `/${T}//cut.mov`, `/./${T}/cut.mov`, `/${T}%2fcut.mov`, `/${T}%2Fcut.mov`, `/../${T}/cut.mov`, `/${T}/cut.mov/..`, `/${T}`, `/${T}/`, '/', '/secret.txt', '/../secret.txt', '/etc/passwd', `/${T}/cut.mov#x`, `/${T}\\cut.mov`]);
      case 6: return `http://127.0.0.1:${s.port}/${T}/cut.mov`;
      case 7: return pick(['*', `127.0.0.1:${s.port}`, `${T}/cut.mov`, `\\${T}\\cut.mov`]);
      case 8: return `/${T}/${'a'.repeat(1000 + Math.floor(rand() * 3000))}`;
      case 9: return `/${T.toLowerCase()}/cut.mov`;
      case 10: return `/${T}x/cut.mov`;
      case 11: return `/${T.slice(0, 42)}/cut.mov`;
      case 12: return `/${T}/${encodeURIComponent(junk(1 + Math.floor(rand() * 20)))}`;
      case 13: return `/${T}/${junk(1 + Math.floor(rand() * 8))}`; // raw bytes, NUL and CR/LF included
      case 14: return `/${T}/cut.mov`.slice(0, Math.floor(rand() * 50));
      default: return `/${T}/cut.mov%00/../secret.txt`;
    }
  };
  // The correct URL is hostile only through its method or Host; anything else mutates the path.
  const build = (): string => {
    const kind = Math.floor(rand() * 10);
    const goodPath = `/${T}/cut.mov`;
    if (kind === 0) {
      const method = pick(['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'SEARCH', 'FOO', 'get', 'G\u0000T']);
      return `${method} ${goodPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody`;
    }
    if (kind === 1) {
      const host = pick(['', 'evil.com/x', 'a@b.com', 'a b', 'host:99999', '127.0.0.1:80:80', '[::1', `${'x'.repeat(300)}.com`, 'h\u0001st', '..']);
      return `GET ${goodPath} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
    }
    if (kind === 2) {
      return pick([
        `GET ${goodPath} HTTP/1.1\r\nConnection: close\r\n\r\n`,
        `GET ${goodPath} HTTP/1.0\r\n\r\n`,
        `GET ${goodPath} HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n`,
        `GET ${goodPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nConnection: close\r\n\r\n0\r\n\r\n`,
        `GET ${goodPath} HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n`,
      ]);
    }
    const method = rand() < 0.8 ? 'GET' : 'HEAD';
    const range = rand() < 0.3 ? `Range: bytes=${Math.floor(rand() * 3000)}-\r\n` : '';
    return `${method} ${paths()} HTTP/1.1\r\nHost: 127.0.0.1\r\n${range}Connection: close\r\n\r\n`;
  };

  const leaks = [active, revoked, secret].map((b) => b.subarray(0, 24));
  const statuses = new Map<number, number>();
  let sent = 0;
  let goodPulls = 0;
  const check = (req: string, res: RawResponse): void => {
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    for (const leak of leaks) assert.equal(res.raw.includes(leak), false, `file bytes served for ${JSON.stringify(req)}`);
    if (res.raw.length === 0) return; // connection refused/closed by the HTTP parser: nothing served
    assert.ok([400, 404, 405].includes(res.status), `status ${res.status} for ${JSON.stringify(req)}`);
    assert.equal(res.body.length, 0, `non-empty body for ${JSON.stringify(req)}`);
    assert.equal(res.headers['content-length'], '0');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['cache-control'], 'no-store, private');
  };
  const started = Date.now();
  const worker = async (): Promise<void> => {
    while (sent < TOTAL) {
      sent++;
      if (sent % 1000 === 0) {
        // The legitimate pull keeps working in the middle of the storm.
        const good = await fetch(s.origin + a.urlPath);
        assert.equal(good.status, 200);
        assert.deepEqual(Buffer.from(await good.arrayBuffer()), active);
        goodPulls++;
      }
      const req = build();
      check(req, await rawRequest(s.port, Buffer.from(req, 'latin1')));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const ms = Date.now() - started;
  t.diagnostic(`${TOTAL} hostile requests in ${ms} ms; statuses ${JSON.stringify([...statuses])}`);
  assert.ok(sent >= TOTAL);
  assert.equal(goodPulls, 10);
  assert.ok((statuses.get(404) ?? 0) > TOTAL / 2, 'most requests reached the router');
  assert.ok((statuses.get(405) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0);
  for (const line of s.logs) assert.ok(!line.includes(T), 'active token in logs');
});
