/**
 * Which job store a daemon uses: the embedded SQLite file in its state dir, or — with `store.url` — the
 * fleet's shared PostgreSQL database. Also the node's name in the fleet, kept across restarts so that a
 * restarted daemon is the same node (its own leases, `postflow status`).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { openPgStore } from './pg-store.ts';
import { openSqliteStore } from './sqlite-store.ts';
import type { JobStore } from './store.ts';

/** `configured` when set; else the id kept in `<stateDir>/node-id`, created once as `<host>-<6 hex>`. */
export function resolveNodeId(stateDir: string, configured: string): string {
  if (configured.trim() !== '') return configured.trim();
  const file = join(stateDir, 'node-id');
  try {
    const kept = readFileSync(file, 'utf8').trim();
    if (kept) return kept;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const host = hostname().split('.')[0]!.replace(/[^A-Za-z0-9_-]/g, '') || 'node';
  const id = `${host}-${randomBytes(3).toString('hex')}`;
  writeFileSync(file, `${id}\n`, { mode: 0o600 });
  return id;
}

export async function openJobStore(opts: { url: string; stateDir: string; nodeId: string; logger?: Logger; lockTimeoutMs?: number }): Promise<JobStore> {
  if (opts.url !== '') return openPgStore({ url: opts.url, nodeId: opts.nodeId, ...(opts.logger ? { logger: opts.logger } : {}) });
  return openSqliteStore({ path: join(opts.stateDir, 'postflow.db'), nodeId: opts.nodeId, ...(opts.lockTimeoutMs ? { lockTimeoutMs: opts.lockTimeoutMs } : {}) });
}
