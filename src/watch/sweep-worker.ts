import { parentPort } from 'node:worker_threads';
import { createFilter, type PathFilter } from './filters.ts';
import type { Snapshot } from './snapshot.ts';
import { sweepTreeSync } from './sweep.ts';
import type { SweepOutcome, SweepReply, SweepRequest } from './sweeper.ts';

interface FolderState {
  root: string;
  filter: PathFilter;
  prev: Snapshot | undefined;
  /** Sticky once seen: an unmounted filespace must not read as an empty folder. */
  mountPoint: boolean;
}

const port = parentPort;
if (port === null) throw new Error('sweep-worker.ts must run as a worker thread');
let folders: FolderState[] = [];

function sweepFolder(state: FolderState): SweepOutcome {
  const started = performance.now();
  const result = sweepTreeSync({
    root: state.root,
    filter: state.filter,
    prev: state.prev,
    expectMountPoint: state.mountPoint,
  });
  // While missing, the last snapshot is kept so the comeback is diffed against it.
  if (!result.ok) return { kind: 'missing', code: result.error.code, message: result.error.message };
  state.mountPoint ||= result.mountPoint;
  const prev = state.prev;
  const next = result.snapshot;
  const paths: string[] = [];
  const nums: number[] = [];
  const removed: string[] = [];
  // Inline rather than diffSnapshots(): it saves building the path arrays and a second lookup per file.
  let added = 0;
  for (const [relPath, stat] of next) {
    const before = prev?.get(relPath);
    if (before === stat) continue;
    if (before === undefined) added++;
    paths.push(relPath);
    nums.push(stat.size, stat.mtimeMs, stat.ino);
  }
  // Every path of next that is not new was in prev; equal counts then mean nothing was removed.
  if (prev !== undefined && prev.size !== next.size - added) for (const relPath of prev.keys()) if (!next.has(relPath)) removed.push(relPath);
  state.prev = next;
  return {
    kind: 'ok',
    full: prev === undefined,
    upserts: { paths: paths.join('\n'), stats: Float64Array.from(nums) },
    removed,
    files: next.size,
    dirs: result.dirs,
    unreadable: result.unreadable,
    durationMs: performance.now() - started,
  };
}

port.on('message', (msg: SweepRequest) => {
  if (msg.type === 'init') {
    folders = msg.folders.map((f) => ({
      root: f.root,
      filter: createFilter({ include: f.include, exclude: f.exclude }),
      prev: undefined,
      mountPoint: false,
    }));
    return;
  }
  let reply: SweepReply;
  try {
    const state = folders[msg.folderIndex];
    if (state === undefined) throw new Error(`no folder #${msg.folderIndex}`);
    const outcome = sweepFolder(state);
    reply = { type: 'result', id: msg.id, outcome };
    if (outcome.kind === 'ok') {
      port.postMessage(reply, [outcome.upserts.stats.buffer as ArrayBuffer]);
      return;
    }
  } catch (err) {
    reply = { type: 'failed', id: msg.id, message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
