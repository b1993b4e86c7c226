/**
 * The served-file sha256 (content-hash.ts) off the event loop, on a thread of its own at the lowest CPU
 * priority. Hashing costs about as much CPU as Frame.io's pull itself; on the JS thread it slowed the
 * file server, and at normal priority it competes with the very transfer it follows and with the render
 * jobs of the workstation. The hash is only needed when the job ends, so it may lag behind the pull.
 *
 * The worker is plain JavaScript passed as a string: a TypeScript entry would make every hashing thread
 * load the type stripper (tens of MB) for a dozen lines.
 */
import { Worker } from 'node:worker_threads';

const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const os = require('node:os');
const { path, size, chunk, nice } = workerData;
// Linux nices threads one by one (setpriority on the thread id); elsewhere the thread keeps its priority.
try {
  const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  if (nice && tid > 0) os.setPriority(tid, nice);
} catch {}
const hash = crypto.createHash('sha256');
const buf = Buffer.allocUnsafeSlow(Math.max(1, Math.min(chunk, size)));
let fd = -1;
let hashed = 0;
let failed = false;
parentPort.on('message', ({ target }) => {
  if (failed) return;
  try {
    if (fd < 0) fd = fs.openSync(path, 'r');
    while (hashed < target) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, target - hashed), hashed);
      if (n === 0) throw new Error('file ended at byte ' + hashed + ', expected ' + size);
      hash.update(buf.subarray(0, n));
      hashed += n;
      parentPort.postMessage({ hashed });
    }
    if (hashed === size) {
      fs.closeSync(fd);
      parentPort.postMessage({ done: hash.digest('hex') });
    }
  } catch (err) {
    failed = true;
    parentPort.postMessage({ error: err && err.message ? err.message : String(err) });
  }
});
`;

export interface HashThreadOptions {
  /** Read size. Default 1 MiB. */
  chunkBytes?: number;
  /** Thread niceness on Linux (0 = as the daemon). Default 19, the lowest priority. */
  nice?: number;
}

/**
 * Hashes [0, size) of `path` in order on a worker thread as `advance(end)` allows; `hashed` follows the
 * worker's reports; `result` settles with the hex digest or the first error; `stop` ends the thread.
 */
export class HashThread {
  readonly size: number;
  readonly result: Promise<string>;
  #hashed = 0;
  #target = 0;
  #worker: Worker | undefined;
  #settled = false;
  #resolve!: (hex: string) => void;
  #reject!: (err: unknown) => void;

  constructor(path: string, size: number, opts: HashThreadOptions = {}) {
    this.size = size;
    this.result = new Promise<string>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Nobody may ever ask (a job that ends early): an unobserved rejection must not crash the daemon.
    this.result.catch(() => undefined);
    if (size === 0) {
      this.#settled = true;
      this.#resolve('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
      return;
    }
    const worker = new Worker(SOURCE, { eval: true, workerData: { path, size, chunk: opts.chunkBytes ?? 1024 * 1024, nice: opts.nice ?? 19 } });
    // Hashing must never keep a stopping daemon alive.
    worker.unref();
    worker.on('message', (m: { hashed?: number; done?: string; error?: string }) => {
      if (m.hashed !== undefined) this.#hashed = m.hashed;
      if (m.done !== undefined) this.#settle(undefined, m.done);
      if (m.error !== undefined) this.#settle(new Error(m.error));
    });
    worker.on('error', (err) => this.#settle(err));
    worker.on('exit', () => this.#settle(new Error('hash thread ended before the whole file was hashed')));
    this.#worker = worker;
  }

  /** Bytes hashed so far. */
  get hashed(): number {
    return this.#hashed;
  }

  /** Everything before `end` has been sent: it may be read and hashed. */
  advance(end: number): void {
    const target = Math.min(end, this.size);
    if (this.#settled || target <= this.#target) return;
    this.#target = target;
    this.#worker?.postMessage({ target });
  }

  /** Gives up; `result` rejects with `reason` unless already settled. */
  stop(reason: unknown): void {
    this.#settle(reason);
  }

  #settle(err: unknown, hex?: string): void {
    if (this.#settled) return;
    this.#settled = true;
    if (hex !== undefined) this.#resolve(hex);
    else this.#reject(err);
    void this.#worker?.terminate();
  }
}
