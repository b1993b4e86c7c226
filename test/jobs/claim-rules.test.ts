/**
 * The queue rules of issue 9 at the claim: priority per watch folder then oldest first, folders in quiet
 * hours left waiting, and the workers kept for small files — on the real SQLite store and the real claimer.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { createClaimer, type QueueRules } from '../../src/jobs/claimer.ts';
import { claimOrder } from '../../src/jobs/claim-order.ts';
import { openSqliteStore } from '../../src/jobs/sqlite-store.ts';
import type { ClaimedJob, JobStore } from '../../src/jobs/store.ts';

const GiB = 1024 ** 3;

async function storeWith(t: TestContext, files: Array<{ name: string; folder: number; size: number }>): Promise<{ store: JobStore; ids: Map<string, string> }> {
  const dir = mkdtempSync(join(tmpdir(), 'pf-claim-'));
  let clock = 1_000_000;
  const store = await openSqliteStore({ path: join(dir, 'jobs.db'), now: () => clock++ });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ids = new Map<string, string>();
  for (const f of files) {
    const job = await store.discover({ folderIndex: f.folder, root: `/w${f.folder}`, path: `/w${f.folder}/${f.name}`, relPath: f.name, name: f.name, size: f.size, mtimeMs: 1, ino: ids.size + 1, destination: 'D' });
    await store.transition(job.id, 'discovered', 'stable');
    await store.transition(job.id, 'stable', 'queued');
    ids.set(job.id, f.name);
  }
  return { store, ids };
}

test('claims go by folder priority, then oldest first; quiet folders wait; maxSize keeps to small files', async (t) => {
  const { store, ids } = await storeWith(t, [
    { name: 'a1', folder: 0, size: 10 },
    { name: 'b1', folder: 1, size: 10 },
    { name: 'a2', folder: 0, size: 3 * GiB },
    { name: 'b2', folder: 1, size: 5 },
    { name: 'c1', folder: 2, size: 5 },
  ]);
  const names = (got: ClaimedJob[]) => got.map((c) => ids.get(c.job.id));
  assert.deepEqual(names(await store.claim({ limit: 1, leaseMs: 60_000, priorities: [0, 5, 0], skipFolders: [2], maxSize: GiB })), ['b1']);
  assert.deepEqual(names(await store.claim({ limit: 10, leaseMs: 60_000, priorities: [0, 5, 0], skipFolders: [2], maxSize: GiB })), ['b2', 'a1'], 'a2 is large, c1 quiet');
  assert.deepEqual(names(await store.claim({ limit: 10, leaseMs: 60_000, skipFolders: [2] })), ['a2']);
  assert.deepEqual(names(await store.claim({ limit: 10, leaseMs: 60_000 })), ['c1'], 'the quiet window over: its job goes');
  assert.equal(claimOrder({ priorities: [0, 0] }), '', 'no priorities: plain creation order');
  assert.throws(() => claimOrder({ priorities: [1.5] }), /whole number/);
});

test('the claimer keeps a worker for small files behind a run of large ones', async (t) => {
  const files = [
    ...Array.from({ length: 6 }, (_, i) => ({ name: `big${i}`, folder: 0, size: 10 * GiB })),
    { name: 'small', folder: 0, size: 1024 },
  ];
  const { store, ids } = await storeWith(t, files);
  const held: string[] = [];
  const workers = 3;
  const pool = {
    get freeSlots() {
      return workers - held.length;
    },
    heldIds: () => [...held],
    cancel: () => false,
  };
  const rules: QueueRules = { priorities: [0], quietFolders: [], workers, smallFileBytes: GiB, smallFileWorkers: 1 };
  const adopted: string[] = [];
  const claimer = createClaimer({
    store,
    pool,
    leaseMs: 60_000,
    intervalMs: 60_000,
    info: { host: 'h', pid: 1, startedAt: 0 },
    logger: pino({ level: 'silent' }),
    adopt: async ({ job }) => {
      held.push(job.id);
      adopted.push(ids.get(job.id)!);
    },
    rules: () => rules,
  });
  t.after(() => claimer.close());
  claimer.start();
  for (let i = 0; i < 100 && adopted.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  // Oldest first would take big0..big2; one worker is kept for files up to 1 GiB, so the small file goes now.
  assert.deepEqual(adopted, ['big0', 'big1', 'small']);
});
