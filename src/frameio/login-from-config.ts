/**
 * The Frame.io login a config asks for, built the same way for the daemon and for the commands that run
 * beside it (`postflow upload`, `doctor`, `auth status`). It matters that they agree: on a fleet node the
 * login lives in PostgreSQL and the node's token file is only a seed — a command that refreshed from the
 * file instead would report a good login as revoked, or, worse, redeem a token the fleet still needs.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config/load.ts';
import { createFleetLoginChain } from './fleet-login.ts';
import { createTokenProvider, type TokenProvider } from './ims.ts';

type LoginConfig = Pick<Config, 'frameio' | 'store'>;

/** True when this config's login is the fleet's shared one (store.url + store.secretKey + a user login). */
export function usesFleetLogin(config: LoginConfig): boolean {
  return Boolean(config.store.url && config.store.secretKey && config.frameio.auth !== 'client_credentials');
}

/**
 * A small pool on the fleet's PostgreSQL for a command that has no job store open (the daemon passes its
 * store's pool instead). The caller ends it.
 */
export function openFleetPool(config: LoginConfig, purpose: string, logger: Logger): pg.Pool {
  const pool = new pg.Pool({ connectionString: config.store.url, max: 2, connectionTimeoutMillis: 10_000, application_name: `postflow ${purpose}`.slice(0, 63) });
  // A dropped idle connection must not crash the command; the next query reconnects.
  pool.on('error', (err) => logger.warn({ err: err.message }, 'PostgreSQL connection lost; reconnecting on next use'));
  return pool;
}

export interface LoginOptions {
  logger: Logger;
  /** The fleet's PostgreSQL; required for the shared login (see usesFleetLogin), ignored otherwise. */
  fleetPool?: pg.Pool | undefined;
  onSecret?: ((value: string) => void) | undefined;
  fetch?: typeof fetch | undefined;
}

export function loginFromConfig(config: LoginConfig, o: LoginOptions): TokenProvider {
  const f = config.frameio;
  const s2s = f.auth === 'client_credentials';
  const logger = o.logger;
  const onSecret = o.onSecret ?? (() => undefined);
  return createTokenProvider({
    chain:
      o.fleetPool && usesFleetLogin(config)
        ? createFleetLoginChain({ pool: o.fleetPool, secretKey: config.store.secretKey, refreshTokenFile: f.refreshTokenFile, logger, onSecret })
        : undefined,
    onSecret,
    imsTokenUrl: f.imsTokenUrl,
    clientId: f.clientId,
    clientSecret: f.clientSecret || undefined,
    refreshTokenFile: s2s ? undefined : f.refreshTokenFile,
    clientCredentials: s2s ? { scopes: f.scopes } : undefined,
    logger,
    ...(o.fetch ? { fetch: o.fetch } : {}),
  });
}
