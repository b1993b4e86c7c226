/**
 * The sha256 of a file, computed while it is being served. Frame.io pulls with parallel, out-of-order
 * Range requests, so the hash cannot be fed from the sockets' bytes; instead it follows the contiguous
 * prefix of what has left the machine (coverage from byte 0) and reads those bytes back from the file
 * right behind the server, while they are still in the page cache — one cheap extra read, instead of a
 * second full pull from a cloud mount after the upload.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { HashThread, type HashThreadOptions } from './hash-worker.ts';

/** Where the contiguous prefix of sent bytes ends (0 when byte 0 has not gone yet). */
export function prefixEnd(ranges: ReadonlyArray<readonly [number, number]>): number {
  const first = ranges[0];
  return first !== undefined && first[0] === 0 ? first[1] : 0;
}

const CHUNK = 1024 * 1024;

/** What the hasher follows: the exposure's coverage and its progress events. */
export interface CoverageSource {
  readonly size: number;
  readonly coverage: { ranges(): Array<[number, number]> };
  on(event: 'progress' | 'complete' | 'revoked', listener: () => void): unknown;
  off(event: 'progress' | 'complete' | 'revoked', listener: () => void): unknown;
}

/**
 * Follows `source` and hashes `path` behind it on a low-priority thread (hash-worker.ts); the thread ends
 * when the hash is done or the exposure is revoked; `dispose()` gives up early.
 */
export function hashWhileServing(path: string, source: CoverageSource, opts: HashThreadOptions = {}): { result: Promise<string>; hasher: HashThread; dispose(): void } {
  const hasher = new HashThread(path, source.size, opts);
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
  hasher.result.then(dispose, dispose);
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
