import { createError } from '../errors.ts';

export const ERR_JOBS_STORE_LOCKED = createError(
  'PF_ERR_JOBS_STORE_LOCKED',
  (path: string) =>
    `job store ${path} is locked by another process (another postflow daemon on the same state dir?); expected one daemon per state dir: stop the other one or give this one its own state dir`,
);

export const ERR_JOBS_STORE_CORRUPT = createError(
  'PF_ERR_JOBS_STORE_CORRUPT',
  (path: string, detail: string) =>
    `job store ${path} is not a valid SQLite database (${detail}); expected a postflow job store: move it aside (keep it for inspection) and restart to begin with an empty store`,
);

export const ERR_JOBS_STORE_READONLY = createError(
  'PF_ERR_JOBS_STORE_READONLY',
  (path: string, detail: string) =>
    `job store ${path} cannot be written (${detail}); expected the file and its directory to be writable by the daemon's user (the WAL needs new files beside it)`,
);

export const ERR_JOBS_STORE_DISK_FULL = createError(
  'PF_ERR_JOBS_STORE_DISK_FULL',
  (path: string) => `job store ${path}: the disk is full; expected free space on its file system: free some and retry`,
  { retryable: true },
);

export const ERR_JOBS_STORE_IO = createError(
  'PF_ERR_JOBS_STORE_IO',
  (path: string, detail: string) => `job store ${path} failed: ${detail}; expected a working local disk for the state dir`,
);

export const ERR_JOBS_STORE_TOO_NEW = createError(
  'PF_ERR_JOBS_STORE_TOO_NEW',
  (path: string, found: number, supported: number) =>
    `job store ${path} has schema version ${found}; this postflow supports up to ${supported}: upgrade postflow, or point it at another state dir`,
);

export const ERR_JOBS_STORE_CLOSED = createError(
  'PF_ERR_JOBS_STORE_CLOSED',
  (path: string) => `job store ${path} was used after close(); expected calls only while the store is open`,
);

export const ERR_JOBS_ILLEGAL_TRANSITION = createError(
  'PF_ERR_JOBS_ILLEGAL_TRANSITION',
  (from: string, to: string) => `job transition ${from} → ${to} is not in the state table; expected a legal edge (see src/jobs/states.ts)`,
);

export const ERR_JOBS_PATH_TAKEN = createError(
  'PF_ERR_JOBS_PATH_TAKEN',
  (id: string, path: string, other: string) =>
    `job ${id} cannot reopen for ${path}: job ${other} is already open for that path (the file changed meanwhile); expected this older job to be cancelled instead`,
);

export const ERR_JOBS_UNKNOWN_FIELD = createError(
  'PF_ERR_JOBS_UNKNOWN_FIELD',
  (field: string) => `job patch has field "${field}", which cannot be patched; expected a Job field other than id/state/createdAt/updatedAt`,
);

export const ERR_JOBS_STORE_UNREACHABLE = createError(
  'PF_ERR_JOBS_STORE_UNREACHABLE',
  (url: string, detail: string) =>
    `PostgreSQL job store ${url} cannot be reached (${detail}); expected a running server that accepts this user and database (check store.url)`,
  { retryable: true },
);

export const ERR_JOBS_STORE_URL = createError(
  'PF_ERR_JOBS_STORE_URL',
  (found: string) => `store.url ${found} is not a PostgreSQL URL; expected postgres://user:password@host:port/database`,
);
