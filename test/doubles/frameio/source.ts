/**
 * Where a remote_upload source URL leads, decided the way the real importer's network would decide it:
 * public hostnames resolve through the tunnel stand-in's registry (our stand-in for DNS), loopback and
 * private addresses are unreachable from Frame.io's cloud unless a test explicitly allows them.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { resolveHost } from '../tunnel-registry.ts';

export interface SourceTarget {
  /** `http://127.0.0.1:PORT` to connect to. */
  origin: string;
  /** Host header to send (the public hostname, as a real client would). */
  host: string;
  /** Path and query of the source URL. */
  path: string;
}

export type Resolution =
  | { ok: true; target: SourceTarget }
  | { ok: false; retryable: boolean; detail: string };

export interface ResolveOptions {
  registryDir: string | undefined;
  allowLoopbackSources: boolean;
  /** A registry entry younger than this does not resolve yet (DNS propagation of a fresh quick tunnel). */
  dnsDelayMs: number;
  now: number;
}

function isPrivateHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1' || h === '0.0.0.0') return true;
  const m = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(h);
  if (!m) return false;
  const a = Number(m[1]);
  const b = Number(m[2]);
  return a === 127 || a === 10 || (a === 192 && b === 168) || (a === 172 && b >= 16 && b <= 31) || (a === 169 && b === 254);
}

export function resolveSource(sourceUrl: string, opts: ResolveOptions): Resolution {
  let url: URL;
  try {
    url = new URL(sourceUrl);
  } catch {
    return { ok: false, retryable: false, detail: `source_url ${JSON.stringify(sourceUrl)} is not an absolute URL` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, retryable: false, detail: `source_url scheme ${url.protocol} is not http or https` };
  }
  const path = `${url.pathname}${url.search}`;
  if (isPrivateHost(url.hostname)) {
    if (!opts.allowLoopbackSources) {
      return { ok: false, retryable: false, detail: `source host ${url.hostname} is not reachable from the internet` };
    }
    if (url.protocol !== 'http:') return { ok: false, retryable: false, detail: 'loopback sources must be plain http' };
    return { ok: true, target: { origin: url.origin, host: url.host, path } };
  }
  const edge = opts.registryDir ? resolveHost(opts.registryDir, url.hostname) : undefined;
  if (!edge) return { ok: false, retryable: true, detail: `getaddrinfo ENOTFOUND ${url.hostname}` };
  if (opts.dnsDelayMs > 0 && opts.registryDir) {
    try {
      // Same file layout as tunnel-registry.ts: the entry's age is how long the name has "existed".
      const born = statSync(join(opts.registryDir, `${url.hostname.toLowerCase()}.json`)).mtimeMs;
      if (opts.now - born < opts.dnsDelayMs) return { ok: false, retryable: true, detail: `getaddrinfo ENOTFOUND ${url.hostname}` };
    } catch {
      return { ok: false, retryable: true, detail: `getaddrinfo ENOTFOUND ${url.hostname}` };
    }
  }
  return { ok: true, target: { origin: edge.replace(/\/+$/, ''), host: url.host, path } };
}
