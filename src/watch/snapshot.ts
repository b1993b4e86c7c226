import { sameStat, type FileStat } from './stability.ts';

/** What one sweep found under a root: '/'-separated path relative to the root → its stat. */
export type Snapshot = Map<string, FileStat>;

export interface SnapshotDiff {
  added: string[];
  changed: string[];
  removed: string[];
}

export function diffSnapshots(prev: Snapshot, next: Snapshot): SnapshotDiff {
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  for (const [path, stat] of next) {
    const before = prev.get(path);
    if (before === undefined) added.push(path);
    // Identity first: the sweep reuses the previous entry object when nothing changed.
    else if (before !== stat && !sameStat(before, stat)) changed.push(path);
  }
  // Equal sizes with every next path present in prev means nothing was removed.
  if (prev.size !== next.size - added.length) {
    for (const path of prev.keys()) if (!next.has(path)) removed.push(path);
  }
  return { added, changed, removed };
}
