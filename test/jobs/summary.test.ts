import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openSqliteStore } from '../../src/jobs/sqlite-store.ts';
import { withSummaries } from '../../src/jobs/summary.ts';

test('every job that ends logs exactly one summary line, however it ended', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'postflow-summary-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  const store = withSummaries(await openSqliteStore({ path: join(dir, 'jobs.db') }), logger);
  t.after(() => store.close());
  const file = (name: string) => ({ folderIndex: 0, root: dir, path: join(dir, name), relPath: name, name, size: 10, mtimeMs: 1, ino: 1, destination: 'd' });

  const a = await store.discover(file('a.mov'));
  for (const [from, to] of [['discovered', 'stable'], ['stable', 'queued'], ['queued', 'exposing'], ['exposing', 'importing']] as const) {
    assert.ok(await store.transition(a.id, from, to));
  }
  assert.equal(lines.filter((l) => l.event === 'summary').length, 0, 'no summary before the end');
  assert.ok(await store.transition(a.id, 'importing', 'done', { viewUrl: 'https://next.frame.io/project/p/view/f', frameioFileId: 'f' }));
  const b = await store.discover(file('b.mov'));
  assert.ok(await store.transition(b.id, 'discovered', 'cancelled', { lastError: 'file removed' }));
  // A transition that did not happen (wrong from-state) logs nothing.
  assert.equal(await store.transition(b.id, 'queued', 'cancelled'), false);

  const summaries = lines.filter((l) => l.event === 'summary');
  assert.equal(summaries.length, 2);
  assert.deepEqual(
    summaries.map((s) => [s.job, s.state, s.reason, s.viewUrl]),
    [
      [a.id, 'done', null, 'https://next.frame.io/project/p/view/f'],
      [b.id, 'cancelled', 'file removed', null],
    ],
  );
  assert.equal(summaries[0]!.attempts, 1);
  assert.equal(summaries[0]!.file, join(dir, 'a.mov'));
  assert.match(String(summaries[1]!.msg), /^summary: b\.mov cancelled after 0 attempt\(s\) — file removed$/);
  // Everything else still reaches the store itself.
  assert.equal((await store.counts()).done, 1);
});
