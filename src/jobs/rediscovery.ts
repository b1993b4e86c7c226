/**
 * What a new report of a file means for the open job of its path — the rule every store applies in
 * `discover`, kept in one pure function so SQLite and PostgreSQL cannot drift apart.
 */
import type { JobState } from './states.ts';
import type { DiscoveredFile, Job } from './store.ts';

/** `undefined`: leave the job as it is; otherwise rewrite it from the report, in the returned state. */
export function rediscoveredState(job: Job, file: DiscoveredFile): JobState | undefined {
  // Reports of one path can arrive late or out of order (async handlers; in a fleet, every node's watcher
  // reports the same file): an older mtime is a stale look at a file being written, never a newer version.
  if (file.mtimeMs < job.mtimeMs) return undefined;
  const contentChanged = job.size !== file.size || job.mtimeMs !== file.mtimeMs || job.ino !== file.ino;
  const same =
    !contentChanged &&
    job.folderIndex === file.folderIndex &&
    job.root === file.root &&
    job.relPath === file.relPath &&
    job.name === file.name &&
    job.destination === file.destination;
  if (same) return undefined;
  // A file that changed after it was found stable must prove stability again before it is uploaded.
  return contentChanged ? 'discovered' : job.state;
}
