/** `postflow jobs [--state S] [--limit N] [--json]`: the job list, newest first. */
import { parseStateFilter } from '../admin/actions.ts';
import { renderJobs } from '../admin/text.ts';
import { ERR_CLI_USAGE, parseCommandArgs } from './args.ts';
import { jobsAccessFor } from './jobs-access.ts';

export async function jobsCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, { state: { type: 'string', short: 's' }, limit: { type: 'string', short: 'n' }, json: { type: 'boolean' } }, false);
  let state;
  try {
    state = parseStateFilter(values.state);
  } catch (err) {
    throw ERR_CLI_USAGE((err as Error).message);
  }
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw ERR_CLI_USAGE(`--limit ${values.limit} is not a positive whole number`);
  const access = await jobsAccessFor(values.config);
  try {
    const rows = await access.jobs({ state, limit });
    process.stdout.write(values.json ? `${JSON.stringify(rows, null, 2)}\n` : `${renderJobs(rows, Date.now())}\n`);
    return 0;
  } finally {
    await access.close();
  }
}
