import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diffSnapshots, type Snapshot } from '../../src/watch/snapshot.ts';

describe('diffSnapshots', () => {
  it('reports added, changed (size, mtime or inode) and removed paths', () => {
    const same = { size: 1, mtimeMs: 1, ino: 1 };
    const prev: Snapshot = new Map([
      ['keep', same],
      ['grow', { size: 1, mtimeMs: 1, ino: 2 }],
      ['touch', { size: 1, mtimeMs: 1, ino: 3 }],
      ['replace', { size: 1, mtimeMs: 1, ino: 4 }],
      ['gone', { size: 1, mtimeMs: 1, ino: 5 }],
    ]);
    const next: Snapshot = new Map([
      ['keep', { ...same }],
      ['grow', { size: 2, mtimeMs: 1, ino: 2 }],
      ['touch', { size: 1, mtimeMs: 2, ino: 3 }],
      ['replace', { size: 1, mtimeMs: 1, ino: 9 }],
      ['new', { size: 1, mtimeMs: 1, ino: 6 }],
    ]);
    assert.deepEqual(diffSnapshots(prev, next), {
      added: ['new'],
      changed: ['grow', 'touch', 'replace'],
      removed: ['gone'],
    });
  });

  it('finds nothing between equal snapshots and everything against an empty one', () => {
    const s: Snapshot = new Map([['a', { size: 1, mtimeMs: 1, ino: 1 }]]);
    assert.deepEqual(diffSnapshots(s, new Map(s)), { added: [], changed: [], removed: [] });
    assert.deepEqual(diffSnapshots(new Map(), s), { added: ['a'], changed: [], removed: [] });
    assert.deepEqual(diffSnapshots(s, new Map()), { added: [], changed: [], removed: ['a'] });
  });

  it('detects a removal hidden by an addition of the same count', () => {
    const a = { size: 1, mtimeMs: 1, ino: 1 };
    const diff = diffSnapshots(new Map([['x', a], ['y', a]]), new Map([['x', a], ['z', a]]));
    assert.deepEqual(diff, { added: ['z'], changed: [], removed: ['y'] });
  });
});
