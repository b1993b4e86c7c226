/**
 * The pure half of `postflow auth login`: PKCE values (RFC 7636, S256), the authorize URL, and reading what a
 * person pastes back on a machine without a browser (the whole redirect URL, or just the code).
 */
import { createHash, randomBytes } from 'node:crypto';

export interface Pkce {
  verifier: string;
  challenge: string;
  state: string;
}

/** 32 random bytes → a 43-character verifier, the RFC's recommended size; `state` guards the redirect. */
export function newPkce(random: (n: number) => Buffer = randomBytes): Pkce {
  const verifier = random(32).toString('base64url');
  return { verifier, challenge: challengeOf(verifier), state: random(16).toString('base64url') };
}

export function challengeOf(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

export function authorizeUrl(o: { authorizeUrl: string; clientId: string; redirectUri: string; scopes: string; pkce: Pkce }): string {
  const url = new URL(o.authorizeUrl);
  url.searchParams.set('client_id', o.clientId);
  url.searchParams.set('redirect_uri', o.redirectUri);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', o.scopes.split(/[\s,]+/).filter(Boolean).join(' '));
  url.searchParams.set('state', o.pkce.state);
  url.searchParams.set('code_challenge', o.pkce.challenge);
  url.searchParams.set('code_challenge_method', 'S256');
  return url.toString();
}

export type Callback = { code: string } | { error: string };

/**
 * The redirect's query → the code, or why there is none. A state that does not match is refused: the
 * redirect did not come from the request this process made.
 */
export function readCallback(params: URLSearchParams, expectedState: string | undefined): Callback {
  const error = params.get('error');
  if (error) return { error: `${error}${params.get('error_description') ? `: ${params.get('error_description')}` : ''}` };
  const code = params.get('code');
  if (!code) return { error: 'the redirect carries no code' };
  if (expectedState !== undefined && params.get('state') !== expectedState) {
    return { error: 'the redirect\'s state does not match this login (an old or foreign redirect)' };
  }
  return { code };
}

/**
 * What a person pasted: the full redirect URL from the browser's address bar (checked like a redirect), or a
 * bare code (accepted as is: the person copied it from this login's page). Undefined for an empty line.
 */
export function readPasted(line: string, expectedState: string): Callback | undefined {
  const text = line.trim();
  if (text === '') return undefined;
  if (/^https?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return { error: 'the pasted text is not a URL' };
    }
    return readCallback(url.searchParams, expectedState);
  }
  if (text.startsWith('?') || text.includes('code=')) return readCallback(new URLSearchParams(text.replace(/^.*\?/, '')), expectedState);
  if (/\s/.test(text)) return { error: 'the pasted text is neither the redirect URL nor a code' };
  return { code: text };
}
