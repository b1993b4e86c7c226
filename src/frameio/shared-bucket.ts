/**
 * The maths of the fleet's shared per-operation token bucket (shared-limiter.ts), as plain functions over a
 * value: the reference model of what the limiter's SQL does in one statement on the database. The SQL cannot
 * call these, so test/frameio/shared-limiter.test.ts runs the same steps through both and compares.
 *
 * Same rules as the per-node RateLimiter's buckets (rate-limit.ts), so one node alone paces identically:
 * - tokens refill gradually at capacity/window up to capacity;
 * - after a 429 (`blockedUntilMs`) nothing goes out until the block ends, the bucket does not refill while
 *   blocked (the server's bucket is what refills then), and one token is there when the block ends, because
 *   Retry-After names when the server takes the next call;
 * - an answer's `x-ratelimit-remaining` lowers the tokens, never raises them (answers arrive out of order,
 *   and other nodes hold grants the server has not seen yet).
 * Times are milliseconds on one clock (the database's, in production).
 */
import type { RateLimit } from './rate-limit.ts';

export interface SharedBucket {
  tokens: number;
  capacity: number;
  refillPerMs: number;
  updatedMs: number;
  blockedUntilMs: number;
}

/** What the headers of one or more answers and 429s said about an operation, merged (see mergeAdjustments). */
export interface BucketAdjustment {
  /** x-ratelimit-limit and x-ratelimit-window, only together. */
  limit?: { limit: number; windowMs: number };
  /** The lowest x-ratelimit-remaining seen. */
  remaining?: number;
  /** A 429's wait (Retry-After or backoff), from the moment the adjustment is applied. */
  blockMs?: number;
}

/** An operation without a published or observed limit that got a 429 is still not hammered: 1 call/s. */
export const UNKNOWN_AFTER_429: RateLimit = Object.freeze({ limit: 1, windowMs: 1000 });

export function seedBucket(limit: RateLimit, now: number): SharedBucket {
  return { tokens: limit.limit, capacity: limit.limit, refillPerMs: limit.limit / limit.windowMs, updatedMs: now, blockedUntilMs: 0 };
}

/** The bucket brought to `now` (a clock that stepped back counts as no time passing). */
export function refill(b: SharedBucket, now: number): SharedBucket {
  const n = Math.max(now, b.updatedMs);
  let tokens = b.blockedUntilMs > b.updatedMs && n >= b.blockedUntilMs ? Math.max(b.tokens, 1) : b.tokens;
  const from = Math.max(b.updatedMs, Math.min(b.blockedUntilMs, n));
  tokens = Math.min(b.capacity, tokens + Math.max(0, n - from) * b.refillPerMs);
  return { ...b, tokens, updatedMs: n };
}

/**
 * One acquire: takes a token when one is there and the operation is not blocked (waitMs 0), else takes
 * nothing and says how long until one will be (waitMs > 0).
 */
export function take(b: SharedBucket, now: number): { bucket: SharedBucket; waitMs: number } {
  const r = refill(b, now);
  const waitMs = r.blockedUntilMs > r.updatedMs ? r.blockedUntilMs - r.updatedMs : r.tokens >= 1 ? 0 : (1 - r.tokens) / r.refillPerMs;
  return { bucket: waitMs === 0 ? { ...r, tokens: r.tokens - 1 } : r, waitMs };
}

/** Applies what answers said: the server's limit and window replace ours, remaining lowers, a 429 blocks. */
export function adjust(b: SharedBucket, a: BucketAdjustment, now: number): SharedBucket {
  const r = refill(b, now);
  const capacity = a.limit?.limit ?? r.capacity;
  const refillPerMs = a.limit ? a.limit.limit / a.limit.windowMs : r.refillPerMs;
  const tokens = Math.min(r.tokens, capacity, a.remaining ?? Infinity);
  const blockedUntilMs = a.blockMs === undefined ? r.blockedUntilMs : Math.max(r.blockedUntilMs, r.updatedMs + a.blockMs);
  return { tokens, capacity, refillPerMs, updatedMs: r.updatedMs, blockedUntilMs };
}

/** The row an adjustment creates when the operation has none yet (seed: published or learned limit). */
export function adjustedSeed(seed: RateLimit, a: BucketAdjustment, now: number): SharedBucket {
  const limit = a.limit ?? seed;
  const fresh = seedBucket(limit, now);
  return {
    ...fresh,
    tokens: Math.min(fresh.capacity, a.remaining ?? Infinity),
    blockedUntilMs: a.blockMs === undefined ? 0 : now + a.blockMs,
  };
}

/**
 * Two adjustments queued for the same operation, as one: the later limit wins, the lower remaining wins (it
 * only ever lowers), the longer block wins. `blockMs` must be relative to the same instant in both.
 */
export function mergeAdjustments(a: BucketAdjustment, b: BucketAdjustment): BucketAdjustment {
  const out: BucketAdjustment = {};
  const limit = b.limit ?? a.limit;
  if (limit) out.limit = limit;
  if (a.remaining !== undefined || b.remaining !== undefined) out.remaining = Math.min(a.remaining ?? Infinity, b.remaining ?? Infinity);
  if (a.blockMs !== undefined || b.blockMs !== undefined) out.blockMs = Math.max(a.blockMs ?? 0, b.blockMs ?? 0);
  return out;
}

/** Header values as the client reports them → an adjustment; limit and window only count together and sane. */
export function adjustmentFromHeaders(h: { limit?: number; remaining?: number; windowMs?: number }): BucketAdjustment {
  const out: BucketAdjustment = {};
  if (h.limit !== undefined && h.limit >= 1 && h.windowMs !== undefined && h.windowMs > 0) out.limit = { limit: h.limit, windowMs: h.windowMs };
  if (h.remaining !== undefined && h.remaining >= 0) out.remaining = h.remaining;
  return out;
}
