/**
 * The worker pool: p-queue runs at most `concurrency` jobs at once. The pool knows job ids and timing, not
 * what a job does — the composition root hands it `run(job, signal)` (the upload room), so data moves one
 * way. Retries are scheduled here (a job the runner left `queued` with a future `nextAttemptAt` is re-offered
 * then), cancellation goes through one AbortController per running job, and the whole pool can be paused
 * (Frame.io login lost) without failing anything.
 */
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import type { Job, JobStore } from './store.ts';

// 'lease-lost': another node of the fleet took the job over (this one stopped heartbeating for too long).
export type StopReason = 'shutdown' | 'file-changed' | 'file-removed' | 'cancelled' | 'lease-lost';

export interface WorkerPoolOptions {
  store: JobStore;
  concurrency: number;
  logger: Logger;
  run: (job: Job, signal: AbortSignal) => Promise<void>;
  now?: () => number;
  /** A worker slot became free (a job ended): whoever claims work for the pool may take more now. */
  onSlotFree?: () => void;
}

export class WorkerPool {
  readonly #store: JobStore;
  readonly #queue: PQueue;
  readonly #logger: Logger;
  readonly #run: (job: Job, signal: AbortSignal) => Promise<void>;
  readonly #now: () => number;
  /** Ids waiting in p-queue or running, so one job is never offered twice. */
  readonly #pending = new Set<string>();
  readonly #running = new Map<string, AbortController>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #stopping = false;
  readonly #concurrency: number;
  readonly #onSlotFree: (() => void) | undefined;

  constructor(opts: WorkerPoolOptions) {
    this.#store = opts.store;
    this.#logger = opts.logger;
    this.#run = opts.run;
    this.#now = opts.now ?? Date.now;
    this.#concurrency = Math.max(1, opts.concurrency);
    this.#onSlotFree = opts.onSlotFree;
    this.#queue = new PQueue({ concurrency: this.#concurrency });
  }

  /** Offers a queued job to the pool, now or at its `nextAttemptAt`. */
  enqueue(job: Pick<Job, 'id' | 'nextAttemptAt'>): void {
    if (this.#stopping || this.#pending.has(job.id)) return;
    const wait = (job.nextAttemptAt ?? 0) - this.#now();
    if (wait > 0) {
      if (this.#timers.has(job.id)) return;
      const timer = setTimeout(() => {
        this.#timers.delete(job.id);
        this.enqueue({ id: job.id, nextAttemptAt: null });
      }, wait);
      timer.unref();
      this.#timers.set(job.id, timer);
      return;
    }
    // Offered now: a retry timer armed earlier would only offer it a second time.
    clearTimeout(this.#timers.get(job.id));
    this.#timers.delete(job.id);
    this.#pending.add(job.id);
    void this.#queue.add(() => this.#runOne(job.id)).catch((err: unknown) => {
      this.#logger.error({ job: job.id, err }, 'worker crashed');
    });
  }

  async #runOne(id: string): Promise<void> {
    const controller = new AbortController();
    this.#running.set(id, controller);
    try {
      const job = await this.#store.get(id);
      // The job may have been cancelled while it waited in the queue.
      if (!job || job.state !== 'queued' || this.#stopping) return;
      await this.#run(job, controller.signal);
    } finally {
      this.#running.delete(id);
      this.#pending.delete(id);
    }
    if (this.#stopping) return;
    this.#onSlotFree?.();
    // A runner that scheduled a retry left the job queued with a future attempt time.
    const after = await this.#store.get(id);
    if (after?.state === 'queued') this.enqueue(after);
  }

  /** Aborts a running job (or drops a scheduled retry); the runner decides what the reason means. */
  cancel(id: string, reason: StopReason): boolean {
    const timer = this.#timers.get(id);
    if (timer) {
      clearTimeout(timer);
      this.#timers.delete(id);
    }
    const controller = this.#running.get(id);
    if (!controller) return false;
    controller.abort(reason);
    return true;
  }

  isRunning(id: string): boolean {
    return this.#running.has(id);
  }

  /** Does the pool have this job (waiting, running, or waiting for its retry time)? */
  holds(id: string): boolean {
    return this.#pending.has(id) || this.#timers.has(id);
  }

  /** Every job the pool has: what this node's leases must cover. */
  heldIds(): string[] {
    return [...this.#pending, ...this.#timers.keys()];
  }

  /** Jobs the pool could start now without waiting: 0 while paused or stopping. */
  get freeSlots(): number {
    if (this.#stopping || this.#queue.isPaused) return 0;
    return Math.max(0, this.#concurrency - this.#queue.pending - this.#queue.size);
  }

  runningIds(): string[] {
    return [...this.#running.keys()];
  }

  /** Jobs waiting for a worker or for their retry time. */
  get waiting(): number {
    return this.#queue.size + this.#timers.size;
  }

  /** New jobs stop starting; running ones go on. */
  pause(): void {
    this.#queue.pause();
  }

  resume(): void {
    if (!this.#stopping) this.#queue.start();
  }

  get paused(): boolean {
    return this.#queue.isPaused;
  }

  onIdle(): Promise<void> {
    return this.#queue.onIdle();
  }

  /**
   * Stops taking work; running jobs get `graceMs` to finish, then are aborted with reason 'shutdown' (the
   * runner puts them back to queued so the next start resumes them).
   */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#queue.pause();
    this.#queue.clear();
    if (this.#running.size === 0) return;
    const idle = this.#queue.onPendingZero();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'grace-over'>((resolve) => {
      timer = setTimeout(() => resolve('grace-over'), graceMs);
    });
    const outcome = await Promise.race([idle.then(() => 'idle' as const), graceOver]);
    clearTimeout(timer);
    if (outcome === 'grace-over') {
      this.#logger.warn(
        { running: this.#running.size, graceMs },
        'grace period over: stopping imports in flight, they resume on the next start',
      );
      for (const controller of this.#running.values()) controller.abort('shutdown' satisfies StopReason);
      await idle;
    }
  }
}
