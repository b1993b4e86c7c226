import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { BufferPool } from '../../src/server/buffer-pool.ts';
import { sendRange } from '../../src/server/send-range.ts';
import { tempDir } from './harness.ts';

test('pool: released buffers are handed out again, up to maxFree kept; trim drops them', () => {
  const pool = new BufferPool(1024, 2);
  const a = pool.acquire();
  const b = pool.acquire();
  const c = pool.acquire();
  assert.equal(pool.inUse, 3);
  assert.equal(pool.allocated, 3);
  pool.release(a);
  pool.release(b);
  pool.release(c); // over maxFree: left to the GC
  assert.equal(pool.inUse, 0);
  assert.equal(pool.freeCount, 2);
  const again = pool.acquire();
  assert.ok(again === a || again === b, 'a kept buffer is reused');
  assert.equal(pool.allocated, 3);
  pool.release(again);
  pool.trim();
  assert.equal(pool.freeCount, 0);
  assert.throws(() => new BufferPool(0, 1), /positive integer/);
});

/** Serves [start, end] of `path` with sendRange on a real socket; returns what the client received. */
async function serve(t: import('node:test').TestContext, path: string, pool: BufferPool, range: { start: number; end: number }, abortAfter?: number) {
  const sent: Array<[number, number]> = [];
  let result: Promise<boolean> | undefined;
  const server = createServer(async (_req, res) => {
    const fh = await open(path, 'r');
    res.writeHead(200, { 'content-length': String(range.end - range.start + 1) });
    result = sendRange(fh, res, { ...range, pool, onSent: (p, l) => sent.push([p, l]) });
    const whole = await result.finally(() => fh.close());
    if (whole) res.end();
  });
  t.after(() => server.close());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const body = await new Promise<Buffer>((resolve, reject) => {
    get({ port, host: '127.0.0.1', path: '/' }, (res) => {
      const parts: Buffer[] = [];
      let n = 0;
      res.on('data', (b: Buffer) => {
        parts.push(b);
        n += b.length;
        if (abortAfter !== undefined && n >= abortAfter) res.destroy();
      });
      res.on('end', () => resolve(Buffer.concat(parts)));
      res.on('close', () => resolve(Buffer.concat(parts)));
      res.on('error', reject);
    }).on('error', reject);
  });
  const whole = await result;
  return { body, sent, whole };
}

test('sendRange through pooled buffers: exact bytes, every buffer back in the pool, few allocations', async (t) => {
  const dir = tempDir(t);
  const data = randomBytes(5 * 64 * 1024 + 123);
  const path = join(dir, 'f.bin');
  writeFileSync(path, data);
  const pool = new BufferPool(64 * 1024, 8);
  const range = { start: 1000, end: data.length - 7 };
  const { body, sent, whole } = await serve(t, path, pool, range);
  assert.equal(whole, true);
  const want = data.subarray(range.start, range.end + 1);
  assert.equal(createHash('sha256').update(body).digest('hex'), createHash('sha256').update(want).digest('hex'));
  assert.equal(sent.reduce((a, [, l]) => a + l, 0), want.length, 'every byte reported sent once');
  assert.equal(pool.inUse, 0, 'no buffer left out of the pool');
  assert.ok(pool.allocated <= 3, `reads reuse buffers (allocated ${pool.allocated} for ${sent.length} reads)`);
});

test('sendRange: a client hanging up mid-pull returns false and leaks no pooled buffer', async (t) => {
  const dir = tempDir(t);
  const data = randomBytes(8 * 1024 * 1024);
  const path = join(dir, 'big.bin');
  writeFileSync(path, data);
  const pool = new BufferPool(256 * 1024, 8);
  const { body, whole } = await serve(t, path, pool, { start: 0, end: data.length - 1 }, 300 * 1024);
  assert.equal(whole, false);
  assert.ok(body.length < data.length);
  // Write callbacks of a destroyed socket run on a later tick.
  for (let i = 0; i < 50 && pool.inUse !== 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(pool.inUse, 0);
});
