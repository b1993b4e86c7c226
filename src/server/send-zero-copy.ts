/**
 * Streams bytes [start, end] of an open file to an HTTP response with sendfile(2) (see zero-copy.ts): the
 * kernel copies page-cache pages to the socket, so no byte passes through user memory and the JS thread
 * only issues one call per chunk. The response's headers go through Node first; body bytes go behind
 * Node's back straight to the socket's fd, so they start only once Node's own write queue is empty, and
 * Node never learns of them (the caller ends the response with no body, which keeps keep-alive working).
 * Same promises as send-range.ts: `onSent` per call with what the kernel took, the bandwidth cap asked
 * before bytes go, and a stop when the response closes (client gone, token revoked).
 *
 * The range's last byte goes by an ordinary write after every sendfile call has been counted: a call
 * completes on the JS thread only after the kernel took its bytes, so without this a client could hold
 * the whole body before its coverage was counted. With it, "the client has every byte" still implies
 * "every byte was counted", as with read+write.
 */
import { read } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { SendRangeOptions } from './send-range.ts';
import type { SendfileAddon } from './zero-copy.ts';

export interface ZeroCopyOptions extends Omit<SendRangeOptions, 'pool'> {
  addon: SendfileAddon;
  /** The open file's descriptor (FileHandle.fd). */
  fd: number;
  /** Bytes per addon call without a bandwidth cap. Default 8 MiB. */
  chunkBytes?: number;
}

export type ZeroCopyResult =
  | { kind: 'done' }
  | { kind: 'closed' }
  /** sendfile(2) refused this file or socket (some FUSE mounts): send the rest from `position` with read+write. */
  | { kind: 'unsupported'; position: number; code: string };

/** Codes meaning "sendfile cannot do this pair of descriptors", not "the transfer failed". */
const UNSUPPORTED = new Set(['EINVAL', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP']);
/** The client went away. */
const GONE = new Set(['EPIPE', 'ECONNRESET', 'ENOTCONN', 'ECONNABORTED', 'ETIMEDOUT']);

interface HandleSocket extends Socket {
  _handle?: { fd?: unknown } | null;
  /** Node's refresh of the socket's inactivity timer (net.Socket internal, present since Node 0.x). */
  _unrefTimer?: () => void;
}

/** The kernel socket behind a response, when it is a plain TCP socket (not TLS, not a pipe mock). */
export function socketFd(res: ServerResponse): number | undefined {
  const fd = (res.socket as HandleSocket | null)?._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sends the headers and waits until Node has handed every byte it queued to the kernel. */
async function headersFlushed(res: ServerResponse, socket: Socket): Promise<boolean> {
  res.flushHeaders();
  // No 'drain' is promised for a small write that never filled the buffer, so look each turn of the loop.
  for (let i = 0; !res.destroyed; i++) {
    if (res.writableLength === 0 && socket.writableLength === 0) return true;
    await (i < 100 ? tick() : sleep(10));
  }
  return false;
}

export async function sendRangeZeroCopy(res: ServerResponse, opts: ZeroCopyOptions): Promise<ZeroCopyResult> {
  const socket = res.socket as HandleSocket | null;
  const outFd = socketFd(res);
  const stop = opts.end + 1;
  let position = opts.start;
  if (socket === null || outFd === undefined) return { kind: 'unsupported', position, code: 'ENOTSOCK' };
  if (!(await headersFlushed(res, socket))) return { kind: 'closed' };
  const chunk = opts.chunkBytes ?? 8 * 1024 * 1024;
  let backoff = 0;
  const last = stop - 1;
  while (position < last) {
    if (res.destroyed) return { kind: 'closed' };
    let grant = Math.min(chunk, last - position);
    if (opts.shape) {
      grant = Math.min(grant, opts.shape.sliceBytes());
      const w = opts.shape.take(grant);
      if (w !== undefined) await w;
    }
    // The grant is sent whole (over several calls if the socket is full) before the shaper is asked again.
    while (grant > 0) {
      if (res.destroyed) return { kind: 'closed' };
      // The descriptor is re-read each call: Node may have closed the socket meanwhile.
      const fd = socketFd(res);
      if (fd === undefined) return { kind: 'closed' };
      let sent: number;
      try {
        sent = await opts.addon.sendfile(fd, opts.fd, position, grant);
      } catch (err) {
        const e = err as NodeJS.ErrnoException & { bytesSent?: number };
        const partial = e.bytesSent ?? 0;
        if (partial > 0) {
          opts.onSent(position, partial);
          position += partial;
        }
        const code = e.code ?? '';
        if (GONE.has(code) || res.destroyed) {
          res.destroy();
          return { kind: 'closed' };
        }
        if (UNSUPPORTED.has(code)) return { kind: 'unsupported', position, code };
        if (code === 'EOF') throw new Error(`file ended at byte ${position}, expected ${stop}`);
        throw err;
      }
      if (sent > 0) {
        opts.onSent(position, sent);
        position += sent;
        grant -= sent;
        backoff = 0;
        // Bytes moved behind Node's back: keep its inactivity timeout from cutting a busy transfer.
        socket._unrefTimer?.();
      } else {
        // The socket stayed full through the addon's short wait: the client is not reading. Wait here, on
        // a timer, so a stalled client does not keep a thread-pool thread busy; the idle timeout ends it.
        backoff = Math.min(200, backoff === 0 ? 10 : backoff * 2);
        await sleep(backoff);
      }
    }
  }
  return writeLastByte(res, opts, position);
}

function readByte(fd: number, position: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const buf = Buffer.allocUnsafe(1);
    read(fd, buf, 0, 1, position, (err, n) => (err ? reject(err) : resolve(buf.subarray(0, n))));
  });
}

async function writeLastByte(res: ServerResponse, opts: ZeroCopyOptions, position: number): Promise<ZeroCopyResult> {
  const w = opts.shape?.take(1);
  if (w !== undefined) await w;
  const byte = await readByte(opts.fd, position);
  if (res.destroyed) return { kind: 'closed' };
  if (byte.length === 0) throw new Error(`file ended at byte ${position}, expected ${position + 1}`);
  res.write(byte, (err) => {
    if (!err) opts.onSent(position, 1);
  });
  return { kind: 'done' };
}
