import fs from 'node:fs';
import path from 'node:path';
import type { PostflowError } from '../errors.ts';
import type { PathFilter } from './filters.ts';
import { checkRoot } from './sweep.ts';

/**
 * The incremental sweep the worker runs every poll interval. Where sweepTreeSync (sweep.ts) builds a whole
 * snapshot per sweep, this keeps the tree it saw — per folder, its listing and its files' stats in parallel
 * arrays — and updates it in place, so a sweep that finds nothing new allocates nearly nothing and builds
 * no path strings but the one each lstat needs.
 *
 * A folder is listed again (readdir) only when its own mtime or inode moved: adding, removing or renaming
 * an entry bumps a directory's mtime (POSIX; LucidLink too), but growing or rewriting a file in place does
 * not, so every watched file is still lstat'ed every sweep. Two guards against an unchanged mtime hiding a
 * changed listing: a listing read within RACY_MS of the folder's mtime is not trusted (a coarse-grained or
 * skewed clock can give two changes the same mtime, as git's "racy" index entries), and every folder is
 * listed again at least every RELIST_EVERY sweeps whatever its mtime says.
 */

/** Listing taken this close (ms, either side) to the folder's mtime: read it again next time. */
const RACY_MS = 2000;
/** Every folder is re-listed at least this often (in sweeps), staggered so no sweep lists them all. */
export const RELIST_EVERY = 16;

export interface TreeSweepOptions {
  /** Absolute path of the watch root. */
  root: string;
  filter: PathFilter;
  /** Wall clock (ms) for the racy-listing rule; injected by tests. */
  now?: () => number;
}

/** What one sweep changed. Paths are '/'-separated and relative to the root; folders are absolute. */
export interface TreeDelta {
  /** New or changed files with their stats, in `upsertStats` as [size, mtimeMs, ino] triples. */
  upsertPaths: string[];
  upsertStats: number[];
  /** How many of the upserts are new files (the rest changed). */
  added: number;
  removed: string[];
  /** Folders now watched / no longer there (absolute paths), for per-folder native watchers. */
  dirsAdded: string[];
  dirsRemoved: string[];
  /** Folders that exist but could not be listed; their files were kept as they were. */
  unreadable: string[];
  files: number;
  dirs: number;
  /** Folders listed (readdir) by this sweep; the others reused their listing. */
  listed: number;
  mountPoint: boolean;
}

export type TreeSweepResult = ({ ok: true } & TreeDelta) | { ok: false; error: PostflowError };

interface DirNode {
  rel: string;
  abs: string;
  /** `abs + '/'`, `rel + '/'` (or '' at the root): the only strings a sweep of an unchanged folder needs. */
  absPrefix: string;
  relPrefix: string;
  /** The folder's mtime and inode when it was last listed; NaN = never listed. */
  mtimeMs: number;
  ino: number;
  listedAt: number;
  /** Stagger for the forced re-listing. */
  slot: number;
  names: string[];
  sizes: number[];
  mtimes: number[];
  inos: number[];
  children: DirNode[];
}

export interface TreeSweep {
  sweep(expectMountPoint?: boolean): TreeSweepResult;
  /** Every file currently known: relPath → [size, mtimeMs, ino]. For tests and diagnostics. */
  entries(): Map<string, [number, number, number]>;
  readonly files: number;
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

const LSTAT_OPTS = { throwIfNoEntry: false } as const;

export function createTreeSweep(opts: TreeSweepOptions): TreeSweep {
  const root = path.resolve(opts.root);
  const { filter } = opts;
  const now = opts.now ?? Date.now;
  let top: DirNode | undefined;
  let sweepNo = 0;
  let fileCount = 0;
  let slots = 0;

  const newNode = (rel: string, abs: string): DirNode => ({
    rel,
    abs,
    absPrefix: abs + '/',
    relPrefix: rel === '' ? '' : rel + '/',
    mtimeMs: NaN,
    ino: NaN,
    listedAt: 0,
    slot: slots++,
    names: [],
    sizes: [],
    mtimes: [],
    inos: [],
    children: [],
  });

  /** A folder (and everything below it) is gone: its files are removed. */
  const dropNode = (node: DirNode, d: TreeDelta): void => {
    for (let i = 0; i < node.names.length; i++) {
      if (Number.isNaN(node.sizes[i]!)) continue; // never reported
      d.removed.push(node.relPrefix + node.names[i]!);
      fileCount--;
    }
    d.dirsRemoved.push(node.abs);
    for (const child of node.children) dropNode(child, d);
  };

  /**
   * Reads the folder's entries again and merges them with what it held (new files are lstat'ed by the
   * caller). Returns the readdir error code when it could not be listed, with nothing changed.
   */
  const relist = (node: DirNode, d: TreeDelta): string | undefined => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(node.abs, { withFileTypes: true });
    } catch (err) {
      return errCode(err);
    }
    d.listed++;
    const oldIndex = new Map<string, number>();
    for (let i = 0; i < node.names.length; i++) oldIndex.set(node.names[i]!, i);
    const oldChildren = new Map<string, DirNode>();
    for (const c of node.children) oldChildren.set(c.rel, c);
    const names: string[] = [];
    const sizes: number[] = [];
    const mtimes: number[] = [];
    const inos: number[] = [];
    const children: DirNode[] = [];
    for (const entry of entries) {
      const relPath = node.relPrefix + entry.name;
      if (entry.isDirectory()) {
        if (!filter(relPath, true)) continue;
        const old = oldChildren.get(relPath);
        if (old !== undefined) oldChildren.delete(relPath);
        else d.dirsAdded.push(node.absPrefix + entry.name);
        children.push(old ?? newNode(relPath, node.absPrefix + entry.name));
        continue;
      }
      // Symlinks are neither followed nor reported; other types are not media.
      if (!entry.isFile() || !filter(relPath, false)) continue;
      const i = oldIndex.get(entry.name);
      names.push(entry.name);
      if (i === undefined) {
        // NaN never equals a stat: the file is reported as an upsert by the stat pass.
        sizes.push(NaN), mtimes.push(NaN), inos.push(NaN);
      } else {
        oldIndex.delete(entry.name);
        sizes.push(node.sizes[i]!), mtimes.push(node.mtimes[i]!), inos.push(node.inos[i]!);
      }
    }
    for (const [name, i] of oldIndex) {
      // Only files that had been reported count as removed (a NaN entry never was).
      if (!Number.isNaN(node.sizes[i]!)) {
        d.removed.push(node.relPrefix + name);
        fileCount--;
      }
    }
    for (const gone of oldChildren.values()) dropNode(gone, d);
    node.names = names;
    node.sizes = sizes;
    node.mtimes = mtimes;
    node.inos = inos;
    node.children = children;
    return undefined;
  };

  /**
   * Sweeps one folder: re-list if needed, lstat every file, then its subfolders. Returns 'gone' when the
   * folder no longer exists, the error code when it exists but cannot be listed, undefined when swept.
   */
  const visit = (node: DirNode, d: TreeDelta, wall: number, dirStat: fs.Stats | undefined): string | undefined => {
    const st = dirStat ?? fs.lstatSync(node.abs, LSTAT_OPTS);
    if (st === undefined || !st.isDirectory()) return 'gone';
    const trusted =
      st.mtimeMs === node.mtimeMs &&
      st.ino === node.ino &&
      Math.abs(node.listedAt - node.mtimeMs) > RACY_MS &&
      (sweepNo + node.slot) % RELIST_EVERY !== 0;
    if (!trusted) {
      const code = relist(node, d);
      if (code === 'ENOENT' || code === 'ENOTDIR') return 'gone';
      if (code !== undefined) return code;
      node.mtimeMs = st.mtimeMs;
      node.ino = st.ino;
      node.listedAt = wall;
    }
    const { names, sizes, mtimes, inos, absPrefix } = node;
    let w = 0;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      let fst: fs.Stats | undefined;
      try {
        fst = fs.lstatSync(absPrefix + name, LSTAT_OPTS);
      } catch {
        // Unreadable right now (EACCES, EIO): keep what we had; never reported is still not reported.
        names[w] = name, sizes[w] = sizes[i]!, mtimes[w] = mtimes[i]!, inos[w] = inos[i]!, w++;
        continue;
      }
      const wasKnown = !Number.isNaN(sizes[i]!);
      if (fst === undefined || !fst.isFile()) {
        // Gone or replaced by something else since the listing: removed now, re-listed next time.
        if (wasKnown) {
          d.removed.push(node.relPrefix + name);
          fileCount--;
        }
        node.mtimeMs = NaN;
        continue;
      }
      const size = fst.size;
      const mtimeMs = fst.mtimeMs;
      const ino = fst.ino;
      if (size !== sizes[i] || mtimeMs !== mtimes[i] || ino !== inos[i]) {
        d.upsertPaths.push(node.relPrefix + name);
        d.upsertStats.push(size, mtimeMs, ino);
        if (!wasKnown) {
          d.added++;
          fileCount++;
        }
      }
      names[w] = name, sizes[w] = size, mtimes[w] = mtimeMs, inos[w] = ino, w++;
    }
    if (w !== names.length) {
      names.length = w, sizes.length = w, mtimes.length = w, inos.length = w;
    }
    d.dirs++;
    let keep = 0;
    const children = node.children;
    for (let i = 0; i < children.length; i++) {
      const child = children[i]!;
      let outcome: string | undefined;
      try {
        outcome = visit(child, d, wall, undefined);
      } catch (err) {
        outcome = errCode(err);
      }
      if (outcome === 'gone') {
        dropNode(child, d);
        node.mtimeMs = NaN;
        continue;
      }
      // EACCES, EIO on a flaky mount say nothing about the files: they are kept as they were.
      if (outcome !== undefined) d.unreadable.push(child.rel);
      children[keep++] = child;
    }
    children.length = keep;
    return undefined;
  };

  return {
    sweep(expectMountPoint = false) {
      const rootCheck = checkRoot(root, expectMountPoint);
      if (!rootCheck.ok) return rootCheck;
      sweepNo++;
      const d: TreeDelta = {
        upsertPaths: [],
        upsertStats: [],
        added: 0,
        removed: [],
        dirsAdded: [],
        dirsRemoved: [],
        unreadable: [],
        files: 0,
        dirs: 0,
        listed: 0,
        mountPoint: rootCheck.mountPoint,
      };
      if (top === undefined) {
        top = newNode('', root);
        d.dirsAdded.push(root);
      }
      const outcome = visit(top, d, now(), rootCheck.stat);
      if (outcome !== undefined) return { ok: false, error: rootCheck.missing(outcome === 'gone' ? 'ENOENT' : outcome) };
      d.files = fileCount;
      return { ok: true, ...d };
    },
    entries() {
      const out = new Map<string, [number, number, number]>();
      const walk = (node: DirNode) => {
        for (let i = 0; i < node.names.length; i++) {
          if (!Number.isNaN(node.sizes[i]!)) out.set(node.relPrefix + node.names[i]!, [node.sizes[i]!, node.mtimes[i]!, node.inos[i]!]);
        }
        for (const c of node.children) walk(c);
      };
      if (top !== undefined) walk(top);
      return out;
    },
    get files() {
      return fileCount;
    },
  };
}
