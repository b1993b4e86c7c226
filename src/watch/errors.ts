import { createError } from '../errors.ts';

/** The watch root cannot be read (unmounted filespace, deleted folder, permissions). */
export const PF_ERR_WATCH_FOLDER_MISSING = createError(
  'PF_ERR_WATCH_FOLDER_MISSING',
  (root: string, cause: string) =>
    `watch folder ${root} is not reachable (${cause}); expected a readable directory (is the filespace mounted?)`,
  { retryable: true },
);

/** The watch root exists but is a file or something else than a directory. */
export const PF_ERR_WATCH_NOT_A_DIRECTORY = createError(
  'PF_ERR_WATCH_NOT_A_DIRECTORY',
  (root: string) => `watch folder ${root} is not a directory; expected a directory to watch`,
  { retryable: true },
);

/**
 * The root was a mount point and is now a plain folder of its parent's file system: on Linux an unmounted
 * FUSE filespace leaves an empty directory behind, which must not read as "every file was deleted".
 */
export const PF_ERR_WATCH_UNMOUNTED = createError(
  'PF_ERR_WATCH_UNMOUNTED',
  (root: string) =>
    `watch folder ${root} was a mount point and now lies on its parent's file system; expected the filespace to be mounted there`,
  { retryable: true },
);

export const PF_ERR_WATCH_INVALID_OPTIONS = createError(
  'PF_ERR_WATCH_INVALID_OPTIONS',
  (what: string, found: string, expected: string) => `watcher option ${what} is ${found}; expected ${expected}`,
);

/** The sweep worker thread died or answered nonsense. */
export const PF_ERR_WATCH_SWEEPER_FAILED = createError(
  'PF_ERR_WATCH_SWEEPER_FAILED',
  (detail: string) => `the sweep worker failed (${detail}); expected it to answer every sweep request`,
  { retryable: true },
);
