/**
 * `postflow auth login`: the Adobe IMS authorization-code flow with PKCE (S256). A loopback listener takes the
 * redirect (`http://127.0.0.1:PORT/callback`); the authorize URL is printed so the login also works on a
 * headless machine: open it anywhere, approve, and paste the address the browser lands on (or just the
 * code) back here. The refresh token is stored with `writeTokenFile` (atomic, 0600) under the token file's
 * lock, so a running daemon — whose login may be lost — picks it up and resumes.
 *
 * `postflow auth status`: who is logged in (GET /v4/me) and until when.
 */
import { createServer, type Server } from 'node:http';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config/load.ts';
import { loadConfig } from '../config/load.ts';
import { describeError, isPostflowError } from '../errors.ts';
import { createFrameioClient, type AccessTokens } from '../frameio/client.ts';
import { parseImsAnswer } from '../frameio/ims.ts';
import { loginFromConfig, openFleetPool, usesFleetLogin } from '../frameio/login-from-config.ts';
import { createRateLimiter } from '../frameio/rate-limit.ts';
import { readTokenFile, withTokenFileLock, writeTokenFile } from '../frameio/token-file.ts';
import type { Me } from '../frameio/types.ts';
import { ERR_CLI_USAGE, parseCommandArgs } from './args.ts';
import {
  ERR_AUTH_LOGIN_FAILED,
  ERR_AUTH_LOGIN_TIMEOUT,
  ERR_AUTH_NO_CLIENT_ID,
  ERR_AUTH_NO_REFRESH_TOKEN,
  ERR_AUTH_PORT_BUSY,
} from './auth-errors.ts';
import { authorizeUrl, newPkce, readCallback, readPasted, type Callback } from './auth-pkce.ts';
import { commandLogger } from './logging.ts';

/** The default redirect port: fixed, because the redirect URI is registered with the credential. */
export const DEFAULT_LOGIN_PORT = 8765;

export interface LoginOptions {
  authorizeUrl: string;
  tokenUrl: string;
  apiUrl: string;
  clientId: string;
  clientSecret?: string | undefined;
  scopes: string;
  refreshTokenFile: string;
  /** 0 = any free port. */
  port: number;
  /** Pasted redirect URLs or codes, one a line (stdin); optional. */
  input?: Readable | undefined;
  /** Where the instructions go. */
  output: Writable;
  logger: Logger;
  timeoutMs?: number;
  fetch?: typeof fetch;
  onSecret?: (value: string) => void;
}

export interface LoginResult {
  me: Me | undefined;
  scope: string | undefined;
  file: string;
}

const PAGE = (title: string, body: string) =>
  `<!doctype html><meta charset="utf-8"><title>${title}</title><body style="font:16px system-ui;margin:3em"><h1>${title}</h1><p>${body}</p>`;

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? ERR_AUTH_PORT_BUSY(port) : err));
    server.listen(port, '127.0.0.1', () => {
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

export async function login(o: LoginOptions): Promise<LoginResult> {
  if (!o.clientId) throw ERR_AUTH_NO_CLIENT_ID();
  const doFetch = o.fetch ?? fetch;
  const pkce = newPkce();
  let settle: (cb: Callback) => void = () => {};
  const arrived = new Promise<Callback>((resolve) => (settle = resolve));

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    const cb = readCallback(url.searchParams, pkce.state);
    const ok = 'code' in cb;
    res.writeHead(ok ? 200 : 400, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(ok ? PAGE('postflow is logged in', 'You can close this tab and go back to the terminal.') : PAGE('postflow login failed', 'See the terminal for what went wrong.'));
    settle(cb);
  });
  const port = await listen(server, o.port);
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  const rl = o.input ? createInterface({ input: o.input, terminal: false }) : undefined;
  rl?.on('line', (line) => {
    const cb = readPasted(line, pkce.state);
    if (cb) settle(cb);
  });
  const timeoutMs = o.timeoutMs ?? 10 * 60_000;
  const timer = setTimeout(() => settle({ error: 'timeout' }), timeoutMs);
  try {
    const url = authorizeUrl({ authorizeUrl: o.authorizeUrl, clientId: o.clientId, redirectUri, scopes: o.scopes, pkce });
    o.output.write(
      `Open this URL in a browser and approve postflow's access to Frame.io:\n\n  ${url}\n\n` +
        `Waiting for the redirect to ${redirectUri} …\n` +
        `No browser on this machine? Open the URL on another one; when it lands on a page that does not load\n` +
        `(127.0.0.1 is this machine), copy that page's address (or just its code=… value), paste it here and press Enter.\n`,
    );
    const cb = await arrived;
    if ('error' in cb) throw cb.error === 'timeout' ? ERR_AUTH_LOGIN_TIMEOUT(Math.round(timeoutMs / 60_000)) : ERR_AUTH_LOGIN_FAILED(cb.error);
    return await exchange(o, doFetch, cb.code, redirectUri, pkce.verifier);
  } finally {
    clearTimeout(timer);
    rl?.close();
    if (o.input && 'destroy' in o.input) o.input.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function exchange(o: LoginOptions, doFetch: typeof fetch, code: string, redirectUri: string, verifier: string): Promise<LoginResult> {
  const form = new URLSearchParams({ grant_type: 'authorization_code', client_id: o.clientId, code, redirect_uri: redirectUri, code_verifier: verifier });
  if (o.clientSecret) form.set('client_secret', o.clientSecret);
  let res: Response;
  try {
    res = await doFetch(o.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw ERR_AUTH_LOGIN_FAILED(`Adobe IMS at ${o.tokenUrl} could not be reached: ${describeError((err as Error).cause ?? err)}`);
  }
  const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (!res.ok) {
    const what = typeof body?.error === 'string' ? `${body.error}${typeof body.error_description === 'string' ? `: ${body.error_description}` : ''}` : `HTTP ${res.status}`;
    throw ERR_AUTH_LOGIN_FAILED(`Adobe IMS refused the code: ${what}`);
  }
  const answer = parseImsAnswer(body);
  if (typeof answer === 'string') throw ERR_AUTH_LOGIN_FAILED(`Adobe IMS answered with ${answer}`);
  o.onSecret?.(answer.access_token);
  if (!answer.refresh_token) throw ERR_AUTH_NO_REFRESH_TOKEN(answer.scope ?? '');
  o.onSecret?.(answer.refresh_token);
  const refreshToken = answer.refresh_token;
  await mkdir(dirname(o.refreshTokenFile), { recursive: true, mode: 0o700 });
  // Under the lock: a daemon refreshing right now must not overwrite the new login with its rotated old one.
  await withTokenFileLock(o.refreshTokenFile, () =>
    writeTokenFile(o.refreshTokenFile, { refresh_token: refreshToken, saved_at: new Date().toISOString(), ...(answer.scope ? { scope: answer.scope } : {}) }),
  );
  let me: Me | undefined;
  try {
    me = await clientWith(o, { getAccessToken: async () => answer.access_token, invalidate: () => {} }).me();
  } catch (err) {
    o.logger.warn({ err: describeError(err) }, 'logged in, but GET /v4/me failed');
  }
  return { me, scope: answer.scope, file: o.refreshTokenFile };
}

function clientWith(o: { apiUrl: string; clientId: string; logger: Logger; fetch?: typeof fetch | undefined }, tokens: AccessTokens) {
  return createFrameioClient({
    apiUrl: o.apiUrl,
    clientId: o.clientId,
    tokens,
    limiter: createRateLimiter({ maxRequestsPerSecond: 4 }),
    logger: o.logger,
    maxRetries: 2,
    ...(o.fetch ? { fetch: o.fetch } : {}),
  });
}

export interface AuthStatus {
  ok: boolean;
  lines: string[];
}

/** Who is logged in and until when; `ok` false when there is no usable login. */
export async function authStatus(config: Config, logger: Logger, opts: { fetch?: typeof fetch; now?: () => number; onSecret?: (v: string) => void } = {}): Promise<AuthStatus> {
  const now = opts.now ?? Date.now;
  const f = config.frameio;
  const s2s = f.auth === 'client_credentials';
  const lines: string[] = [];
  // A fleet node's login is the row in PostgreSQL; its token file only seeds it (or brings a new login).
  const fleet = usesFleetLogin(config);
  const record = s2s ? undefined : await readTokenFile(f.refreshTokenFile).catch((err: unknown) => err as Error);
  if (record instanceof Error) return { ok: false, lines: [`✖ ${describeError(record)}`] };
  if (!s2s && !fleet && record === undefined) {
    return { ok: false, lines: [`✖ not logged in: no refresh token in ${f.refreshTokenFile} — run \`postflow auth login\``] };
  }
  // The provider keeps the access token's lifetime to itself; the IMS answer it reads says it.
  let expiresIn: number | undefined;
  const baseFetch = opts.fetch ?? fetch;
  const watching: typeof fetch = async (input, init) => {
    const res = await baseFetch(input, init);
    if (String(input instanceof Request ? input.url : input) === f.imsTokenUrl && res.ok) {
      const body = (await res.clone().json().catch(() => undefined)) as { expires_in?: unknown } | undefined;
      if (typeof body?.expires_in === 'number') expiresIn = body.expires_in;
    }
    return res;
  };
  const fleetPool = fleet ? openFleetPool(config, 'auth status', logger) : undefined;
  const tokens = loginFromConfig(config, { logger, fleetPool, fetch: watching, onSecret: opts.onSecret });
  try {
    const me = await clientWith({ apiUrl: f.apiUrl, clientId: f.clientId, logger, fetch: baseFetch }, tokens).me();
    const who = [me.name, me.email ? `<${me.email}>` : ''].filter(Boolean).join(' ') || me.id;
    lines.push(`✔ logged in to Frame.io as ${who} (user ${me.id})${s2s ? ' with a Server-to-Server credential' : ''}`);
    if (expiresIn !== undefined) {
      const until = new Date(now() + expiresIn * 1000);
      lines.push(`  access token valid until ${until.toISOString()} (${Math.round(expiresIn / 60)} min); postflow renews it by itself`);
    }
    if (fleet) {
      lines.push('  the fleet\'s login, shared through PostgreSQL (store.url, sealed with store.secretKey); one node renews it for all');
    } else if (record) {
      lines.push(
        `  refresh token in ${f.refreshTokenFile}, saved ${record.saved_at ?? 'at an unknown time'}; it rotates at every renewal and stays valid while postflow keeps using it`,
      );
    }
    return { ok: true, lines };
  } catch (err) {
    const revoked = isPostflowError(err) && (err.code === 'PF_ERR_FRAMEIO_AUTH_REVOKED' || err.code === 'PF_ERR_FRAMEIO_NOT_LOGGED_IN');
    lines.push(`✖ ${revoked ? 'the login expired or was revoked' : 'could not check the login'}: ${describeError(err)}`);
    if (revoked) lines.push('  run `postflow auth login` to log in again (a running daemon picks the new login up by itself)');
    return { ok: false, lines };
  } finally {
    tokens.close();
    await fleetPool?.end().catch(() => undefined);
  }
}

export async function authCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { port: { type: 'string' } }, true);
  const sub = positionals[0];
  if ((sub !== 'login' && sub !== 'status') || positionals.length !== 1) {
    throw ERR_CLI_USAGE(`expected \`postflow auth login\` or \`postflow auth status\`, found \`postflow auth ${positionals.join(' ')}\``);
  }
  const config = loadConfig({ argvConfigPath: values.config, env: process.env, cwd: process.cwd(), checkCredentials: false, requireWatchFolders: false });
  const { logger, secrets } = commandLogger(config, values, { level: 'warn', destination: 2 });
  if (sub === 'status') {
    const status = await authStatus(config, logger, { onSecret: (v) => secrets.add(v) });
    process.stdout.write(`${status.lines.join('\n')}\n`);
    return status.ok ? 0 : 1;
  }
  if (config.frameio.auth === 'client_credentials') {
    process.stdout.write('frameio.auth is "client_credentials": a Server-to-Server credential needs no login (clientId + clientSecret are enough).\n');
    return 0;
  }
  const port = values.port === undefined ? DEFAULT_LOGIN_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw ERR_CLI_USAGE(`--port expects a port number 0–65535, found "${values.port}"`);
  const result = await login({
    authorizeUrl: config.frameio.imsAuthorizeUrl,
    tokenUrl: config.frameio.imsTokenUrl,
    apiUrl: config.frameio.apiUrl,
    clientId: config.frameio.clientId,
    clientSecret: config.frameio.clientSecret || undefined,
    scopes: config.frameio.scopes,
    refreshTokenFile: config.frameio.refreshTokenFile,
    port,
    input: process.stdin,
    output: process.stdout,
    logger,
    onSecret: (v) => secrets.add(v),
  });
  const who = result.me ? `${result.me.name || result.me.id}${result.me.email ? ` <${result.me.email}>` : ''}` : 'an unknown user (GET /v4/me failed)';
  process.stdout.write(`✔ logged in as ${who}; refresh token saved to ${result.file} (mode 0600)\n`);
  return 0;
}
