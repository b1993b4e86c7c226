import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressTracker, formatBytes, formatDuration } from '../../src/upload/progress.ts';

test('a progress line is due every 10 % and not in between', () => {
  const p = new ProgressTracker({ size: 1000, startedAt: 0 });
  assert.equal(p.update(50, 100), undefined);
  const first = p.update(100, 200);
  assert.equal(first?.percent, 10);
  assert.equal(p.update(150, 300), undefined);
  assert.equal(p.update(199, 400), undefined);
  assert.equal(p.update(200, 500)?.percent, 20);
  // a jump over several steps gives one line, not several
  assert.equal(p.update(750, 600)?.percent, 75);
  assert.equal(p.update(790, 700), undefined);
});

test('a progress line is due after the interval even without a new step', () => {
  const p = new ProgressTracker({ size: 1_000_000, startedAt: 0, intervalMs: 15_000 });
  assert.equal(p.update(10, 14_999), undefined);
  const s = p.update(20, 15_000);
  assert.ok(s);
  assert.equal(s.bytes, 20);
  assert.equal(p.update(30, 20_000), undefined);
  assert.ok(p.update(40, 30_000));
});

test('rate and ETA come from the recent window, so a stall shows as a falling rate', () => {
  const p = new ProgressTracker({ size: 10_000, startedAt: 0, rateWindowMs: 10_000 });
  for (let t = 1; t <= 10; t++) p.update(t * 100, t * 1000); // 100 B/s for 10 s
  const s = p.sample(10_000);
  assert.equal(s.rate, 100);
  assert.equal(s.etaSeconds, 90);
  // 20 s with no new bytes: the window slides past the moving part
  p.update(1000, 20_000);
  p.update(1000, 30_000);
  const stalled = p.sample(30_000);
  assert.equal(stalled.rate, 0);
  assert.equal(stalled.etaSeconds, null);
});

test('completion is reported once', () => {
  const p = new ProgressTracker({ size: 100, startedAt: 0 });
  assert.equal(p.update(100, 1)?.percent, 100);
  assert.equal(p.update(100, 20_000), undefined);
});

test('human formats', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(5 * 1024 ** 3), '5.0 GiB');
  assert.equal(formatDuration(5), '5s');
  assert.equal(formatDuration(245), '4m05s');
  assert.equal(formatDuration(3720), '1h02m');
});
