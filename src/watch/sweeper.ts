import { Worker } from 'node:worker_threads';
import { PF_ERR_WATCH_SWEEPER_FAILED } from './errors.ts';
import type { FilterOptions } from './filters.ts';

export interface SweeperFolder extends FilterOptions {
  root: string;
}

/**
 * Files new or changed, packed for the thread boundary: one '\n'-joined string of paths and one
 * Float64Array of [size, mtimeMs, ino] triples (transferred, not copied). 100k small objects cloned at
 * the first sweep cost the main thread a heap spike of ~200 MB; this costs two allocations.
 */
export interface SweepUpserts {
  paths: string;
  stats: Float64Array;
}

/** Calls `fn` for each packed upsert, in order. */
export function forEachUpsert(u: SweepUpserts, fn: (relPath: string, size: number, mtimeMs: number, ino: number) => void): void {
  if (u.stats.length === 0) return;
  let start = 0;
  for (let i = 0; i * 3 < u.stats.length; i++) {
    const end = u.paths.indexOf('\n', start);
    const relPath = end === -1 ? u.paths.slice(start) : u.paths.slice(start, end);
    start = end + 1;
    fn(relPath, u.stats[i * 3] as number, u.stats[i * 3 + 1] as number, u.stats[i * 3 + 2] as number);
  }
}

export type SweepOutcome =
  | {
      kind: 'ok';
      /** Upserts list every file present (first sweep, or a fresh worker): absent ones are removed. */
      full: boolean;
      /** Files new or changed since the previous sweep of this folder (all files when `full`). */
      upserts: SweepUpserts;
      removed: string[];
      /** Folders (absolute) first seen / gone in this sweep: all of them in a `full` one. */
      dirsAdded: string[];
      dirsRemoved: string[];
      files: number;
      dirs: number;
      /** Folders read again (readdir) this sweep; the rest kept their listing (unchanged mtime). */
      listed: number;
      unreadable: string[];
      durationMs: number;
    }
  | { kind: 'missing'; code: string; message: string };

export type SweepRequest =
  | { type: 'init'; folders: SweeperFolder[] }
  | { type: 'sweep'; id: number; folderIndex: number };

export type SweepReply =
  | { type: 'result'; id: number; outcome: SweepOutcome }
  | { type: 'failed'; id: number; message: string };

export interface Sweeper {
  /** Sweeps one folder and answers what changed since its previous sweep. One request at a time. */
  sweep(folderIndex: number): Promise<SweepOutcome>;
  close(): Promise<void>;
}

/**
 * Runs sweeps in a worker thread that also keeps each folder's last snapshot, so the main thread pays only
 * for what changed, and a slow or hung mount blocks the worker, never the event loop serving files.
 * A worker that dies is replaced on the next sweep; its first answer is then a full one.
 */
export function createSweeper(folders: SweeperFolder[]): Sweeper {
  let worker: Worker | undefined;
  let nextId = 1;
  const pending = new Map<number, { resolve: (o: SweepOutcome) => void; reject: (e: Error) => void }>();

  const failAll = (detail: string) => {
    for (const p of pending.values()) p.reject(PF_ERR_WATCH_SWEEPER_FAILED(detail));
    pending.clear();
  };

  const spawn = (): Worker => {
    const w = new Worker(new URL('./sweep-worker.ts', import.meta.url), {
      // Each sweep's snapshot is garbage one sweep later; a small young generation makes V8 collect it
      // instead of growing the heap (RSS budget: 250 MB with 100k files tracked).
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    w.on('message', (reply: SweepReply) => {
      const p = pending.get(reply.id);
      if (p === undefined) return;
      pending.delete(reply.id);
      if (reply.type === 'result') p.resolve(reply.outcome);
      else p.reject(PF_ERR_WATCH_SWEEPER_FAILED(reply.message));
    });
    w.on('error', (err) => {
      if (worker === w) worker = undefined;
      failAll(err.message);
    });
    w.on('exit', (code) => {
      if (worker === w) worker = undefined;
      failAll(`worker exited with code ${code}`);
    });
    w.postMessage({ type: 'init', folders } satisfies SweepRequest);
    return w;
  };

  return {
    sweep(folderIndex) {
      worker ??= spawn();
      const id = nextId++;
      const w = worker;
      return new Promise<SweepOutcome>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        w.postMessage({ type: 'sweep', id, folderIndex } satisfies SweepRequest);
      });
    },
    async close() {
      const w = worker;
      worker = undefined;
      if (w !== undefined) await w.terminate();
      failAll('sweeper closed');
    },
  };
}
