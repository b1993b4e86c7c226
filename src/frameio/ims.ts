/**
 * Adobe IMS access tokens for the Frame.io client. Two credentials:
 *
 * - a user login: the refresh token lives in the shared token file (token-file.ts). IMS rotates it at every
 *   use, so each refresh takes the file lock, re-reads the file, asks IMS, and writes the new refresh token
 *   back before anything uses the new access token.
 * - a fleet login (fleet-login.ts): the same refresh under a row lock in PostgreSQL, shared by every node.
 * - Server-to-Server (client_credentials): no refresh token, just ask again.
 *
 * Where a refresh token lives and how its refresh is serialised is a `TokenChain`; this provider keeps what
 * is common: the cache, single flight, lost/restored, and telling the log scrubber every token.
 *
 * A rejected refresh token (`invalid_grant`) is not a job failure but a lost login: the provider emits
 * 'auth-lost' once, keeps answering AUTH_REVOKED without hammering IMS, and watches the token file; when
 * `postflow auth login` writes a new token it refreshes with it and emits 'auth-restored'. The daemon pauses
 * and resumes its queue on those events. Network trouble at IMS is retryable, never a lost login.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { PostflowError } from '../errors.ts';
import { isPostflowError } from '../errors.ts';
import {
  ERR_AUTH_REVOKED,
  ERR_BAD_RESPONSE,
  ERR_IMS_REJECTED,
  ERR_LOGIN_UNSEALABLE,
  ERR_NO_CREDENTIALS,
  ERR_NOT_LOGGED_IN,
  imsUnavailableError,
} from './errors.ts';
import type { LockOptions, TokenRecord } from './token-file.ts';
import { readTokenFile, withTokenFileLock, writeTokenFile } from './token-file.ts';
import type { ImsTokenResponse } from './types.ts';

export interface TokenProviderOptions {
  /** `https://ims-na1.adobelogin.com/ims/token/v3` or the emulator's. */
  imsTokenUrl: string;
  clientId: string;
  /** Web App and Server-to-Server credentials have one; PKCE (native) logins do not. */
  clientSecret?: string | undefined;
  /** User login: the shared refresh-token file. */
  refreshTokenFile?: string | undefined;
  /** User login kept elsewhere (the fleet's PostgreSQL); wins over refreshTokenFile. */
  chain?: TokenChain | undefined;
  /** Server-to-Server login instead of a refresh token. Scopes as a space-separated string or a list. */
  clientCredentials?: { scopes: string | readonly string[] } | undefined;
  fetch?: typeof fetch;
  now?: () => number;
  logger: Logger;
  /** Refresh this long before `expires_in` runs out (capped at a fifth of the lifetime). Default 5 min. */
  refreshMarginMs?: number;
  /** How often a lost login looks at the token file for a new one. Default 1 s. */
  watchIntervalMs?: number;
  /** Per IMS request. Default 20 s (well under the lock's stale age). */
  requestTimeoutMs?: number;
  lock?: LockOptions;
  /** Told every token value it handles, so the logger can scrub them from any line that might echo one. */
  onSecret?: (value: string) => void;
}

export interface TokenProvider extends EventEmitter {
  /** A valid access token, from the cache or freshly refreshed. Single-flight across concurrent callers. */
  getAccessToken(signal?: AbortSignal): Promise<string>;
  /** After a 401 with `token`: the next getAccessToken refreshes (ignored if already replaced). */
  invalidate(token: string): void;
  /** True between 'auth-lost' and 'auth-restored'. */
  isLost(): boolean;
  /** Resolves when the login is usable again (at once if it is not lost). */
  waitRestored(signal?: AbortSignal): Promise<void>;
  /** Stops watching the token file. */
  close(): void;
}

/** An access token as a chain hands it out. */
export interface AccessGrant {
  token: string;
  /** Life left now. */
  remainingMs: number;
  /** Its whole life (IMS's expires_in). */
  lifetimeMs: number;
}

export interface RefreshRequest {
  /**
   * Presents a refresh token to IMS; every token is told to onSecret. On invalid_grant the login is marked
   * lost, unless `tentative` (a token the chain is not sure of and can do without): then it only throws.
   */
  exchange(refreshToken: string, opts?: { tentative?: boolean }): Promise<ImsTokenResponse>;
  /** An access token Frame.io refused with 401: never hand it out again. */
  rejected: string | undefined;
  /** May a stored access token with this much life left be used instead of refreshing? */
  usable(remainingMs: number, lifetimeMs: number): boolean;
}

/** Where a user login's refresh token lives, and how one refresh at a time is enforced. */
export interface TokenChain {
  /** Names the login in error messages: a file path, or the fleet's table. */
  readonly where: string;
  /** One refresh under the chain's lock (or a still-usable token someone else just stored). */
  refresh(req: RefreshRequest): Promise<AccessGrant>;
  /** While lost: has a refresh token other than `refused` been stored since? Never throws. */
  newLoginWritten(refused: string | undefined): Promise<boolean>;
}

/** The refresh-token file as a chain: file lock, re-read, IMS, write the rotated token back before use. */
export function fileTokenChain(file: string, opts: { lock?: LockOptions | undefined; now?: () => number } = {}): TokenChain {
  const now = opts.now ?? Date.now;
  return {
    where: file,
    async refresh(req) {
      const got = await withTokenFileLock(
        file,
        async () => {
          // Re-read under the lock: another process may have rotated the token a moment ago.
          const record: TokenRecord | undefined = await readTokenFile(file);
          if (record === undefined) throw ERR_NOT_LOGGED_IN(file);
          const answer = await req.exchange(record.refresh_token);
          if (answer.refresh_token !== undefined && answer.refresh_token !== record.refresh_token) {
            // Written before the lock is released and before the access token is used: the old one is dead.
            await writeTokenFile(file, { ...record, refresh_token: answer.refresh_token, saved_at: new Date(now()).toISOString() });
          }
          return answer;
        },
        opts.lock,
      );
      return { token: got.access_token, remainingMs: got.expires_in * 1000, lifetimeMs: got.expires_in * 1000 };
    },
    async newLoginWritten(refused) {
      try {
        const record = await readTokenFile(file);
        return record !== undefined && record.refresh_token !== refused;
      } catch {
        return false;
      }
    },
  };
}

interface Cached {
  token: string;
  expiresAt: number;
  refreshAt: number;
}

const DEFAULT_MARGIN_MS = 5 * 60_000;

/** Pure: when to refresh a token that lives `lifetimeMs`, obtained at `obtainedAt`. */
export function refreshInstant(obtainedAt: number, lifetimeMs: number, marginMs: number): number {
  return obtainedAt + lifetimeMs - Math.min(marginMs, lifetimeMs / 5);
}

/** Pure: an IMS answer body → the token answer, or a description of what is wrong. */
export function parseImsAnswer(body: unknown): ImsTokenResponse | string {
  if (body === null || typeof body !== 'object') return 'not a JSON object';
  const b = body as Record<string, unknown>;
  if (typeof b.access_token !== 'string' || b.access_token === '') return 'no access_token';
  const expires = typeof b.expires_in === 'string' ? Number(b.expires_in) : b.expires_in;
  if (typeof expires !== 'number' || !Number.isFinite(expires) || expires <= 0) return 'no positive expires_in';
  if (b.refresh_token !== undefined && typeof b.refresh_token !== 'string') return 'refresh_token is not a string';
  const out: ImsTokenResponse = { access_token: b.access_token, expires_in: expires };
  if (typeof b.refresh_token === 'string' && b.refresh_token !== '') out.refresh_token = b.refresh_token;
  if (typeof b.token_type === 'string') out.token_type = b.token_type;
  if (typeof b.scope === 'string') out.scope = b.scope;
  return out;
}

class ImsTokenProvider extends EventEmitter implements TokenProvider {
  readonly #opts: TokenProviderOptions;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #log: Logger;
  #cached: Cached | undefined;
  #inflight: Promise<Cached> | undefined;
  /** Set while the login is lost: the error to answer with, and the refresh token that was refused. */
  #lost: { error: PostflowError; refusedToken: string | undefined } | undefined;
  #watchTimer: NodeJS.Timeout | undefined;
  readonly #chain: TokenChain | undefined;
  /** The access token Frame.io last refused: a shared chain must not hand it back. */
  #rejected: string | undefined;

  constructor(opts: TokenProviderOptions) {
    super();
    const file = opts.refreshTokenFile;
    this.#chain = opts.chain ?? (file === undefined || file === '' ? undefined : fileTokenChain(file, { lock: opts.lock, now: opts.now }));
    if (this.#chain === undefined && (opts.clientCredentials === undefined || !opts.clientSecret)) throw ERR_NO_CREDENTIALS();
    this.#opts = opts;
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.logger;
  }

  isLost(): boolean {
    return this.#lost !== undefined;
  }

  async getAccessToken(signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    const cached = this.#cached;
    const now = this.#now();
    if (cached !== undefined && now < cached.refreshAt) return cached.token;
    if (this.#lost !== undefined && !(await this.#newLoginWritten())) throw this.#lost.error;
    this.#inflight ??= this.#refresh().finally(() => {
      this.#inflight = undefined;
    });
    try {
      return (await raceSignal(this.#inflight, signal)).token;
    } catch (err) {
      // A refresh a little early failed for a passing reason: the old token is still good, use it.
      if (cached !== undefined && this.#now() < cached.expiresAt && isPostflowError(err) && err.retryable) {
        this.#log.warn({ event: 'ims-refresh-deferred', err: err.message }, 'access token refresh failed; using the current token until it expires');
        return cached.token;
      }
      throw err;
    }
  }

  invalidate(token: string): void {
    if (this.#cached?.token === token) {
      this.#cached = undefined;
      this.#rejected = token;
    }
  }

  waitRestored(signal?: AbortSignal): Promise<void> {
    if (this.#lost === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        signal?.removeEventListener('abort', abort);
        resolve();
      };
      const abort = () => {
        this.off('auth-restored', done);
        reject(signal?.reason);
      };
      if (signal?.aborted) return reject(signal.reason);
      this.once('auth-restored', done);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  close(): void {
    if (this.#watchTimer !== undefined) clearInterval(this.#watchTimer);
    this.#watchTimer = undefined;
  }

  async #refresh(): Promise<Cached> {
    const chain = this.#chain;
    const margin = this.#opts.refreshMarginMs ?? DEFAULT_MARGIN_MS;
    let grant: AccessGrant;
    if (chain === undefined) {
      const scopes = this.#opts.clientCredentials?.scopes ?? '';
      const scope = (typeof scopes === 'string' ? scopes.split(/[\s,]+/) : [...scopes]).filter(Boolean).join(',');
      const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: this.#opts.clientId });
      form.set('client_secret', this.#opts.clientSecret ?? '');
      if (scope !== '') form.set('scope', scope);
      const answer = await this.#post(form, undefined, undefined);
      grant = { token: answer.access_token, remainingMs: answer.expires_in * 1000, lifetimeMs: answer.expires_in * 1000 };
    } else {
      try {
        grant = await chain.refresh({
          exchange: (refreshToken, o) => this.#exchange(refreshToken, chain.where, o?.tentative === true),
          rejected: this.#rejected,
          // Usable only well before this node would refresh it, or every node would refresh it again at once.
          usable: (remainingMs, lifetimeMs) => remainingMs > Math.min(margin, lifetimeMs / 5) + Math.min(1000, lifetimeMs / 10),
        });
      } catch (err) {
        if (isPostflowError(err, ERR_NOT_LOGGED_IN) || isPostflowError(err, ERR_LOGIN_UNSEALABLE)) this.#markLost(err, undefined);
        throw err;
      }
    }
    this.#opts.onSecret?.(grant.token);
    const now = this.#now();
    const cached: Cached = {
      token: grant.token,
      expiresAt: now + grant.remainingMs,
      refreshAt: refreshInstant(now - (grant.lifetimeMs - grant.remainingMs), grant.lifetimeMs, margin),
    };
    this.#cached = cached;
    this.#log.debug({ event: 'ims-refresh', expiresInSeconds: Math.round(grant.remainingMs / 1000) }, 'access token refreshed');
    if (this.#lost !== undefined) {
      this.#lost = undefined;
      this.close();
      this.#log.info({ event: 'auth-restored' }, 'Frame.io login restored');
      this.emit('auth-restored');
    }
    return cached;
  }

  async #exchange(refreshToken: string, where: string, tentative: boolean): Promise<ImsTokenResponse> {
    const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: this.#opts.clientId, refresh_token: refreshToken });
    if (this.#opts.clientSecret) form.set('client_secret', this.#opts.clientSecret);
    this.#opts.onSecret?.(refreshToken);
    const got = await this.#post(form, where, refreshToken, tentative);
    if (got.refresh_token !== undefined) this.#opts.onSecret?.(got.refresh_token);
    this.#opts.onSecret?.(got.access_token);
    return got;
  }

  async #post(form: URLSearchParams, file: string | undefined, presented: string | undefined, tentative = false): Promise<ImsTokenResponse> {
    let res: Response;
    try {
      res = await this.#fetch(this.#opts.imsTokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        signal: AbortSignal.timeout(this.#opts.requestTimeoutMs ?? 20_000),
      });
    } catch (err) {
      throw imsUnavailableError(describeCause(err), err);
    }
    const text = await res.text().catch(() => '');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      throw imsUnavailableError(`HTTP ${res.status}`, undefined, res.status);
    }
    if (!res.ok) {
      const b = (body ?? {}) as { error?: unknown; error_description?: unknown };
      const error = typeof b.error === 'string' ? b.error : `HTTP ${res.status}`;
      const description = typeof b.error_description === 'string' ? `: ${b.error_description}` : '';
      if (error === 'invalid_grant' && file !== undefined) {
        const err = ERR_AUTH_REVOKED(file, `${error}${description}`);
        if (!tentative) this.#markLost(err, presented);
        throw err;
      }
      throw ERR_IMS_REJECTED(res.status, `${error}${description}`);
    }
    const parsed = parseImsAnswer(body);
    if (typeof parsed === 'string') throw ERR_BAD_RESPONSE('IMS token', parsed);
    return parsed;
  }

  #markLost(error: PostflowError, refusedToken: string | undefined): void {
    this.#cached = undefined;
    const first = this.#lost === undefined;
    this.#lost = { error, refusedToken };
    if (!first) return;
    this.#log.error({ event: 'auth-lost', code: error.code }, error.message);
    this.emit('auth-lost', error);
    const timer = setInterval(() => {
      void this.#poll();
    }, this.#opts.watchIntervalMs ?? 1000);
    timer.unref();
    this.#watchTimer = timer;
  }

  /** Has someone (`postflow auth login`) written a token other than the one IMS refused? */
  async #newLoginWritten(): Promise<boolean> {
    if (this.#chain === undefined || this.#lost === undefined) return false;
    return this.#chain.newLoginWritten(this.#lost.refusedToken);
  }

  async #poll(): Promise<void> {
    if (this.#lost === undefined || this.#inflight !== undefined) return;
    if (!(await this.#newLoginWritten())) return;
    try {
      await this.getAccessToken();
    } catch (err) {
      this.#log.debug({ event: 'auth-restore-failed', err: isPostflowError(err) ? err.code : String(err) }, 'new login not usable yet');
    }
  }
}

function describeCause(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause as NodeJS.ErrnoException | undefined;
    if (err.name === 'TimeoutError') return 'timed out';
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}

/** Waits for `p`, but lets one caller give up without cancelling the shared work. */
function raceSignal<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    if (signal.aborted) return abort();
    signal.addEventListener('abort', abort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(e);
      },
    );
  });
}

export function createTokenProvider(opts: TokenProviderOptions): TokenProvider {
  return new ImsTokenProvider(opts);
}
