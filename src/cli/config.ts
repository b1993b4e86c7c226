/** `postflow config`: validate and print the effective configuration, secrets redacted. */
import { configForDisplay } from '../config/describe.ts';
import { loadConfig } from '../config/load.ts';
import { parseCommandArgs } from './args.ts';

export async function configCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, {}, false);
  const config = loadConfig({ argvConfigPath: values.config, env: process.env, cwd: process.cwd(), checkCredentials: false });
  process.stdout.write(`${JSON.stringify(configForDisplay(config), null, 2)}\n`);
  return 0;
}
