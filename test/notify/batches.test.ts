import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batches } from '../../src/notify/batches.ts';

const file = (id: string, relPath: string, folderIndex = 0, size = 100) => ({ id, folderIndex, relPath, name: relPath.split('/').pop()!, size });

test('files of one sub-folder within the gap form one batch, due when all ended and the gap passed', () => {
  const b = new Batches(() => 60_000);
  assert.equal(b.add(file('1', 'ep1/a.mov'), 0), true);
  b.add(file('2', 'ep1/b.mov'), 30_000);
  b.add(file('3', 'ep2/c.mov'), 30_000); // another sub-folder: another batch
  b.add(file('4', 'ep1/d.mov'), 200_000); // past the gap: a new batch
  b.end('1', { state: 'done', at: 40_000, viewUrl: 'https://next.frame.io/project/p/view/1' });
  assert.deepEqual(b.due(95_000), [], 'file 2 still running');
  b.end('2', { state: 'failed', at: 50_000, reason: 'upload_failed' });
  assert.equal(b.due(89_999).length, 0, 'the gap after the last arrival (30 s) has not passed');
  const [n] = b.due(90_000);
  assert.deepEqual(
    { files: n!.files, done: n!.done, failed: n!.failed, total: n!.totalBytes, sub: n!.subFolder, dur: n!.durationSeconds, url: n!.sampleViewUrl },
    { files: 2, done: 1, failed: 1, total: 200, sub: 'ep1', dur: 50, url: 'https://next.frame.io/project/p/view/1' },
  );
  assert.deepEqual(n!.failures, [{ name: 'b.mov', relPath: 'ep1/b.mov', reason: 'upload_failed' }]);
  assert.equal(b.due(1e9).length, 0, 'ep2 and the late ep1 file still running');
  assert.equal(b.has('1'), false, 'a notified batch leaves the book');
});

test('a cancelled file leaves its batch; an all-cancelled batch says nothing; gap 0 does not batch', () => {
  const b = new Batches((i) => (i === 1 ? 0 : 10_000));
  b.add(file('1', 'a.mov'), 0);
  b.add(file('2', 'b.mov'), 0);
  b.end('1', { state: 'cancelled', at: 1 });
  b.end('2', { state: 'done', at: 5, viewUrl: null });
  const [n] = b.due(20_000);
  assert.equal(n!.files, 1);
  assert.equal(n!.subFolder, '');
  b.add(file('3', 'x.mov'), 0);
  b.end('3', { state: 'cancelled', at: 1 });
  assert.deepEqual(b.due(50_000), []);
  assert.equal(b.add(file('9', 'y.mov', 1), 0), false, 'folder 1 has batchGapSeconds 0');
  assert.equal(b.end('9', { state: 'done', at: 1, viewUrl: null }), false);
});
