/** The per-folder listing cache: one listing shared, own edits kept, TTL, fresh on demand, edits during a load. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FolderListings } from '../../src/upload/folder-listing.ts';
import type { Listed } from '../../src/upload/landing.ts';

/** A folder "in Frame.io" whose listing is counted and may be held open until released. */
function remote(initial: Listed[]) {
  const children = [...initial];
  let calls = 0;
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  return {
    children,
    calls: () => calls,
    hold() {
      gate = new Promise((r) => (open = r));
    },
    release() {
      open?.();
      gate = undefined;
    },
    async *list(): AsyncIterable<Listed> {
      calls++;
      const snapshot = [...children];
      if (gate) await gate;
      yield* snapshot;
    },
  };
}

const f = (id: string, name: string, type = 'file'): Listed => ({ id, name, type });

test('one listing serves concurrent look-ups and later ones within the TTL; own edits are seen without a listing', async () => {
  const r = remote([f('a1', 'a.mov'), f('b1', 'b.mov')]);
  let now = 0;
  const cache = new FolderListings({ list: () => r.list(), now: () => now, minTtlMs: 60_000 });
  const got = await Promise.all(Array.from({ length: 20 }, () => cache.named('F', 'a.mov')));
  assert.equal(r.calls(), 1, '20 concurrent look-ups, one listing');
  assert.deepEqual(got[19]!.map((c) => c.id), ['a1']);
  cache.add('F', f('a2', 'a.mov'));
  cache.remove('F', 'b1');
  assert.deepEqual((await cache.named('F', 'a.mov')).map((c) => c.id), ['a1', 'a2']);
  assert.deepEqual(await cache.named('F', 'b.mov'), []);
  assert.equal(r.calls(), 1);
  // Someone else's namesake shows up after the TTL, not before.
  r.children.push(f('c1', 'c.mov'));
  now = 59_000;
  assert.deepEqual(await cache.named('F', 'c.mov'), []);
  now = 62_000; // 60 s + 1.2 s for its one page
  assert.deepEqual((await cache.named('F', 'c.mov')).map((c) => c.id), ['c1']);
  assert.equal(r.calls(), 2);
});

test('fresh and invalidate list again; a fresh look-up never takes a listing that began before it', async () => {
  const r = remote([f('a1', 'a.mov')]);
  const cache = new FolderListings({ list: () => r.list(), now: () => 0 });
  await cache.named('F', 'a.mov');
  r.children.length = 0;
  assert.equal((await cache.named('F', 'a.mov')).length, 1, 'cached');
  assert.equal((await cache.named('F', 'a.mov', { fresh: true })).length, 0, 'fresh sees the deletion');
  r.children.push(f('a2', 'a.mov'));
  cache.invalidate('F');
  assert.deepEqual((await cache.named('F', 'a.mov')).map((c) => c.id), ['a2']);
  assert.equal(r.calls(), 3);

  r.hold();
  const stale = cache.named('F', 'a.mov', { fresh: true }); // listing #4 starts now, snapshot [a2]
  await new Promise((res) => setImmediate(res));
  r.children.push(f('a3', 'a.mov'));
  const fresh = cache.named('F', 'a.mov', { fresh: true }); // asked after a3 appeared: must not reuse #4
  r.release();
  assert.deepEqual((await stale).map((c) => c.id), ['a2']);
  assert.deepEqual((await fresh).map((c) => c.id), ['a2', 'a3']);
  assert.equal(r.calls(), 5);
});

test('edits made while a listing runs are replayed onto its result', async () => {
  const r = remote([f('a1', 'a.mov'), f('x1', 'x.mov')]);
  let now = 0;
  const cache = new FolderListings({ list: () => r.list(), now: () => now, minTtlMs: 1000 });
  await cache.named('F', 'a.mov');
  now = 5000;
  r.hold();
  const refreshing = cache.named('F', 'a.mov'); // TTL over: listing #2 with the snapshot [a1, x1]
  await new Promise((res) => setImmediate(res));
  cache.add('F', f('a2', 'a.mov')); // made by this daemon after the snapshot
  cache.remove('F', 'x1');
  r.release();
  assert.deepEqual((await refreshing).map((c) => c.id), ['a1', 'a2']);
  assert.deepEqual(await cache.named('F', 'x.mov'), []);
  assert.equal(r.calls(), 2);
});

test('the TTL grows with the folder: re-listing a big folder spends at most half of 100 pages a minute', async () => {
  const r = remote(Array.from({ length: 5000 }, (_, i) => f(`id${i}`, `clip${i}.mov`)));
  let now = 0;
  const cache = new FolderListings({ list: () => r.list(), now: () => now, minTtlMs: 60_000 });
  await cache.named('F', 'clip1.mov');
  now = 60_000 + 50 * 1200 - 1; // 50 pages → 60 s more
  await cache.named('F', 'clip1.mov');
  assert.equal(r.calls(), 1);
  now += 2;
  await cache.named('F', 'clip1.mov');
  assert.equal(r.calls(), 2);
});

test('a failed listing fails its callers and the next look-up tries again', async () => {
  let fail = true;
  let calls = 0;
  const cache = new FolderListings({
    list: async function* () {
      calls++;
      if (fail) throw new Error('503');
      yield f('a1', 'a.mov');
    },
  });
  await assert.rejects(Promise.all([cache.named('F', 'a.mov'), cache.named('F', 'a.mov')]), /503/);
  fail = false;
  assert.equal((await cache.named('F', 'a.mov')).length, 1);
  assert.equal(calls, 2);
});
