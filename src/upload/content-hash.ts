/**
 * The sha256 of a file, computed while it is being served. Frame.io pulls with parallel, out-of-order
 * Range requests, so the hash cannot be fed from the sockets' bytes; instead it follows the contiguous
 * prefix of what has left the machine (coverage from byte 0) and reads those bytes back from the file
 * right behind the server, while they are still in the page cache — one cheap extra read, instead of a
 * second full pull from a cloud mount after the upload.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** Where the contiguous prefix of sent bytes ends (0 when byte 0 has not gone yet). */
export function prefixEnd(ranges: ReadonlyArray<readonly [number, number]>): number {
  const first = ranges[0];
  return first !== undefined && first[0] === 0 ? first[1] : 0;
}

const CHUNK = 1024 * 1024;

/**
 * Hashes [0, size) in order as `advance(end)` says more bytes may be read. Reads never overlap and never
 * pass `end`; `result` settles once the whole file is hashed (or with the read's error).
 */
export class PrefixHasher {
  readonly size: number;
  readonly result: Promise<string>;
  readonly #read: (position: number, length: number) => Promise<Buffer>;
  readonly #hash: Hash = createHash('sha256');
  #hashed = 0;
  #target = 0;
  #pumping = false;
  #stopped = false;
  #resolve!: (hex: string) => void;
  #reject!: (err: unknown) => void;

  constructor(size: number, read: (position: number, length: number) => Promise<Buffer>) {
    this.size = size;
    this.#read = read;
    this.result = new Promise<string>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Nobody may ever ask (a job that ends early): an unobserved rejection must not crash the daemon.
    this.result.catch(() => undefined);
    if (size === 0) this.#resolve(this.#hash.digest('hex'));
  }

  /** Bytes hashed so far. */
  get hashed(): number {
    return this.#hashed;
  }

  /** Everything before `end` has been sent: it may be read and hashed. */
  advance(end: number): void {
    if (this.#stopped) return;
    this.#target = Math.max(this.#target, Math.min(end, this.size));
    if (!this.#pumping && this.#target > this.#hashed) void this.#pump();
  }

  /** Gives up (the exposure ended early); `result` rejects with `reason` unless already settled. */
  stop(reason: unknown): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#reject(reason);
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (!this.#stopped && this.#hashed < this.#target) {
        const length = Math.min(CHUNK, this.#target - this.#hashed);
        const data = await this.#read(this.#hashed, length);
        if (this.#stopped) return;
        if (data.length === 0) throw new Error(`file ended at byte ${this.#hashed}, expected ${this.size}`);
        this.#hash.update(data);
        this.#hashed += data.length;
      }
      if (!this.#stopped && this.#hashed === this.size) {
        this.#stopped = true;
        this.#resolve(this.#hash.digest('hex'));
      }
    } catch (err) {
      this.stop(err);
    } finally {
      this.#pumping = false;
    }
  }
}

/** What the hasher follows: the exposure's coverage and its progress events. */
export interface CoverageSource {
  readonly size: number;
  readonly coverage: { ranges(): Array<[number, number]> };
  on(event: 'progress' | 'complete' | 'revoked', listener: () => void): unknown;
  off(event: 'progress' | 'complete' | 'revoked', listener: () => void): unknown;
}

/**
 * Follows `source` and hashes `path` behind it. The file handle is opened lazily and closed when the hash
 * is done or the exposure is revoked; `dispose()` detaches early.
 */
export function hashWhileServing(path: string, source: CoverageSource): { result: Promise<string>; hasher: PrefixHasher; dispose(): void } {
  let fh: Promise<FileHandle> | undefined;
  // One buffer for the whole file: the hasher reads strictly one chunk at a time and hash.update copies it
  // before the next read; a fresh MiB per read made the daemon spend as much time in GC as in sha256.
  // (A worker thread per job was tried: each is a V8 isolate, and a burst of 64 jobs took 1 GB of RSS.)
  let buf: Buffer | undefined;
  const read = async (position: number, length: number): Promise<Buffer> => {
    fh ??= open(path, 'r');
    buf ??= Buffer.allocUnsafeSlow(Math.min(CHUNK, Math.max(1, source.size)));
    const { bytesRead } = await (await fh).read(buf, 0, Math.min(length, buf.length), position);
    return buf.subarray(0, bytesRead);
  };
  const hasher = new PrefixHasher(source.size, read);
  const onProgress = (): void => hasher.advance(prefixEnd(source.coverage.ranges()));
  const onRevoked = (): void => {
    // Bytes already sent can still be hashed; only an unfinished prefix makes the hash unknowable.
    onProgress();
    if (prefixEnd(source.coverage.ranges()) < source.size) hasher.stop(new Error('exposure revoked before the whole file was sent'));
  };
  source.on('progress', onProgress);
  source.on('complete', onProgress);
  source.on('revoked', onRevoked);
  const dispose = (): void => {
    source.off('progress', onProgress);
    source.off('complete', onProgress);
    source.off('revoked', onRevoked);
  };
  const closeFile = (): void => {
    dispose();
    void fh?.then((h) => h.close()).catch(() => undefined);
  };
  hasher.result.then(closeFile, closeFile);
  onProgress();
  return { result: hasher.result, hasher, dispose: () => hasher.stop(new Error('hash no longer wanted')) };
}

/** The sha256 of a whole file, read once (a `skip` decision needs it before anything is sent). */
export async function hashFile(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK, ...(signal ? { signal } : {}) })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export type HashOutcome = { state: 'done'; sha256: string } | { state: 'failed'; err: unknown } | { state: 'pending' };

/** How `result` stands after at most `waitMs`: a job waits that long for its hash, then goes on without it. */
export async function hashWithin(result: Promise<string>, waitMs: number): Promise<HashOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<HashOutcome>((resolve) => (timer = setTimeout(resolve, waitMs, { state: 'pending' })));
  try {
    return await Promise.race([result.then((sha256): HashOutcome => ({ state: 'done', sha256 }), (err: unknown): HashOutcome => ({ state: 'failed', err })), pending]);
  } finally {
    clearTimeout(timer);
  }
}
