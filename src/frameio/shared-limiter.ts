/**
 * The fleet's Frame.io pacing (issue 10 item 5). Frame.io limits each operation per user account, not per
 * machine, so daemons sharing one account must share one budget per operation: one token bucket row per
 * operation in the fleet's PostgreSQL (`frameio_rate_buckets`), on the database's clock so skewed machine
 * clocks do not matter. The maths is shared-bucket.ts; here it is written once more as SQL, because an
 * acquire must be ONE statement (an upsert that refills, takes a token or answers the wait) — a read and a
 * write would let two nodes take the same token.
 *
 * Composed with the node's own RateLimiter: the local one first (it keeps `frameio.maxRequestsPerSecond`
 * and spaces this node's callers, so a queue of waiting workers does not turn into a queue of queries),
 * then the shared one. What answers say (`observe`, `penalize`) goes to both; the client's interface is
 * synchronous there, so the database writes are queued, merged per operation and sent in the background.
 *
 * The table is a pacing aid, not a dependency: when PostgreSQL does not answer, pacing falls back to the
 * local limiter alone (one warn line, one info line when it is back) and uploads go on.
 */
import type { Logger } from 'pino';
import type { CallLimiter } from './client.ts';
import { PUBLISHED_LIMITS, abortableSleep, type RateLimit } from './rate-limit.ts';
import { UNKNOWN_AFTER_429, adjustmentFromHeaders, mergeAdjustments, type BucketAdjustment } from './shared-bucket.ts';

/** The part of a pg.Pool the limiter uses (the job store's pool in the daemon). */
export interface SqlPool {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  /** pg.Pool's: true once the pool is being closed (daemon shutdown) — then there is nothing to warn about. */
  readonly ending?: boolean;
}

export interface SharedLimiterOptions {
  pool: SqlPool;
  /** The node's own limiter (global cap and per-operation buckets). */
  local: CallLimiter;
  logger: Logger;
  /** Overrides merged over PUBLISHED_LIMITS (seeds for rows not yet in the table). */
  limits?: Record<string, RateLimit>;
  /** A statement slower than this counts as the database being unreachable. Default 2000 ms. */
  queryTimeoutMs?: number;
  /** While unreachable, the database is tried again this often (one caller probes; the rest go local). Default 10 s. */
  retryMs?: number;
  /** The node's monotonic clock, only for the retry timer and for queued 429 waits (durations, never compared with the database's). */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Tests only: a fixed database time in ms instead of clock_timestamp(). */
  dbNow?: () => number;
}

export interface SharedLimiter extends CallLimiter {
  /** Creates the table if needed; resolves false (and the limiter paces locally) when the database does not answer. */
  ready(): Promise<boolean>;
  /** Resolves once the queued observe/penalize writes are sent (or dropped because the database is down). */
  flush(): Promise<void>;
  /** Whether the last attempt to reach the table failed (pacing is local only). */
  readonly degraded: boolean;
}

export const RATE_BUCKETS_TABLE = 'frameio_rate_buckets';
/** pg_advisory_xact_lock key for creating the table ('pfrl'). */
const SCHEMA_LOCK = 0x7066726c;

// `wait_ms` is the answer of the latest acquire (0: it took a token), kept in the row because RETURNING can
// only return the row; it doubles as a look at how long callers are waiting.
const SCHEMA = `CREATE TABLE IF NOT EXISTS ${RATE_BUCKETS_TABLE} (
  operation text PRIMARY KEY,
  tokens double precision NOT NULL,
  capacity double precision NOT NULL,
  refill_per_ms double precision NOT NULL,
  updated_ms double precision NOT NULL,
  blocked_until_ms double precision NOT NULL DEFAULT 0,
  wait_ms double precision NOT NULL DEFAULT 0
)`;

/** The database's clock in ms, or a test's fixed time ($4). */
const CLOCK = `WITH clock AS (SELECT COALESCE($4::double precision, extract(epoch from clock_timestamp()) * 1000) AS now)`;
/** shared-bucket.ts refill(): `n` is the time brought forward, never back. */
const N = `GREATEST(excluded.updated_ms, b.updated_ms)`;
const REFILLED = `LEAST(b.capacity,
    (CASE WHEN b.blocked_until_ms > b.updated_ms AND ${N} >= b.blocked_until_ms THEN GREATEST(b.tokens, 1) ELSE b.tokens END)
    + GREATEST(0, ${N} - GREATEST(b.updated_ms, LEAST(b.blocked_until_ms, ${N}))) * b.refill_per_ms)`;

/** shared-bucket.ts take(): $1 operation, $2 seed capacity, $3 seed tokens per ms, $4 test time. */
export const ACQUIRE_SQL = `${CLOCK}
INSERT INTO ${RATE_BUCKETS_TABLE} AS b (operation, tokens, capacity, refill_per_ms, updated_ms, blocked_until_ms, wait_ms)
SELECT $1::text, $2::double precision - 1, $2::double precision, $3::double precision, clock.now, 0, 0 FROM clock
ON CONFLICT (operation) DO UPDATE SET (tokens, updated_ms, wait_ms) = (
  SELECT CASE WHEN r.wait = 0 THEN r.tokens - 1 ELSE r.tokens END, r.n, r.wait FROM (
    SELECT f.tokens, f.n,
      CASE WHEN b.blocked_until_ms > f.n THEN b.blocked_until_ms - f.n
           WHEN f.tokens >= 1 THEN 0
           ELSE (1 - f.tokens) / b.refill_per_ms END AS wait
    FROM (SELECT ${REFILLED} AS tokens, ${N} AS n) f
  ) r
)
RETURNING wait_ms`;

/**
 * shared-bucket.ts adjust() / adjustedSeed(): $1 operation, $2 seed capacity, $3 seed tokens per ms, $4 test
 * time, $5 observed limit, $6 observed tokens per ms, $7 remaining, $8 block ms (each null when not said).
 */
export const ADJUST_SQL = `${CLOCK}
INSERT INTO ${RATE_BUCKETS_TABLE} AS b (operation, tokens, capacity, refill_per_ms, updated_ms, blocked_until_ms, wait_ms)
SELECT $1::text, LEAST(COALESCE($5::double precision, $2::double precision), COALESCE($7::double precision, 'Infinity')),
       COALESCE($5::double precision, $2::double precision), COALESCE($6::double precision, $3::double precision), clock.now,
       COALESCE(clock.now + $8::double precision, 0), 0
FROM clock
ON CONFLICT (operation) DO UPDATE SET
  tokens = LEAST(${REFILLED}, COALESCE($5, b.capacity), COALESCE($7, 'Infinity')),
  capacity = COALESCE($5, b.capacity),
  refill_per_ms = COALESCE($6, b.refill_per_ms),
  updated_ms = ${N},
  blocked_until_ms = GREATEST(b.blocked_until_ms, COALESCE(${N} + $8::double precision, 0))`;

interface Pending {
  adjustment: BucketAdjustment;
  /** A 429's block as an instant on the node's clock: the write may go out later than the 429 came. */
  blockUntil?: number;
}

class TimeoutError extends Error {}

class PgSharedLimiter implements SharedLimiter {
  readonly #pool: SqlPool;
  readonly #local: CallLimiter;
  readonly #log: Logger;
  readonly #limits: Record<string, RateLimit>;
  /** Limits learned from headers, for operations without a published one. */
  readonly #learned = new Map<string, RateLimit>();
  readonly #timeoutMs: number;
  readonly #retryMs: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #dbNow: (() => number) | undefined;
  #schema: Promise<void> | undefined;
  #down = false;
  #retryAt = 0;
  #probing = false;
  readonly #pending = new Map<string, Pending>();
  #draining: Promise<void> | undefined;

  constructor(opts: SharedLimiterOptions) {
    this.#pool = opts.pool;
    this.#local = opts.local;
    this.#log = opts.logger;
    this.#limits = { ...PUBLISHED_LIMITS, ...opts.limits };
    this.#timeoutMs = opts.queryTimeoutMs ?? 2000;
    this.#retryMs = opts.retryMs ?? 10_000;
    this.#now = opts.now ?? (() => performance.now());
    this.#sleep = opts.sleep ?? abortableSleep;
    this.#dbNow = opts.dbNow;
  }

  get degraded(): boolean {
    return this.#down;
  }

  async ready(): Promise<boolean> {
    return (await this.#db(async () => true)) === true;
  }

  async acquire(operation: string, signal?: AbortSignal): Promise<void> {
    await this.#local.acquire(operation, signal);
    const seed = this.#seed(operation);
    if (seed === undefined) return; // no known limit: the local global cap is all there is, as on one node
    for (;;) {
      signal?.throwIfAborted();
      const wait = await this.#db(async () => {
        const r = await this.#pool.query(ACQUIRE_SQL, [operation, seed.limit, seed.limit / seed.windowMs, this.#dbNow?.() ?? null]);
        return Number((r.rows[0] as { wait_ms: number } | undefined)?.wait_ms ?? 0);
      });
      // undefined: the table did not answer; the local limiter has already paced this call.
      if (wait === undefined || wait <= 0) return;
      await this.#sleep(Math.max(1, Math.ceil(wait)), signal);
    }
  }

  observe(operation: string, headers: { limit?: number; remaining?: number; windowMs?: number }): void {
    this.#local.observe(operation, headers);
    const adjustment = adjustmentFromHeaders(headers);
    if (adjustment.limit) this.#learned.set(operation, { limit: adjustment.limit.limit, windowMs: adjustment.limit.windowMs });
    if (adjustment.limit === undefined && adjustment.remaining === undefined) return;
    this.#enqueue(operation, { adjustment });
  }

  penalize(operation: string, ms: number): void {
    this.#local.penalize(operation, ms);
    this.#enqueue(operation, { adjustment: {}, blockUntil: this.#now() + ms });
  }

  async flush(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  #seed(operation: string): RateLimit | undefined {
    return this.#limits[operation] ?? this.#learned.get(operation);
  }

  #enqueue(operation: string, p: Pending): void {
    const prev = this.#pending.get(operation);
    const merged: Pending = prev ? { adjustment: mergeAdjustments(prev.adjustment, p.adjustment) } : { adjustment: p.adjustment };
    const blockUntil = Math.max(prev?.blockUntil ?? -Infinity, p.blockUntil ?? -Infinity);
    if (blockUntil > -Infinity) merged.blockUntil = blockUntil;
    this.#pending.set(operation, merged);
    this.#draining ??= this.#drain().finally(() => (this.#draining = undefined));
  }

  async #drain(): Promise<void> {
    for (;;) {
      const next = this.#pending.entries().next();
      if (next.done) return;
      const [operation, p] = next.value;
      this.#pending.delete(operation);
      const a: BucketAdjustment = { ...p.adjustment };
      if (p.blockUntil !== undefined) {
        const left = p.blockUntil - this.#now();
        if (left > 0) a.blockMs = left;
        else if (a.limit === undefined && a.remaining === undefined) continue; // the block is over already
      }
      const seed = this.#seed(operation) ?? (a.blockMs !== undefined ? UNKNOWN_AFTER_429 : undefined);
      if (seed === undefined && a.limit === undefined) continue; // nothing to create a row from, as on one node
      const s = a.limit ?? seed!;
      await this.#db(() =>
        this.#pool.query(ADJUST_SQL, [
          operation,
          s.limit,
          s.limit / s.windowMs,
          this.#dbNow?.() ?? null,
          a.limit?.limit ?? null,
          a.limit ? a.limit.limit / a.limit.windowMs : null,
          a.remaining ?? null,
          a.blockMs ?? null,
        ]),
      );
    }
  }

  /**
   * Runs `fn` against the table (creating it first if needed) within the timeout; undefined when the
   * database is unreachable. While it is, only one caller per `retryMs` tries again; the rest skip at once.
   */
  async #db<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (this.#pool.ending === true) return undefined;
    if (this.#down && (this.#probing || this.#now() < this.#retryAt)) return undefined;
    const probe = this.#down;
    if (probe) this.#probing = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const work = (async () => {
        this.#schema ??= this.#createSchema();
        await this.#schema;
        return fn();
      })();
      work.catch(() => undefined); // lost the race with the timer: its outcome no longer matters
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(`no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
      });
      const out = await Promise.race([work, timeout]);
      if (this.#down) {
        this.#down = false;
        this.#log.info({ event: 'frameio-shared-limiter-up' }, 'Frame.io shared rate limiter reachable again: pacing with the fleet');
      }
      return out;
    } catch (err) {
      if (!this.#down) {
        this.#down = true;
        this.#log.warn(
          { event: 'frameio-shared-limiter-down', err: (err as Error).message, retryMs: this.#retryMs },
          'Frame.io shared rate limiter unreachable (PostgreSQL): pacing on this node alone until it answers again',
        );
      }
      this.#retryAt = this.#now() + this.#retryMs;
      return undefined;
    } finally {
      clearTimeout(timer);
      if (probe) this.#probing = false;
    }
  }

  async #createSchema(): Promise<void> {
    try {
      // Two statements in one simple query run as one transaction: nodes starting together take turns on
      // the lock (racing IF NOT EXISTS fails with "type already exists"), the later ones find the table there.
      await this.#pool.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK}); ${SCHEMA}`);
    } catch (err) {
      this.#schema = undefined;
      throw err;
    }
  }
}

/** A CallLimiter pacing the whole fleet per operation through PostgreSQL; starts creating its table at once. */
export function createSharedLimiter(opts: SharedLimiterOptions): SharedLimiter {
  const limiter = new PgSharedLimiter(opts);
  void limiter.ready();
  return limiter;
}
