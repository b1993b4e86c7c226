import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { createFilter } from '../../src/watch/filters.ts';
import { sweepTreeSync } from '../../src/watch/sweep.ts';
import { createTreeSweep, RELIST_EVERY, type TreeSweepResult } from '../../src/watch/tree-sweep.ts';

function tmpTree(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pf-tree-sweep-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function write(root: string, rel: string, data = 'x'): void {
  const abs = path.join(root, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, data);
}

function ok(r: TreeSweepResult): Extract<TreeSweepResult, { ok: true }> {
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r;
}

/** The reference: a from-scratch sweep, as relPath → [size, mtimeMs, ino]. */
function reference(root: string, filter = createFilter()): Map<string, [number, number, number]> {
  const r = sweepTreeSync({ root, filter });
  assert.ok(r.ok);
  return new Map([...r.snapshot].map(([p, s]) => [p, [s.size, s.mtimeMs, s.ino]]));
}

describe('createTreeSweep', () => {
  it('first sweep reports every watched file; an unchanged tree then reports nothing and lists no folder', (t) => {
    const root = tmpTree(t);
    write(root, 'a.mov', 'abc');
    write(root, 'ep1/reel1/b.mov', 'defg');
    write(root, 'ep1/.DS_Store');
    write(root, 'x.part');
    fs.symlinkSync(path.join(root, 'a.mov'), path.join(root, 'link.mov'));
    // Folder mtimes well in the past, so their listings are trusted at once (not "racy").
    const old = new Date(Date.now() - 60_000);
    for (const d of ['ep1/reel1', 'ep1', '.']) fs.utimesSync(path.join(root, d), old, old);
    const tree = createTreeSweep({ root, filter: createFilter() });
    const first = ok(tree.sweep());
    assert.deepEqual(first.upsertPaths.sort(), ['a.mov', 'ep1/reel1/b.mov']);
    assert.equal(first.added, 2);
    assert.equal(first.files, 2);
    assert.deepEqual(first.dirsAdded.sort(), [root, path.join(root, 'ep1'), path.join(root, 'ep1/reel1')].sort());
    assert.deepEqual(tree.entries(), reference(root));
    let relisted = 0;
    for (let i = 0; i < 3; i++) {
      const next = ok(tree.sweep());
      assert.deepEqual([next.upsertPaths, next.removed, next.dirsAdded, next.dirsRemoved], [[], [], [], []]);
      assert.equal(next.files, 2);
      relisted += next.listed;
    }
    // Only the staggered forced re-listing may read a folder again (at most one slot hit per 3 sweeps here).
    assert.ok(relisted <= 3, `listed ${relisted} folders in 3 sweeps of an unchanged tree`);
  });

  it('matches a from-scratch sweep after every kind of change', (t) => {
    const root = tmpTree(t);
    for (let i = 0; i < 6; i++) write(root, `d${i % 3}/s${i % 2}/f${i}.mov`, 'v1');
    const tree = createTreeSweep({ root, filter: createFilter() });
    ok(tree.sweep());
    const steps: Array<[string, () => void, (r: Extract<TreeSweepResult, { ok: true }>) => void]> = [
      ['grow in place (no folder change)', () => fs.appendFileSync(path.join(root, 'd0/s0/f0.mov'), 'more'), (r) => assert.deepEqual(r.upsertPaths, ['d0/s0/f0.mov'])],
      ['add a file', () => write(root, 'd1/s1/new.mov'), (r) => assert.deepEqual([r.upsertPaths, r.added], [['d1/s1/new.mov'], 1])],
      ['remove a file', () => fs.rmSync(path.join(root, 'd1/s1/new.mov')), (r) => assert.deepEqual(r.removed, ['d1/s1/new.mov'])],
      ['rename a file', () => fs.renameSync(path.join(root, 'd2/s0/f2.mov'), path.join(root, 'd2/s0/g2.mov')), (r) => {
        assert.deepEqual(r.removed, ['d2/s0/f2.mov']);
        assert.deepEqual(r.upsertPaths, ['d2/s0/g2.mov']);
      }],
      ['replace through rename (new inode, same size)', () => {
        write(root, 'tmp.bin', 'v2');
        fs.renameSync(path.join(root, 'tmp.bin'), path.join(root, 'd0/s1/f3.mov'));
      }, (r) => assert.deepEqual(r.upsertPaths, ['d0/s1/f3.mov'])],
      ['remove a folder tree', () => fs.rmSync(path.join(root, 'd1'), { recursive: true }), (r) => {
        assert.deepEqual(r.removed.sort(), ['d1/s0/f4.mov', 'd1/s1/f1.mov']);
        assert.deepEqual(r.dirsRemoved.sort(), [path.join(root, 'd1'), path.join(root, 'd1/s0'), path.join(root, 'd1/s1')]);
      }],
      ['new deep folder', () => write(root, 'd3/a/b/c.mov'), (r) => {
        assert.deepEqual(r.upsertPaths, ['d3/a/b/c.mov']);
        assert.equal(r.dirsAdded.length, 3);
      }],
      ['a file becomes a folder', () => {
        fs.rmSync(path.join(root, 'd0/s0/f0.mov'));
        write(root, 'd0/s0/f0.mov/inner.mov');
      }, (r) => {
        assert.deepEqual(r.removed, ['d0/s0/f0.mov']);
        assert.deepEqual(r.upsertPaths, ['d0/s0/f0.mov/inner.mov']);
      }],
    ];
    for (const [what, change, check] of steps) {
      change();
      const r = ok(tree.sweep());
      check(r);
      assert.deepEqual(tree.entries(), reference(root), `after: ${what}`);
      assert.equal(r.files, tree.entries().size, `file count after: ${what}`);
    }
  });

  it('finds an entry hidden behind an unchanged folder mtime through the forced re-listing', (t) => {
    const root = tmpTree(t);
    write(root, 'ep/a.mov');
    const ep = path.join(root, 'ep');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(ep, old, old);
    const tree = createTreeSweep({ root, filter: createFilter() });
    ok(tree.sweep());
    // A coarse-clocked or skewed writer: the folder's mtime reads the same after the new entry.
    write(root, 'ep/late.mov');
    fs.utimesSync(ep, old, old);
    let foundAt = -1;
    for (let i = 1; i <= RELIST_EVERY && foundAt === -1; i++) {
      if (ok(tree.sweep()).upsertPaths.includes('ep/late.mov')) foundAt = i;
    }
    assert.ok(foundAt >= 1, `late.mov not found within ${RELIST_EVERY} sweeps`);
    assert.deepEqual(tree.entries(), reference(root));
  });

  it('does not trust a listing taken within the racy window of the folder mtime', (t) => {
    const root = tmpTree(t);
    write(root, 'ep/a.mov');
    const ep = path.join(root, 'ep');
    let wall = Date.now();
    const tree = createTreeSweep({ root, filter: createFilter(), now: () => wall });
    ok(tree.sweep()); // listed "now", right after the folder changed: racy
    const mtime = fs.statSync(ep).mtime;
    write(root, 'ep/same-tick.mov');
    fs.utimesSync(ep, mtime, mtime);
    wall += 1000;
    assert.deepEqual(ok(tree.sweep()).upsertPaths, ['ep/same-tick.mov']);
  });

  it('reports a missing root as an error and keeps its files for the comeback', (t) => {
    const root = tmpTree(t);
    write(root, 'w/a.mov');
    const w = path.join(root, 'w');
    const tree = createTreeSweep({ root: w, filter: createFilter() });
    ok(tree.sweep());
    fs.renameSync(w, path.join(root, 'away'));
    const gone = tree.sweep();
    assert.equal(gone.ok, false);
    assert.equal(tree.files, 1);
    fs.renameSync(path.join(root, 'away'), w);
    const back = ok(tree.sweep());
    assert.deepEqual([back.upsertPaths, back.removed], [[], []]);
  });
});
