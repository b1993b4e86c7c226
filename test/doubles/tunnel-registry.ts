/**
 * The test doubles' stand-in for public DNS. The cloudflared stand-in writes one file per public hostname it
 * serves (`<hostname>.json` → `{ "edge": "http://127.0.0.1:PORT" }`), and the Frame.io emulator resolves a
 * source URL's hostname through it, the way the real service resolves a trycloudflare.com name. A hostname
 * with no file does not resolve, which is exactly what a fresh quick tunnel looks like for its first seconds.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where entries live unless `CLOUDFLARED_STANDIN_REGISTRY` names another folder. */
export function registryDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.CLOUDFLARED_STANDIN_REGISTRY ?? join(tmpdir(), 'cloudflared-standin-registry');
}

function entryPath(dir: string, hostname: string): string {
  if (!/^[a-z0-9.-]+$/i.test(hostname)) throw new Error(`invalid hostname ${JSON.stringify(hostname)}`);
  return join(dir, `${hostname.toLowerCase()}.json`);
}

export function registerHost(dir: string, hostname: string, edgeUrl: string): void {
  mkdirSync(dir, { recursive: true });
  const target = entryPath(dir, hostname);
  const tmp = `${target}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ edge: edgeUrl, pid: process.pid }));
  renameSync(tmp, target);
}

export function unregisterHost(dir: string, hostname: string): void {
  rmSync(entryPath(dir, hostname), { force: true });
}

/** The edge origin (`http://127.0.0.1:PORT`) serving `hostname`, or undefined when it does not resolve. */
export function resolveHost(dir: string, hostname: string): string | undefined {
  try {
    const entry = JSON.parse(readFileSync(entryPath(dir, hostname), 'utf8')) as { edge?: unknown };
    return typeof entry.edge === 'string' ? entry.edge : undefined;
  } catch {
    return undefined;
  }
}
