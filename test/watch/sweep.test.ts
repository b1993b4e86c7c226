import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { isPostflowError } from '../../src/errors.ts';
import { PF_ERR_WATCH_FOLDER_MISSING, PF_ERR_WATCH_NOT_A_DIRECTORY } from '../../src/watch/errors.ts';
import { createFilter } from '../../src/watch/filters.ts';
import { sweepTreeSync } from '../../src/watch/sweep.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pf-sweep-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(rel: string, data = 'x'): void {
  const abs = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, data);
}

describe('sweepTreeSync', () => {
  write('root/a.mov', 'abc');
  write('root/ep1/reel1/b.mov', 'defg');
  write('root/.DS_Store');
  write('root/x.part');
  write('root/.cache/hidden.mov');
  write('root/proxies/p.mov');
  write('outside/secret.mov');
  fs.symlinkSync(path.join(tmp, 'outside'), path.join(tmp, 'root/linkdir'));
  fs.symlinkSync(path.join(tmp, 'outside/secret.mov'), path.join(tmp, 'root/link.mov'));
  const root = path.join(tmp, 'root');
  const filter = createFilter({ exclude: ['proxies'] });

  it('lists files with size, mtime and inode, skipping ignored names and symlinks', () => {
    const r = sweepTreeSync({ root, filter });
    assert.ok(r.ok);
    assert.deepEqual([...r.snapshot.keys()].sort(), ['a.mov', 'ep1/reel1/b.mov']);
    const b = r.snapshot.get('ep1/reel1/b.mov');
    const st = fs.statSync(path.join(root, 'ep1/reel1/b.mov'));
    assert.deepEqual(b, { size: 4, mtimeMs: st.mtimeMs, ino: st.ino });
    assert.equal(r.mountPoint, false);
  });

  it('does not descend (or even list) ignored folders', () => {
    const visited: string[] = [];
    const spy = (rel: string, isDir: boolean) => {
      visited.push(rel);
      return filter(rel, isDir);
    };
    sweepTreeSync({ root, filter: spy });
    assert.ok(visited.includes('.cache'));
    assert.ok(visited.includes('proxies'));
    assert.ok(!visited.some((v) => v.startsWith('.cache/') || v.startsWith('proxies/')), visited.join());
    assert.ok(!visited.some((v) => v.startsWith('linkdir/')), 'symlinked folder not followed');
  });

  it('reuses unchanged entries of the previous snapshot and replaces changed ones', () => {
    const first = sweepTreeSync({ root, filter });
    assert.ok(first.ok);
    write('root/a.mov', 'abcdef');
    const second = sweepTreeSync({ root, filter, prev: first.snapshot });
    assert.ok(second.ok);
    assert.equal(second.snapshot.get('ep1/reel1/b.mov'), first.snapshot.get('ep1/reel1/b.mov'));
    assert.notEqual(second.snapshot.get('a.mov'), first.snapshot.get('a.mov'));
    assert.equal(second.snapshot.get('a.mov')?.size, 6);
  });

  it('reports a missing root or a file as root instead of an empty tree', () => {
    const missing = sweepTreeSync({ root: path.join(tmp, 'nope'), filter });
    assert.equal(missing.ok, false);
    assert.ok(!missing.ok && isPostflowError(missing.error, PF_ERR_WATCH_FOLDER_MISSING));
    assert.match(!missing.ok ? missing.error.message : '', /ENOENT/);
    const file = sweepTreeSync({ root: path.join(root, 'a.mov'), filter });
    assert.ok(!file.ok && isPostflowError(file.error, PF_ERR_WATCH_NOT_A_DIRECTORY));
  });

  it('keeps the previous entries of a subfolder it cannot read', { skip: process.getuid?.() === 0 && 'root reads everything' }, () => {
    const first = sweepTreeSync({ root, filter });
    assert.ok(first.ok);
    fs.chmodSync(path.join(root, 'ep1'), 0o000);
    try {
      const second = sweepTreeSync({ root, filter, prev: first.snapshot });
      assert.ok(second.ok);
      assert.deepEqual(second.unreadable, ['ep1']);
      assert.ok(second.snapshot.has('ep1/reel1/b.mov'));
    } finally {
      fs.chmodSync(path.join(root, 'ep1'), 0o755);
    }
  });
});
