/**
 * Client-side pacing for Frame.io. Frame.io limits each operation per user with a gradually refilling bucket
 * and answers 429 beyond it; pacing ourselves keeps 429s rare instead of merely surviving them. Two layers:
 *
 * - one token bucket per operation (the spec's operationId, e.g. `files.show_file_upload_status`), seeded
 *   from the published limits and corrected from the `x-ratelimit-*` headers of every answer (other
 *   processes on the same account spend the same budget, and only the server knows that);
 * - a global cap, `maxRequestsPerSecond`, enforced by spacing every call at least 1/cap s after the one
 *   before, whatever its operation. Even spacing rather than a burst-then-wait window, because the server
 *   counts calls when they arrive: a burst of N concurrent requests opens N connections and lands spread
 *   out by tens of ms, which is enough to put N+1 calls inside someone's one-second window.
 *
 * The bookkeeping is synchronous and clock-injected (`reserve`), so tests drive it without timers; `acquire`
 * is the thin async loop around it.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface RateLimit {
  /** Calls allowed per window. */
  limit: number;
  windowMs: number;
}

const perSecond = (n: number): RateLimit => ({ limit: n, windowMs: 1000 });
const perMinute = (n: number): RateLimit => ({ limit: n, windowMs: 60_000 });

/** From frameio-v4-ratelimits.txt: the operations postflow calls (others are paced by the global cap only). */
export const PUBLISHED_LIMITS: Readonly<Record<string, RateLimit>> = Object.freeze({
  'users.show': perMinute(100),
  'accounts.index': perMinute(100),
  'projects.show': perMinute(100),
  'workspaces.index': perMinute(100),
  'folders.show': perMinute(100),
  'folders.index': perMinute(100), // GET /folders/{id}/children
  'folders.list': perSecond(5),
  'folders.create': perSecond(3),
  'files.list': perSecond(5),
  'files.show': perSecond(10),
  'files.show_file_upload_status': perSecond(5),
  'files.create_remote_upload': perSecond(5),
  'files.create_local_upload': perSecond(5),
  'files.delete': perMinute(100),
  'files.move': perMinute(100),
  'version_stacks.create': perMinute(10),
  'version_stacks.list': perSecond(5),
  'version_stacks.index': perMinute(100),
});

export interface RateLimitHeaders {
  limit?: number;
  remaining?: number;
  windowMs?: number;
}

/** Reads `x-ratelimit-limit`, `x-ratelimit-remaining`, `x-ratelimit-window` (ms); absent/garbled → undefined. */
export function parseRateLimitHeaders(headers: Headers): RateLimitHeaders {
  const num = (name: string): number | undefined => {
    const raw = headers.get(name);
    if (raw === null || raw.trim() === '') return undefined;
    const n = Number(raw);
    return Number.isFinite(n) && n >= 0 ? n : undefined;
  };
  const out: RateLimitHeaders = {};
  const limit = num('x-ratelimit-limit');
  const remaining = num('x-ratelimit-remaining');
  const windowMs = num('x-ratelimit-window');
  if (limit !== undefined) out.limit = limit;
  if (remaining !== undefined) out.remaining = remaining;
  if (windowMs !== undefined) out.windowMs = windowMs;
  return out;
}

/**
 * `Retry-After` as milliseconds: delta-seconds or an HTTP date (relative to `now`). Undefined when absent
 * or unparsable, so the caller falls back to its own backoff.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Sleeps `ms`; rejects with the signal's own reason (not a generic AbortError) when aborted. */
export async function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, signal === undefined ? {} : { signal });
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}

interface Bucket {
  capacity: number;
  /** Tokens per ms. */
  rate: number;
  tokens: number;
  updatedAt: number;
  /** After a 429 nothing of this operation goes out before this instant. */
  blockedUntil: number;
}

export interface RateLimiterOptions {
  /** Global cap over every operation: no more calls than this in any one-second window (Infinity: none). */
  maxRequestsPerSecond: number;
  /** Overrides merged over PUBLISHED_LIMITS. */
  limits?: Record<string, RateLimit>;
  /**
   * Extra time added to the global one-second window (spread over the spacing). Requests are counted by
   * the server when they arrive and latency varies, so calls granted exactly one window apart could land
   * inside one. Default 50 ms.
   */
  guardMs?: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface BucketSnapshot {
  capacity: number;
  tokens: number;
  ratePerSecond: number;
  blockedForMs: number;
}

export class RateLimiter {
  readonly maxRequestsPerSecond: number;
  readonly #buckets = new Map<string, Bucket>();
  readonly #limits: Record<string, RateLimit>;
  readonly #windowMs: number;
  readonly #slots: number;
  /** Grants are spaced at least this far apart. */
  readonly #intervalMs: number;
  #nextGlobalAt = -Infinity;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(opts: RateLimiterOptions) {
    const rate = opts.maxRequestsPerSecond;
    if (!(rate > 0)) {
      throw new RangeError(`rate limiter: expected maxRequestsPerSecond > 0, got ${rate}`);
    }
    this.maxRequestsPerSecond = rate;
    // A fractional cap rounds down (2.5/s allows 2 per second); below 1/s it widens the window (0.5/s: 1 per 2 s).
    this.#slots = Math.max(1, Math.floor(rate));
    this.#limits = { ...PUBLISHED_LIMITS, ...opts.limits };
    this.#windowMs = Math.max(1000, 1000 / rate) + (opts.guardMs ?? 50);
    this.#intervalMs = this.#windowMs / this.#slots;
    this.#now = opts.now ?? Date.now;
    this.#sleep = opts.sleep ?? abortableSleep;
  }

  /**
   * Takes a slot for `operation` if one is free now and returns 0; otherwise takes nothing and returns how
   * many ms to wait before asking again (>= 1).
   */
  reserve(operation: string): number {
    const now = this.#now();
    const bucket = this.#bucket(operation, now);
    let wait = 0;
    if (bucket !== undefined) {
      this.#refill(bucket, now);
      if (bucket.blockedUntil > now) wait = bucket.blockedUntil - now;
      else if (bucket.tokens < 1) wait = (1 - bucket.tokens) / bucket.rate;
    }
    if (now < this.#nextGlobalAt) wait = Math.max(wait, this.#nextGlobalAt - now);
    if (wait > 0) return Math.max(1, Math.ceil(wait));
    if (bucket !== undefined) bucket.tokens -= 1;
    this.#nextGlobalAt = now + this.#intervalMs;
    return 0;
  }

  /** Resolves once a slot for `operation` is taken; rejects with the signal's reason if aborted first. */
  async acquire(operation: string, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const wait = this.reserve(operation);
      if (wait === 0) return;
      await this.#sleep(wait, signal);
    }
  }

  /**
   * Corrects the operation's bucket from an answer's headers: the server's limit and window replace ours,
   * and its `remaining` lowers our tokens (never raises them: answers arrive out of order, and we may have
   * granted calls the server has not seen yet).
   */
  observe(operation: string, headers: RateLimitHeaders): void {
    const now = this.#now();
    let bucket = this.#bucket(operation, now);
    const { limit, windowMs, remaining } = headers;
    if (limit !== undefined && limit >= 1 && windowMs !== undefined && windowMs > 0) {
      if (bucket === undefined) {
        bucket = this.#newBucket({ limit, windowMs }, now);
        this.#buckets.set(operation, bucket);
      } else {
        this.#refill(bucket, now);
        bucket.capacity = limit;
        bucket.rate = limit / windowMs;
        bucket.tokens = Math.min(bucket.tokens, limit);
      }
    }
    if (bucket !== undefined && remaining !== undefined) {
      this.#refill(bucket, now);
      bucket.tokens = Math.min(bucket.tokens, remaining);
    }
  }

  /** After a 429: nothing of `operation` goes out for `ms`; then at least one call may go. */
  penalize(operation: string, ms: number): void {
    const now = this.#now();
    let bucket = this.#bucket(operation, now);
    if (bucket === undefined) {
      // An operation without a known limit still must not be hammered after a 429.
      bucket = this.#newBucket({ limit: 1, windowMs: 1000 }, now);
      this.#buckets.set(operation, bucket);
    }
    this.#refill(bucket, now);
    // Tokens are left to the 429's own x-ratelimit-remaining (observe): a real over-limit answer says 0 and
    // empties the bucket, while a 429 from elsewhere (a gateway, a burst guard) leaves the budget as it is.
    bucket.blockedUntil = Math.max(bucket.blockedUntil, now + ms);
  }

  snapshot(operation: string): BucketSnapshot | undefined {
    const now = this.#now();
    const bucket = this.#bucket(operation, now);
    if (bucket === undefined) return undefined;
    this.#refill(bucket, now);
    return {
      capacity: bucket.capacity,
      tokens: bucket.tokens,
      ratePerSecond: bucket.rate * 1000,
      blockedForMs: Math.max(0, bucket.blockedUntil - now),
    };
  }

  #bucket(operation: string, now: number): Bucket | undefined {
    let bucket = this.#buckets.get(operation);
    if (bucket === undefined) {
      const seed = this.#limits[operation];
      if (seed === undefined) return undefined;
      bucket = this.#newBucket(seed, now);
      this.#buckets.set(operation, bucket);
    }
    return bucket;
  }

  #newBucket(limit: RateLimit, now: number): Bucket {
    return { capacity: limit.limit, rate: limit.limit / limit.windowMs, tokens: limit.limit, updatedAt: now, blockedUntil: 0 };
  }

  #refill(bucket: Bucket, now: number): void {
    // Retry-After names when the server will take the next call: one slot is there when the block ends.
    if (bucket.blockedUntil > bucket.updatedAt && now >= bucket.blockedUntil) bucket.tokens = Math.max(bucket.tokens, 1);
    // While blocked the bucket stays empty: the server's own bucket is what refills during that time.
    const from = Math.max(bucket.updatedAt, Math.min(bucket.blockedUntil, now));
    if (now > from) bucket.tokens = Math.min(bucket.capacity, bucket.tokens + (now - from) * bucket.rate);
    bucket.updatedAt = now;
  }
}

export function createRateLimiter(opts: RateLimiterOptions): RateLimiter {
  return new RateLimiter(opts);
}
