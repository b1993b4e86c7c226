/** What identifies one version of a file's contents cheaply: a change of any of these restarts the wait. */
export interface FileStat {
  size: number;
  mtimeMs: number;
  ino: number;
}

export function sameStat(a: FileStat, b: FileStat): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

export interface DueFile {
  path: string;
  stat: FileStat;
  /** When the current window began (last observed change). */
  since: number;
}

export type Observation = 'new' | 'changed' | 'unchanged';

export interface StabilityTracker {
  /** Records what a stat saw at `now`. A different size, mtime or inode restarts the file's window. */
  observe(path: string, stat: FileStat, now: number): Observation;
  /** Files unchanged for the whole window at `now`; they are no longer tracked once returned. */
  due(now: number): DueFile[];
  forget(path: string): void;
  has(path: string): boolean;
  /** Earliest time a tracked file can become due, or undefined when nothing is tracked. */
  nextDueAt(): number | undefined;
  readonly size: number;
}

/**
 * The stability rule: a file counts as finished once size, mtime and inode have stayed the same for
 * `stabilityMs` since the last change we observed. The window starts at the observation, not at the file's
 * mtime, because the mtime comes from the writing machine's clock and a growing file observed late must
 * still be watched for a whole window. A writer that keeps changing the file is never due, however long
 * it writes.
 */
export function createStabilityTracker(opts: { stabilityMs: number }): StabilityTracker {
  const { stabilityMs } = opts;
  // Insertion order == order of `since` (a change re-inserts at the end, clocks are monotonic), so the
  // oldest windows are at the front and due()/nextDueAt() never scan the whole map.
  const tracked = new Map<string, DueFile>();

  return {
    observe(path, stat, now) {
      const prev = tracked.get(path);
      if (prev !== undefined && sameStat(prev.stat, stat)) return 'unchanged';
      tracked.delete(path);
      tracked.set(path, { path, stat: { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino }, since: now });
      return prev === undefined ? 'new' : 'changed';
    },
    due(now) {
      const out: DueFile[] = [];
      for (const entry of tracked.values()) {
        if (now - entry.since < stabilityMs) break;
        out.push(entry);
      }
      for (const entry of out) tracked.delete(entry.path);
      return out;
    },
    forget(path) {
      tracked.delete(path);
    },
    has(path) {
      return tracked.has(path);
    },
    nextDueAt() {
      for (const entry of tracked.values()) return entry.since + stabilityMs;
      return undefined;
    },
    get size() {
      return tracked.size;
    },
  };
}
