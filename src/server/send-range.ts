/**
 * Streams bytes [start, end] of an open file to an HTTP response, reporting each chunk only once the
 * socket has taken it (the write callback), so progress means bytes left this process, not bytes read.
 * Reads are large (MiB, not the 64 KiB stream default) and one read is always in flight while the previous
 * chunk drains, so a slow cloud mount and a slow socket overlap instead of adding up. Reads go into pooled
 * buffers (see buffer-pool.ts); a buffer returns to the pool when its write callback fires.
 */
import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { BufferPool } from './buffer-pool.ts';

interface Filled {
  /** The pooled buffer, released once the socket is done with it. */
  buf: Buffer;
  /** The part of it holding file bytes. */
  data: Buffer;
}

async function readAt(fh: FileHandle, pool: BufferPool, position: number, length: number): Promise<Filled> {
  const buf = pool.acquire();
  try {
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return { buf, data: bytesRead === buf.length ? buf : buf.subarray(0, bytesRead) };
  } catch (err) {
    pool.release(buf);
    throw err;
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

export interface SendRangeOptions {
  start: number;
  /** Inclusive. */
  end: number;
  /** Read buffers; each read is at most `pool.size` bytes. */
  pool: BufferPool;
  /** Called when [position, position+length) has been handed to the socket. */
  onSent: (position: number, length: number) => void;
}

/**
 * Resolves true when every byte was written (the caller ends the response), false when the response
 * closed first. Rejects on a read error or when the file ends early (it shrank while being served).
 */
export async function sendRange(fh: FileHandle, res: ServerResponse, opts: SendRangeOptions): Promise<boolean> {
  const { pool } = opts;
  const stop = opts.end + 1;
  let position = opts.start;
  const next = (): Promise<Filled> | undefined =>
    position < stop ? readAt(fh, pool, position, Math.min(pool.size, stop - position)) : undefined;
  let pending = next();
  try {
    while (pending !== undefined) {
      const { buf, data } = await pending;
      pending = undefined;
      if (res.destroyed || data.length === 0) {
        pool.release(buf);
        if (res.destroyed) return false;
        throw new Error(`file ended at byte ${position}, expected ${stop}`);
      }
      const at = position;
      position += data.length;
      pending = next();
      // The callback runs exactly once, also with an error when the socket is destroyed first.
      const ok = res.write(data, (err) => {
        pool.release(buf);
        if (!err) opts.onSent(at, data.length);
      });
      if (!ok) await drained(res);
      if (res.destroyed) return false;
    }
    return true;
  } finally {
    // Never leave a read running on a handle the caller is about to close.
    if (pending !== undefined) await pending.then((f) => pool.release(f.buf)).catch(() => undefined);
  }
}
