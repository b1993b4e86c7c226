/** `postflow run`: the daemon in the foreground, stopped gracefully by SIGTERM/SIGINT. */
import { setLogLevel } from '../admin/log-level.ts';
import { loadConfig } from '../config/load.ts';
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
  // SIGHUP re-reads log.level from the config file (the service manager's "reload"); nothing else reloads.
  process.on('SIGHUP', () => {
    try {
      const fresh = loadConfig({ argvConfigPath: values.config, env: process.env, cwd: process.cwd(), checkCredentials: false });
      setLogLevel(logger, fresh.log.level, 'SIGHUP');
    } catch (err) {
      logger.error({ err: describeError(err), event: 'reload-failed' }, `SIGHUP: config not reloaded, log level unchanged: ${describeError(err)}`);
    }
  });

  try {
    await daemon.start();
  } catch (err) {
    logger.fatal({ err: describeError(err), event: 'start-failed' }, `start-up failed: ${describeError(err)}`);
    await daemon.stop().catch(() => undefined);
    throw err;
  }
  const code = await stopped;
  logger.flush?.();
  return code;
}
