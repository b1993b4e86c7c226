/**
 * sha256 over chunks that arrive out of order from parallel Range requests. The chunk at the hashing
 * position streams straight into the hash; later chunks wait in memory, and a puller may only start a
 * chunk within `ahead` of the hashing position, so memory stays bounded however large the file is.
 */
import { createHash } from 'node:crypto';

export class OrderedHasher {
  readonly #hash = createHash('sha256');
  readonly #pending = new Map<number, Buffer[]>();
  readonly #finished = new Set<number>();
  #waiters: (() => void)[] = [];
  #next = 0;
  #hashed = 0;
  #buffered = 0;

  /** Index of the chunk being hashed now (all before it are in the hash). */
  get position(): number {
    return this.#next;
  }

  get hashedBytes(): number {
    return this.#hashed;
  }

  get bufferedBytes(): number {
    return this.#buffered;
  }

  write(index: number, data: Buffer): void {
    if (index < this.#next || this.#finished.has(index)) throw new Error(`chunk ${index} was already finished`);
    if (index === this.#next) {
      this.#hash.update(data);
      this.#hashed += data.length;
      return;
    }
    const list = this.#pending.get(index) ?? [];
    list.push(data);
    this.#pending.set(index, list);
    this.#buffered += data.length;
  }

  /** Marks chunk `index` complete; hashing moves past every contiguous finished chunk. */
  finish(index: number): void {
    this.#finished.add(index);
    while (this.#finished.has(this.#next)) {
      this.#finished.delete(this.#next);
      this.#next++;
      const waiting = this.#pending.get(this.#next);
      if (waiting) {
        this.#pending.delete(this.#next);
        for (const b of waiting) {
          this.#hash.update(b);
          this.#hashed += b.length;
          this.#buffered -= b.length;
        }
      }
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once chunk `index` may start without going more than `ahead` chunks past the hash. */
  async waitForWindow(index: number, ahead: number, signal?: AbortSignal): Promise<void> {
    while (index >= this.#next + ahead) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  }

  digest(): string {
    return this.#hash.digest('hex');
  }
}
