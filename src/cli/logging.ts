/** The logger every command builds the same way: level and pretty mode from flags/config, secrets scrubbed. */
import type { Config } from '../config/load.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { SecretSet } from '../log/redact.ts';

export function commandLogger(
  config: Config,
  flags: { 'log-level'?: string | undefined; pretty?: boolean | undefined },
  opts: { level?: string; pretty?: boolean; destination?: number } = {},
): { logger: Logger; secrets: SecretSet } {
  const secrets = new SecretSet();
  secrets.add(config.frameio.clientSecret, config.tunnel.token);
  const logger = createLogger({
    level: flags['log-level'] ?? opts.level ?? config.log.level,
    pretty: flags.pretty ?? opts.pretty ?? (config.log.pretty || process.stdout.isTTY === true),
    ...(opts.destination === undefined ? {} : { destination: opts.destination }),
    secrets,
  });
  return { logger, secrets };
}
