/**
 * Batches of one folder drop: files queued in the same sub-folder of a watch folder, each within
 * `batchGapSeconds` of the one before, are one delivery. When the gap has passed since the last arrival and
 * every file of the batch is done or failed, the batch is due: one notice with counts, total size, duration
 * and failures instead of one per file. A file cancelled (removed, or superseded by newer contents) leaves
 * its batch. Pure bookkeeping: the caller passes the time and asks for due batches; in memory only (a
 * restart starts new batches for the jobs it resumes).
 */
import { posix } from 'node:path';

export interface BatchFile {
  id: string;
  folderIndex: number;
  /** Path relative to the watch folder; its directory names the batch. */
  relPath: string;
  name: string;
  size: number;
}

export type FileEnd =
  | { state: 'done'; at: number; viewUrl: string | null }
  | { state: 'failed'; at: number; reason: string }
  | { state: 'cancelled'; at: number };

export interface BatchNotice {
  event: 'batch';
  folderIndex: number;
  /** The sub-folder ('' = the watch folder itself). */
  subFolder: string;
  files: number;
  done: number;
  failed: number;
  totalBytes: number;
  /** First arrival to last end. */
  startedAt: number;
  endedAt: number;
  durationSeconds: number;
  failures: Array<{ name: string; relPath: string; reason: string }>;
  /** A done file's Frame.io link, so the notice can point at where the delivery landed. */
  sampleViewUrl: string | null;
}

interface Entry {
  file: BatchFile;
  end?: FileEnd;
}

interface Batch {
  folderIndex: number;
  subFolder: string;
  firstAt: number;
  lastAt: number;
  entries: Map<string, Entry>;
}

export class Batches {
  readonly #gapMs: (folderIndex: number) => number;
  readonly #open = new Map<string, Batch>();
  readonly #byJob = new Map<string, Batch>();
  readonly #waiting: Batch[] = [];

  /** `gapMs`: read at every arrival (a reload may change it); 0 = this folder does not batch. */
  constructor(gapMs: (folderIndex: number) => number) {
    this.#gapMs = gapMs;
  }

  /** True when the job belongs to a batch (its own per-file notice is then optional). */
  has(jobId: string): boolean {
    return this.#byJob.has(jobId);
  }

  /** A file was queued at `at`. Returns false when its folder does not batch. */
  add(file: BatchFile, at: number): boolean {
    const gap = this.#gapMs(file.folderIndex);
    if (!(gap > 0) || this.#byJob.has(file.id)) return this.#byJob.has(file.id);
    const dir = posix.dirname(file.relPath.split('\\').join('/'));
    const subFolder = dir === '.' ? '' : dir;
    const key = `${file.folderIndex}\u0000${subFolder}`;
    let batch = this.#open.get(key);
    if (!batch || at - batch.lastAt > gap) {
      batch = { folderIndex: file.folderIndex, subFolder, firstAt: at, lastAt: at, entries: new Map() };
      this.#open.set(key, batch);
      this.#waiting.push(batch);
    }
    batch.lastAt = Math.max(batch.lastAt, at);
    batch.entries.set(file.id, { file });
    this.#byJob.set(file.id, batch);
    return true;
  }

  /** A job of a batch ended (done, failed for good, or cancelled). Returns false when it is in none. */
  end(jobId: string, end: FileEnd): boolean {
    const batch = this.#byJob.get(jobId);
    if (!batch) return false;
    if (end.state === 'cancelled') {
      batch.entries.delete(jobId);
      this.#byJob.delete(jobId);
    } else {
      batch.entries.get(jobId)!.end = end;
    }
    return true;
  }

  /** Batches whose gap has passed and whose every file ended, removed from the book and returned. */
  due(now: number): BatchNotice[] {
    const out: BatchNotice[] = [];
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const b = this.#waiting[i]!;
      if (now - b.lastAt < this.#gapMs(b.folderIndex)) continue;
      const entries = [...b.entries.values()];
      if (entries.some((e) => e.end === undefined)) continue;
      this.#waiting.splice(i, 1);
      for (const [key, open] of this.#open) if (open === b) this.#open.delete(key);
      for (const e of entries) this.#byJob.delete(e.file.id);
      if (entries.length === 0) continue;
      const endedAt = Math.max(...entries.map((e) => e.end!.at));
      const done = entries.filter((e) => e.end!.state === 'done');
      out.push({
        event: 'batch',
        folderIndex: b.folderIndex,
        subFolder: b.subFolder,
        files: entries.length,
        done: done.length,
        failed: entries.length - done.length,
        totalBytes: entries.reduce((n, e) => n + e.file.size, 0),
        startedAt: b.firstAt,
        endedAt,
        durationSeconds: Math.round((endedAt - b.firstAt) / 100) / 10,
        failures: entries.flatMap((e) => (e.end!.state === 'failed' ? [{ name: e.file.name, relPath: e.file.relPath, reason: e.end!.reason }] : [])),
        sampleViewUrl: done.map((e) => (e.end as { viewUrl: string | null }).viewUrl).find((u) => u) ?? null,
      });
    }
    return out.reverse();
  }

  /** When the next batch could become due (its gap end), for the caller's timer; undefined when none waits. */
  nextCheck(): number | undefined {
    const times = this.#waiting.map((b) => b.lastAt + this.#gapMs(b.folderIndex));
    return times.length === 0 ? undefined : Math.min(...times);
  }
}
