import { parentPort } from 'node:worker_threads';
import { createFilter } from './filters.ts';
import { createTreeSweep, type TreeSweep } from './tree-sweep.ts';
import type { SweepOutcome, SweepReply, SweepRequest } from './sweeper.ts';

interface FolderState {
  tree: TreeSweep;
  /** False until the first successful sweep: that one's upserts list every file. */
  swept: boolean;
  /** Sticky once seen: an unmounted filespace must not read as an empty folder. */
  mountPoint: boolean;
}

const port = parentPort;
if (port === null) throw new Error('sweep-worker.ts must run as a worker thread');
let folders: FolderState[] = [];

function sweepFolder(state: FolderState): SweepOutcome {
  const started = performance.now();
  const result = state.tree.sweep(state.mountPoint);
  // While missing, the tree is kept so the comeback is diffed against it.
  if (!result.ok) return { kind: 'missing', code: result.error.code, message: result.error.message };
  state.mountPoint ||= result.mountPoint;
  const full = !state.swept;
  state.swept = true;
  return {
    kind: 'ok',
    full,
    upserts: { paths: result.upsertPaths.join('\n'), stats: Float64Array.from(result.upsertStats) },
    removed: result.removed,
    dirsAdded: result.dirsAdded,
    dirsRemoved: result.dirsRemoved,
    files: result.files,
    dirs: result.dirs,
    listed: result.listed,
    unreadable: result.unreadable,
    durationMs: performance.now() - started,
  };
}

port.on('message', (msg: SweepRequest) => {
  if (msg.type === 'init') {
    folders = msg.folders.map((f) => ({
      tree: createTreeSweep({ root: f.root, filter: createFilter({ include: f.include, exclude: f.exclude }) }),
      swept: false,
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
      // A full sweep's upsert lists (100k paths: ~15 MB of large objects) would stay until a major GC that
      // this mostly idle thread may not run for hours: one once this handler has let go of them (bin/postflow.js
      // exposes gc; 'last-resort' also hands the pages back to the OS).
      const gc = (globalThis as { gc?: (o: object) => void }).gc;
      if (outcome.full && gc) setImmediate(() => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }));
      return;
    }
  } catch (err) {
    reply = { type: 'failed', id: msg.id, message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
