/**
 * The fleet's shared Frame.io limiter against a real throwaway PostgreSQL: its SQL against the pure model,
 * three "nodes" (three pools, three limiters) sharing one budget, three clients against the emulator's
 * enforced per-operation limits, and PostgreSQL stopped mid-run.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { createFrameioClient, type CallLimiter, type CallRecord } from '../../src/frameio/client.ts';
import { createTokenProvider } from '../../src/frameio/ims.ts';
import { createRateLimiter } from '../../src/frameio/rate-limit.ts';
import { adjust, seedBucket, take, type BucketAdjustment, type SharedBucket } from '../../src/frameio/shared-bucket.ts';
import { ADJUST_SQL, ACQUIRE_SQL, RATE_BUCKETS_TABLE, createSharedLimiter, type SharedLimiter } from '../../src/frameio/shared-limiter.ts';
import { writeTokenFile } from '../../src/frameio/token-file.ts';
import { startEmulator } from '../doubles/frameio/emulator.ts';
import { captureLogs } from '../log-capture.ts';
import { pgSkipReason, startPgCluster, type PgCluster } from '../jobs/pg-cluster.ts';

interface Ctx {
  after: (fn: () => Promise<void> | void) => void;
}

const OP = 'files.show_file_upload_status'; // 5 calls per second per user: the tightest the upload loop calls
const silent = pino({ level: 'silent' });

const capture = () => captureLogs('info');

function newPool(t: Ctx, url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 2000 });
  pool.on('error', () => undefined); // a stopped server drops idle connections; the limiter sees it on use
  t.after(() => pool.end().catch(() => undefined));
  return pool;
}

/** Calls `acquire` from `loops` concurrent callers until `ms` have passed; returns the grants. */
async function hammer(limiter: CallLimiter, op: string, loops: number, ms: number): Promise<number> {
  const signal = AbortSignal.timeout(ms);
  let granted = 0;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      for (;;) {
        try {
          await limiter.acquire(op, signal);
        } catch {
          return; // the deadline
        }
        if (signal.aborted) return;
        granted++;
      }
    }),
  );
  return granted;
}

/** A TCP hop in front of PostgreSQL that can black-hole the database (connections open, no answers) and heal. */
async function flakyHop(t: Ctx, target: URL): Promise<{ url: string; hang(): void; heal(): void }> {
  let hanging = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (hanging) return; // accepted, never answered
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('data', (d) => hanging || upstream.write(d));
    upstream.on('data', (d) => hanging || client.write(d));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const url = new URL(target);
  url.port = String((server.address() as { port: number }).port);
  return {
    url: url.toString(),
    hang: () => (hanging = true),
    heal: () => {
      hanging = false;
      for (const s of sockets) s.destroy(); // the pool's stuck connections fail and are replaced
    },
  };
}

const skip = pgSkipReason();

if (skip) {
  test('shared Frame.io rate limiter (PostgreSQL)', { skip }, () => undefined);
} else {
  let cluster: PgCluster | undefined;
  before(async () => {
    cluster = await startPgCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  const freshDb = async (t: Ctx): Promise<string> => {
    const url = await cluster!.createDatabase();
    t.after(() => cluster!.dropDatabase(new URL(url).pathname.slice(1)));
    return url;
  };

  describe('shared Frame.io rate limiter', () => {
    test('its SQL computes what the pure model does (refill, take, wait, headers, 429 blocks)', async (t) => {
      const pool = newPool(t, await freshDb(t));
      await createSharedLimiter({ pool, local: createRateLimiter({ maxRequestsPerSecond: 1000 }), logger: silent }).ready();
      const seed = { limit: 5, windowMs: 1000 };
      let model: SharedBucket | undefined;
      const row = async (): Promise<SharedBucket> => {
        const r = await pool.query(`SELECT tokens, capacity, refill_per_ms, updated_ms, blocked_until_ms FROM ${RATE_BUCKETS_TABLE} WHERE operation = 'op'`);
        const x = r.rows[0] as Record<string, number>;
        return { tokens: x.tokens!, capacity: x.capacity!, refillPerMs: x.refill_per_ms!, updatedMs: x.updated_ms!, blockedUntilMs: x.blocked_until_ms! };
      };
      const sqlTake = async (now: number) => {
        const r = await pool.query(ACQUIRE_SQL, ['op', seed.limit, seed.limit / seed.windowMs, now]);
        return Number((r.rows[0] as { wait_ms: number }).wait_ms);
      };
      const sqlAdjust = (now: number, a: BucketAdjustment) =>
        pool.query(ADJUST_SQL, ['op', seed.limit, seed.limit / seed.windowMs, now, a.limit?.limit ?? null, a.limit ? a.limit.limit / a.limit.windowMs : null, a.remaining ?? null, a.blockMs ?? null]);
      const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-6, `${what}: SQL ${a}, model ${b}`);

      const script: [number, 'take' | BucketAdjustment][] = [
        [1000, 'take'], [1000, 'take'], [1001, 'take'], [1001, 'take'], [1002, 'take'], [1003, 'take'], [1003, 'take'],
        [1150, 'take'], [1210, 'take'], [1300, { remaining: 0 }], [1350, 'take'], [1400, { blockMs: 800 }], [1500, 'take'],
        [2199, 'take'], [2200, 'take'], [2201, 'take'], [2500, { limit: { limit: 3, windowMs: 1000 }, remaining: 2 }],
        [2500, 'take'], [2500, 'take'], [2500, 'take'], [2400, 'take'], [9000, 'take'], [9000, { remaining: 7 }], [9100, 'take'],
      ];
      let waits = 0;
      for (const [now, step] of script) {
        if (step === 'take') {
          const wait = await sqlTake(now);
          const m = take(model ?? { ...seedBucket(seed, now), tokens: seed.limit }, now);
          model = m.bucket;
          near(wait, m.waitMs, `wait at ${now}`);
          if (m.waitMs > 0) waits++;
        } else {
          await sqlAdjust(now, step);
          model = adjust(model!, step, now);
        }
        const r = await row();
        for (const k of Object.keys(r) as (keyof SharedBucket)[]) near(r[k], model[k], `${k} at ${now}`);
      }
      assert.ok(waits >= 5, 'the script reaches refusals, not only grants');
    });

    test('three nodes hammering one operation share one budget: the fleet gets what one node would', async (t) => {
      const url = await freshDb(t);
      const { logger, lines } = capture();
      const nodes: SharedLimiter[] = [0, 1, 2].map(() =>
        // Started together, as a fleet restarting: the table is created once, the others' races are harmless.
        createSharedLimiter({ pool: newPool(t, url), local: createRateLimiter({ maxRequestsPerSecond: 1000 }), logger }),
      );
      const ms = 2000;
      const grants = await Promise.all(nodes.map((n) => hammer(n, OP, 3, ms)));
      const total = grants.reduce((a, b) => a + b, 0);
      // 5/s: a full bucket of 5, then 5 per second. Each node alone would take that much: 45 together.
      const budget = 5 + (5 * ms) / 1000;
      assert.ok(total >= budget - 2 && total <= budget + 1, `fleet grants ${total} (per node ${grants.join('/')}), budget ${budget}`);
      assert.ok(grants.every((g) => g > 0), `every node got a share: ${grants.join('/')}`);
      assert.deepEqual(lines().filter((l) => Number(l.level) >= 40), [], 'no warnings');
    });

    test('against the emulator: three clients with shared limiters get no more 429s than one client alone', async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'pf-shared-limiter-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      const url = await freshDb(t);
      const ms = 2500;

      /** One emulator (one Frame.io user); `n` clients as `n` daemons, each limiter made by `limiter`. */
      const run = async (name: string, n: number, limiter: () => CallLimiter) => {
        const emu = await startEmulator({ faults: { enforceRateLimits: true } });
        t.after(() => emu.close());
        const records: CallRecord[] = [];
        const clients = await Promise.all(
          Array.from({ length: n }, async (_, i) => {
            const file = join(dir, `${name}-${i}`);
            await writeTokenFile(file, { refresh_token: emu.issueRefreshToken() });
            const tokens = createTokenProvider({ imsTokenUrl: emu.imsTokenUrl, clientId: emu.clientId, clientSecret: emu.clientSecret, refreshTokenFile: file, logger: silent });
            t.after(() => tokens.close());
            return createFrameioClient({
              apiUrl: emu.apiUrl,
              accountId: emu.accountId,
              clientId: emu.clientId,
              tokens,
              limiter: limiter(),
              logger: silent,
              maxRetries: 50,
              rateLimitBaseMs: 200,
              onCall: (c) => records.push(c),
            });
          }),
        );
        const { file } = await clients[0]!.localUpload(emu.rootFolderId, 'a.mov', 1000);
        await new Promise((r) => setTimeout(r, 1100)); // the bucket full again after the set-up calls
        records.length = 0;
        const signal = AbortSignal.timeout(ms);
        await Promise.all(
          clients.flatMap((c) =>
            [0, 1].map(async () => {
              while (!signal.aborted) await c.fileStatus(file.id, signal).catch(() => undefined);
            }),
          ),
        );
        const status = records.filter((r) => r.operation === OP);
        return { ok: status.filter((r) => r.status === 200).length, limited: status.filter((r) => r.status === 429).length };
      };
      const local = () => createRateLimiter({ maxRequestsPerSecond: 10 });
      const one = await run('one', 1, local);
      const fleet = await run('fleet', 3, () => createSharedLimiter({ pool: newPool(t, url), local: local(), logger: silent }));
      const unshared = await run('unshared', 3, local);
      const budget = 5 + (5 * ms) / 1000;
      t.diagnostic(`one node ${JSON.stringify(one)}; three shared ${JSON.stringify(fleet)}; three unshared ${JSON.stringify(unshared)}; budget ${budget}`);
      assert.ok(fleet.limited <= one.limited, `three shared limiters: ${fleet.limited} 429s; one client alone: ${one.limited}`);
      assert.ok(fleet.ok >= budget * 0.8, `the fleet still uses the budget: ${fleet.ok} of ${budget}`);
      assert.ok(unshared.limited > fleet.limited + 5, `without sharing, three nodes overrun the user's budget: ${unshared.limited} 429s`);
    });
  });

  test('a database that stops answering: one warn after the query timeout, local pacing, and back to shared when it heals', async (t) => {
    const hop = await flakyHop(t, new URL(await freshDb(t)));
    const pool = newPool(t, hop.url);
    const { logger, lines } = capture();
    const limiter = createSharedLimiter({ pool, local: createRateLimiter({ maxRequestsPerSecond: 1000 }), logger, retryMs: 400, queryTimeoutMs: 300 });
    assert.equal(await limiter.ready(), true);
    await limiter.acquire('files.show');
    hop.hang();
    let started = performance.now();
    await limiter.acquire('files.show');
    const firstMs = performance.now() - started;
    assert.ok(firstMs >= 250 && firstMs < 1000, `the first call waited for the query timeout only: ${Math.round(firstMs)} ms`);
    assert.equal(limiter.degraded, true);
    started = performance.now();
    for (let i = 0; i < 3; i++) await limiter.acquire('files.show');
    assert.ok(performance.now() - started < 100, 'until the retry time, calls do not wait for the database');
    hop.heal();
    await new Promise((r) => setTimeout(r, 450));
    await limiter.acquire('files.show');
    assert.equal(limiter.degraded, false);
    const events = lines().map((l) => [l.level, l.event]);
    assert.deepEqual(events, [[40, 'frameio-shared-limiter-down'], [30, 'frameio-shared-limiter-up']]);
    const row = await pool.query(`SELECT tokens FROM ${RATE_BUCKETS_TABLE} WHERE operation = 'files.show'`);
    assert.ok(Number((row.rows[0] as { tokens: number }).tokens) < 10, 'the healed call took its token from the shared row');
  });

  test('PostgreSQL stopped mid-run: calls go on at the local pace, with one warn line', async (t) => {
    // A cluster of its own: this test stops it.
    const own = await startPgCluster();
    t.after(() => own.stop());
    const pool = newPool(t, await own.createDatabase());
    const { logger, lines } = capture();
    const limiter = createSharedLimiter({ pool, local: createRateLimiter({ maxRequestsPerSecond: 1000 }), logger, retryMs: 200, queryTimeoutMs: 1000 });
    assert.equal(await limiter.ready(), true);
    const before = await hammer(limiter, OP, 2, 600);
    assert.ok(before >= 6 && before <= 9, `paced by the shared bucket while up: ${before}`);
    await own.stop();
    const during = await hammer(limiter, OP, 2, 1500);
    limiter.observe(OP, { limit: 5, windowMs: 1000, remaining: 0 });
    limiter.penalize(OP, 100);
    await limiter.flush();
    assert.equal(limiter.degraded, true);
    // The local bucket of the same operation paces alone now: it refilled during the 1.5 s, ~7 calls.
    assert.ok(during >= 4 && during <= 12, `grants with PostgreSQL down: ${during}`);
    const warns = lines().filter((l) => l.level === 40);
    assert.equal(warns.length, 1, JSON.stringify(warns));
    assert.equal(warns[0]!.event, 'frameio-shared-limiter-down');
  });
}
