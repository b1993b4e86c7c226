/** SQLite group commit: writes of one event-loop turn share a COMMIT, each answered after it, each undone alone. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSqliteStore } from '../../src/jobs/sqlite-store.ts';
import type { DiscoveredFile } from '../../src/jobs/store.ts';

const file = (name: string): DiscoveredFile => ({ folderIndex: 0, root: '/w', path: `/w/${name}`, relPath: name, name, size: 1, mtimeMs: 1, ino: 1, destination: 'D' });

test('500 concurrent writes all land, a failing one in the same batch undoes only itself, and all survive a reopen', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pf-group-commit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'jobs.db');
  let store = await openSqliteStore({ path });
  t.after(() => store.close());

  // A failed job whose path a newer open job holds: retrying it throws PATH_TAKEN inside the transaction.
  const old = await store.discover(file('p.mov'));
  for (const [from, to] of [['discovered', 'stable'], ['stable', 'queued'], ['queued', 'exposing'], ['exposing', 'failed']] as const) {
    assert.equal(await store.transition(old.id, from, to), true);
  }
  await store.discover(file('p.mov'));

  const walBefore = statSync(`${path}-wal`).size;
  const writes = Array.from({ length: 500 }, (_, i) => store.discover(file(`c${i}.mov`)));
  const failing = store.transition(old.id, 'failed', 'queued');
  const more = store.discover(file('after.mov'));
  const results = await Promise.allSettled([...writes, failing, more]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 501);
  // One COMMIT writes each touched page once; 500 commits would write the job, index and event pages 500
  // times (about 4 MB of WAL before the auto-checkpoint wraps it).
  const walGrowth = statSync(`${path}-wal`).size - walBefore;
  t.diagnostic(`WAL grew ${walGrowth} bytes for 501 writes`);
  assert.ok(walGrowth < 1_000_000, `WAL grew ${walGrowth} bytes: the writes were not committed together`);
  assert.match(String((results[500] as PromiseRejectedResult).reason?.code), /PF_ERR_JOBS_PATH_TAKEN/);
  // Reads issued while a batch is open answer with it committed.
  const readBatch = store.discover(file('late.mov'));
  const counted = await store.list({ path: '/w/late.mov' });
  await readBatch;
  assert.equal(counted.length, 1, 'a read after a write sees that write');

  await store.close();
  store = await openSqliteStore({ path });
  const all = await store.list();
  assert.equal(all.length, 2 + 500 + 1 + 1);
  assert.equal(all.find((j) => j.id === old.id)?.state, 'failed', 'the failed write left no trace');
});
