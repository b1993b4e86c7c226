/** Error codes of the admin room (local listener, control API, the CLI's way to the running daemon). */
import { createError } from '../errors.ts';

export const ERR_ADMIN_UNKNOWN_JOB = createError(
  'PF_ERR_ADMIN_UNKNOWN_JOB',
  (id: string) => `no job matches "${id}"; expected a job id (or a unique prefix of one) as \`postflow jobs\` lists them`,
  { status: 404 },
);

export const ERR_ADMIN_AMBIGUOUS_JOB = createError(
  'PF_ERR_ADMIN_AMBIGUOUS_JOB',
  (prefix: string, n: number) => `"${prefix}" matches ${n} jobs; expected a longer prefix or the full job id`,
  { status: 409 },
);

export const ERR_ADMIN_NOT_RETRYABLE = createError(
  'PF_ERR_ADMIN_NOT_RETRYABLE',
  (id: string, state: string) => `job ${id} is ${state}; only a failed job can be re-queued`,
  { status: 409 },
);

export const ERR_ADMIN_BAD_LEVEL = createError(
  'PF_ERR_ADMIN_BAD_LEVEL',
  (found: string) => `log level "${found}" is not one of trace, debug, info, warn, error, fatal, silent`,
  { status: 400 },
);

export const ERR_ADMIN_BAD_STATE = createError(
  'PF_ERR_ADMIN_BAD_STATE',
  (found: string, expected: readonly string[]) => `job state "${found}" is not one of ${expected.join(', ')}`,
  { status: 400 },
);

export const ERR_ADMIN_UNREACHABLE = createError(
  'PF_ERR_ADMIN_UNREACHABLE',
  (url: string, why: string) => `the running daemon's admin listener at ${url} did not answer (${why}); expected the daemon that wrote admin.json to be up`,
  { retryable: true },
);

export const ERR_ADMIN_DAEMON_BUSY = createError(
  'PF_ERR_ADMIN_DAEMON_BUSY',
  (stateDir: string) =>
    `a daemon holds the job store in ${stateDir} but left no admin.json there; expected a postflow daemon of this version (restart it so it writes admin.json)`,
);

export const ERR_ADMIN_SUPERSEDED = createError(
  'PF_ERR_ADMIN_SUPERSEDED',
  (id: string, path: string) => `job ${id} is not re-queued: a newer version of ${path} has a job of its own, which imports it`,
  { status: 409 },
);
