/**
 * One low-priority thread that computes every job's sha256 of what was served (content-hash.ts).
 *
 * Why a thread: hashing costs about as much CPU as Frame.io's pull itself (~0.85 s per GiB with SHA-NI);
 * on the event loop it slowed the file server it follows, and at normal priority it competes with the very
 * transfer it follows and with the renders of the workstation. At nice 19 it takes what is left over and
 * may lag behind the pull; a job waits for it at most `hashWaitMs` (run-job.ts).
 * Why one: a thread per job is a V8 isolate each (a burst of 64 jobs took 1 GB of RSS). The thread starts
 * with the first job and ends after `idleMs` without any, so an idle daemon carries no isolate.
 */
import { Worker } from 'node:worker_threads';

const CHUNK = 1024 * 1024;
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** One file being hashed in order from byte 0. */
export interface HashTask {
  readonly size: number;
  /** The hex sha256 of [0, size); rejects with the read's error or the reason given to `stop`. */
  readonly result: Promise<string>;
  /** Bytes hashed so far (as last reported by the thread). */
  readonly hashed: number;
  /** Everything before `end` may be read now. */
  advance(end: number): void;
  /** Gives up; `result` rejects with `reason` unless already settled. */
  stop(reason: unknown): void;
}

export interface ServedHasher {
  start(path: string, size: number): HashTask;
}

export interface HashThreadOptions {
  /** Thread niceness on Linux (0 = as the daemon). Default 19, the lowest priority. */
  nice?: number;
  /** The thread ends after this long without a task. Default 30 s. */
  idleMs?: number;
  /** Read size. Default 1 MiB. */
  chunkBytes?: number;
  /** Called when the thread started and whether it could lower its priority (for one log line). */
  onStart?: (info: { niced: boolean }) => void;
}

type FromThread =
  | { type: 'ready'; niced: boolean }
  | { type: 'progress'; id: number; hashed: number }
  | { type: 'done'; id: number; sha256: string }
  | { type: 'failed'; id: number; message: string; code?: string };

interface Pending {
  settle(err: unknown, sha256?: string): void;
  hashed: number;
}

export class HashThread implements ServedHasher {
  readonly #opts: Required<Omit<HashThreadOptions, 'onStart'>> & Pick<HashThreadOptions, 'onStart'>;
  readonly #tasks = new Map<number, Pending>();
  #worker: Worker | undefined;
  #nextId = 1;
  #idle: NodeJS.Timeout | undefined;

  constructor(opts: HashThreadOptions = {}) {
    this.#opts = { nice: opts.nice ?? 19, idleMs: opts.idleMs ?? 30_000, chunkBytes: opts.chunkBytes ?? CHUNK, onStart: opts.onStart };
  }

  /** Whether the thread is running now. */
  get running(): boolean {
    return this.#worker !== undefined;
  }

  start(path: string, size: number): HashTask {
    let resolve!: (hex: string) => void;
    let reject!: (err: unknown) => void;
    const result = new Promise<string>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Nobody may ever ask (a job that ends early): an unobserved rejection must not crash the daemon.
    result.catch(() => undefined);
    let settled = false;
    const pending: Pending = {
      hashed: 0,
      settle: (err, sha256) => {
        if (settled) return;
        settled = true;
        this.#tasks.delete(id);
        this.#idleCheck();
        if (err === undefined) resolve(sha256 as string);
        else reject(err);
      },
    };
    const id = this.#nextId++;
    if (size === 0) {
      settled = true;
      resolve(EMPTY_SHA256);
      return { size, result, hashed: 0, advance: () => undefined, stop: () => undefined };
    }
    this.#tasks.set(id, pending);
    const worker = this.#ensureWorker();
    worker.postMessage({ type: 'start', id, path, size });
    // Only whole chunks (or the end) are worth a message: the server reports progress far more often.
    let told = 0;
    return {
      size,
      result,
      get hashed() {
        return pending.hashed;
      },
      advance: (end: number) => {
        const to = Math.min(end, size);
        if (settled || to <= told || (to < size && to - told < this.#opts.chunkBytes)) return;
        told = to;
        worker.postMessage({ type: 'advance', id, end: to });
      },
      stop: (reason: unknown) => {
        if (settled) return;
        worker.postMessage({ type: 'stop', id });
        pending.settle(reason);
      },
    };
  }

  /** Ends the thread now; unfinished tasks reject. */
  async close(): Promise<void> {
    clearTimeout(this.#idle);
    const worker = this.#worker;
    this.#worker = undefined;
    this.#failAll(new Error('the hashing thread was stopped'));
    await worker?.terminate();
  }

  #ensureWorker(): Worker {
    clearTimeout(this.#idle);
    this.#idle = undefined;
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL('./hash-thread-worker.js', import.meta.url), {
      workerData: { chunkBytes: this.#opts.chunkBytes, nice: this.#opts.nice, reportEveryChunks: 64 },
      // None of the process's flags concern it (and some, e.g. --input-type, make a worker fail to start).
      execArgv: [],
      // It holds a read buffer and a few hash states: a small heap keeps its footprint small.
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 },
    });
    worker.on('message', (m: FromThread) => {
      if (m.type === 'ready') {
        this.#opts.onStart?.({ niced: m.niced });
        return;
      }
      const task = this.#tasks.get(m.id);
      if (!task) return;
      if (m.type === 'progress') task.hashed = m.hashed;
      else if (m.type === 'done') task.settle(undefined, m.sha256);
      else task.settle(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
    });
    const lost = (err: unknown): void => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#failAll(err);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`the hashing thread ended (exit code ${code})`)));
    // Hashing must never keep a stopping daemon alive. After the listeners: adding a 'message' listener refs
    // the worker again.
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  #failAll(err: unknown): void {
    for (const task of [...this.#tasks.values()]) task.settle(err);
  }

  #idleCheck(): void {
    if (this.#tasks.size > 0 || !this.#worker || this.#idle) return;
    const worker = this.#worker;
    this.#idle = setTimeout(() => {
      this.#idle = undefined;
      if (this.#tasks.size > 0 || this.#worker !== worker) return;
      this.#worker = undefined;
      void worker.terminate();
    }, this.#opts.idleMs);
    this.#idle.unref();
  }
}
