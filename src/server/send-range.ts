/**
 * Streams bytes [start, end] of an open file to an HTTP response, reporting each chunk only once the
 * socket has taken it (the write callback), so progress means bytes left this process, not bytes read.
 * Reads are large (MiB, not the 64 KiB stream default) and one read is always in flight while the previous
 * chunk drains, so a slow cloud mount and a slow socket overlap instead of adding up.
 */
import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  return bytesRead === length ? buf : buf.subarray(0, bytesRead);
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
  chunkBytes: number;
  /** Called when [position, position+length) has been handed to the socket. */
  onSent: (position: number, length: number) => void;
}

/**
 * Resolves true when every byte was written (the caller ends the response), false when the response
 * closed first. Rejects on a read error or when the file ends early (it shrank while being served).
 */
export async function sendRange(fh: FileHandle, res: ServerResponse, opts: SendRangeOptions): Promise<boolean> {
  const stop = opts.end + 1;
  let position = opts.start;
  const next = (): Promise<Buffer> | undefined =>
    position < stop ? readAt(fh, position, Math.min(opts.chunkBytes, stop - position)) : undefined;
  let pending = next();
  try {
    while (pending !== undefined) {
      const chunk = await pending;
      pending = undefined;
      if (res.destroyed) return false;
      if (chunk.length === 0) throw new Error(`file ended at byte ${position}, expected ${stop}`);
      const at = position;
      position += chunk.length;
      pending = next();
      const ok = res.write(chunk, (err) => {
        if (!err) opts.onSent(at, chunk.length);
      });
      if (!ok) await drained(res);
      if (res.destroyed) return false;
    }
    return true;
  } finally {
    // Never leave a read running on a handle the caller is about to close.
    if (pending !== undefined) await pending.catch(() => undefined);
  }
}
