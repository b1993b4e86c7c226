import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../src/backoff.ts';

const opts = { baseMs: 1000, maxMs: 60_000 };

test('attempt 0 is about base, and grows by factor without jitter', () => {
  const none = { ...opts, jitter: 'none' as const };
  assert.deepEqual([0, 1, 2, 3, 4].map((a) => backoffDelay(a, none)), [1000, 2000, 4000, 8000, 16000]);
  assert.equal(backoffDelay(2, { ...none, factor: 3 }), 9000);
});

test('the cap holds for huge attempts, with no NaN or Infinity', () => {
  for (const jitter of ['none', 'full', 'equal'] as const) {
    assert.equal(backoffDelay(10_000, { ...opts, jitter }, () => 1), 60_000);
  }
  assert.equal(backoffDelay(10_000, { baseMs: 0, maxMs: 10, jitter: 'none' }), 0);
});

test('equal jitter (default) stays in [d/2, d]', () => {
  assert.equal(backoffDelay(0, opts, () => 0), 500);
  assert.equal(backoffDelay(0, opts, () => 1), 1000);
  assert.equal(backoffDelay(3, opts, () => 0.5), 6000);
});

test('full jitter stays in [0, d]', () => {
  const full = { ...opts, jitter: 'full' as const };
  assert.equal(backoffDelay(2, full, () => 0), 0);
  assert.equal(backoffDelay(2, full, () => 1), 4000);
  assert.equal(backoffDelay(2, full, () => 0.25), 1000);
});

test('random values are sampled within bounds over many draws', () => {
  for (let a = 0; a < 12; a++) {
    const d = Math.min(60_000, 1000 * 2 ** a);
    for (let i = 0; i < 200; i++) {
      const eq = backoffDelay(a, opts);
      assert.ok(eq >= Math.floor(d / 2) && eq <= d, `equal attempt ${a}: ${eq}`);
      const fu = backoffDelay(a, { ...opts, jitter: 'full' });
      assert.ok(fu >= 0 && fu <= d, `full attempt ${a}: ${fu}`);
    }
  }
});

test('out-of-range random and attempt values are clamped', () => {
  assert.equal(backoffDelay(-3, { ...opts, jitter: 'none' }), 1000);
  assert.equal(backoffDelay(Number.NaN, { ...opts, jitter: 'none' }), 1000);
  assert.equal(backoffDelay(1.9, { ...opts, jitter: 'none' }), 2000);
  assert.equal(backoffDelay(0, { ...opts, jitter: 'full' }, () => 7), 1000);
  assert.equal(backoffDelay(0, { ...opts, jitter: 'full' }, () => -1), 0);
});

test('invalid options are rejected', () => {
  assert.throws(() => backoffDelay(0, { baseMs: 10, maxMs: 5 }), RangeError);
  assert.throws(() => backoffDelay(0, { baseMs: -1, maxMs: 5 }), RangeError);
  assert.throws(() => backoffDelay(0, { baseMs: 1, maxMs: 5, factor: 0.5 }), RangeError);
  assert.throws(() => backoffDelay(0, { baseMs: 1, maxMs: Infinity }), RangeError);
});
