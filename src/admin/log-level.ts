/**
 * Runtime log level. pino children made without their own level follow their parent's level as it changes,
 * so setting the root logger's level reaches every room and every per-job child at once.
 */
import type { Logger } from 'pino';
import { ERR_ADMIN_BAD_LEVEL } from './errors.ts';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

export function parseLogLevel(value: unknown): LogLevelName {
  if (typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevelName;
  throw ERR_ADMIN_BAD_LEVEL(typeof value === 'string' ? value : JSON.stringify(value) ?? String(value));
}

/** Sets the level; the change is logged once, on whichever side of it info lines are visible. */
export function setLogLevel(logger: Logger, value: unknown, source: string): { from: string; to: LogLevelName } {
  const to = parseLogLevel(value);
  const from = logger.level;
  const announce = () => logger.info({ event: 'log-level', from, to, source }, `log level ${from} → ${to} (${source})`);
  const visibleBefore = logger.isLevelEnabled('info');
  if (visibleBefore) announce();
  logger.level = to;
  if (!visibleBefore && logger.isLevelEnabled('info')) announce();
  return { from, to };
}
