/** `postflow upload FILE... [--folder ID]`: the daemon's flow once for the given files, then exit. */
import { resolve } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { runOnce } from '../daemon.ts';
import { ERR_CLI_USAGE, parseCommandArgs } from './args.ts';
import { commandLogger } from './logging.ts';
import { ProgressLines } from './progress-lines.ts';

export async function uploadCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { folder: { type: 'string' } }, true);
  if (positionals.length === 0) throw ERR_CLI_USAGE('postflow upload needs at least one FILE');
  const config = loadConfig({ argvConfigPath: values.config, env: process.env, cwd: process.cwd(), requireWatchFolders: false });
  const folderId = values.folder ?? config.watch.folders[0]?.destination;
  if (!folderId) throw ERR_CLI_USAGE('no destination: pass --folder ID or configure watch.folders[0].destination');
  const tty = process.stdout.isTTY === true;
  // On a terminal the live lines are the output and only warnings are logged (to stderr); elsewhere the
  // JSON lines are the output.
  const { logger, secrets } = commandLogger(config, values, tty ? { level: 'warn', pretty: true, destination: 2 } : {});
  const lines = tty ? new ProgressLines(process.stdout) : undefined;
  const results = await runOnce({
    config,
    logger,
    folderId,
    files: positionals.map((p) => resolve(p)),
    onUpdate: (u) => lines?.set(u.id, u),
    secrets,
  });
  lines?.close();
  let ok = 0;
  for (const r of results) {
    if (r.state === 'done') ok++;
    if (tty) process.stdout.write(r.state === 'done' ? `✔ ${r.name} → ${r.viewUrl ?? r.frameioFileId}\n` : `✖ ${r.name}: ${r.state}${r.error ? ` — ${r.error}` : ''}\n`);
  }
  return ok === results.length ? 0 : 1;
}
