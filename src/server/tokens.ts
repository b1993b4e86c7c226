/**
 * URL tokens: the only credential Frame.io's importer can present, so they come from the OS CSPRNG (256
 * bits) and are looked up without a timing signal about how close a guess was. Entries are keyed by the
 * SHA-256 of the token: a Map lookup on a uniformly random digest reveals nothing about the token's
 * characters, and the final comparison of digests is `timingSafeEqual`. Each token also has a hard expiry
 * so a job that hangs cannot keep its file public for ever.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const TOKEN_BYTES = 32;
/** base64url of 32 bytes, unpadded. */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

interface Entry<T> {
  readonly digest: Buffer;
  readonly value: T;
  readonly expiresAt: number;
}

export interface TokenRegistryOptions<T> {
  /** Hard lifetime of every token from the moment it is issued. */
  maxLifetimeMs: number;
  now: () => number;
  /** Called once for an entry found expired (on lookup or sweep), after it was removed. */
  onExpire?: (value: T) => void;
}

export class TokenRegistry<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #maxLifetimeMs: number;
  readonly #now: () => number;
  readonly #onExpire: ((value: T) => void) | undefined;
  // Compared against on a miss so hits and misses do the same work.
  readonly #decoy = digest(newToken());

  constructor(opts: TokenRegistryOptions<T>) {
    this.#maxLifetimeMs = opts.maxLifetimeMs;
    this.#now = opts.now;
    this.#onExpire = opts.onExpire;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Issues a fresh token for `value`; returns it with the time it stops working. */
  issue(value: T): { token: string; expiresAt: number } {
    const token = newToken();
    const d = digest(token);
    const expiresAt = this.#now() + this.#maxLifetimeMs;
    this.#entries.set(d.toString('hex'), { digest: d, value, expiresAt });
    return { token, expiresAt };
  }

  /** The live value for `token`, or undefined when unknown, revoked or expired. */
  lookup(token: string): T | undefined {
    const d = digest(token);
    const key = d.toString('hex');
    const entry = this.#entries.get(key);
    const equal = timingSafeEqual(entry?.digest ?? this.#decoy, d);
    if (entry === undefined || !equal) return undefined;
    if (this.#now() >= entry.expiresAt) {
      this.#expire(key, entry);
      return undefined;
    }
    return entry.value;
  }

  /** Forgets `token` at once. Returns whether it was live. */
  revoke(token: string): boolean {
    return this.#entries.delete(digest(token).toString('hex'));
  }

  /** Removes every expired entry (calling onExpire for each) and returns how many there were. */
  sweep(): number {
    const now = this.#now();
    let n = 0;
    for (const [key, entry] of this.#entries) {
      if (now >= entry.expiresAt) {
        this.#expire(key, entry);
        n++;
      }
    }
    return n;
  }

  values(): T[] {
    return [...this.#entries.values()].map((e) => e.value);
  }

  #expire(key: string, entry: Entry<T>): void {
    this.#entries.delete(key);
    this.#onExpire?.(entry.value);
  }
}
