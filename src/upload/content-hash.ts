/**
 * The sha256 of a file, computed while it is being served. Frame.io pulls with parallel, out-of-order
 * Range requests, so the hash cannot be fed from the sockets' bytes; instead it follows the contiguous
 * prefix of what has left the machine (coverage from byte 0) and reads those bytes back from the file
 * behind the server, while they are still in the page cache — one cheap extra read, instead of a second
 * full pull from a cloud mount after the upload.
 *
 * It trails the server by up to `lagBytes` (an eighth of RAM): the transfer gets the CPU first and the
 * hash catches up once everything has been sent. Hashing costs about as much CPU as the pull itself, and
 * running alongside it slowed a 1 GiB import by a quarter on two cores even at nice 19 (bench e2e-import);
 * bounded by a share of RAM, the bytes it reads back late are still in the page cache.
 */
import { totalmem } from 'node:os';
import type { HashTask, ServedHasher } from './hash-thread.ts';

const MiB = 1024 * 1024;

/** How far the hash may trail the sent prefix: an eighth of RAM, between 256 MiB and 8 GiB. */
export function defaultHashLag(memoryBytes = totalmem()): number {
  return Math.min(8192 * MiB, Math.max(256 * MiB, Math.floor(memoryBytes / 8)));
}

/** How far the hash may read: everything once it was all sent, else the sent prefix less the lag. */
export function hashableEnd(prefix: number, size: number, lagBytes: number): number {
  return prefix >= size ? size : Math.max(0, prefix - lagBytes);
}

/** Where the contiguous prefix of sent bytes ends (0 when byte 0 has not gone yet). */
export function prefixEnd(ranges: ReadonlyArray<readonly [number, number]>): number {
  const first = ranges[0];
  return first !== undefined && first[0] === 0 ? first[1] : 0;
}

/** What the hasher follows: the exposure's coverage and its progress events. */
export interface CoverageSource {
  readonly size: number;
  readonly coverage: { ranges(): Array<[number, number]> };
  on(event: 'progress' | 'complete' | 'revoked', listener: () => void): unknown;
  off(event: 'progress' | 'complete' | 'revoked', listener: () => void): unknown;
}

/**
 * Follows `source` and hashes `path` behind it on `hasher`'s thread; the task ends when the hash is done or
 * the exposure is revoked before the whole file was sent; `dispose()` gives up early.
 */
export function hashWhileServing(
  path: string,
  source: CoverageSource,
  hasher: ServedHasher,
  { lagBytes = defaultHashLag() }: { lagBytes?: number } = {},
): { result: Promise<string>; task: HashTask; dispose(): void } {
  const task = hasher.start(path, source.size);
  const onProgress = (): void => task.advance(hashableEnd(prefixEnd(source.coverage.ranges()), source.size, lagBytes));
  const onRevoked = (): void => {
    // Bytes already sent can still be hashed; only an unfinished prefix makes the hash unknowable.
    onProgress();
    if (prefixEnd(source.coverage.ranges()) < source.size) task.stop(new Error('exposure revoked before the whole file was sent'));
  };
  source.on('progress', onProgress);
  source.on('complete', onProgress);
  source.on('revoked', onRevoked);
  const detach = (): void => {
    source.off('progress', onProgress);
    source.off('complete', onProgress);
    source.off('revoked', onRevoked);
  };
  task.result.then(detach, detach);
  onProgress();
  return { result: task.result, task, dispose: () => task.stop(new Error('hash no longer wanted')) };
}

/** The sha256 of a whole file, read once on `hasher`'s thread (a `skip` decision needs it before anything is sent). */
export async function hashFile(hasher: ServedHasher, path: string, size: number, signal?: AbortSignal): Promise<string> {
  signal?.throwIfAborted();
  const task = hasher.start(path, size);
  const onAbort = (): void => task.stop(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  task.advance(size);
  try {
    return await task.result;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
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
