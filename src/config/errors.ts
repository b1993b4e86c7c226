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

/**
 * A watch folder's Frame.io destination cannot be used (not there, or not open to this login): checked at
 * start-up so the daemon stops with one line naming the folder, instead of failing every file later.
 */
export const ERR_CONFIG_DESTINATION = createError(
  'PF_ERR_CONFIG_DESTINATION',
  (folder: string, id: string, why: string) =>
    `watch folder ${folder}: Frame.io destination ${JSON.stringify(id)} ${why}; expected the id of a folder or project this login can upload to`,
);
