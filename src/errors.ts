/**
 * One error type for the whole daemon, in the style of fastify's `FST_ERR_*`: every error postflow can
 * raise has a stable `code` (`PF_ERR_<ROOM>_<WHAT>`) that tests, logs and docs match on, and a message that
 * says what was found and what is expected. Each room declares its own codes in its `errors.ts`.
 */
export class PostflowError extends Error {
  readonly code: string;
  /** Whether retrying the same operation later may succeed (network faults, 429, 5xx). */
  readonly retryable: boolean;
  /** HTTP status where the error stands for one (API answers), else undefined. */
  readonly status: number | undefined;

  constructor(code: string, message: string, opts: { retryable?: boolean; status?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PostflowError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.status = opts.status;
  }
}

export interface ErrorFactory<A extends unknown[]> {
  (...args: A): PostflowError;
  readonly code: string;
}

/**
 * Declares an error kind. `message` builds the text from the arguments the caller passes, so call sites
 * read `throw ERR_X(path)` and the wording lives in one place per room.
 */
export function createError<A extends unknown[]>(
  code: string,
  message: (...args: A) => string,
  defaults: { retryable?: boolean; status?: number } = {},
): ErrorFactory<A> {
  const factory = (...args: A) => new PostflowError(code, message(...args), defaults);
  return Object.assign(factory, { code });
}

/** True when `err` is a PostflowError, optionally of the given kind. */
export function isPostflowError(err: unknown, kind?: { code: string }): err is PostflowError {
  return err instanceof PostflowError && (kind === undefined || err.code === kind.code);
}

/** A one-line description of any thrown value, for logs and CLI output (never a stack trace alone). */
export function describeError(err: unknown): string {
  if (err instanceof PostflowError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
