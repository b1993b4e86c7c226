/**
 * Retry delays shared by every room that retries (job attempts, Frame.io 429/5xx, tunnel restarts).
 * Pure: the random source is injected so tests pin the jitter.
 */

export type Jitter = 'full' | 'equal' | 'none';

export interface BackoffOptions {
  /** Delay for attempt 0 before jitter, in ms. */
  baseMs: number;
  /** Upper bound of any delay, in ms (applied before jitter, so the result never exceeds it). */
  maxMs: number;
  /** Growth per attempt; default 2. */
  factor?: number;
  /**
   * 'full': uniform in [0, d] — spreads a thundering herd best but may retry at once.
   * 'equal' (default): uniform in [d/2, d] — still spread, yet never hammers a rate-limited API with ~0 ms retries.
   * 'none': exactly d.
   */
  jitter?: Jitter;
}

/**
 * Delay in ms before retry number `attempt` (0-based): min(maxMs, baseMs·factor^attempt), then jittered.
 * Integer result, always within [0, maxMs]. Negative or fractional attempts are floored at 0.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const { baseMs, maxMs } = opts;
  const factor = opts.factor ?? 2;
  const jitter = opts.jitter ?? 'equal';
  if (!(baseMs >= 0) || !(maxMs >= baseMs) || !Number.isFinite(maxMs)) {
    throw new RangeError(`backoff: expected 0 <= baseMs <= maxMs < Infinity, got baseMs=${baseMs} maxMs=${maxMs}`);
  }
  if (!(factor >= 1) || !Number.isFinite(factor)) {
    throw new RangeError(`backoff: expected a finite factor >= 1, got ${factor}`);
  }
  const n = Number.isFinite(attempt) && attempt > 0 ? Math.floor(attempt) : 0;
  // Math.min before multiplying would need a loop; computing the power can reach Infinity (fine: the cap
  // wins) but 0·Infinity is NaN, so a zero base is handled first.
  const raw = baseMs === 0 ? 0 : baseMs * factor ** n;
  const capped = Math.min(maxMs, raw);
  // Clamp the injected value: a random() returning exactly 1 (or a buggy double) must not exceed the cap.
  const r = Math.min(1, Math.max(0, random()));
  let delay: number;
  switch (jitter) {
    case 'full':
      delay = capped * r;
      break;
    case 'equal':
      delay = capped / 2 + (capped / 2) * r;
      break;
    case 'none':
      delay = capped;
      break;
    default:
      throw new RangeError(`backoff: expected jitter 'full' | 'equal' | 'none', got ${String(jitter)}`);
  }
  return Math.min(maxMs, Math.round(delay));
}
