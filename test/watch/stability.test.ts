import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createStabilityTracker } from '../../src/watch/stability.ts';

const st = (size: number, mtimeMs = 1000, ino = 7) => ({ size, mtimeMs, ino });

describe('stability tracker', () => {
  it('is due exactly when the window has passed since the first observation, and only once', () => {
    const t = createStabilityTracker({ stabilityMs: 1000 });
    assert.equal(t.observe('a', st(10), 0), 'new');
    assert.equal(t.nextDueAt(), 1000);
    assert.deepEqual(t.due(999), []);
    assert.equal(t.observe('a', st(10), 999), 'unchanged');
    const due = t.due(1000);
    assert.deepEqual(due.map((d) => d.path), ['a']);
    assert.deepEqual(due[0]?.stat, st(10));
    assert.deepEqual(t.due(5000), [], 'returned files are no longer tracked');
    assert.equal(t.nextDueAt(), undefined);
  });

  it('never makes a slow writer due, over many windows', () => {
    const t = createStabilityTracker({ stabilityMs: 1000 });
    let now = 0;
    for (let size = 1; size <= 50; size++) {
      t.observe('slow', st(size * 100, 1000 + now), now);
      assert.deepEqual(t.due(now), [], `still writing at ${now}`);
      now += 900; // each observation is inside the window of the previous change
    }
    assert.equal(t.nextDueAt(), now - 900 + 1000);
    assert.deepEqual(t.due(now - 900 + 999), []);
    assert.deepEqual(t.due(now - 900 + 1000).map((d) => d.path), ['slow']);
  });

  it('restarts the window on an mtime-only or inode-only change', () => {
    const t = createStabilityTracker({ stabilityMs: 1000 });
    t.observe('a', st(10, 1), 0);
    assert.equal(t.observe('a', st(10, 2), 800), 'changed');
    assert.deepEqual(t.due(1000), []);
    assert.equal(t.observe('a', st(10, 2, 8), 1500), 'changed');
    assert.deepEqual(t.due(2499), []);
    assert.equal(t.due(2500).length, 1);
  });

  it('returns due files oldest first and keeps the others; forget drops a file', () => {
    const t = createStabilityTracker({ stabilityMs: 100 });
    t.observe('a', st(1), 0);
    t.observe('b', st(1), 10);
    t.observe('c', st(1), 20);
    t.observe('a', st(2), 30); // a moves behind c
    t.forget('b');
    assert.equal(t.has('b'), false);
    assert.equal(t.nextDueAt(), 120);
    assert.deepEqual(t.due(125).map((d) => d.path), ['c']);
    assert.equal(t.size, 1);
    assert.deepEqual(t.due(130).map((d) => d.path), ['a']);
  });
});
