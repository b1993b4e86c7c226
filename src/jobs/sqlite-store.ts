/**
 * The embedded job store on node:sqlite. Durability first: WAL with synchronous=FULL, so a transition is on
 * disk before the worker acts on it (writes of one event-loop turn share one COMMIT, see `write`) and a power cut cannot lose it; every multi-statement change runs in one
 * transaction. The database is held with an exclusive lock for the store's lifetime: two daemons on one state
 * dir would import every file twice, so the second one must fail at start with a clear error.
 */
import { claimFilter, claimOrder } from './claim-order.ts';
import { DatabaseSync, type StatementSync, type SQLInputValue } from 'node:sqlite';
import { randomUUID } from 'node:crypto';
import { accessSync, constants as fsConstants, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PostflowError } from '../errors.ts';
import {
  ERR_JOBS_ILLEGAL_TRANSITION,
  ERR_JOBS_PATH_TAKEN,
  ERR_JOBS_STORE_CLOSED,
  ERR_JOBS_STORE_CORRUPT,
  ERR_JOBS_STORE_DISK_FULL,
  ERR_JOBS_STORE_IO,
  ERR_JOBS_STORE_LOCKED,
  ERR_JOBS_STORE_READONLY,
  ERR_JOBS_STORE_TOO_NEW,
  ERR_JOBS_UNKNOWN_FIELD,
} from './errors.ts';
import { IN_FLIGHT_STATES, JOB_STATES, OPEN_STATES, canTransition, isTerminal, type JobState } from './states.ts';
import { nodeFromRow } from './node-row.ts';
import { rediscoveredState } from './rediscovery.ts';
import type { BaselineFile, DiscoveredFile, Job, JobEvent, JobLanding, JobPatch, JobQuery, JobStore } from './store.ts';

export interface SqliteStoreOptions {
  /** Database file; its directory is created if missing. */
  path: string;
  /** Clock for createdAt/updatedAt/event times (ms). */
  now?: () => number;
  /** How long to wait for another process's lock before failing with PF_ERR_JOBS_STORE_LOCKED. */
  lockTimeoutMs?: number;
  /** The daemon this handle acts for (leases); one node per SQLite store, so any stable name does. */
  nodeId?: string;
}

export interface SqliteJobStore extends JobStore {
  readonly path: string;
}

// Each entry migrates from user_version = index to index + 1. Append only; never edit a released step.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE jobs (
     id TEXT PRIMARY KEY,
     folder_index INTEGER NOT NULL,
     root TEXT NOT NULL,
     path TEXT NOT NULL,
     rel_path TEXT NOT NULL,
     name TEXT NOT NULL,
     size INTEGER NOT NULL,
     mtime_ms REAL NOT NULL,
     ino INTEGER NOT NULL,
     destination TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN (${JOB_STATES.map((s) => `'${s}'`).join(',')})),
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER,
     last_error TEXT,
     frameio_file_id TEXT,
     view_url TEXT,
     source_url TEXT,
     import_requested_at INTEGER,
     sha256 TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     started_at INTEGER,
     finished_at INTEGER
   );
   -- the store's promise "never two open jobs for one path", enforced by the database itself
   CREATE UNIQUE INDEX jobs_open_path ON jobs(path) WHERE state IN (${OPEN_STATES.map((s) => `'${s}'`).join(',')});
   CREATE INDEX jobs_state_due ON jobs(state, next_attempt_at);
   CREATE INDEX jobs_created ON jobs(created_at);
   CREATE TABLE job_events (
     id INTEGER PRIMARY KEY,
     job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
     at INTEGER NOT NULL,
     from_state TEXT,
     to_state TEXT NOT NULL,
     detail TEXT
   );
   CREATE INDEX job_events_job ON job_events(job_id, id);
   -- files already handled, by path: the last imported version or the baseline at first start
   CREATE TABLE files (
     path TEXT PRIMARY KEY,
     size INTEGER NOT NULL,
     mtime_ms REAL NOT NULL,
     job_id TEXT,
     recorded_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`,
  // Issue 8: where a file landed in Frame.io (mirrored folder, version stack), how, and when.
  `ALTER TABLE jobs ADD COLUMN frameio_folder_id TEXT;
   ALTER TABLE jobs ADD COLUMN frameio_folder_path TEXT;
   ALTER TABLE jobs ADD COLUMN version_stack_id TEXT;
   ALTER TABLE jobs ADD COLUMN landing TEXT CHECK (landing IN ('new', 'version', 'skipped'));
   ALTER TABLE jobs ADD COLUMN sent_at INTEGER;
   ALTER TABLE jobs ADD COLUMN confirmed_at INTEGER;
   ALTER TABLE jobs ADD COLUMN after_upload_path TEXT;
   CREATE INDEX jobs_path ON jobs(path, created_at);`,
  // Issue 10: leases, the same claim protocol as the PostgreSQL store, with one node.
  `ALTER TABLE jobs ADD COLUMN lease_node TEXT;
   ALTER TABLE jobs ADD COLUMN lease_expires_at INTEGER;
   -- claims look only at active jobs: done ones pile up by the hundred thousand
   CREATE INDEX jobs_claimable ON jobs(created_at) WHERE state IN ('stable', 'queued', 'exposing', 'importing');
   CREATE TABLE nodes (
     node_id TEXT PRIMARY KEY,
     host TEXT NOT NULL,
     pid INTEGER NOT NULL,
     started_at INTEGER NOT NULL,
     heartbeat_at INTEGER NOT NULL,
     stopped_at INTEGER
   ) WITHOUT ROWID;`,
];

export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

/** States in which a lease protects a job from other nodes' writes (queued: claimed, about to start). */
const LEASED_STATES: readonly JobState[] = ['stable', 'queued', 'exposing', 'importing'];

// Job field → column, for every field a patch may set.
export const PATCHABLE: Readonly<Record<keyof JobPatch, string>> = {
  folderIndex: 'folder_index',
  root: 'root',
  path: 'path',
  relPath: 'rel_path',
  name: 'name',
  size: 'size',
  mtimeMs: 'mtime_ms',
  ino: 'ino',
  destination: 'destination',
  attempts: 'attempts',
  nextAttemptAt: 'next_attempt_at',
  lastError: 'last_error',
  frameioFileId: 'frameio_file_id',
  viewUrl: 'view_url',
  sourceUrl: 'source_url',
  importRequestedAt: 'import_requested_at',
  sha256: 'sha256',
  frameioFolderId: 'frameio_folder_id',
  frameioFolderPath: 'frameio_folder_path',
  versionStackId: 'version_stack_id',
  landing: 'landing',
  sentAt: 'sent_at',
  confirmedAt: 'confirmed_at',
  afterUploadPath: 'after_upload_path',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
};

export type Row = Record<string, SQLInputValue>;

export function toJob(r: Row): Job {
  return {
    id: r.id as string,
    folderIndex: r.folder_index as number,
    root: r.root as string,
    path: r.path as string,
    relPath: r.rel_path as string,
    name: r.name as string,
    size: r.size as number,
    mtimeMs: r.mtime_ms as number,
    ino: r.ino as number,
    destination: r.destination as string,
    state: r.state as JobState,
    attempts: r.attempts as number,
    nextAttemptAt: r.next_attempt_at as number | null,
    lastError: r.last_error as string | null,
    frameioFileId: r.frameio_file_id as string | null,
    viewUrl: r.view_url as string | null,
    sourceUrl: r.source_url as string | null,
    importRequestedAt: r.import_requested_at as number | null,
    sha256: r.sha256 as string | null,
    frameioFolderId: (r.frameio_folder_id ?? null) as string | null,
    frameioFolderPath: (r.frameio_folder_path ?? null) as string | null,
    versionStackId: (r.version_stack_id ?? null) as string | null,
    landing: (r.landing ?? null) as JobLanding | null,
    sentAt: (r.sent_at ?? null) as number | null,
    confirmedAt: (r.confirmed_at ?? null) as number | null,
    afterUploadPath: (r.after_upload_path ?? null) as string | null,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    startedAt: r.started_at as number | null,
    finishedAt: r.finished_at as number | null,
  };
}

/** SQLite primary result codes (the low byte of an extended code). */
const SQLITE = { BUSY: 5, LOCKED: 6, READONLY: 8, IOERR: 10, CORRUPT: 11, FULL: 13, CANTOPEN: 14, NOTADB: 26 };

/** Why the store's files cannot be written, if that is the reason; undefined when they can. */
function unwritable(path: string): string | undefined {
  const check = (p: string, mode: number) => {
    try {
      accessSync(p, mode);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT';
    }
  };
  if (!check(dirname(path), fsConstants.W_OK | fsConstants.X_OK)) return 'directory not writable';
  for (const p of [path, `${path}-wal`]) if (!check(p, fsConstants.W_OK)) return `${p} not writable`;
  return undefined;
}

/** Turns a node:sqlite or fs fault into the store's one-line error; anything else is returned unchanged. */
export function mapStoreFault(err: unknown, path: string): unknown {
  if (err instanceof PostflowError) return err;
  const e = err as { code?: string; errcode?: number; errstr?: string; message?: string };
  if (e?.code === 'ERR_SQLITE_ERROR' && typeof e.errcode === 'number') {
    const detail = e.errstr ?? e.message ?? 'unknown';
    let mapped: PostflowError | undefined;
    switch (e.errcode & 0xff) {
      case SQLITE.BUSY:
      case SQLITE.LOCKED:
        mapped = ERR_JOBS_STORE_LOCKED(path);
        break;
      case SQLITE.CORRUPT:
      case SQLITE.NOTADB:
        mapped = ERR_JOBS_STORE_CORRUPT(path, detail);
        break;
      case SQLITE.READONLY:
        mapped = ERR_JOBS_STORE_READONLY(path, detail);
        break;
      case SQLITE.FULL:
        mapped = ERR_JOBS_STORE_DISK_FULL(path);
        break;
      case SQLITE.CANTOPEN:
      case SQLITE.IOERR: {
        // SQLite reports files it may not write as "unable to open" or an I/O error; say what it really is.
        const why = unwritable(path);
        mapped = why ? ERR_JOBS_STORE_READONLY(path, `${detail}; ${why}`) : ERR_JOBS_STORE_IO(path, detail);
        break;
      }
    }
    if (mapped) {
      Object.defineProperty(mapped, 'cause', { value: err, enumerable: false });
      return mapped;
    }
    return err;
  }
  switch (e?.code) {
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return ERR_JOBS_STORE_READONLY(path, e.message ?? e.code);
    case 'ENOSPC':
      return ERR_JOBS_STORE_DISK_FULL(path);
  }
  return err;
}

export async function openSqliteStore(opts: SqliteStoreOptions): Promise<SqliteJobStore> {
  return openSqliteStoreSync(opts);
}

/** Synchronous opening, for callers that must have the store before anything else starts (the CLI). */
export function openSqliteStoreSync(opts: SqliteStoreOptions): SqliteJobStore {
  // WAL and the exclusive lock need a real file; ':memory:' would silently become a file of that name.
  if (opts.path === ':memory:' || opts.path === '') {
    throw new RangeError(`openSqliteStore: needs a file path (got ${JSON.stringify(opts.path)}); use a file in a temp folder for a private store`);
  }
  const path = resolve(opts.path);
  const now = opts.now ?? Date.now;
  let db: DatabaseSync | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = new DatabaseSync(path, { timeout: opts.lockTimeoutMs ?? 2000, enableForeignKeyConstraints: true });
    // Must precede the first access: the lock is then taken by the first read and kept until close, and WAL
    // keeps its index in process memory (no -shm file another process could attach to).
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    const mode = db.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode: string } | undefined;
    if (mode?.journal_mode !== 'wal') throw ERR_JOBS_STORE_IO(path, `journal_mode stayed ${mode?.journal_mode ?? 'unknown'}, expected wal`);
    db.exec('PRAGMA synchronous = FULL');
    migrate(db, path);
    // Header damage shows at open; damage deeper in the file would otherwise surface mid-run as a failed job.
    const check = db.prepare('PRAGMA quick_check(1)').get() as { quick_check: string } | undefined;
    if (check?.quick_check !== 'ok') throw ERR_JOBS_STORE_CORRUPT(path, check?.quick_check ?? 'quick_check gave no answer');
  } catch (err) {
    try {
      db?.close();
    } catch {
      // the open failure is the error worth reporting
    }
    throw mapStoreFault(err, path);
  }
  return createStore(db, path, now, opts.nodeId ?? 'local');
}

function migrate(db: DatabaseSync, path: string): void {
  // BEGIN IMMEDIATE takes the write lock, so a locked store fails here, before anything was changed.
  db.exec('BEGIN IMMEDIATE');
  try {
    const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
    if (version > MIGRATIONS.length) throw ERR_JOBS_STORE_TOO_NEW(path, version, MIGRATIONS.length);
    for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    db.exec(`PRAGMA user_version = ${MIGRATIONS.length}`);
    db.exec('COMMIT');
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

function createStore(db: DatabaseSync, path: string, now: () => number, nodeId: string): SqliteJobStore {
  let closed = false;
  const cache = new Map<string, StatementSync>();
  const stmt = (sql: string): StatementSync => {
    let s = cache.get(sql);
    if (!s) {
      s = db.prepare(sql);
      cache.set(sql, s);
    }
    return s;
  };

  /** Runs a read on the open database, with faults mapped to store errors. */
  const run = <T>(fn: () => T): T => {
    if (closed) throw ERR_JOBS_STORE_CLOSED(path);
    try {
      return fn();
    } catch (err) {
      throw mapStoreFault(err, path);
    }
  };

  // Group commit. With synchronous=FULL each COMMIT is an fsync on the main thread, and a burst of jobs made
  // one per transition (a CPU profile of 1,000 jobs: 30 % of the daemon's time). The writes issued in one
  // turn of the event loop share one transaction, each in its own savepoint (a write that throws undoes only
  // itself), and every one of them is answered only after that COMMIT: nobody acts on a change that is not
  // on disk, exactly as before, and a failed COMMIT fails them all.
  let batch: { waiters: { resolve: () => void; reject: (err: unknown) => void }[]; committed: Promise<void> } | undefined;
  const flush = (): void => {
    const b = batch;
    if (!b) return;
    batch = undefined;
    try {
      db.exec('COMMIT');
    } catch (err) {
      try {
        if (db.isTransaction) db.exec('ROLLBACK');
      } catch {
        // the COMMIT's fault is the one to report
      }
      const fault = mapStoreFault(err, path);
      for (const w of b.waiters) w.reject(fault);
      return;
    }
    for (const w of b.waiters) w.resolve();
  };
  const write = async <T>(fn: () => T): Promise<T> => {
    if (closed) throw ERR_JOBS_STORE_CLOSED(path);
    let result: T;
    try {
      if (!batch) {
        db.exec('BEGIN IMMEDIATE');
        const waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
        const committed = new Promise<void>((resolve) => {
          // settles when the batch is over either way (readers wait on it; writers on their own waiter)
          waiters.push({ resolve, reject: () => resolve() });
        });
        batch = { waiters, committed };
        setImmediate(flush);
      }
      db.exec('SAVEPOINT w');
      try {
        result = fn();
        db.exec('RELEASE w');
      } catch (err) {
        db.exec('ROLLBACK TO w');
        db.exec('RELEASE w');
        throw err;
      }
    } catch (err) {
      throw mapStoreFault(err, path);
    }
    const b = batch!;
    await new Promise<void>((resolve, reject) => b.waiters.push({ resolve, reject }));
    return result;
  };
  /** Async reads wait for the open batch: they answer with what is on disk, as before group commit. */
  const settled = async (): Promise<void> => {
    if (batch) await batch.committed;
  };

  const OPEN_IN = OPEN_STATES.map((s) => `'${s}'`).join(',');
  const IN_FLIGHT_IN = IN_FLIGHT_STATES.map((s) => `'${s}'`).join(',');
  const getRow = (id: string) => stmt('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
  const openRowForPath = (p: string) => stmt(`SELECT * FROM jobs WHERE path = ? AND state IN (${OPEN_IN})`).get(p) as Row | undefined;
  const addEvent = (id: string, at: number, from: JobState | null, to: JobState, detail: string | null) =>
    stmt('INSERT INTO job_events (job_id, at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)').run(id, at, from, to, detail);

  /** Builds `col = ?` pairs for a patch, rejecting fields that are not patchable. */
  const patchSets = (patch: JobPatch | undefined): [string[], SQLInputValue[]] => {
    const cols: string[] = [];
    const vals: SQLInputValue[] = [];
    if (!patch) return [cols, vals];
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      const col = (PATCHABLE as Record<string, string>)[key];
      if (!col) throw ERR_JOBS_UNKNOWN_FIELD(key);
      cols.push(col);
      vals.push(value as SQLInputValue);
    }
    return [cols, vals];
  };

  const isKnownSync = (p: string, size: number, mtimeMs: number): boolean =>
    run(() => stmt('SELECT 1 AS k FROM files WHERE path = ? AND size = ? AND mtime_ms = ?').get(p, size, mtimeMs) !== undefined);

  /** True when another node holds the job under a live lease: this handle must not move it. */
  const fenced = (row: Row, at: number): boolean =>
    LEASED_STATES.includes(row.state as JobState) && row.lease_node != null && row.lease_node !== nodeId && Number(row.lease_expires_at) >= at;

  const store: SqliteJobStore = {
    path,
    nodeId,

    async discover(file: DiscoveredFile): Promise<Job> {
      return write(() => {
        const at = now();
        const open = openRowForPath(file.path);
        if (!open) {
          // The same file seen again while a worker holds its job (a re-sweep, a restart) is that job, not a
          // second import of the same bytes.
          const held = stmt(`SELECT * FROM jobs WHERE path = ? AND state IN (${IN_FLIGHT_IN}) ORDER BY rowid DESC LIMIT 1`).get(file.path) as Row | undefined;
          if (held && held.size === file.size && held.mtime_ms === file.mtimeMs && held.ino === file.ino) return toJob(held);
          // A report older than the version in flight is a late look at that version (being written), not a new one.
          if (held && file.mtimeMs < (held.mtime_ms as number)) return toJob(held);
          const id = randomUUID();
          stmt(
            `INSERT INTO jobs (id, folder_index, root, path, rel_path, name, size, mtime_ms, ino, destination, state, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'discovered', ?, ?)`,
          ).run(id, file.folderIndex, file.root, file.path, file.relPath, file.name, file.size, file.mtimeMs, file.ino, file.destination, at, at);
          addEvent(id, at, null, 'discovered', null);
          return toJob(getRow(id)!);
        }
        const job = toJob(open);
        const state = rediscoveredState(job, file);
        if (state === undefined) return job;
        stmt(
          `UPDATE jobs SET folder_index = ?, root = ?, rel_path = ?, name = ?, size = ?, mtime_ms = ?, ino = ?, destination = ?,
             state = ?, updated_at = ? WHERE id = ?`,
        ).run(file.folderIndex, file.root, file.relPath, file.name, file.size, file.mtimeMs, file.ino, file.destination, state, at, job.id);
        if (state !== job.state) addEvent(job.id, at, job.state, state, 'file changed');
        return toJob(getRow(job.id)!);
      });
    },

    async transition(id, from, to, patch, detail) {
      const froms: readonly JobState[] = typeof from === 'string' ? [from] : from;
      for (const f of froms) if (!canTransition(f, to)) throw ERR_JOBS_ILLEGAL_TRANSITION(f, to);
      const [cols, vals] = patchSets(patch);
      return write(() => {
        const row = getRow(id);
        if (!row || !froms.includes(row.state as JobState)) return false;
        const was = row.state as JobState;
        const at = now();
        if (fenced(row, at)) return false;
        const jobPath = (patch?.path ?? row.path) as string;
        if (OPEN_STATES.includes(to) && !OPEN_STATES.includes(was)) {
          const other = openRowForPath(jobPath);
          if (other && other.id !== id) throw ERR_JOBS_PATH_TAKEN(id, jobPath, other.id as string);
        }
        const sets = ['state = ?', 'updated_at = ?', ...cols.map((c) => `${c} = ?`)];
        const args: SQLInputValue[] = [to, at, ...vals];
        // Bookkeeping the store owns, unless the caller set the field explicitly.
        if (to === 'exposing' && !cols.includes('attempts')) sets.push('attempts = attempts + 1');
        if (was === 'failed' && to === 'queued' && !cols.includes('attempts')) sets.push('attempts = 0');
        if (to === 'exposing' && !cols.includes('started_at')) sets.push('started_at = COALESCE(started_at, ?)'), args.push(at);
        if (!cols.includes('finished_at')) {
          if (isTerminal(to)) sets.push('finished_at = ?'), args.push(at);
          else if (isTerminal(was)) sets.push('finished_at = NULL');
        }
        if (isTerminal(to)) sets.push('lease_node = NULL', 'lease_expires_at = NULL');
        const res = stmt(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ? AND state = ?`).run(...args, id, was);
        if (Number(res.changes) !== 1) return false;
        addEvent(id, at, was, to, detail ?? patch?.lastError ?? null);
        if (to === 'done') {
          const done = toJob(getRow(id)!);
          stmt(
            `INSERT INTO files (path, size, mtime_ms, job_id, recorded_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, job_id = excluded.job_id, recorded_at = excluded.recorded_at`,
          ).run(done.path, done.size, done.mtimeMs, id, at);
        }
        return true;
      });
    },

    async update(id, patch) {
      const [cols, vals] = patchSets(patch);
      return write(() => {
        const at = now();
        const row = getRow(id);
        if (!row || fenced(row, at)) return false;
        const sets = ['updated_at = ?', ...cols.map((c) => `${c} = ?`)];
        const res = stmt(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ?`).run(at, ...vals, id);
        return Number(res.changes) === 1;
      });
    },

    async get(id) {
      await settled();
      return run(() => {
        const row = getRow(id);
        return row ? toJob(row) : undefined;
      });
    },

    async list(q = {}) {
      await settled();
      return run(() => {
        const where: string[] = [];
        const args: SQLInputValue[] = [];
        if (q.states) {
          if (q.states.length === 0) return [];
          where.push(`state IN (${q.states.map(() => '?').join(',')})`);
          args.push(...q.states);
        }
        if (q.frameioFileIds) {
          if (q.frameioFileIds.length === 0) return [];
          where.push(`frameio_file_id IN (${q.frameioFileIds.map(() => '?').join(',')})`);
          args.push(...q.frameioFileIds);
        }
        if (q.path !== undefined) {
          where.push('path = ?');
          args.push(q.path);
        }
        if (q.dueBy !== undefined) {
          where.push('(next_attempt_at IS NULL OR next_attempt_at <= ?)');
          args.push(q.dueBy);
        }
        const dir = q.order === 'desc' ? 'DESC' : 'ASC';
        let sql = `SELECT * FROM jobs${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at ${dir}, rowid ${dir}`;
        if (q.limit !== undefined) {
          sql += ' LIMIT ?';
          args.push(Math.max(0, Math.floor(q.limit)));
        }
        return (stmt(sql).all(...args) as Row[]).map(toJob);
      });
    },

    async counts() {
      await settled();
      return run(() => {
        const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
        for (const r of stmt('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state').all() as { state: JobState; n: number }[]) out[r.state] = r.n;
        return out;
      });
    },

    async isKnown(p, size, mtimeMs) {
      return isKnownSync(p, size, mtimeMs);
    },
    isKnownSync,

    async recordBaseline(files: readonly BaselineFile[]) {
      await write(() => {
        const at = now();
        const ins = stmt(
          `INSERT INTO files (path, size, mtime_ms, job_id, recorded_at) VALUES (?, ?, ?, NULL, ?)
           ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, job_id = NULL, recorded_at = excluded.recorded_at`,
        );
        for (const f of files) ins.run(f.path, f.size, f.mtimeMs, at);
      });
    },

    async events(id): Promise<JobEvent[]> {
      await settled();
      return run(() =>
        (stmt('SELECT at, from_state, to_state, detail FROM job_events WHERE job_id = ? ORDER BY id').all(id) as Row[]).map((r) => ({
          at: r.at as number,
          from: r.from_state as JobState | null,
          to: r.to_state as JobState,
          detail: r.detail as string | null,
        })),
      );
    },

    async getMeta(key) {
      await settled();
      return run(() => (stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value);
    },

    async setMeta(key, value) {
      await write(() => {
        stmt('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
      });
    },

    async claim({ limit, leaseMs, ...rules }) {
      return write(() => {
        const at = now();
        const n = Math.max(0, Math.floor(limit));
        if (n === 0) return [];
        const rows = stmt(
          `SELECT * FROM jobs WHERE state IN ('stable', 'queued', 'exposing', 'importing') AND (lease_node IS NULL OR lease_expires_at < ?) AND (
             (state = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= ?))
             OR state IN (${IN_FLIGHT_IN})
             OR (state = 'stable' AND updated_at <= ?))${claimFilter(rules)}
           ORDER BY ${claimOrder(rules)}created_at, rowid LIMIT ?`,
        ).all(at, at, at - leaseMs, n) as Row[];
        const lease = stmt('UPDATE jobs SET lease_node = ?, lease_expires_at = ? WHERE id = ?');
        return rows.map((r) => {
          lease.run(nodeId, at + leaseMs, r.id as string);
          return { job: toJob(r), previousNode: (r.lease_node as string | null) ?? null };
        });
      });
    },

    async heartbeat(held, leaseMs, info) {
      return write(() => {
        const at = now();
        const ids = JSON.stringify(held);
        stmt('UPDATE jobs SET lease_expires_at = ? WHERE lease_node = ? AND id IN (SELECT value FROM json_each(?))').run(at + leaseMs, nodeId, ids);
        stmt('UPDATE jobs SET lease_node = NULL, lease_expires_at = NULL WHERE lease_node = ? AND id NOT IN (SELECT value FROM json_each(?))').run(nodeId, ids);
        stmt(
          `INSERT INTO nodes (node_id, host, pid, started_at, heartbeat_at, stopped_at) VALUES (?, ?, ?, ?, ?, NULL)
           ON CONFLICT (node_id) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
             heartbeat_at = excluded.heartbeat_at, stopped_at = NULL`,
        ).run(nodeId, info.host, info.pid, info.startedAt, at);
        const lost = stmt('SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(?)) AND lease_node IS NOT NULL AND lease_node <> ?').all(ids, nodeId) as Row[];
        return lost.map((r) => r.id as string);
      });
    },

    async release() {
      await write(() => {
        stmt('UPDATE jobs SET lease_node = NULL, lease_expires_at = NULL WHERE lease_node = ?').run(nodeId);
        stmt('UPDATE nodes SET stopped_at = ? WHERE node_id = ?').run(now(), nodeId);
      });
    },

    async nodes() {
      await settled();
      return run(() => {
        const held = new Map<string, string[]>();
        const leasedIn = LEASED_STATES.map((s) => `'${s}'`).join(',');
        for (const r of stmt(`SELECT id, lease_node FROM jobs WHERE lease_node IS NOT NULL AND state IN (${leasedIn}) ORDER BY created_at, rowid`).all() as Row[]) {
          const list = held.get(r.lease_node as string) ?? [];
          list.push(r.id as string);
          held.set(r.lease_node as string, list);
        }
        return (stmt('SELECT * FROM nodes ORDER BY heartbeat_at DESC').all() as Row[]).map((r) => nodeFromRow(r, held));
      });
    },

    async close() {
      if (closed) return;
      flush();
      closed = true;
      cache.clear();
      try {
        db.close();
      } catch (err) {
        throw mapStoreFault(err, path);
      }
    },
  };
  return store;
}
