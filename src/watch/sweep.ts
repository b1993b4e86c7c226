import fs from 'node:fs';
import path from 'node:path';
import type { PostflowError } from '../errors.ts';
import {
  PF_ERR_WATCH_FOLDER_MISSING,
  PF_ERR_WATCH_NOT_A_DIRECTORY,
  PF_ERR_WATCH_UNMOUNTED,
} from './errors.ts';
import type { PathFilter } from './filters.ts';
import type { Snapshot } from './snapshot.ts';
import { sameStat } from './stability.ts';

export interface SweepOptions {
  /** Absolute path of the watch root. */
  root: string;
  filter: PathFilter;
  /** The previous snapshot: unchanged entries are reused (no allocation, identity-equal for the diff). */
  prev?: Snapshot;
  /** The root was a mount point at an earlier sweep; finding it on its parent's device means unmounted. */
  expectMountPoint?: boolean;
}

export type SweepResult =
  | {
      ok: true;
      snapshot: Snapshot;
      dirs: number;
      /** Folders that exist but could not be listed; their previous entries were carried over. */
      unreadable: string[];
      /** The root is on another device than its parent (a mounted filespace). */
      mountPoint: boolean;
    }
  | { ok: false; error: PostflowError };

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

export type RootCheck =
  | {
      ok: true;
      stat: fs.Stats;
      /** The root is on another device than its parent (a mounted filespace). */
      mountPoint: boolean;
      /** The error for a root that could not be listed after all. */
      missing(cause: string): PostflowError;
    }
  | { ok: false; error: PostflowError };

/**
 * Is the watch root there, a directory, and (once it was seen as a mount point) still mounted? An unmounted
 * FUSE filespace leaves an empty folder on the parent's device, which must not read as "every file deleted".
 */
export function checkRoot(root: string, expectMountPoint: boolean): RootCheck {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(root);
  } catch (err) {
    return { ok: false, error: PF_ERR_WATCH_FOLDER_MISSING(root, errCode(err)) };
  }
  if (!stat.isDirectory()) return { ok: false, error: PF_ERR_WATCH_NOT_A_DIRECTORY(root) };
  let mountPoint = true;
  const parent = path.dirname(root);
  if (parent !== root) {
    try {
      mountPoint = fs.statSync(parent).dev !== stat.dev;
    } catch {
      mountPoint = false;
    }
  }
  if (expectMountPoint && !mountPoint) return { ok: false, error: PF_ERR_WATCH_UNMOUNTED(root) };
  return { ok: true, stat, mountPoint, missing: (cause) => PF_ERR_WATCH_FOLDER_MISSING(root, cause) };
}

/**
 * One poll sweep of a tree from scratch: readdir + lstat, ignore rules applied before any stat or descent,
 * symlinks neither followed nor reported. The daemon sweeps incrementally (tree-sweep.ts); this whole-
 * snapshot form is the reference the incremental one is tested against.
 *
 * Deliberately synchronous: on the 100k-file budget the per-call cost of the async fs API (a promise or
 * callback and a thread-pool hop per file) is 2-3x the syscalls themselves, so the daemon runs this in a
 * worker thread (sweep-worker.ts) where blocking costs the event loop nothing.
 */
export function sweepTreeSync(opts: SweepOptions): SweepResult {
  const root = path.resolve(opts.root);
  const { filter, prev } = opts;

  const rootCheck = checkRoot(root, opts.expectMountPoint === true);
  if (!rootCheck.ok) return rootCheck;
  const { mountPoint } = rootCheck;

  const snapshot: Snapshot = new Map();
  const unreadable: string[] = [];
  const stack: string[] = [''];
  let dirs = 0;
  while (stack.length > 0) {
    const rel = stack.pop() as string;
    const abs = rel === '' ? root : root + '/' + rel;
    const prefix = rel === '' ? '' : rel + '/';
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(abs, { withFileTypes: true });
    } catch (err) {
      if (rel === '') return { ok: false, error: PF_ERR_WATCH_FOLDER_MISSING(root, errCode(err)) };
      const code = errCode(err);
      // Gone between listing and reading: its files really are removed. Anything else (EACCES, EIO on a
      // flaky mount) says nothing about the files, so they are kept as they were.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') unreadable.push(rel);
      continue;
    }
    dirs++;
    for (const entry of entries) {
      const relPath = prefix + entry.name;
      if (entry.isDirectory()) {
        if (filter(relPath, true)) stack.push(relPath);
        continue;
      }
      if (!entry.isFile() || !filter(relPath, false)) continue;
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(abs + '/' + entry.name, { throwIfNoEntry: false });
      } catch {
        const before = prev?.get(relPath);
        if (before !== undefined) snapshot.set(relPath, before);
        continue;
      }
      if (st === undefined || !st.isFile()) continue;
      const before = prev?.get(relPath);
      const now = { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
      snapshot.set(relPath, before !== undefined && sameStat(before, now) ? before : now);
    }
  }
  if (prev !== undefined && unreadable.length > 0) {
    for (const [relPath, stat] of prev) {
      if (unreadable.some((dir) => relPath.startsWith(dir + '/'))) snapshot.set(relPath, stat);
    }
  }
  return { ok: true, snapshot, dirs, unreadable, mountPoint };
}
