/** The sha256 computed while serving: follows the sent prefix, whatever order the ranges go in. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Coverage } from '../../src/server/coverage.ts';
import { hashFile, hashWhileServing, hashWithin, prefixEnd, PrefixHasher } from '../../src/upload/content-hash.ts';

test('prefix end: only a covered run from byte 0 counts', () => {
  assert.equal(prefixEnd([]), 0);
  assert.equal(prefixEnd([[0, 10], [20, 30]]), 10);
  assert.equal(prefixEnd([[5, 10]]), 0);
});

test('prefix hasher never reads past what was sent, and reads each byte once', async () => {
  const data = randomBytes(5 * 1024 * 1024 + 17);
  const reads: Array<[number, number]> = [];
  const h = new PrefixHasher(data.length, async (pos, len) => {
    reads.push([pos, len]);
    return data.subarray(pos, pos + len);
  });
  h.advance(1000);
  await new Promise((r) => setImmediate(r));
  assert.equal(h.hashed, 1000);
  assert.ok(reads.every(([p, l]) => p + l <= 1000));
  h.advance(data.length);
  assert.equal(await h.result, createHash('sha256').update(data).digest('hex'));
  let next = 0;
  for (const [p, l] of reads) {
    assert.equal(p, next, 'in order, no overlap, no gap');
    next = p + l;
  }
  assert.equal(next, data.length);
});

test('hash while serving: ranges sent out of order (as Frame.io pulls) give the file sha256; a revoke before the end rejects', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'postflow-hash-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const data = randomBytes(3 * 1024 * 1024 + 5);
  const path = join(dir, 'f.bin');
  await writeFile(path, data);
  const expected = createHash('sha256').update(data).digest('hex');
  assert.equal(await hashFile(path), expected);

  const source = Object.assign(new EventEmitter(), { size: data.length, coverage: new Coverage(data.length) });
  const { result, hasher } = hashWhileServing(path, source);
  const chunk = 1024 * 1024;
  // Chunks 3, 1, 2, 0 — nothing can be hashed until chunk 0 is out, then everything.
  for (const i of [3, 1, 2]) {
    source.coverage.add(i * chunk, (i + 1) * chunk);
    source.emit('progress');
  }
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(hasher.hashed, 0, 'no byte hashed before byte 0 was sent');
  source.coverage.add(0, chunk);
  source.emit('progress');
  source.emit('complete');
  assert.equal(await result, expected);

  const half = Object.assign(new EventEmitter(), { size: data.length, coverage: new Coverage(data.length) });
  const second = hashWhileServing(path, half);
  half.coverage.add(0, chunk);
  half.emit('progress');
  half.emit('revoked');
  await assert.rejects(second.result, /revoked before the whole file was sent/);
});

test('hash within a wait: done, failed, or pending when the hash thread lags (the job goes on without it)', async () => {
  assert.deepEqual(await hashWithin(Promise.resolve('ab'), 1000), { state: 'done', sha256: 'ab' });
  const err = new Error('gone');
  assert.deepEqual(await hashWithin(Promise.reject(err), 1000), { state: 'failed', err });
  const started = Date.now();
  assert.deepEqual(await hashWithin(new Promise<string>(() => undefined), 30), { state: 'pending' });
  assert.ok(Date.now() - started < 1000);
});
