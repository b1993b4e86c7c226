/**
 * What a request line and Host header may look like before the server even consults the token registry.
 * Pure and strict: the only accepted target is `/<43-char token>/<one percent-encoded name segment>`; the
 * decoded name is later compared whole with the registered name, so nothing here ever becomes part of a
 * file system path.
 */
import { TOKEN_PATTERN } from './tokens.ts';

/** Longest request target considered: a 255-byte name percent-encoded is at most 765 characters. */
export const MAX_TARGET_LENGTH = 2048;

export interface Target {
  token: string;
  name: string;
}

/** Splits `/<token>/<name>[?query]` (query ignored); undefined for any other shape. */
export function parseTarget(rawUrl: string | undefined): Target | undefined {
  if (rawUrl === undefined || rawUrl.length === 0 || rawUrl.length > MAX_TARGET_LENGTH) return undefined;
  if (rawUrl.charCodeAt(0) !== 0x2f /* / */) return undefined; // absolute-form, authority-form, '*'
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const slash = path.indexOf('/', 1);
  if (slash === -1) return undefined;
  const token = path.slice(1, slash);
  const encodedName = path.slice(slash + 1);
  if (!TOKEN_PATTERN.test(token)) return undefined;
  if (encodedName.length === 0 || encodedName.includes('/')) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(encodedName);
  } catch {
    return undefined;
  }
  // An encoded slash, backslash, NUL or dot segment can never equal a registered name; refusing them here
  // keeps that true even if name rules change later.
  if (name === '.' || name === '..' || /[/\\\u0000-\u001f\u007f]/.test(name)) return undefined;
  return { token, name };
}

const HOSTNAME = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const IPV6 = /^\[[0-9A-Fa-f:.]{2,45}\]$/;

/**
 * The host name of a well-formed `Host` header value (`name[:port]`, `[v6][:port]`), lower-cased, or
 * undefined for anything else: userinfo, paths, spaces, empty, several values.
 */
export function hostOf(header: string | undefined): string | undefined {
  if (header === undefined || header.length === 0 || header.length > 260) return undefined;
  let host = header;
  const portMatch = /:(\d{1,5})$/.exec(header);
  if (portMatch && !(header.startsWith('[') && !header.includes(']:'))) {
    if (Number(portMatch[1]) > 65535) return undefined;
    host = header.slice(0, header.length - portMatch[0].length);
  }
  if (host.length === 0 || host.length > 253) return undefined;
  if (IPV6.test(host) || HOSTNAME.test(host)) return host.toLowerCase();
  return undefined;
}
