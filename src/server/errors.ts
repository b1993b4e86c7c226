/** Error kinds of the public file server room. */
import { createError } from '../errors.ts';

export const ERR_SERVER_LISTEN = createError(
  'PF_ERR_SERVER_LISTEN',
  (host: string, port: number, reason: string) =>
    `cannot listen on ${host}:${port} (${reason}); expected a free port: set server.port to another one or stop the process using it`,
);

export const ERR_SERVER_NOT_A_FILE = createError(
  'PF_ERR_SERVER_NOT_A_FILE',
  (path: string, found: string) => `cannot expose ${path}: found ${found}, expected a regular file (symlinks are not followed)`,
);

export const ERR_SERVER_FILE_CHANGED = createError(
  'PF_ERR_SERVER_FILE_CHANGED',
  (name: string, what: string) => `file ${name} is no longer the one registered for its URL (${what}); expected the same inode, size and mtime`,
);

export const ERR_SERVER_CLOSED = createError(
  'PF_ERR_SERVER_CLOSED',
  () => 'the file server is closed; expected expose() before close()',
);

export const ERR_SERVER_BAD_NAME = createError(
  'PF_ERR_SERVER_BAD_NAME',
  (name: string) => `cannot expose under the name ${JSON.stringify(name)}; expected a non-empty file name without "/", NUL or control characters`,
);
