/**
 * Every error the Frame.io room raises. API answers keep the API's own `detail` and their HTTP status, so a
 * log line says what Frame.io said, not just that "something failed". `retryable` tells the job engine
 * whether the same call may succeed later (rate limit, outage, network) or needs a person (bad id, revoked
 * login).
 */
import { PostflowError, createError } from '../errors.ts';

const LOGIN_HINT = 'run `postflow auth login` to sign in again';

export const ERR_API = { code: 'PF_ERR_FRAMEIO_API' } as const;
export const ERR_RATE_LIMITED = { code: 'PF_ERR_FRAMEIO_RATE_LIMITED' } as const;
export const ERR_UNAUTHORIZED = { code: 'PF_ERR_FRAMEIO_UNAUTHORIZED' } as const;
export const ERR_NOT_FOUND = { code: 'PF_ERR_FRAMEIO_NOT_FOUND' } as const;
export const ERR_NETWORK = { code: 'PF_ERR_FRAMEIO_NETWORK' } as const;
export const ERR_CREATE_UNCERTAIN = { code: 'PF_ERR_FRAMEIO_CREATE_UNCERTAIN' } as const;

/** Any non-2xx answer we have no more specific code for. 5xx are retryable; other 4xx are not. */
export function apiError(operation: string, status: number, detail: string | undefined): PostflowError {
  if (status === 404) return notFoundError(operation, detail);
  const retryable = status >= 500 || status === 408;
  return new PostflowError(
    ERR_API.code,
    `Frame.io ${operation} answered HTTP ${status}: ${detail ?? 'no error detail'}; expected a 2xx answer`,
    { status, retryable },
  );
}

export function notFoundError(operation: string, detail: string | undefined): PostflowError {
  return new PostflowError(
    ERR_NOT_FOUND.code,
    `Frame.io ${operation} answered 404: ${detail ?? 'not found'}; expected an existing resource the login can see`,
    { status: 404 },
  );
}

export function rateLimitedError(operation: string, attempts: number): PostflowError {
  return new PostflowError(
    ERR_RATE_LIMITED.code,
    `Frame.io ${operation} was still rate limited (429) after ${attempts} attempts; expected the limit to clear within the retry budget`,
    { status: 429, retryable: true },
  );
}

export function unauthorizedError(operation: string, detail: string | undefined): PostflowError {
  return new PostflowError(
    ERR_UNAUTHORIZED.code,
    `Frame.io ${operation} answered 401 with a freshly refreshed access token: ${detail ?? 'unauthorized'}; expected the client id (x-api-key) to belong to the login`,
    { status: 401 },
  );
}

export function networkError(operation: string, cause: unknown, attempts: number): PostflowError {
  const why = cause instanceof Error ? ((cause.cause as Error | undefined)?.message ?? cause.message) : String(cause);
  return new PostflowError(
    ERR_NETWORK.code,
    `Frame.io ${operation} failed on the network after ${attempts} attempts (${why}); expected the API to be reachable`,
    { retryable: true, cause },
  );
}

/**
 * A create (remote_upload, folder, version stack…) got no clear answer: it may have happened on Frame.io's
 * side. There are no idempotency keys, so the caller must look for the resource before creating it again.
 */
export function createUncertainError(operation: string, reason: string, status?: number, cause?: unknown): PostflowError {
  return new PostflowError(
    ERR_CREATE_UNCERTAIN.code,
    `Frame.io ${operation} got no definite answer (${reason}); the resource may or may not exist now, expected the caller to look before creating it again`,
    { retryable: true, ...(status === undefined ? {} : { status }), cause },
  );
}

export const ERR_BAD_RESPONSE = createError(
  'PF_ERR_FRAMEIO_BAD_RESPONSE',
  (operation: string, problem: string) =>
    `Frame.io ${operation} answered with an unexpected body (${problem}); expected the V4 shape from the OpenAPI spec`,
);

export const ERR_DESTINATION_NOT_FOUND = createError(
  'PF_ERR_FRAMEIO_DESTINATION_NOT_FOUND',
  (id: string) =>
    `Frame.io destination ${JSON.stringify(id)} is neither a folder nor a project this login can see; expected a folder id or a project id of account's projects`,
);

export const ERR_AUTH_REVOKED = createError(
  'PF_ERR_FRAMEIO_AUTH_REVOKED',
  (file: string, detail: string) =>
    `Adobe IMS rejected the refresh token from ${file} (${detail}); the login was revoked or expired, ${LOGIN_HINT}`,
);

export const ERR_NOT_LOGGED_IN = createError(
  'PF_ERR_FRAMEIO_NOT_LOGGED_IN',
  (file: string) => `no Frame.io login: the refresh-token file ${file} does not exist or is empty; ${LOGIN_HINT}`,
);

export const ERR_IMS_REJECTED = createError(
  'PF_ERR_FRAMEIO_IMS_REJECTED',
  (status: number, error: string) =>
    `Adobe IMS refused the token request (HTTP ${status}, ${error}); expected a valid client id/secret and grant for this credential`,
);

export function imsUnavailableError(detail: string, cause?: unknown, status?: number): PostflowError {
  return new PostflowError(
    'PF_ERR_FRAMEIO_IMS_UNAVAILABLE',
    `Adobe IMS token endpoint could not be used (${detail}); expected it to answer, will retry`,
    { retryable: true, cause, ...(status === undefined ? {} : { status }) },
  );
}
export const ERR_IMS_UNAVAILABLE = { code: 'PF_ERR_FRAMEIO_IMS_UNAVAILABLE' } as const;

export const ERR_NO_CREDENTIALS = createError(
  'PF_ERR_FRAMEIO_NO_CREDENTIALS',
  () =>
    'no Frame.io credentials configured: expected frameio.refreshTokenFile (user login) or client credentials (clientSecret + scopes)',
);

export const ERR_TOKEN_FILE_PERMISSIONS = createError(
  'PF_ERR_FRAMEIO_TOKEN_FILE_PERMISSIONS',
  (file: string, mode: number) =>
    `refresh-token file ${file} has mode ${(mode & 0o777).toString(8).padStart(3, '0')} (readable by group or others); expected 600: run \`chmod 600 ${file}\``,
);

export const ERR_TOKEN_FILE_INVALID = createError(
  'PF_ERR_FRAMEIO_TOKEN_FILE_INVALID',
  (file: string, problem: string) =>
    `refresh-token file ${file} could not be read (${problem}); expected a JSON object with "refresh_token", ${LOGIN_HINT}`,
);

export const ERR_TOKEN_LOCK_TIMEOUT = createError(
  'PF_ERR_FRAMEIO_TOKEN_LOCK_TIMEOUT',
  (lock: string, ms: number, holder: string) =>
    `could not take the refresh-token lock ${lock} within ${ms} ms (held by ${holder}); expected the other postflow process to finish its refresh`,
  { retryable: true },
);

export const ERR_ACCOUNT_AMBIGUOUS = createError(
  'PF_ERR_FRAMEIO_ACCOUNT_AMBIGUOUS',
  (count: number) =>
    `frameio.accountId is not set and the login can see ${count} Frame.io accounts; expected exactly one, or set frameio.accountId`,
);

export const ERR_LOGIN_KEY_INVALID = createError(
  'PF_ERR_FRAMEIO_LOGIN_KEY_INVALID',
  (length: number) => `store.secretKey is not 64 hex digits (${length} characters); expected 64 hex digits, e.g. from \`openssl rand -hex 32\``,
);

export const ERR_LOGIN_UNSEALABLE = createError(
  'PF_ERR_FRAMEIO_LOGIN_UNSEALABLE',
  (problem: string) =>
    `the fleet's Frame.io login in PostgreSQL (table frameio_login) cannot be opened with this node's store.secretKey (${problem}); expected the same store.secretKey on every node of the fleet`,
);

export const ERR_LOGIN_STORE_UNAVAILABLE = createError(
  'PF_ERR_FRAMEIO_LOGIN_STORE_UNAVAILABLE',
  (detail: string) => `the fleet's Frame.io login in PostgreSQL could not be read or written (${detail}); expected the store to answer, will retry`,
  { retryable: true },
);
