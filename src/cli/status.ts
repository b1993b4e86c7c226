/** `postflow status [--json]`: what the daemon is doing, from its admin API (or the store when it is stopped). */
import { renderStatus } from '../admin/text.ts';
import { parseCommandArgs } from './args.ts';
import { jobsAccessFor } from './jobs-access.ts';

export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, { json: { type: 'boolean' } }, false);
  const access = await jobsAccessFor(values.config);
  try {
    const view = await access.status();
    process.stdout.write(values.json ? `${JSON.stringify(view, null, 2)}\n` : `${renderStatus(view)}\n`);
    return 0;
  } finally {
    await access.close();
  }
}
