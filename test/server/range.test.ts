import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentRange, ifRangeAllows, parseRange } from '../../src/server/range.ts';

const SIZE = 1000;

test('no header, empty header and malformed headers mean the full file', () => {
  for (const h of [undefined, '', 'bytes', 'bytes=', 'bytes=-', 'items=0-1', 'bytes=a-b', 'bytes=1-2-3', 'bytes=+1-2', 'bytes=1e3-', 'bytes=0x10-20', 'bytes 0-1', 'bytes=5-3']) {
    assert.deepEqual(parseRange(h, SIZE), { kind: 'full' }, String(h));
  }
});

test('start-end, open end and suffix forms', () => {
  assert.deepEqual(parseRange('bytes=0-499', SIZE), { kind: 'partial', start: 0, end: 499 });
  assert.deepEqual(parseRange('bytes=500-', SIZE), { kind: 'partial', start: 500, end: 999 });
  assert.deepEqual(parseRange('bytes=-100', SIZE), { kind: 'partial', start: 900, end: 999 });
  assert.deepEqual(parseRange('bytes=999-999', SIZE), { kind: 'partial', start: 999, end: 999 });
  assert.deepEqual(parseRange(' Bytes = 10 - 20 ', SIZE), { kind: 'partial', start: 10, end: 20 });
});

test('end and suffix are clamped to the file', () => {
  assert.deepEqual(parseRange('bytes=900-5000', SIZE), { kind: 'partial', start: 900, end: 999 });
  assert.deepEqual(parseRange('bytes=-5000', SIZE), { kind: 'partial', start: 0, end: 999 });
  assert.deepEqual(parseRange('bytes=0-99999999999999999999999', SIZE), { kind: 'partial', start: 0, end: 999 });
});

test('unsatisfiable ranges', () => {
  assert.deepEqual(parseRange('bytes=1000-', SIZE), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=1000-2000', SIZE), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=-0', SIZE), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=99999999999999999999-', SIZE), { kind: 'unsatisfiable' });
  assert.equal(contentRange({ kind: 'unsatisfiable' }, SIZE), 'bytes */1000');
});

test('multi-range is answered with the full file', () => {
  assert.deepEqual(parseRange('bytes=0-1,5-6', SIZE), { kind: 'full' });
  assert.deepEqual(parseRange('bytes=0-1, 2000-3000', SIZE), { kind: 'full' });
});

test('an empty file is always sent whole', () => {
  assert.deepEqual(parseRange('bytes=0-', 0), { kind: 'full' });
  assert.deepEqual(parseRange('bytes=-10', 0), { kind: 'full' });
});

test('offsets past 2^32 are exact', () => {
  const size = 5 * 2 ** 30 + 7;
  assert.deepEqual(parseRange('bytes=-100', size), { kind: 'partial', start: size - 100, end: size - 1 });
  assert.deepEqual(parseRange('bytes=4294967296-4294967305', size), { kind: 'partial', start: 4294967296, end: 4294967305 });
  assert.equal(contentRange({ kind: 'partial', start: 4294967296, end: 4294967305 }, size), `bytes 4294967296-4294967305/${size}`);
});

test('If-Range: matching ETag allows, anything else does not', () => {
  const current = { etag: '"abc"', lastModifiedMs: Date.parse('2026-01-01T00:00:00Z'), nowMs: Date.parse('2026-02-01T00:00:00Z') };
  assert.equal(ifRangeAllows(undefined, current), true);
  assert.equal(ifRangeAllows('"abc"', current), true);
  assert.equal(ifRangeAllows('"abd"', current), false);
  assert.equal(ifRangeAllows('W/"abc"', current), false);
  assert.equal(ifRangeAllows('Thu, 01 Jan 2026 00:00:00 GMT', current), true);
  assert.equal(ifRangeAllows('Thu, 01 Jan 2026 00:00:01 GMT', current), false);
  assert.equal(ifRangeAllows('garbage', current), false);
  // A Last-Modified in the same second as now is only a weak validator.
  assert.equal(ifRangeAllows('Thu, 01 Jan 2026 00:00:00 GMT', { ...current, nowMs: current.lastModifiedMs + 500 }), false);
});
