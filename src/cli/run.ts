/** `postflow run`: the daemon in the foreground, stopped gracefully by SIGTERM/SIGINT. */
import { setLogLevel } from '../admin/log-level.ts';
import { type Stats, unwatchFile, watchFile } from 'node:fs';
import { findConfigFile, loadConfig } from '../config/load.ts';
import { createDaemon } from '../daemon.ts';
import { describeError } from '../errors.ts';
import { parseCommandArgs } from './args.ts';
import { commandLogger } from './logging.ts';

export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, { 'upload-existing': { type: 'boolean' } }, false);
  const config = loadConfig({ argvConfigPath: values.config, env: process.env, cwd: process.cwd() });
  const { logger, secrets } = commandLogger(config, values);
  const daemon = await createDaemon({ config, logger, secrets, uploadExisting: values['upload-existing'] ?? false });

  let stopping: Promise<void> | undefined;
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting at once');
        process.exit(1);
      }
      logger.info({ signal, event: 'signal' }, `${signal} received`);
      stopping = daemon.stop().then(
        () => resolve(0),
        (err: unknown) => {
          logger.error({ err: describeError(err) }, `stop failed: ${describeError(err)}`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  // SIGHUP (the service manager's "reload") and saving the config file re-read it: the log level, the
  // bandwidth caps and timetables, priorities, quiet hours and batch gaps change while running. A file that
  // does not validate is refused with one line and the running settings stay.
  const location = findConfigFile({ argvConfigPath: values.config, env: process.env, cwd: process.cwd() });
  let loadedLevel = config.log.level;
  const reload = (source: 'SIGHUP' | 'config file'): void => {
    let fresh;
    try {
      fresh = loadConfig({ argvConfigPath: values.config, env: process.env, cwd: process.cwd(), checkCredentials: false });
    } catch (err) {
      logger.error({ err: describeError(err), event: 'reload-failed', source }, `${source}: config not reloaded, the running settings stay: ${describeError(err)}`);
      return;
    }
    if (source === 'SIGHUP' || fresh.log.level !== loadedLevel) setLogLevel(logger, fresh.log.level, source);
    loadedLevel = fresh.log.level;
    daemon.reload(fresh);
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  let settle: NodeJS.Timeout | undefined;
  const onFileChange = (cur: Stats, prev: Stats): void => {
    if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size) return;
    // Editors save in several writes: read once the file has been quiet for a moment.
    clearTimeout(settle);
    settle = setTimeout(() => reload('config file'), 500);
  };
  if (location) watchFile(location.path, { interval: 1000, persistent: false }, onFileChange);

  try {
    await daemon.start();
  } catch (err) {
    logger.fatal({ err: describeError(err), event: 'start-failed' }, `start-up failed: ${describeError(err)}`);
    await daemon.stop().catch(() => undefined);
    throw err;
  }
  const code = await stopped;
  if (location) unwatchFile(location.path, onFileChange);
  clearTimeout(settle);
  logger.flush?.();
  return code;
}
