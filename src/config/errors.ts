import { createError, PostflowError } from '../errors.ts';

/** A configuration that cannot run, with one line per problem (key, what was found, what is expected). */
export interface ConfigInvalidError extends PostflowError {
  readonly problems: readonly string[];
}

const invalid = createError(
  'PF_ERR_CONFIG_INVALID',
  (problems: readonly string[], source: string) =>
    `${problems.length} configuration problem${problems.length === 1 ? '' : 's'} (${source}): ${problems.join('; ')}`,
);

export const PF_ERR_CONFIG_INVALID = Object.assign(
  (problems: readonly string[], source: string): ConfigInvalidError =>
    Object.assign(invalid(problems, source), { problems: Object.freeze([...problems]) }),
  { code: invalid.code },
);

export function isConfigInvalid(err: unknown): err is ConfigInvalidError {
  return err instanceof PostflowError && err.code === invalid.code && Array.isArray((err as ConfigInvalidError).problems);
}

/** EX_CONFIG from sysexits.h: service managers and scripts read it as "fix the configuration, do not retry". */
export const EXIT_CONFIG = 78;
