/**
 * The PostgreSQL store against a real throwaway server: the whole JobStore contract (same suite as SQLite),
 * then what only a shared store has to prove — several nodes racing for discovery, claims and takeovers,
 * concurrent migration, fencing of a node whose lease was taken over.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { isPostflowError } from '../../src/errors.ts';
import { ERR_JOBS_STORE_TOO_NEW, ERR_JOBS_STORE_UNREACHABLE, ERR_JOBS_STORE_URL } from '../../src/jobs/errors.ts';
import { openPgStore, PG_SCHEMA_VERSION, redactStoreUrl, type PgJobStore } from '../../src/jobs/pg-store.ts';
import { fileFor, runStoreContract } from './store-contract.ts';
import { pgSkipReason, startPgCluster, type PgCluster } from './pg-cluster.ts';

const skip = pgSkipReason();
let cluster: PgCluster | undefined;

if (skip) {
  test('PostgreSQL job store', { skip }, () => undefined);
} else {
  before(async () => {
    cluster = await startPgCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  runStoreContract('postgresql', async (now) => {
    const url = await cluster!.createDatabase();
    const name = new URL(url).pathname.slice(1);
    return {
      open: () => openPgStore({ url, now, nodeId: 'node-a' }),
      reopen: () => openPgStore({ url, now, nodeId: 'node-a' }),
      destroy: () => cluster!.dropDatabase(name),
    };
  });

  describe('PostgreSQL store: a fleet on one database', () => {
    /** N handles on one fresh database, as N daemons would hold them. */
    async function fleet(t: { after: (fn: () => Promise<void>) => void }, n: number): Promise<PgJobStore[]> {
      const url = await cluster!.createDatabase();
      // Started together: the advisory lock lets exactly one migrate, the others wait and find it done.
      const stores = await Promise.all(Array.from({ length: n }, (_, i) => openPgStore({ url, nodeId: `node-${i}` })));
      t.after(async () => {
        for (const s of stores) await s.close();
        await cluster!.dropDatabase(new URL(url).pathname.slice(1));
      });
      return stores;
    }

    test('nodes starting together migrate once', async (t) => {
      const [a] = await fleet(t, 4);
      const v = await a!.pool.query('SELECT version FROM postflow_schema');
      assert.deepEqual(v.rows, [{ version: PG_SCHEMA_VERSION }]);
    });

    test('the same file discovered by three nodes at once is one job', async (t) => {
      const nodes = await fleet(t, 3);
      for (let round = 0; round < 20; round++) {
        const f = fileFor(`/watch/race-${round}.mov`);
        const seen = await Promise.all(nodes.flatMap((s) => [s.discover(f), s.discover(f)]));
        assert.equal(new Set(seen.map((j) => j.id)).size, 1, `round ${round}`);
      }
      assert.equal((await nodes[0]!.list()).length, 20);
    });

    test('a file another node imported is not a new job, even before this node\'s known-files cache catches up', async (t) => {
      const [a, b] = await fleet(t, 2);
      const f = fileFor('/watch/done-elsewhere.mov');
      const job = await a!.discover(f);
      for (const [from, to] of [['discovered', 'stable'], ['stable', 'queued'], ['queued', 'exposing'], ['exposing', 'importing'], ['importing', 'done']] as const) {
        assert.ok(await a!.transition(job.id, from, to));
      }
      assert.equal((await b!.discover(f)).id, job.id);
      assert.equal((await b!.list()).length, 1);
      assert.equal(await b!.isKnown(f.path, f.size, f.mtimeMs), true);
    });

    test('claims under contention: 200 jobs, 3 nodes claiming in parallel, each job to exactly one node', async (t) => {
      const nodes = await fleet(t, 3);
      const [a] = nodes;
      for (let i = 0; i < 200; i++) {
        const j = await a!.discover(fileFor(`/watch/c${i}.mov`));
        await a!.transition(j.id, 'discovered', 'stable');
        await a!.transition(j.id, 'stable', 'queued');
      }
      const owner = new Map<string, string>();
      await Promise.all(
        nodes.map(async (s) => {
          for (;;) {
            const got = await s.claim({ limit: 7, leaseMs: 60_000 });
            if (got.length === 0) return;
            for (const c of got) {
              assert.equal(owner.get(c.job.id), undefined, `job ${c.job.id} claimed by ${owner.get(c.job.id)} and ${s.nodeId}`);
              owner.set(c.job.id, s.nodeId);
            }
          }
        }),
      );
      assert.equal(owner.size, 200);
      const perNode = (await a!.nodes()).length; // no heartbeat yet: nodes appear with their first heartbeat
      assert.equal(perNode, 0);
      for (const s of nodes) await s.heartbeat([...owner].filter(([, n]) => n === s.nodeId).map(([id]) => id), 60_000, { host: 'h', pid: 1, startedAt: 1 });
      const fleetView = await a!.nodes();
      assert.equal(fleetView.length, 3);
      assert.equal(fleetView.reduce((n, x) => n + x.jobs.length, 0), 200);
    });

    test('a node that stops heartbeating loses its jobs to another; its late writes are refused (fencing)', async (t) => {
      const [a, b] = await fleet(t, 2);
      const j = await a!.discover(fileFor('/watch/takeover.mov'));
      await a!.transition(j.id, 'discovered', 'stable');
      await a!.transition(j.id, 'stable', 'queued');
      assert.equal((await a!.claim({ limit: 1, leaseMs: 300 })).length, 1);
      assert.ok(await a!.transition(j.id, 'queued', 'exposing'));
      assert.ok(await a!.transition(j.id, 'exposing', 'importing', { importRequestedAt: 123 }));
      // While a's lease lives, b neither gets the job nor may touch it.
      assert.deepEqual(await b!.claim({ limit: 5, leaseMs: 300 }), []);
      assert.equal(await b!.transition(j.id, 'importing', 'cancelled'), false);
      assert.equal(await b!.update(j.id, { lastError: 'b was here' }), false);
      // a renews once, then "dies": no more heartbeats.
      assert.deepEqual(await a!.heartbeat([j.id], 300, { host: 'a', pid: 1, startedAt: 1 }), []);
      await new Promise((r) => setTimeout(r, 450));
      const taken = await b!.claim({ limit: 5, leaseMs: 60_000 });
      assert.deepEqual(taken.map((c) => [c.job.id, c.job.state, c.job.importRequestedAt, c.previousNode]), [[j.id, 'importing', 123, 'node-0']]);
      // a wakes up: its writes are refused and its heartbeat says it lost the job.
      assert.equal(await a!.transition(j.id, 'importing', 'done'), false);
      assert.equal(await a!.update(j.id, { frameioFileId: 'late' }), false);
      assert.deepEqual(await a!.heartbeat([j.id], 60_000, { host: 'a', pid: 1, startedAt: 1 }), [j.id]);
      assert.equal((await b!.get(j.id))?.frameioFileId, null);
      assert.ok(await b!.transition(j.id, 'importing', 'queued', { attempts: 0 }));
      assert.deepEqual((await b!.nodes()).map((n) => [n.nodeId, n.jobs]), [['node-0', []]], 'b has not heartbeated yet; a holds nothing');
    });

    test('a database of a newer postflow is refused; a bad or unreachable URL says so without the password', async (t) => {
      const url = await cluster!.createDatabase();
      t.after(() => cluster!.dropDatabase(new URL(url).pathname.slice(1)));
      const s = await openPgStore({ url });
      await s.pool.query('UPDATE postflow_schema SET version = $1', [PG_SCHEMA_VERSION + 1]);
      await s.close();
      await assert.rejects(openPgStore({ url }), (e) => isPostflowError(e, ERR_JOBS_STORE_TOO_NEW));
      await assert.rejects(openPgStore({ url: 'mysql://x/y' }), (e) => isPostflowError(e, ERR_JOBS_STORE_URL));
      const dead = 'postgres://postflow:hunter2@127.0.0.1:1/postflow';
      await assert.rejects(openPgStore({ url: dead }), (e) => {
        assert.ok(isPostflowError(e, ERR_JOBS_STORE_UNREACHABLE));
        assert.ok(!(e as Error).message.includes('hunter2'), (e as Error).message);
        assert.ok((e as Error).message.includes(redactStoreUrl(dead)));
        return true;
      });
      // the client package stays importable as the store uses it (guards a broken install)
      assert.equal(typeof pg.Pool, 'function');
    });
  });
}
