import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Coverage } from '../../src/server/coverage.ts';

test('sequential chunks merge into one interval', () => {
  const c = new Coverage(100);
  for (let i = 0; i < 100; i += 10) c.add(i, i + 10);
  assert.deepEqual(c.ranges(), [[0, 100]]);
  assert.equal(c.covered, 100);
  assert.equal(c.complete, true);
});

test('a range pulled twice counts once', () => {
  const c = new Coverage(100);
  assert.equal(c.add(10, 20), 10);
  assert.equal(c.add(10, 20), 0);
  assert.equal(c.add(15, 25), 5);
  assert.equal(c.covered, 15);
  assert.equal(c.complete, false);
});

test('disjoint intervals stay sorted and a bridging add merges them', () => {
  const c = new Coverage(100);
  c.add(50, 60);
  c.add(10, 20);
  c.add(80, 90);
  assert.deepEqual(c.ranges(), [[10, 20], [50, 60], [80, 90]]);
  assert.equal(c.add(15, 85), 50);
  assert.deepEqual(c.ranges(), [[10, 90]]);
  assert.equal(c.covered, 80);
});

test('adjacent intervals merge; out-of-file parts are ignored', () => {
  const c = new Coverage(100);
  c.add(0, 10);
  c.add(20, 30);
  c.add(10, 20);
  assert.deepEqual(c.ranges(), [[0, 30]]);
  assert.equal(c.add(-50, 5), 0);
  assert.equal(c.add(95, 500), 5);
  assert.equal(c.add(30, 30), 0);
  assert.equal(c.covered, 35);
});

test('an empty file is complete', () => {
  assert.equal(new Coverage(0).complete, true);
});

test('thousands of parallel-looking chunks in random order match a byte map', () => {
  const size = 64 * 1024 * 1024;
  const chunk = 16 * 1024;
  const c = new Coverage(size);
  const truth = new Uint8Array(size / chunk);
  const order = Array.from({ length: size / chunk }, (_, i) => i);
  // Deterministic shuffle (LCG) so a failure reproduces.
  let seed = 12345;
  for (let i = order.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  for (let k = 0; k < order.length; k++) {
    const i = order[k] as number;
    c.add(i * chunk, (i + 1) * chunk);
    truth[i] = 1;
    if (k % 997 === 0) {
      // Overlapping repeats across chunk boundaries must not change the count.
      c.add(i * chunk + 100, i * chunk + 200);
      assert.equal(c.covered, truth.reduce((a, b) => a + b, 0) * chunk);
    }
  }
  assert.equal(c.complete, true);
  assert.deepEqual(c.ranges(), [[0, size]]);
});

test('sizes past 2^32 are exact', () => {
  const size = 5 * 2 ** 30;
  const c = new Coverage(size);
  c.add(size - 100, size);
  c.add(2 ** 32, 2 ** 32 + 1);
  assert.equal(c.covered, 101);
  assert.deepEqual(c.ranges(), [[2 ** 32, 2 ** 32 + 1], [size - 100, size]]);
});
