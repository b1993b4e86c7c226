/**
 * Adobe IMS as postflow meets it: the token endpoint (refresh_token with rotation, client_credentials,
 * authorization_code with PKCE) and an authorize endpoint that approves at once, so a headless test can
 * run the whole login. Pure apart from the injected clock: the HTTP layer only moves forms and answers.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface ImsOptions {
  clientId: string;
  clientSecret: string;
  accessTokenTtlSeconds: number;
  now?: () => number;
}

export interface ImsAnswer {
  status: number;
  body?: Record<string, unknown>;
  location?: string;
}

export type AccessCheck = 'ok' | 'expired' | 'unknown';

const CODE_TTL_MS = 10 * 60_000;

interface PendingCode {
  redirectUri: string;
  challenge: string | undefined;
  scope: string;
  expiresAt: number;
}

function token(prefix: string): string {
  return `${prefix}${randomBytes(24).toString('base64url')}`;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function oauthError(status: number, error: string, description: string): ImsAnswer {
  return { status, body: { error, error_description: description } };
}

export class Ims {
  readonly #opts: Required<ImsOptions>;
  /** Refresh token → scope of its chain. A rotated or revoked token is simply absent. */
  /** Every refresh and access token ever handed out: tests search logs and files for them. */
  readonly issued: string[] = [];
  readonly #refresh = new Map<string, string>();
  readonly #access = new Map<string, number>();
  readonly #codes = new Map<string, PendingCode>();

  constructor(opts: ImsOptions) {
    this.#opts = { now: Date.now, ...opts };
  }

  get accessTokenTtlSeconds(): number {
    return this.#opts.accessTokenTtlSeconds;
  }

  set accessTokenTtlSeconds(s: number) {
    this.#opts.accessTokenTtlSeconds = s;
  }

  /** A fresh refresh token, as if a person had just logged in. */
  issueRefreshToken(scope = 'openid profile email offline_access additional_info.roles'): string {
    const t = token('rt-');
    this.issued.push(t);
    this.#refresh.set(t, scope);
    return t;
  }

  /** A fresh access token (for tests that want to call /v4 without going through the token endpoint). */
  issueAccessToken(): string {
    const t = token('at-');
    this.issued.push(t);
    this.#access.set(t, this.#opts.now() + this.#opts.accessTokenTtlSeconds * 1000);
    return t;
  }

  revokeRefreshTokens(): void {
    this.#refresh.clear();
  }

  revokeAccessTokens(): void {
    this.#access.clear();
  }

  checkAccessToken(t: string): AccessCheck {
    const expiresAt = this.#access.get(t);
    if (expiresAt === undefined) return 'unknown';
    return this.#opts.now() < expiresAt ? 'ok' : 'expired';
  }

  /** GET /ims/authorize/v2: approves at once and redirects back with a one-time code. */
  authorize(q: URLSearchParams): ImsAnswer {
    if (q.get('client_id') !== this.#opts.clientId) return oauthError(400, 'invalid_client', 'unknown client_id');
    const redirectUri = q.get('redirect_uri');
    let target: URL;
    try {
      target = new URL(redirectUri ?? '');
    } catch {
      return oauthError(400, 'invalid_request', 'redirect_uri is missing or not an absolute URL');
    }
    const back = (params: Record<string, string>): ImsAnswer => {
      for (const [k, v] of Object.entries(params)) target.searchParams.set(k, v);
      const state = q.get('state');
      if (state !== null) target.searchParams.set('state', state);
      return { status: 302, location: target.toString() };
    };
    if (q.get('response_type') !== 'code') return back({ error: 'unsupported_response_type' });
    const challenge = q.get('code_challenge') ?? undefined;
    if (challenge !== undefined && q.get('code_challenge_method') !== 'S256') {
      return back({ error: 'invalid_request', error_description: 'code_challenge_method must be S256' });
    }
    const code = token('code-');
    this.#codes.set(code, {
      redirectUri: redirectUri ?? '',
      challenge,
      scope: q.get('scope') ?? 'openid',
      expiresAt: this.#opts.now() + CODE_TTL_MS,
    });
    return back({ code });
  }

  /** POST /ims/token/v3 with a form body; `basic` carries client credentials sent as HTTP Basic. */
  token(form: URLSearchParams, basic?: { id: string; secret: string }): ImsAnswer {
    const clientId = form.get('client_id') ?? basic?.id;
    const secret = form.get('client_secret') ?? basic?.secret;
    if (clientId !== this.#opts.clientId) return oauthError(401, 'invalid_client', 'unknown client_id');
    if (secret !== undefined && !sameSecret(secret, this.#opts.clientSecret)) {
      return oauthError(401, 'invalid_client', 'client_secret does not match the client_id');
    }
    switch (form.get('grant_type')) {
      case 'refresh_token':
        return this.#refreshGrant(form);
      case 'client_credentials':
        if (secret === undefined) return oauthError(401, 'invalid_client', 'client_secret is required');
        return this.#answer(form.get('scope') ?? 'openid AdobeID frame.s2s.all', false);
      case 'authorization_code':
        return this.#codeGrant(form, secret !== undefined);
      default:
        return oauthError(400, 'unsupported_grant_type', `grant_type ${form.get('grant_type') ?? '(missing)'} is not supported`);
    }
  }

  #refreshGrant(form: URLSearchParams): ImsAnswer {
    const presented = form.get('refresh_token');
    if (!presented) return oauthError(400, 'invalid_request', 'refresh_token is required');
    const scope = this.#refresh.get(presented);
    if (scope === undefined) return oauthError(400, 'invalid_grant', 'refresh token is invalid, expired or already used');
    // Rotation: the presented token dies the moment its successor is issued.
    this.#refresh.delete(presented);
    return this.#answer(scope, true);
  }

  #codeGrant(form: URLSearchParams, hasSecret: boolean): ImsAnswer {
    const code = form.get('code') ?? '';
    const pending = this.#codes.get(code);
    this.#codes.delete(code);
    if (!pending || pending.expiresAt <= this.#opts.now()) {
      return oauthError(400, 'invalid_grant', 'authorization code is invalid, expired or already used');
    }
    const redirectUri = form.get('redirect_uri');
    if (redirectUri !== null && redirectUri !== pending.redirectUri) {
      return oauthError(400, 'invalid_grant', 'redirect_uri does not match the one used to authorize');
    }
    if (pending.challenge !== undefined) {
      const verifier = form.get('code_verifier') ?? '';
      const expected = createHash('sha256').update(verifier).digest('base64url');
      if (expected !== pending.challenge) return oauthError(400, 'invalid_grant', 'code_verifier does not match code_challenge');
    } else if (!hasSecret) {
      return oauthError(401, 'invalid_client', 'client_secret is required without PKCE');
    }
    return this.#answer(pending.scope, pending.scope.split(/\s+/).includes('offline_access'));
  }

  #answer(scope: string, withRefresh: boolean): ImsAnswer {
    const body: Record<string, unknown> = {
      access_token: this.issueAccessToken(),
      token_type: 'bearer',
      expires_in: this.#opts.accessTokenTtlSeconds,
      scope,
    };
    if (withRefresh) body.refresh_token = this.issueRefreshToken(scope);
    return { status: 200, body };
  }
}
