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
  /**
   * Bandwidth cap (see src/shaping/): each chunk is written in slices, each slice only once the shaper lets
   * it go. Absent, or `sliceBytes` Infinity, the chunk goes in one write as before.
   */
  shape?: {
    take(bytes: number): Promise<void> | undefined;
    sliceBytes(): number;
  };
}

/**
 * One chunk as shaped slices. The pooled buffer goes back once every slice written has been taken by the
 * socket (or failed), also when the response closes between two slices.
 */
async function writeShaped(
  res: ServerResponse,
  buf: Buffer,
  data: Buffer,
  at: number,
  slice: number,
  opts: SendRangeOptions,
): Promise<boolean> {
  let outstanding = 1; // the loop itself, so the buffer is not released before the last slice is issued
  const settle = (): void => {
    if (--outstanding === 0) opts.pool.release(buf);
  };
  try {
    for (let off = 0; off < data.length; off += slice) {
      const part = data.subarray(off, Math.min(data.length, off + slice));
      const w = opts.shape!.take(part.length);
      if (w !== undefined) await w;
      if (res.destroyed) return false;
      outstanding++;
      const pos = at + off;
      const ok = res.write(part, (err) => {
        if (!err) opts.onSent(pos, part.length);
        settle();
      });
      if (!ok) await drained(res);
      if (res.destroyed) return false;
    }
    return true;
  } finally {
    settle();
  }
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
      const slice = opts.shape?.sliceBytes() ?? Infinity;
      if (slice < data.length) {
        if (!(await writeShaped(res, buf, data, at, slice, opts))) return false;
        continue;
      }
      const w = opts.shape?.take(data.length);
      if (w !== undefined) await w;
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
