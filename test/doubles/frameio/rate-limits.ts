/**
 * Per-operation rate limits, as `frameio-v4-ratelimits.txt` lists them for the operations the emulator
 * implements, kept as buckets that refill gradually (the reference says so) rather than fixed windows.
 * Pure apart from the injected clock, so the bookkeeping is tested without waiting.
 */

export interface Limit {
  limit: number;
  windowMs: number;
}

const SECOND = 1000;
const MINUTE = 60_000;

/** Copied from frameio-v4-ratelimits.txt (the V4 spec's per-operation descriptions). */
export const RATE_LIMITS: Readonly<Record<string, Limit>> = {
  'users.show': { limit: 100, windowMs: MINUTE },
  'accounts.index': { limit: 100, windowMs: MINUTE },
  'workspaces.index': { limit: 100, windowMs: MINUTE },
  'workspaces.show': { limit: 100, windowMs: MINUTE },
  'projects.index': { limit: 100, windowMs: MINUTE },
  'projects.show': { limit: 100, windowMs: MINUTE },
  'account_projects.index': { limit: 100, windowMs: MINUTE },
  'folders.show': { limit: 100, windowMs: MINUTE },
  'folders.delete': { limit: 60, windowMs: MINUTE },
  'folders.index': { limit: 100, windowMs: MINUTE },
  'folders.list': { limit: 5, windowMs: SECOND },
  'folders.create': { limit: 3, windowMs: SECOND },
  'files.list': { limit: 5, windowMs: SECOND },
  'files.show': { limit: 10, windowMs: SECOND },
  'files.delete': { limit: 100, windowMs: MINUTE },
  'files.move': { limit: 100, windowMs: MINUTE },
  'files.create_remote_upload': { limit: 5, windowMs: SECOND },
  'files.create_local_upload': { limit: 5, windowMs: SECOND },
  'files.show_file_upload_status': { limit: 5, windowMs: SECOND },
  'version_stacks.create': { limit: 10, windowMs: MINUTE },
  'version_stacks.index': { limit: 100, windowMs: MINUTE },
  'version_stacks.list': { limit: 5, windowMs: SECOND },
  'version_stacks.show': { limit: 100, windowMs: MINUTE },
};

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  windowMs: number;
}

export class RateLimiter {
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Takes one call from `operation`'s bucket. When `enforce` is false the call is always allowed, but it
   * still drains the bucket so the headers tell a client the truth about its pace.
   */
  take(operation: string, enforce: boolean): RateDecision | undefined {
    const spec = RATE_LIMITS[operation];
    if (!spec) return undefined;
    const now = this.#now();
    const bucket = this.#buckets.get(operation) ?? { tokens: spec.limit, at: now };
    bucket.tokens = Math.min(spec.limit, bucket.tokens + ((now - bucket.at) * spec.limit) / spec.windowMs);
    bucket.at = now;
    let allowed = true;
    if (bucket.tokens >= 1) bucket.tokens -= 1;
    else if (enforce) allowed = false;
    else bucket.tokens = 0;
    this.#buckets.set(operation, bucket);
    return { allowed, limit: spec.limit, remaining: Math.floor(bucket.tokens), windowMs: spec.windowMs };
  }
}
