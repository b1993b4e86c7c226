/** Argument parsing shared by the commands, on util.parseArgs; a bad flag is one clear line, not a trace. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createError } from '../errors.ts';

export const ERR_CLI_USAGE = createError('PF_ERR_CLI_USAGE', (detail: string) => `${detail} — see \`postflow --help\``);

export const GLOBAL_OPTIONS = {
  config: { type: 'string', short: 'c' },
  pretty: { type: 'boolean' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O, allowPositionals: boolean) {
  try {
    return parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals, strict: true });
  } catch (err) {
    throw ERR_CLI_USAGE((err as Error).message.split('\n')[0] ?? String(err));
  }
}
