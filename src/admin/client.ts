/**
 * The CLI's way to the jobs: through the running daemon's admin API when admin.json names a live one (the
 * daemon holds the SQLite store's exclusive lock), else straight from the store of a stopped daemon. Both
 * answer with the same shapes (actions.ts builds them in either case).
 */
import { join } from 'node:path';
import { PostflowError } from '../errors.ts';
import { ERR_JOBS_STORE_LOCKED } from '../jobs/errors.ts';
import { openSqliteStore } from '../jobs/sqlite-store.ts';
import { openPgStore } from '../jobs/pg-store.ts';
import { hostname } from 'node:os';
import type { JobState } from '../jobs/states.ts';
import { isPostflowError } from '../errors.ts';
import { listJobs, readStatus, retryAllFailed, retryJob } from './actions.ts';
import { pidAlive, readAdminFile } from './discovery.ts';
import { ERR_ADMIN_DAEMON_BUSY, ERR_ADMIN_UNREACHABLE } from './errors.ts';
import { jobRow, type FolderInfo, type JobRow, type StatusView } from './view.ts';

export interface JobsAccess {
  /** 'daemon': through the admin API of the running daemon; 'store': the store of a stopped one. */
  readonly via: 'daemon' | 'store';
  readonly url: string | undefined;
  status(): Promise<StatusView>;
  jobs(q: { state?: JobState | undefined; limit?: number | undefined }): Promise<JobRow[]>;
  retry(idOrPrefix: string): Promise<JobRow>;
  retryFailed(): Promise<{ retried: JobRow[]; skipped: Array<{ id: string; reason: string }> }>;
  close(): Promise<void>;
}

async function call<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(base + path, {
      method,
      signal: AbortSignal.timeout(10_000),
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
  } catch (err) {
    throw ERR_ADMIN_UNREACHABLE(base, (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message);
  }
  const payload = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
  if (!res.ok) throw new PostflowError(payload.error ?? 'PF_ERR_ADMIN_REQUEST', payload.message ?? `HTTP ${res.status}`, { status: res.status });
  return payload as T;
}

export function daemonAccess(url: string): JobsAccess {
  return {
    via: 'daemon',
    url,
    status: () => call<StatusView>(url, 'GET', '/api/status'),
    async jobs(q) {
      const qs = new URLSearchParams();
      if (q.state) qs.set('state', q.state);
      if (q.limit) qs.set('limit', String(q.limit));
      return (await call<{ jobs: JobRow[] }>(url, 'GET', `/api/jobs?${qs}`)).jobs;
    },
    async retry(id) {
      return (await call<{ job: JobRow }>(url, 'POST', `/api/jobs/${encodeURIComponent(id)}/retry`)).job;
    },
    retryFailed: () => call(url, 'POST', '/api/retry-failed'),
    close: async () => undefined,
  };
}

/**
 * Picks the way in for `stateDir`. A stale admin.json (daemon killed) is ignored; a store locked by a daemon
 * whose admin listener does not answer is an error, never a wait.
 */
export async function openJobsAccess(opts: { stateDir: string; folders: readonly FolderInfo[]; now?: () => number; storeUrl?: string; leaseTimeoutMs?: number }): Promise<JobsAccess> {
  const now = opts.now ?? Date.now;
  const addr = await readAdminFile(opts.stateDir);
  if (addr && pidAlive(addr.pid)) {
    const access = daemonAccess(addr.url);
    try {
      await call(addr.url, 'GET', '/api/log-level');
      return access;
    } catch (err) {
      if (!isPostflowError(err, ERR_ADMIN_UNREACHABLE)) throw err;
      // The pid may belong to another process by now: the store tells whether a daemon really runs.
    }
  }
  let store;
  try {
    // A fleet's shared store is read directly (no lock to respect); the CLI is a node of its own name.
    if (opts.storeUrl) store = await openPgStore({ url: opts.storeUrl, nodeId: `cli@${hostname()}`, poolSize: 2 });
    else store = await openSqliteStore({ path: join(opts.stateDir, 'postflow.db'), lockTimeoutMs: 500 });
  } catch (err) {
    if (!isPostflowError(err, ERR_JOBS_STORE_LOCKED)) throw err;
    throw addr ? ERR_ADMIN_UNREACHABLE(addr.url, 'connection failed') : ERR_ADMIN_DAEMON_BUSY(opts.stateDir);
  }
  const s = store;
  return {
    via: 'store',
    url: undefined,
    status: () =>
      readStatus(
        s,
        { running: false, pid: null, startedAt: null, paused: false, logLevel: null, progress: new Map(), tunnel: null, folders: opts.folders, leaseTimeoutMs: opts.leaseTimeoutMs },
        now(),
      ),
    jobs: (q) => listJobs(s, q),
    retry: async (id) => jobRow(await retryJob(s, id)),
    async retryFailed() {
      const out = await retryAllFailed(s);
      return { retried: out.retried.map(jobRow), skipped: out.skipped };
    },
    close: () => s.close(),
  };
}
