/**
 * chokidar as the watcher's accelerator: native events (inotify, FSEvents) tell us at once about files
 * written on THIS machine, so a local export is noticed without waiting for the next sweep. It never
 * decides anything on its own — each event only asks the watcher to lstat that one path — because files
 * written by other LucidLink clients arrive without any event, and only a sweep can tell a deleted file from
 * an unmounted filespace. Polling mode is never used (a stat timer per file: chokidar issues #1057, #1162).
 */
import { relative, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import type { PathFilter } from './filters.ts';

export interface NativeEvents {
  /** Resolves once chokidar has armed its watches (events before that are not reported). */
  ready: Promise<void>;
  close(): Promise<void>;
}

export function startNativeEvents(opts: {
  root: string;
  filter: PathFilter;
  /** Called with the absolute path of a file that was added or changed. */
  onPath: (absPath: string) => void;
  logger: Logger;
}): NativeEvents {
  const rel = (p: string) => relative(opts.root, p).split(sep).join('/');
  const watcher: FSWatcher = watch(opts.root, {
    ignoreInitial: true,
    usePolling: false,
    followSymlinks: false,
    persistent: false,
    // The ignore rules run before chokidar descends or stats; without stats a path is judged as a folder,
    // so include patterns (which name files) never hide a folder that may hold matching files.
    ignored: (p: string, stats?: { isDirectory(): boolean }) => {
      const r = rel(p);
      if (r === '' || r.startsWith('..')) return false;
      return !opts.filter(r, stats ? stats.isDirectory() : true);
    },
  });
  watcher.on('add', opts.onPath);
  watcher.on('change', opts.onPath);
  watcher.on('error', (err: unknown) => {
    // ENOSPC (inotify limit) and the like: the sweep still covers everything.
    opts.logger.debug({ folder: opts.root, err: describeError(err) }, 'native events degraded (the sweep still runs)');
  });
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return { ready, close: () => watcher.close() };
}
