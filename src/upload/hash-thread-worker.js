// @ts-check
/**
 * The body of the one hashing thread (hash-thread.ts). Plain JavaScript on purpose: a .ts entry would load
 * Node's type stripper into the thread (tens of MB) for these few lines.
 *
 * Messages in: start {id, path, size}, advance {id, end} (bytes before `end` may be read), stop {id}.
 * Messages out: progress {id, hashed} now and then, done {id, sha256}, failed {id, message, code}.
 * Reads are synchronous: this thread has nothing else to do, and it keeps libuv's shared thread pool free
 * for the file server's sendfile calls.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readlinkSync, readSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';

/** @type {{ chunkBytes: number, nice: number, reportEveryChunks: number }} */
const { chunkBytes, nice, reportEveryChunks } = workerData;
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

// Linux nices threads one by one (setpriority on the thread id, found through /proc/thread-self); other
// systems keep the thread at the daemon's priority, which is still off the event loop.
let niced = false;
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (nice !== 0 && tid > 0) {
    setPriority(tid, nice);
    niced = true;
  }
} catch {
  // no /proc (macOS) or not allowed: normal priority
}
port.postMessage({ type: 'ready', niced });

const buf = Buffer.allocUnsafeSlow(chunkBytes);
/** @type {Map<number, { path: string, size: number, fd: number, hash: import('node:crypto').Hash, hashed: number, target: number, chunks: number }>} */
const tasks = new Map();
let scheduled = false;

port.on('message', (/** @type {{ type: string, id: number, path?: string, size?: number, end?: number }} */ m) => {
  if (m.type === 'start') {
    tasks.set(m.id, { path: String(m.path), size: Number(m.size), fd: -1, hash: createHash('sha256'), hashed: 0, target: 0, chunks: 0 });
  } else if (m.type === 'advance') {
    const t = tasks.get(m.id);
    if (t) t.target = Math.min(t.size, Math.max(t.target, Number(m.end)));
  } else if (m.type === 'stop') {
    end(m.id);
  }
  schedule();
});

/** @param {number} id */
function end(id) {
  const t = tasks.get(id);
  if (!t) return;
  tasks.delete(id);
  if (t.fd >= 0) {
    try {
      closeSync(t.fd);
    } catch {
      // already unusable; nothing to give back
    }
  }
}

function schedule() {
  if (scheduled) return;
  scheduled = true;
  setImmediate(step);
}

// One chunk per task per turn: jobs share the thread fairly, and new tasks and stops get in between.
function step() {
  scheduled = false;
  let more = false;
  for (const [id, t] of tasks) {
    if (t.hashed >= t.target) continue;
    try {
      if (t.fd < 0) t.fd = openSync(t.path, 'r');
      const n = readSync(t.fd, buf, 0, Math.min(buf.length, t.target - t.hashed), t.hashed);
      if (n === 0) throw new Error(`file ended at byte ${t.hashed}, expected ${t.size}`);
      t.hash.update(buf.subarray(0, n));
      t.hashed += n;
    } catch (err) {
      end(id);
      const e = /** @type {NodeJS.ErrnoException} */ (err);
      port.postMessage({ type: 'failed', id, message: e?.message ?? String(err), code: e?.code });
      continue;
    }
    if (t.hashed === t.size) {
      const sha256 = t.hash.digest('hex');
      end(id);
      port.postMessage({ type: 'done', id, sha256 });
      continue;
    }
    if (++t.chunks % reportEveryChunks === 0) port.postMessage({ type: 'progress', id, hashed: t.hashed });
    if (t.hashed < t.target) more = true;
  }
  if (more) schedule();
}
