/**
 * A token bucket kept as one number, the time at which the bucket is paid up (GCRA, "theoretical arrival
 * time"): `debit(n)` moves that time on by n / rate and says how long the caller must wait before sending.
 * Callers are served in the order they asked, so parallel streams that each ask for one slice at a time
 * take turns (fair share) without a queue of waiters. A bucket holds `burstMs` worth of bytes, which is
 * what an idle link may send at once. Pure: the clock is passed in.
 */
export class TokenBucket {
  #rate: number;
  #burstMs: number;
  /** Time (ms) at which every byte debited so far has been paid for at `rate`. */
  #paidUntil = -Infinity;

  /** `rate` in bytes per second (> 0). */
  constructor(rate: number, burstMs = 250) {
    if (!(rate > 0)) throw new RangeError(`rate must be > 0 bytes/s, got ${rate}`);
    this.#rate = rate;
    this.#burstMs = burstMs;
  }

  get rate(): number {
    return this.#rate;
  }

  /** A new rate applies from now on; bytes already debited keep the time they were given. */
  setRate(rate: number): void {
    if (!(rate > 0)) throw new RangeError(`rate must be > 0 bytes/s, got ${rate}`);
    this.#rate = rate;
  }

  /** Debits `bytes` at time `now` (ms) and returns how many ms the caller waits before sending them (≥ 0). */
  debit(bytes: number, now: number): number {
    this.#paidUntil = Math.max(this.#paidUntil, now - this.#burstMs) + (bytes * 1000) / this.#rate;
    return Math.max(0, this.#paidUntil - now);
  }

  /** Largest slice worth taking at once: ~1/20 s of the rate, so a stream waits at most ~50 ms per turn. */
  sliceBytes(): number {
    return Math.max(16 * 1024, Math.floor(this.#rate / 20));
  }
}
