/**
 * The behaviour every JobStore promises, as one suite run against each implementation (the tus-node-server
 * pattern): SQLite now (sqlite-store.test.ts), PostgreSQL later (issue 10) with the same call.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isPostflowError } from '../../src/errors.ts';
import { ERR_JOBS_ILLEGAL_TRANSITION, ERR_JOBS_PATH_TAKEN, ERR_JOBS_STORE_CLOSED } from '../../src/jobs/errors.ts';
import { JOB_STATES, type JobState } from '../../src/jobs/states.ts';
import type { DiscoveredFile, Job, JobStore } from '../../src/jobs/store.ts';

export interface StoreHarness {
  /** A fresh, empty store (called once per test). */
  open(): Promise<JobStore>;
  /** The same underlying data opened again, after the test closed the previous handle. */
  reopen(): Promise<JobStore>;
  /** Removes everything the harness created; the test has closed its handles (close is idempotent). */
  destroy(): Promise<void>;
}

/** `now` is the clock the store must use for every time it records, so tests control ordering. */
export type MakeStore = (now: () => number) => Promise<StoreHarness>;

let fileSeq = 0;
export function fileFor(path: string, over: Partial<DiscoveredFile> = {}): DiscoveredFile {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return {
    folderIndex: 0,
    root: '/watch',
    path,
    relPath: path.replace(/^\/watch\//, ''),
    name,
    size: 1_000_000,
    mtimeMs: 1_732_766_400_123.4567, // fractional, as fs.stat gives it
    ino: ++fileSeq,
    destination: 'folder-1',
    ...over,
  };
}

const STEPS: [JobState, JobState][] = [
  ['discovered', 'stable'],
  ['stable', 'queued'],
  ['queued', 'exposing'],
  ['exposing', 'importing'],
  ['importing', 'done'],
];

/** Walks a job along the happy path up to `target`. */
async function advance(store: JobStore, id: string, target: JobState): Promise<void> {
  for (const [from, to] of STEPS) {
    assert.equal(await store.transition(id, from, to), true, `${from} → ${to}`);
    if (to === target) return;
  }
}

export function runStoreContract(name: string, makeStore: MakeStore): void {
  describe(`JobStore contract: ${name}`, () => {
    let clock = 0;
    const now = () => clock;
    let harness: StoreHarness;
    let store: JobStore;

    beforeEach(async () => {
      clock = 1_000;
      harness = await makeStore(now);
      store = await harness.open();
    });
    afterEach(async () => {
      await store.close();
      await harness.destroy();
    });

    describe('discover', () => {
      test('creates a discovered job with every field and a creating event', async () => {
        const f = fileFor('/watch/a/clip.mov');
        const job = await store.discover(f);
        assert.match(job.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        assert.deepEqual(job, {
          id: job.id,
          ...f,
          state: 'discovered',
          attempts: 0,
          nextAttemptAt: null,
          lastError: null,
          frameioFileId: null,
          viewUrl: null,
          sourceUrl: null,
          importRequestedAt: null,
          sha256: null,
          frameioFolderId: null,
          frameioFolderPath: null,
          versionStackId: null,
          landing: null,
          sentAt: null,
          confirmedAt: null,
          afterUploadPath: null,
          createdAt: 1_000,
          updatedAt: 1_000,
          startedAt: null,
          finishedAt: null,
        } satisfies Job);
        assert.deepEqual(await store.get(job.id), job);
        assert.deepEqual(await store.events(job.id), [{ at: 1_000, from: null, to: 'discovered', detail: null }]);
      });

      test('the same file seen again is the same job, not a second one', async () => {
        const f = fileFor('/watch/a.mov');
        const first = await store.discover(f);
        clock = 2_000;
        const again = await store.discover(f);
        assert.deepEqual(again, first);
        assert.equal((await store.list()).length, 1);
      });

      test('a changed file updates the open job; stable/queued go back to discovered', async () => {
        for (const state of ['discovered', 'stable', 'queued'] as const) {
          const path = `/watch/${state}.mov`;
          const job = await store.discover(fileFor(path, { size: 10 }));
          if (state !== 'discovered') await advance(store, job.id, state);
          clock += 1_000;
          const newer = 1_732_766_500_000.25;
          const changed = await store.discover(fileFor(path, { size: 20, mtimeMs: newer, ino: 77 }));
          assert.equal(changed.id, job.id, state);
          assert.equal(changed.state, 'discovered', state);
          assert.deepEqual([changed.size, changed.mtimeMs, changed.ino, changed.updatedAt], [20, newer, 77, clock]);
          const evs = await store.events(job.id);
          if (state !== 'discovered') assert.deepEqual(evs.at(-1), { at: clock, from: state, to: 'discovered', detail: 'file changed' });
        }
        assert.equal((await store.list()).length, 3);
      });

      test('a file re-exported while its job is in flight gets a new job; never two open jobs per path', async () => {
        const path = '/watch/v.mov';
        const old = await store.discover(fileFor(path, { size: 1 }));
        await advance(store, old.id, 'importing');
        const sameFile = await store.discover(fileFor(path, { size: 1, ino: old.ino }));
        assert.equal(sameFile.id, old.id, 'the unchanged file is the job already in flight');
        assert.equal(sameFile.state, 'importing');
        const next = await store.discover(fileFor(path, { size: 2 }));
        assert.notEqual(next.id, old.id);
        assert.equal(next.state, 'discovered');
        assert.equal((await store.discover(fileFor(path, { size: 3 }))).id, next.id);
        assert.equal((await store.get(old.id))?.size, 1, 'the in-flight job keeps the file it was started with');
        // The old version may not reopen beside the new one; it can only end.
        await assert.rejects(store.transition(old.id, 'importing', 'queued'), (e) => isPostflowError(e, ERR_JOBS_PATH_TAKEN));
        assert.equal((await store.get(old.id))?.state, 'importing');
        assert.equal(await store.transition(old.id, 'importing', 'cancelled'), true);
      });

      test('a late report of an older version (older mtime) changes nothing, open or in flight', async () => {
        const path = '/watch/late.mov';
        const final = fileFor(path, { size: 500, mtimeMs: 2_000_000.5, ino: 9 });
        const job = await store.discover(final);
        await advance(store, job.id, 'queued');
        clock += 1_000;
        const stale = await store.discover({ ...final, size: 0, mtimeMs: 1_999_999.75 });
        assert.deepEqual(stale, await store.get(job.id));
        assert.deepEqual([stale.state, stale.size, stale.mtimeMs], ['queued', 500, 2_000_000.5]);
        assert.ok(await store.transition(job.id, 'queued', 'exposing'));
        assert.ok(await store.transition(job.id, 'exposing', 'importing'));
        assert.equal((await store.discover({ ...final, size: 0, mtimeMs: 1_999_999.75 })).id, job.id, 'no second job for an older look');
        assert.equal((await store.list()).length, 1);
        assert.notEqual((await store.discover({ ...final, size: 600, mtimeMs: 2_000_001 })).id, job.id, 'a newer version still gets its own job');
      });

      test('a path whose job ended gets a new job', async () => {
        const f = fileFor('/watch/again.mov');
        const a = await store.discover(f);
        await advance(store, a.id, 'done');
        const b = await store.discover({ ...f, size: f.size + 1 });
        assert.notEqual(b.id, a.id);
      });
    });

    describe('transition', () => {
      test('compare-and-set: false when the job is elsewhere or missing, and nothing changes', async () => {
        const job = await store.discover(fileFor('/watch/c.mov'));
        assert.equal(await store.transition(job.id, 'stable', 'queued'), false);
        assert.equal(await store.transition('00000000-0000-4000-8000-000000000000', 'discovered', 'stable'), false);
        assert.deepEqual(await store.get(job.id), job);
        assert.equal((await store.events(job.id)).length, 1);
        assert.equal(await store.transition(job.id, ['stable', 'discovered'], 'cancelled'), true);
        assert.equal((await store.get(job.id))?.state, 'cancelled');
      });

      test('racing transitions: exactly one wins', async () => {
        const job = await store.discover(fileFor('/watch/race.mov'));
        await advance(store, job.id, 'queued');
        const results = await Promise.all([
          ...Array.from({ length: 8 }, () => store.transition(job.id, 'queued', 'exposing')),
          store.transition(job.id, 'queued', 'cancelled'),
        ]);
        assert.equal(results.filter(Boolean).length, 1);
        const after = await store.get(job.id);
        assert.ok(after?.state === 'exposing' || after?.state === 'cancelled');
        assert.equal(after.attempts, after.state === 'exposing' ? 1 : 0);
        assert.equal((await store.events(job.id)).filter((e) => e.from === 'queued').length, 1);
      });

      test('an edge outside the state table is rejected before anything is written', async () => {
        const job = await store.discover(fileFor('/watch/ill.mov'));
        await assert.rejects(store.transition(job.id, 'discovered', 'queued'), (e) => isPostflowError(e, ERR_JOBS_ILLEGAL_TRANSITION));
        // one illegal edge among the from-states is enough to refuse
        await assert.rejects(store.transition(job.id, ['stable', 'discovered'], 'queued'), (e) => isPostflowError(e, ERR_JOBS_ILLEGAL_TRANSITION));
        assert.equal((await store.get(job.id))?.state, 'discovered');
      });

      test('applies the patch, records the event and keeps the bookkeeping', async () => {
        const job = await store.discover(fileFor('/watch/b.mov'));
        await advance(store, job.id, 'queued');
        clock = 5_000;
        assert.ok(await store.transition(job.id, 'queued', 'exposing', { sourceUrl: 'https://t/x/b.mov' }));
        let j = (await store.get(job.id))!;
        assert.deepEqual([j.state, j.attempts, j.startedAt, j.updatedAt, j.sourceUrl], ['exposing', 1, 5_000, 5_000, 'https://t/x/b.mov']);
        clock = 6_000;
        assert.ok(await store.transition(job.id, 'exposing', 'queued', { nextAttemptAt: 9_000, lastError: 'tunnel lost' }));
        clock = 9_000;
        assert.ok(await store.transition(job.id, 'queued', 'exposing'));
        j = (await store.get(job.id))!;
        assert.deepEqual([j.attempts, j.startedAt, j.lastError, j.nextAttemptAt], [2, 5_000, 'tunnel lost', 9_000]);
        clock = 10_000;
        assert.ok(await store.transition(job.id, 'exposing', 'failed', { lastError: 'gave up' }));
        j = (await store.get(job.id))!;
        assert.deepEqual([j.state, j.finishedAt], ['failed', 10_000]);
        clock = 11_000;
        assert.ok(await store.transition(job.id, 'failed', 'queued', undefined, 'manual retry'));
        j = (await store.get(job.id))!;
        assert.deepEqual([j.state, j.attempts, j.finishedAt], ['queued', 0, null]);
        const evs = await store.events(job.id);
        assert.deepEqual(evs.slice(-5), [
          { at: 5_000, from: 'queued', to: 'exposing', detail: null },
          { at: 6_000, from: 'exposing', to: 'queued', detail: 'tunnel lost' },
          { at: 9_000, from: 'queued', to: 'exposing', detail: null },
          { at: 10_000, from: 'exposing', to: 'failed', detail: 'gave up' },
          { at: 11_000, from: 'failed', to: 'queued', detail: 'manual retry' },
        ]);
      });

      test('explicit patch values win over the bookkeeping', async () => {
        const job = await store.discover(fileFor('/watch/p.mov'));
        await advance(store, job.id, 'queued');
        assert.ok(await store.transition(job.id, 'queued', 'exposing', { attempts: 7, startedAt: 42 }));
        const j = (await store.get(job.id))!;
        assert.deepEqual([j.attempts, j.startedAt], [7, 42]);
      });
    });

    describe('update, list, counts', () => {
      test('update sets fields without a state change; false for a missing job', async () => {
        const job = await store.discover(fileFor('/watch/u.mov'));
        clock = 3_000;
        assert.equal(await store.update(job.id, { frameioFileId: 'f-1', importRequestedAt: 2_999, sha256: 'ab'.repeat(32) }), true);
        const j = (await store.get(job.id))!;
        assert.deepEqual([j.state, j.frameioFileId, j.importRequestedAt, j.sha256, j.updatedAt], ['discovered', 'f-1', 2_999, 'ab'.repeat(32), 3_000]);
        assert.equal(await store.update(job.id, { frameioFileId: null }), true);
        assert.equal((await store.get(job.id))?.frameioFileId, null);
        assert.equal(await store.update('00000000-0000-4000-8000-000000000000', { lastError: 'x' }), false);
        assert.equal((await store.events(job.id)).length, 1, 'update writes no event');
        assert.equal(await store.get('00000000-0000-4000-8000-000000000000'), undefined);
      });

      test('a patch cannot set identity or state', async () => {
        const job = await store.discover(fileFor('/watch/id.mov'));
        await assert.rejects(store.update(job.id, { state: 'done' } as never));
        await assert.rejects(store.update(job.id, { id: 'other' } as never));
        assert.deepEqual(await store.get(job.id), job);
      });

      test('list filters by state and due time, orders by creation and limits', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) {
          clock = 1_000 + i; // distinct creation times
          ids.push((await store.discover(fileFor(`/watch/l${i}.mov`))).id);
        }
        clock = 2_000;
        ids.push((await store.discover(fileFor('/watch/same-time-1.mov'))).id);
        ids.push((await store.discover(fileFor('/watch/same-time-2.mov'))).id);
        await advance(store, ids[1]!, 'queued');
        await advance(store, ids[3]!, 'queued');
        await store.update(ids[3]!, { nextAttemptAt: 5_000 });
        await advance(store, ids[4]!, 'done');
        const idsOf = (js: Job[]) => js.map((j) => j.id);
        assert.deepEqual(idsOf(await store.list()), ids);
        assert.deepEqual(idsOf(await store.list({ order: 'desc' })), [...ids].reverse());
        assert.deepEqual(idsOf(await store.list({ limit: 2 })), ids.slice(0, 2));
        assert.deepEqual(idsOf(await store.list({ order: 'desc', limit: 1 })), [ids[6]]);
        assert.deepEqual(idsOf(await store.list({ states: ['queued'] })), [ids[1], ids[3]]);
        assert.deepEqual(idsOf(await store.list({ states: ['queued'], dueBy: 4_999 })), [ids[1]]);
        assert.deepEqual(idsOf(await store.list({ states: ['queued'], dueBy: 5_000 })), [ids[1], ids[3]]);
        assert.deepEqual(idsOf(await store.list({ states: ['done', 'discovered'] })), [ids[0], ids[2], ids[4], ids[5], ids[6]]);
        assert.deepEqual(await store.list({ states: [] }), []);
        await store.update(ids[2]!, { frameioFileId: 'f-2' });
        await store.update(ids[5]!, { frameioFileId: 'f-5' });
        assert.deepEqual(idsOf(await store.list({ frameioFileIds: ['f-5', 'f-2', 'f-none'] })), [ids[2], ids[5]]);
        assert.deepEqual(idsOf(await store.list({ frameioFileIds: ['f-5'], states: ['done'] })), []);
        assert.deepEqual(await store.list({ frameioFileIds: [] }), []);
        assert.deepEqual(idsOf(await store.list({ path: '/watch/l4.mov' })), [ids[4]]);
        assert.deepEqual(idsOf(await store.list({ path: '/watch/l4.mov', states: ['queued'] })), []);
        assert.deepEqual(await store.list({ path: '/watch/none.mov' }), []);
      });

      test('where a file landed and when: the issue-8 fields round-trip', async () => {
        const job = await store.discover(fileFor('/watch/m.mov'));
        const patch = {
          frameioFolderId: 'folder-1',
          frameioFolderPath: 'ep101/reel2',
          versionStackId: 'stack-1',
          landing: 'version',
          sentAt: 1_500,
          confirmedAt: 1_600,
          afterUploadPath: '/watch/_uploaded/m.mov',
        } as const;
        assert.equal(await store.update(job.id, patch), true);
        const j = (await store.get(job.id))!;
        assert.deepEqual(
          [j.frameioFolderId, j.frameioFolderPath, j.versionStackId, j.landing, j.sentAt, j.confirmedAt, j.afterUploadPath],
          Object.values(patch),
        );
      });

      test('counts has every state, zeros included', async () => {
        const empty = await store.counts();
        assert.deepEqual(empty, Object.fromEntries(JOB_STATES.map((s) => [s, 0])));
        const a = await store.discover(fileFor('/watch/c1.mov'));
        const b = await store.discover(fileFor('/watch/c2.mov'));
        await store.discover(fileFor('/watch/c3.mov'));
        await advance(store, a.id, 'done');
        await store.transition(b.id, 'discovered', 'cancelled');
        assert.deepEqual(await store.counts(), { ...empty, discovered: 1, done: 1, cancelled: 1 });
      });
    });

    describe('known files, meta, persistence', () => {
      test('a done file is known; a re-export with new size or mtime is not', async () => {
        const f = fileFor('/watch/k.mov');
        assert.equal(await store.isKnown(f.path, f.size, f.mtimeMs), false);
        const job = await store.discover(f);
        await advance(store, job.id, 'importing');
        assert.equal(await store.isKnown(f.path, f.size, f.mtimeMs), false, 'not before done');
        assert.equal(await store.transition(job.id, 'importing', 'done'), true);
        assert.equal(await store.isKnown(f.path, f.size, f.mtimeMs), true);
        assert.equal(store.isKnownSync(f.path, f.size, f.mtimeMs), true);
        assert.equal(await store.isKnown(f.path, f.size + 1, f.mtimeMs), false);
        assert.equal(await store.isKnown(f.path, f.size, f.mtimeMs + 1), false);
        assert.equal(store.isKnownSync(f.path, f.size, f.mtimeMs + 1), false);
        assert.equal(await store.isKnown('/watch/other.mov', f.size, f.mtimeMs), false);
      });

      test('a failed or cancelled job does not make its file known', async () => {
        const f = fileFor('/watch/nk.mov');
        const job = await store.discover(f);
        await advance(store, job.id, 'exposing');
        await store.transition(job.id, 'exposing', 'failed');
        assert.equal(await store.isKnown(f.path, f.size, f.mtimeMs), false);
      });

      test('baseline files are known; recording again replaces the entry for the path', async () => {
        await store.recordBaseline([
          { path: '/watch/old1.mov', size: 10, mtimeMs: 1.25 },
          { path: '/watch/old2.mov', size: 20, mtimeMs: 2 },
        ]);
        assert.equal(await store.isKnown('/watch/old1.mov', 10, 1.25), true);
        assert.equal(store.isKnownSync('/watch/old2.mov', 20, 2), true);
        assert.equal(await store.isKnown('/watch/old1.mov', 11, 1.25), false);
        await store.recordBaseline([{ path: '/watch/old1.mov', size: 11, mtimeMs: 3 }]);
        assert.equal(await store.isKnown('/watch/old1.mov', 11, 3), true);
        assert.equal(await store.isKnown('/watch/old1.mov', 10, 1.25), false);
        await store.recordBaseline([]);
        assert.equal((await store.list()).length, 0, 'a baseline creates no jobs');
      });

      test('meta: missing is undefined, set overwrites', async () => {
        assert.equal(await store.getMeta('baseline'), undefined);
        await store.setMeta('baseline', 'a');
        await store.setMeta('baseline', 'b');
        await store.setMeta('other', '');
        assert.equal(await store.getMeta('baseline'), 'b');
        assert.equal(await store.getMeta('other'), '');
      });

      test('everything survives close and reopen', async () => {
        const f = fileFor('/watch/persist.mov');
        const done = await store.discover(f);
        await advance(store, done.id, 'done');
        const open = await store.discover(fileFor('/watch/open.mov'));
        await advance(store, open.id, 'importing');
        await store.update(open.id, { frameioFileId: 'f-9', importRequestedAt: 1_234 });
        await store.recordBaseline([{ path: '/watch/base.mov', size: 5, mtimeMs: 6 }]);
        await store.setMeta('baseline', '2026-11-28');
        const before = { jobs: await store.list(), counts: await store.counts(), events: await store.events(open.id) };
        await store.close();
        store = await harness.reopen();
        assert.deepEqual(await store.list(), before.jobs);
        assert.deepEqual(await store.counts(), before.counts);
        assert.deepEqual(await store.events(open.id), before.events);
        assert.equal(await store.getMeta('baseline'), '2026-11-28');
        assert.equal(await store.isKnown(f.path, f.size, f.mtimeMs), true);
        assert.equal(await store.isKnown('/watch/base.mov', 5, 6), true);
        // and it keeps working against the reopened data
        assert.equal((await store.discover({ ...fileFor('/watch/open.mov'), ino: open.ino })).id, open.id);
        assert.equal(await store.transition(open.id, 'importing', 'done'), true);
      });

      test('close is idempotent; use after close fails clearly', async () => {
        await store.close();
        await store.close();
        await assert.rejects(store.get('x'), (e) => isPostflowError(e, ERR_JOBS_STORE_CLOSED));
        await assert.rejects(store.discover(fileFor('/watch/late.mov')), (e) => isPostflowError(e, ERR_JOBS_STORE_CLOSED));
      });
    });

    // Issue 10: the claim protocol, as one node sees it (several nodes: test/jobs/pg-store.test.ts).
    describe('leases (one node)', () => {
      const info = { host: 'test-host', pid: 4242, startedAt: 500 };
      const ids = (c: { job: Job }[]) => c.map((x) => x.job.id);

      test('claim takes due queued jobs oldest first, up to the limit, once; a heartbeat without them gives them up', async () => {
        const jobs: Job[] = [];
        for (let i = 0; i < 4; i++) {
          clock = 1_000 + i;
          jobs.push(await store.discover(fileFor(`/watch/q${i}.mov`)));
        }
        for (const j of jobs.slice(0, 3)) await advance(store, j.id, 'queued');
        await store.update(jobs[2]!.id, { nextAttemptAt: 50_000 }); // retry later: not due yet
        clock = 2_000;
        const first = await store.claim({ limit: 1, leaseMs: 60_000 });
        assert.deepEqual(ids(first), [jobs[0]!.id]);
        assert.equal(first[0]!.previousNode, null);
        assert.deepEqual(ids(await store.claim({ limit: 10, leaseMs: 60_000 })), [jobs[1]!.id], 'held jobs, discovered and not-yet-due ones are not offered');
        assert.deepEqual(await store.claim({ limit: 10, leaseMs: 60_000 }), []);
        assert.deepEqual(await store.claim({ limit: 0, leaseMs: 60_000 }), []);
        assert.deepEqual(await store.heartbeat([jobs[0]!.id], 60_000, info), [], 'nothing lost');
        assert.deepEqual(ids(await store.claim({ limit: 10, leaseMs: 60_000 })), [jobs[1]!.id], 'given up by the heartbeat, so offered again');
        clock = 50_000;
        assert.deepEqual(ids(await store.claim({ limit: 10, leaseMs: 60_000 })), [jobs[2]!.id], 'due now');
      });

      test('in-flight jobs nobody holds are claimed as they are; an expired lease is taken over naming its holder', async () => {
        const j = await store.discover(fileFor('/watch/inflight.mov'));
        await advance(store, j.id, 'importing');
        const got = await store.claim({ limit: 5, leaseMs: 40 });
        assert.deepEqual(got.map((c) => [c.job.id, c.job.state, c.previousNode]), [[j.id, 'importing', null]]);
        assert.deepEqual(await store.claim({ limit: 5, leaseMs: 40 }), []);
        clock += 10_000;
        await new Promise((r) => setTimeout(r, 120)); // PostgreSQL leases run on the database's clock
        const again = await store.claim({ limit: 5, leaseMs: 60_000 });
        assert.deepEqual(again.map((c) => [c.job.id, c.previousNode]), [[j.id, store.nodeId]]);
      });

      test('nodes: heartbeats list the node with its jobs; an ended job leaves its lease; release marks the node stopped', async () => {
        const a = await store.discover(fileFor('/watch/n1.mov'));
        const b = await store.discover(fileFor('/watch/n2.mov'));
        await advance(store, a.id, 'queued');
        await advance(store, b.id, 'queued');
        assert.equal((await store.claim({ limit: 5, leaseMs: 60_000 })).length, 2);
        await store.heartbeat([a.id, b.id], 60_000, info);
        let nodes = await store.nodes();
        assert.equal(nodes.length, 1);
        assert.deepEqual([nodes[0]!.nodeId, nodes[0]!.host, nodes[0]!.pid, nodes[0]!.startedAt, nodes[0]!.stoppedAt, nodes[0]!.jobs], [store.nodeId, 'test-host', 4242, 500, null, [a.id, b.id]]);
        assert.ok(nodes[0]!.heartbeatAt > 0);
        assert.equal(await store.transition(a.id, 'queued', 'exposing'), true, 'the holder may move its job');
        assert.equal(await store.transition(a.id, 'exposing', 'failed', { lastError: 'x' }), true);
        assert.deepEqual((await store.nodes())[0]!.jobs, [b.id]);
        await store.release();
        nodes = await store.nodes();
        assert.deepEqual(nodes[0]!.jobs, []);
        assert.notEqual(nodes[0]!.stoppedAt, null);
        assert.deepEqual(ids(await store.claim({ limit: 5, leaseMs: 60_000 })), [b.id], 'released: claimable again');
      });
    });
  });
}
