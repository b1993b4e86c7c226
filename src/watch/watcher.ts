import { EventEmitter } from 'node:events';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import { PF_ERR_WATCH_INVALID_OPTIONS } from './errors.ts';
import { createFilter, type PathFilter } from './filters.ts';
import { startNativeEvents, type NativeEvents } from './native.ts';
import { createStabilityTracker, sameStat, type FileStat, type StabilityTracker } from './stability.ts';
import { createSweeper, forEachUpsert, type SweepOutcome, type Sweeper } from './sweeper.ts';

export interface WatchFolder {
  /** Absolute path of the folder to watch recursively. */
  path: string;
  include?: string[];
  exclude?: string[];
}

export interface WatcherOptions {
  folders: WatchFolder[];
  /** Time between the end of one sweep and the start of the next. */
  pollIntervalMs: number;
  /** How long size, mtime and inode must stay unchanged before a file is 'stable'. */
  stabilityMs: number;
  /**
   * Native file system events (chokidar: inotify/FSEvents) as an accelerator on top of the sweep, so a
   * local write is seen at once instead of at the next poll. Default true.
   */
  native?: boolean;
  /** Above this many files in a folder its native events are off (chokidar keeps state per file). Default 20,000. */
  nativeMaxFiles?: number;
  logger: Logger;
  /** Monotonic milliseconds; injected by tests. */
  now?: () => number;
  /** Files the job store already handled with this exact size+mtime: not tracked again. */
  isKnown?: (absPath: string, size: number, mtimeMs: number) => boolean;
  /**
   * First start of the daemon: what the first sweep finds is the baseline, recorded as settled (no 'seen',
   * no 'stable'); later changes to those files are reported as 'changed'. Default false.
   */
  baseline?: boolean;
}

export interface WatchedFile {
  folderIndex: number;
  root: string;
  /** Absolute path. */
  path: string;
  /** '/'-separated, relative to root. */
  relPath: string;
  name: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

export interface RemovedFile {
  folderIndex: number;
  path: string;
  relPath: string;
}

export interface WatcherEvents {
  /** A new file (not isKnown) is being tracked: a job may be created in state discovered. */
  seen: [WatchedFile];
  /** Its size+mtime stayed unchanged for stabilityMs (checked once more with a stat right before). */
  stable: [WatchedFile];
  /**
   * A file that had been reported stable (or was known / baseline) changed again: a re-export or a grow.
   * Emitted instead of 'seen'; 'stable' follows once the new version settles.
   */
  changed: [WatchedFile];
  removed: [RemovedFile];
  'folder-missing': [{ folderIndex: number; root: string; error: Error }];
  'folder-back': [{ folderIndex: number; root: string }];
  sweep: [{ folderIndex: number; files: number; durationMs: number }];
}

export interface Watcher extends EventEmitter<WatcherEvents> {
  /**
   * Resolves after the first full sweep of every folder; emits 'seen' only for files not isKnown (none in
   * baseline mode).
   */
  start(): Promise<void>;
  /**
   * Every file present now (absolute path → file). Built on demand: at 100k files the map costs ~200 ms
   * and tens of MB, and only a first start (the baseline) needs it.
   */
  present(): Map<string, WatchedFile>;
  /** Runs a sweep of every folder now (after any sweep in progress); used by tests and SIGHUP. */
  sweepNow(): Promise<void>;
  stop(): Promise<void>;
}

type Phase = 'tracking' | 'stable' | 'settled';

/** One object per file (not a record holding a stat): 100k of them are the watcher's main-thread memory. */
interface FileRecord extends FileStat {
  phase: Phase;
}

interface FolderState {
  index: number;
  root: string;
  filter: PathFilter;
  records: Map<string, FileRecord>;
  tracker: StabilityTracker;
  missing: boolean;
  native: NativeEvents | undefined;
  /** Native events were turned off for size; logged once. */
  nativeTooBig: boolean;
}

// Final stats before 'stable' run in small batches so a burst of thousands of files does not open them all.
const FINAL_STAT_BATCH = 32;
const DEFAULT_NATIVE_MAX_FILES = 20_000;
const NATIVE_READY_WAIT_MS = 5_000;

function validate(opts: WatcherOptions): void {
  if (!Number.isFinite(opts.pollIntervalMs) || opts.pollIntervalMs <= 0) {
    throw PF_ERR_WATCH_INVALID_OPTIONS('pollIntervalMs', String(opts.pollIntervalMs), 'a positive number of ms');
  }
  if (!Number.isFinite(opts.stabilityMs) || opts.stabilityMs < 0) {
    throw PF_ERR_WATCH_INVALID_OPTIONS('stabilityMs', String(opts.stabilityMs), 'zero or a positive number of ms');
  }
  for (const [i, f] of opts.folders.entries()) {
    if (!path.isAbsolute(f.path)) {
      throw PF_ERR_WATCH_INVALID_OPTIONS(`folders[${i}].path`, JSON.stringify(f.path), 'an absolute path');
    }
  }
}

class SweepWatcher extends EventEmitter<WatcherEvents> implements Watcher {
  readonly #opts: WatcherOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #folders: FolderState[];
  #sweeper: Sweeper | undefined;
  #chain: Promise<void> = Promise.resolve();
  #sweepTimer: NodeJS.Timeout | undefined;
  #dueTimer: NodeJS.Timeout | undefined;
  #dueAt: number | undefined;
  #started = false;
  #stopped = false;
  #firstSweep = true;

  constructor(opts: WatcherOptions) {
    super();
    validate(opts);
    this.#opts = opts;
    this.#log = opts.logger;
    this.#now = opts.now ?? (() => performance.timeOrigin + performance.now());
    this.#folders = opts.folders.map((f, index) => ({
      index,
      root: path.resolve(f.path),
      filter: createFilter({ include: f.include, exclude: f.exclude }),
      records: new Map(),
      tracker: createStabilityTracker({ stabilityMs: opts.stabilityMs }),
      missing: false,
      native: undefined,
      nativeTooBig: false,
    }));
  }

  async start(): Promise<void> {
    if (this.#started) throw PF_ERR_WATCH_INVALID_OPTIONS('start()', 'called twice', 'one start per watcher');
    this.#started = true;
    this.#sweeper = createSweeper(
      this.#opts.folders.map((f, i) => ({ root: this.#folders[i]!.root, include: f.include, exclude: f.exclude })),
    );
    await this.#serial(() => this.#sweepAll());
    this.#firstSweep = false;
    // Native events armed before start() resolves, so a file written right after is reported at once (the
    // sweep would find it anyway; the wait is bounded so a slow mount never holds up the daemon).
    const armed = Promise.all(this.#folders.map((f) => f.native?.ready));
    await Promise.race([armed, new Promise((r) => setTimeout(r, NATIVE_READY_WAIT_MS).unref())]);
    this.#scheduleSweep();
    this.#scheduleDue();
  }

  present(): Map<string, WatchedFile> {
    const present = new Map<string, WatchedFile>();
    for (const f of this.#folders) {
      for (const [relPath, rec] of f.records) {
        const file = this.#file(f, relPath, rec);
        present.set(file.path, file);
      }
    }
    return present;
  }

  sweepNow(): Promise<void> {
    return this.#serial(async () => {
      await this.#sweepAll();
      await this.#processDue();
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#sweepTimer);
    clearTimeout(this.#dueTimer);
    await Promise.all(this.#folders.map((f) => f.native?.close()));
    await this.#chain;
    await this.#sweeper?.close();
  }

  /** Everything that touches the records runs here, one at a time: sweeps, due checks, native events. */
  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(async () => {
      if (this.#stopped) return;
      try {
        await fn();
      } catch (err) {
        this.#log.error({ err: describeError(err) }, 'watcher step failed; continuing');
      }
      this.#scheduleDue();
    });
    this.#chain = run;
    return run;
  }

  #emit<K extends keyof WatcherEvents>(event: K, ...args: WatcherEvents[K]): void {
    if (this.#stopped) return;
    try {
      (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
    } catch (err) {
      // A throwing listener must not stop the watcher; the daemon logs its own failures.
      this.#log.error({ event, err: describeError(err) }, 'watcher listener threw');
    }
  }

  #file(f: FolderState, relPath: string, stat: FileStat): WatchedFile {
    const slash = relPath.lastIndexOf('/');
    return {
      folderIndex: f.index,
      root: f.root,
      path: f.root + path.sep + (path.sep === '/' ? relPath : relPath.split('/').join(path.sep)),
      relPath,
      name: slash === -1 ? relPath : relPath.slice(slash + 1),
      size: stat.size,
      mtimeMs: stat.mtimeMs,
      ino: stat.ino,
    };
  }

  async #sweepAll(): Promise<void> {
    for (const f of this.#folders) {
      if (this.#stopped || this.#sweeper === undefined) return;
      let outcome: SweepOutcome;
      try {
        outcome = await this.#sweeper.sweep(f.index);
      } catch (err) {
        this.#log.error({ folder: f.root, err: describeError(err) }, 'sweep failed; retrying at the next interval');
        continue;
      }
      this.#applyOutcome(f, outcome);
    }
  }

  #applyOutcome(f: FolderState, outcome: SweepOutcome): void {
    if (outcome.kind === 'missing') {
      if (!f.missing) {
        f.missing = true;
        // A watch on a vanished root sees nothing; a fresh one starts when the folder is back.
        void f.native?.close();
        f.native = undefined;
        this.#log.warn(
          { folder: f.root, code: outcome.code, err: outcome.message },
          'watch folder is gone; keeping its files and retrying every poll interval',
        );
        const error = Object.assign(new Error(outcome.message), { code: outcome.code });
        this.#emit('folder-missing', { folderIndex: f.index, root: f.root, error });
      }
      return;
    }
    if (f.missing) {
      f.missing = false;
      this.#log.info({ folder: f.root }, 'watch folder is back');
      this.#emit('folder-back', { folderIndex: f.index, root: f.root });
    }
    if (outcome.unreadable.length > 0) {
      this.#log.warn({ folder: f.root, unreadable: outcome.unreadable.slice(0, 10) }, 'subfolders could not be listed');
    }
    const now = this.#now();
    // A full answer after a worker restart must drop what is gone; on the very first one nothing can be.
    const seenNow = outcome.full && f.records.size > 0 ? new Set<string>() : undefined;
    forEachUpsert(outcome.upserts, (relPath, size, mtimeMs, ino) => {
      seenNow?.add(relPath);
      this.#applyStat(f, relPath, { size, mtimeMs, ino }, now);
    });
    for (const relPath of outcome.removed) this.#applyRemoved(f, relPath);
    this.#updateNative(f, outcome.files);
    if (seenNow !== undefined) {
      for (const relPath of [...f.records.keys()]) if (!seenNow.has(relPath)) this.#applyRemoved(f, relPath);
    }
    this.#log.debug(
      { folder: f.root, files: outcome.files, dirs: outcome.dirs, durationMs: Math.round(outcome.durationMs) },
      'sweep done',
    );
    this.#emit('sweep', { folderIndex: f.index, files: outcome.files, durationMs: outcome.durationMs });
  }

  /** Idempotent: the same stat arriving from a sweep and a native event counts once. */
  #applyStat(f: FolderState, relPath: string, stat: FileStat, now: number): void {
    const rec = f.records.get(relPath);
    if (rec !== undefined && sameStat(rec, stat)) return;
    if (this.#firstSweep && this.#opts.baseline === true) {
      f.records.set(relPath, { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, phase: 'settled' });
      return;
    }
    const file = this.#file(f, relPath, stat);
    if (this.#known(file)) {
      f.records.set(relPath, { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, phase: 'settled' });
      f.tracker.forget(relPath);
      return;
    }
    f.records.set(relPath, { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, phase: 'tracking' });
    f.tracker.observe(relPath, stat, now);
    if (rec === undefined) {
      this.#log.debug({ file: file.path, size: stat.size }, 'file seen');
      this.#emit('seen', file);
    } else if (rec.phase !== 'tracking') {
      this.#log.info({ file: file.path, size: stat.size }, 'file changed after it was stable');
      this.#emit('changed', file);
    }
  }

  #applyRemoved(f: FolderState, relPath: string): void {
    if (!f.records.delete(relPath)) return;
    f.tracker.forget(relPath);
    const file = this.#file(f, relPath, { size: 0, mtimeMs: 0, ino: 0 });
    this.#log.debug({ file: file.path }, 'file removed');
    this.#emit('removed', { folderIndex: f.index, path: file.path, relPath });
  }

  #known(file: WatchedFile): boolean {
    return this.#opts.isKnown?.(file.path, file.size, file.mtimeMs) ?? false;
  }

  async #processDue(): Promise<void> {
    for (const f of this.#folders) {
      if (f.missing) continue;
      const due = f.tracker.due(this.#now());
      for (let i = 0; i < due.length && !this.#stopped; i += FINAL_STAT_BATCH) {
        const batch = due.slice(i, i + FINAL_STAT_BATCH);
        const stats = await Promise.all(
          batch.map((d) =>
            fsp.lstat(this.#file(f, d.path, d.stat).path).then(
              (st) => (st.isFile() ? { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino } : undefined),
              () => undefined,
            ),
          ),
        );
        const now = this.#now();
        for (const [j, d] of batch.entries()) {
          const rec = f.records.get(d.path);
          // Removed or re-stated while we were stat-ing: the record is the newer truth.
          if (rec === undefined || rec.phase !== 'tracking' || !sameStat(rec, d.stat)) continue;
          const st = stats[j];
          if (st === undefined) {
            // Gone or unreadable right now: wait a whole window again; the sweep decides about removal.
            f.tracker.observe(d.path, d.stat, now);
            continue;
          }
          if (!sameStat(st, d.stat)) {
            rec.size = st.size;
            rec.mtimeMs = st.mtimeMs;
            rec.ino = st.ino;
            f.tracker.observe(d.path, st, now);
            continue;
          }
          const file = this.#file(f, d.path, st);
          if (this.#known(file)) {
            rec.phase = 'settled';
            continue;
          }
          rec.phase = 'stable';
          this.#log.debug({ file: file.path, size: st.size }, 'file stable');
          this.#emit('stable', file);
        }
      }
    }
  }

  #scheduleSweep(): void {
    if (this.#stopped) return;
    clearTimeout(this.#sweepTimer);
    this.#sweepTimer = setTimeout(() => {
      // A slow sweep delays the next one: the interval counts from the end of the previous one.
      void this.sweepNow().then(() => this.#scheduleSweep());
    }, this.#opts.pollIntervalMs);
  }

  /** Arms one timer for the earliest window end; called after every step that can move it. */
  #scheduleDue(): void {
    if (this.#stopped || !this.#started) return;
    let at: number | undefined;
    for (const f of this.#folders) {
      const next = f.tracker.nextDueAt();
      if (next !== undefined && (at === undefined || next < at)) at = next;
    }
    if (at === this.#dueAt) return;
    clearTimeout(this.#dueTimer);
    this.#dueAt = at;
    if (at === undefined) return;
    this.#dueTimer = setTimeout(() => {
      this.#dueAt = undefined;
      void this.#serial(() => this.#processDue());
    }, Math.max(0, at - this.#now()));
  }

  /** Native events for a folder while it is small enough for chokidar's per-file state to be cheap. */
  #updateNative(f: FolderState, files: number): void {
    if (this.#opts.native === false || this.#stopped || f.missing) return;
    const max = this.#opts.nativeMaxFiles ?? DEFAULT_NATIVE_MAX_FILES;
    if (files > max) {
      if (!f.nativeTooBig) {
        this.#log.info({ folder: f.root, files, max }, `native events off for this folder (${files} files > watch.nativeEventsMaxFiles ${max}): the sweep alone notices files`);
        f.nativeTooBig = true;
      }
      void f.native?.close();
      f.native = undefined;
      return;
    }
    f.nativeTooBig = false;
    f.native ??= startNativeEvents({ root: f.root, filter: f.filter, onPath: (p) => this.#nudge(f, p), logger: this.#log });
  }

  /** A native event for `absPath`: one lstat now instead of waiting for the next sweep. */
  #nudge(f: FolderState, absPath: string): void {
    const relPath = path.relative(f.root, absPath).split(path.sep).join('/');
    if (relPath === '' || relPath.startsWith('..') || !f.filter(relPath, false)) return;
    void this.#serial(async () => {
      if (f.missing || this.#stopped) return;
      // A failed stat is left to the sweep: only it can tell a removed file from an unmounted folder.
      const st = await fsp.lstat(absPath).catch(() => undefined);
      if (st?.isFile() === true) this.#applyStat(f, relPath, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }, this.#now());
    });
  }
}

export function createWatcher(opts: WatcherOptions): Watcher {
  return new SweepWatcher(opts);
}
