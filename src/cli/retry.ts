/**
 * `postflow retry JOB... | --failed`: failed jobs back to the queue (attempts start over). Through the running
 * daemon, which starts them at once; on a stopped daemon's store, they start at its next start.
 */
import { shortId } from '../admin/text.ts';
import { describeError } from '../errors.ts';
import type { JobRow } from '../admin/view.ts';
import { ERR_CLI_USAGE, parseCommandArgs } from './args.ts';
import { jobsAccessFor } from './jobs-access.ts';

export async function retryCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { failed: { type: 'boolean' }, json: { type: 'boolean' } }, true);
  if (values.failed && positionals.length > 0) throw ERR_CLI_USAGE('give either JOB ids or --failed, not both');
  if (!values.failed && positionals.length === 0) throw ERR_CLI_USAGE('postflow retry needs a JOB id (or a unique prefix) or --failed');
  const access = await jobsAccessFor(values.config);
  const retried: JobRow[] = [];
  const errors: Array<{ id: string; reason: string }> = [];
  try {
    if (values.failed) {
      const out = await access.retryFailed();
      retried.push(...out.retried);
      errors.push(...out.skipped);
    } else {
      for (const id of positionals) {
        try {
          retried.push(await access.retry(id));
        } catch (err) {
          errors.push({ id, reason: describeError(err) });
        }
      }
    }
  } finally {
    await access.close();
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ via: access.via, retried, errors }, null, 2)}\n`);
  } else {
    const when = access.via === 'daemon' ? 'the daemon starts it now' : 'it starts when the daemon starts';
    for (const r of retried) process.stdout.write(`re-queued ${shortId(r.id)} ${r.path} (${when})\n`);
    if (values.failed && retried.length === 0 && errors.length === 0) process.stdout.write('no failed jobs\n');
    for (const e of errors) process.stderr.write(`postflow: retry ${e.id}: ${e.reason}\n`);
  }
  return errors.length === 0 ? 0 : 1;
}
