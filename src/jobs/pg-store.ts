/**
 * The PostgreSQL job store (issue 10): the shared coordination point of a fleet of daemons on one filespace,
 * behind the same JobStore interface as the embedded SQLite store (and held to the same contract suite).
 *
 * What the database itself enforces, so that no interleaving of nodes can break it:
 * - one open job per path (partial unique index; discover inserts with ON CONFLICT and re-reads on a race);
 * - a job is run by the node holding its lease: claims take rows with FOR UPDATE SKIP LOCKED, leases carry
 *   the node id and an expiry renewed by heartbeats, and writes through a handle whose node does not hold a
 *   live lease on an active job are refused (fencing: a node that froze past its lease cannot finish a job
 *   another node took over);
 * - lease times use the database's clock, so skewed machine clocks cannot expire a live node's leases.
 * Migrations run under an advisory lock, so nodes starting together migrate once.
 */
import { claimFilter, claimOrder } from './claim-order.ts';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { nodeFromRow } from './node-row.ts';
import { rediscoveredState } from './rediscovery.ts';
import type { PoolClient } from 'pg';
import type { Logger } from 'pino';
import { PostflowError } from '../errors.ts';
import {
  ERR_JOBS_ILLEGAL_TRANSITION,
  ERR_JOBS_PATH_TAKEN,
  ERR_JOBS_STORE_CLOSED,
  ERR_JOBS_STORE_TOO_NEW,
  ERR_JOBS_STORE_UNREACHABLE,
  ERR_JOBS_STORE_URL,
  ERR_JOBS_UNKNOWN_FIELD,
} from './errors.ts';
import { PATCHABLE, toJob, type Row } from './sqlite-store.ts';
import { IN_FLIGHT_STATES, JOB_STATES, OPEN_STATES, canTransition, isTerminal, type JobState } from './states.ts';
import type { BaselineFile, ClaimedJob, DiscoveredFile, FleetNode, Job, JobEvent, JobPatch, JobQuery, JobStore } from './store.ts';

export interface PgStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** The daemon this handle acts for (leases). */
  nodeId?: string;
  /** Clock for createdAt/updatedAt/event times (ms); leases use the database's clock. */
  now?: () => number;
  /** Connections in this node's pool. */
  poolSize?: number;
  logger?: Logger;
}

export interface PgJobStore extends JobStore {
  /** The URL with its password hidden: for logs and messages. */
  readonly url: string;
  /** The connection pool, shared with the fleet's other tables (rate limiter, login). */
  readonly pool: pg.Pool;
}

const inList = (states: readonly string[]) => states.map((s) => `'${s}'`).join(',');
const OPEN_IN = inList(OPEN_STATES);
const IN_FLIGHT_IN = inList(IN_FLIGHT_STATES);
/** States in which a lease protects a job from other nodes' writes. */
const LEASED_STATES: readonly JobState[] = ['stable', 'queued', 'exposing', 'importing'];
const LEASED_IN = inList(LEASED_STATES);
/** The database's clock in ms: the one clock every node agrees on for leases. */
const DB_NOW = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;
/** pg_advisory_xact_lock key for migrations ('pflw'). */
const MIGRATION_LOCK = 0x70666c77;

// Each entry migrates from version = index to index + 1. Append only; never edit a released step.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE jobs (
     seq bigserial NOT NULL,
     id text PRIMARY KEY,
     folder_index integer NOT NULL,
     root text NOT NULL,
     path text NOT NULL,
     rel_path text NOT NULL,
     name text NOT NULL,
     size bigint NOT NULL,
     mtime_ms double precision NOT NULL,
     ino double precision NOT NULL,
     destination text NOT NULL,
     state text NOT NULL CHECK (state IN (${inList(JOB_STATES)})),
     attempts integer NOT NULL DEFAULT 0,
     next_attempt_at bigint,
     last_error text,
     frameio_file_id text,
     view_url text,
     source_url text,
     import_requested_at bigint,
     sha256 text,
     frameio_folder_id text,
     frameio_folder_path text,
     version_stack_id text,
     landing text CHECK (landing IN ('new', 'version', 'skipped')),
     sent_at bigint,
     confirmed_at bigint,
     after_upload_path text,
     created_at bigint NOT NULL,
     updated_at bigint NOT NULL,
     started_at bigint,
     finished_at bigint,
     lease_node text,
     lease_expires_at bigint
   );
   -- "never two open jobs for one path", for every node at once
   CREATE UNIQUE INDEX jobs_open_path ON jobs(path) WHERE state IN (${OPEN_IN});
   CREATE INDEX jobs_state_due ON jobs(state, next_attempt_at);
   CREATE INDEX jobs_created ON jobs(created_at, seq);
   CREATE INDEX jobs_path ON jobs(path, created_at);
   CREATE INDEX jobs_claimable ON jobs(created_at, seq) WHERE state IN (${LEASED_IN});
   CREATE INDEX jobs_lease ON jobs(lease_node) WHERE lease_node IS NOT NULL;
   CREATE INDEX jobs_frameio_file ON jobs(frameio_file_id) WHERE frameio_file_id IS NOT NULL;
   CREATE TABLE job_events (
     id bigserial PRIMARY KEY,
     job_id text NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
     at bigint NOT NULL,
     from_state text,
     to_state text NOT NULL,
     detail text
   );
   CREATE INDEX job_events_job ON job_events(job_id, id);
   -- files already handled; rev lets every node follow the others' additions cheaply (isKnownSync cache)
   CREATE SEQUENCE files_rev;
   CREATE TABLE files (
     path text PRIMARY KEY,
     size bigint NOT NULL,
     mtime_ms double precision NOT NULL,
     job_id text,
     recorded_at bigint NOT NULL,
     rev bigint NOT NULL DEFAULT nextval('files_rev')
   );
   CREATE INDEX files_rev_idx ON files(rev);
   CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
   CREATE TABLE nodes (
     node_id text PRIMARY KEY,
     host text NOT NULL,
     pid integer NOT NULL,
     started_at bigint NOT NULL,
     heartbeat_at bigint NOT NULL,
     stopped_at bigint
   );`,
];

export const PG_SCHEMA_VERSION = MIGRATIONS.length;

/** The URL as it may be shown: the password replaced. */
export function redactStoreUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparsable store.url>';
  }
}

export function isPgUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** bigint columns (ms times, sizes) as numbers: every value postflow stores is far below 2^53. */
const TYPES = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20 ? (v: string) => Number(v) : (pg.types.getTypeParser as (o: number, f?: string) => unknown)(oid, format)) as never,
};

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'ENETUNREACH', 'EAI_AGAIN']);

/** Connection-level faults become PF_ERR_JOBS_STORE_UNREACHABLE; anything else is returned unchanged. */
export function mapPgFault(err: unknown, url: string): unknown {
  if (err instanceof PostflowError) return err;
  const e = err as { code?: string; message?: string };
  const code = e?.code ?? '';
  // 08: connection exception; 57P0x: server shutting down; 28: bad login; 3D000: no such database.
  if (UNREACHABLE_CODES.has(code) || /^(08|57P0|28)/.test(code) || code === '3D000' || /Connection terminated|timeout exceeded when trying to connect/i.test(e?.message ?? '')) {
    const mapped = ERR_JOBS_STORE_UNREACHABLE(url, e?.message ?? code);
    Object.defineProperty(mapped, 'cause', { value: err, enumerable: false });
    return mapped;
  }
  return err;
}

/** Positional parameters built alongside the SQL text. */
class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

class Retry extends Error {}

export async function openPgStore(opts: PgStoreOptions): Promise<PgJobStore> {
  if (!isPgUrl(opts.url)) throw ERR_JOBS_STORE_URL(redactStoreUrl(opts.url));
  const url = redactStoreUrl(opts.url);
  const now = opts.now ?? Date.now;
  const nodeId = opts.nodeId ?? 'local';
  const pool = new pg.Pool({ connectionString: opts.url, max: opts.poolSize ?? 8, types: TYPES, connectionTimeoutMillis: 10_000, application_name: `postflow ${nodeId}`.slice(0, 63) });
  // An idle connection the server dropped must not crash the daemon; the next query reconnects.
  pool.on('error', (err) => opts.logger?.warn({ err: err.message, store: url }, 'PostgreSQL connection lost; reconnecting on next use'));
  try {
    await migrate(pool, url);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw mapPgFault(err, url);
  }
  const store = createStore(pool, url, now, nodeId, opts.logger);
  await store.refreshKnown();
  return store;
}

async function migrate(pool: pg.Pool, url: string): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    // Nodes starting together: the first migrates, the others wait here and then find nothing to do.
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query('CREATE TABLE IF NOT EXISTS postflow_schema (version integer NOT NULL)');
    const r = await c.query<{ version: number }>('SELECT version FROM postflow_schema');
    let version = r.rows[0]?.version;
    if (version === undefined) {
      await c.query('INSERT INTO postflow_schema (version) VALUES (0)');
      version = 0;
    }
    if (version > MIGRATIONS.length) throw ERR_JOBS_STORE_TOO_NEW(url, version, MIGRATIONS.length);
    for (let v = version; v < MIGRATIONS.length; v++) await c.query(MIGRATIONS[v]!);
    if (version !== MIGRATIONS.length) await c.query('UPDATE postflow_schema SET version = $1', [MIGRATIONS.length]);
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

function createStore(pool: pg.Pool, url: string, now: () => number, nodeId: string, logger?: Logger): PgJobStore & { refreshKnown(): Promise<void> } {
  let closed = false;

  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (closed) throw ERR_JOBS_STORE_CLOSED(url);
    try {
      return await fn();
    } catch (err) {
      throw mapPgFault(err, url);
    }
  };
  const q = (sql: string, values?: unknown[]) => guard(() => pool.query(sql, values));
  const tx = <T>(fn: (c: PoolClient) => Promise<T>): Promise<T> =>
    guard(async () => {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const result = await fn(c);
        await c.query('COMMIT');
        return result;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        c.release();
      }
    });

  const job = (r: unknown): Job => toJob(r as Row);
  const addEvent = (c: PoolClient, id: string, at: number, from: JobState | null, to: JobState, detail: string | null) =>
    c.query('INSERT INTO job_events (job_id, at, from_state, to_state, detail) VALUES ($1, $2, $3, $4, $5)', [id, at, from, to, detail]);
  const isPathTaken = (err: unknown) => (err as { code?: string; constraint?: string })?.code === '23505' && (err as { constraint?: string }).constraint === 'jobs_open_path';

  const patchSets = (patch: JobPatch | undefined, p: Params): string[] => {
    const sets: string[] = [];
    if (!patch) return sets;
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      const col = (PATCHABLE as Record<string, string>)[key];
      if (!col) throw ERR_JOBS_UNKNOWN_FIELD(key);
      sets.push(`${col} = ${p.add(value)}`);
    }
    return sets;
  };
  const patchCols = (patch: JobPatch | undefined): string[] =>
    Object.entries(patch ?? {})
      .filter(([, v]) => v !== undefined)
      .map(([k]) => (PATCHABLE as Record<string, string>)[k] ?? k);

  /** Another node holds the job under a live lease (row read with its db_now). */
  const fenced = (row: Record<string, unknown>): boolean =>
    LEASED_STATES.includes(row.state as JobState) && row.lease_node != null && row.lease_node !== nodeId && Number(row.lease_expires_at) >= Number(row.db_now);

  // isKnownSync answers from memory: loaded at open, followed by rev in the background (at most once a second).
  const known = new Map<string, string>();
  const knownKey = (size: number, mtimeMs: number) => `${size}:${mtimeMs}`;
  let knownRev = 0;
  let lastRefresh = 0;
  let refreshing: Promise<void> | undefined;
  async function refreshKnown(): Promise<void> {
    lastRefresh = Date.now();
    const r = await q('SELECT path, size, mtime_ms, rev FROM files WHERE rev > $1 ORDER BY rev', [knownRev]);
    for (const row of r.rows as { path: string; size: number; mtime_ms: number; rev: number }[]) {
      known.set(row.path, knownKey(row.size, row.mtime_ms));
      knownRev = Math.max(knownRev, row.rev);
    }
  }

  const store: PgJobStore & { refreshKnown(): Promise<void> } = {
    url,
    pool,
    nodeId,
    refreshKnown,

    async discover(file: DiscoveredFile): Promise<Job> {
      // A race with another node's insert for the same path is lost at the unique index: read again.
      for (let round = 0; ; round++) {
        try {
          return await tx(async (c) => {
            const at = now();
            const open = (await c.query(`SELECT * FROM jobs WHERE path = $1 AND state IN (${OPEN_IN}) FOR UPDATE`, [file.path])).rows[0] as Row | undefined;
            if (!open) {
              const held = (await c.query(`SELECT * FROM jobs WHERE path = $1 AND state IN (${IN_FLIGHT_IN}) ORDER BY seq DESC LIMIT 1`, [file.path])).rows[0] as Row | undefined;
              if (held && held.size === file.size && held.mtime_ms === file.mtimeMs && held.ino === file.ino) return job(held);
              // A report older than the version in flight is a late look at that version, not a new one.
              if (held && file.mtimeMs < (held.mtime_ms as number)) return job(held);
              // Another node may have imported these very bytes since this node's known-files cache was read.
              const done = (
                await c.query(`SELECT j.* FROM files f JOIN jobs j ON j.id = f.job_id WHERE f.path = $1 AND f.size = $2 AND f.mtime_ms = $3 AND j.state = 'done'`, [
                  file.path,
                  file.size,
                  file.mtimeMs,
                ])
              ).rows[0] as Row | undefined;
              if (done) return job(done);
              const id = randomUUID();
              const ins = await c.query(
                `INSERT INTO jobs (id, folder_index, root, path, rel_path, name, size, mtime_ms, ino, destination, state, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'discovered', $11, $11)
                 ON CONFLICT (path) WHERE state IN (${OPEN_IN}) DO NOTHING RETURNING *`,
                [id, file.folderIndex, file.root, file.path, file.relPath, file.name, file.size, file.mtimeMs, file.ino, file.destination, at],
              );
              if (ins.rowCount !== 1) throw new Retry();
              await addEvent(c, id, at, null, 'discovered', null);
              return job(ins.rows[0]);
            }
            const cur = job(open);
            const state = rediscoveredState(cur, file);
            if (state === undefined) return cur;
            const r = await c.query(
              `UPDATE jobs SET folder_index = $1, root = $2, rel_path = $3, name = $4, size = $5, mtime_ms = $6, ino = $7, destination = $8,
                 state = $9, updated_at = $10 WHERE id = $11 RETURNING *`,
              [file.folderIndex, file.root, file.relPath, file.name, file.size, file.mtimeMs, file.ino, file.destination, state, at, cur.id],
            );
            if (state !== cur.state) await addEvent(c, cur.id, at, cur.state, state, 'file changed');
            return job(r.rows[0]);
          });
        } catch (err) {
          if (!(err instanceof Retry) || round >= 5) throw err;
        }
      }
    },

    async transition(id, from, to, patch, detail) {
      const froms: readonly JobState[] = typeof from === 'string' ? [from] : from;
      for (const f of froms) if (!canTransition(f, to)) throw ERR_JOBS_ILLEGAL_TRANSITION(f, to);
      const cols = patchCols(patch);
      for (const key of Object.keys(patch ?? {})) if (!(key in PATCHABLE)) throw ERR_JOBS_UNKNOWN_FIELD(key);
      try {
        return await tx(async (c) => {
          const row = (await c.query(`SELECT *, ${DB_NOW} AS db_now FROM jobs WHERE id = $1 FOR UPDATE`, [id])).rows[0] as Record<string, unknown> | undefined;
          if (!row || !froms.includes(row.state as JobState)) return false;
          if (fenced(row)) return false;
          const was = row.state as JobState;
          const at = now();
          const jobPath = (patch?.path ?? row.path) as string;
          if (OPEN_STATES.includes(to) && !OPEN_STATES.includes(was)) {
            const other = (await c.query(`SELECT id FROM jobs WHERE path = $1 AND state IN (${OPEN_IN}) AND id <> $2`, [jobPath, id])).rows[0] as { id: string } | undefined;
            if (other) throw ERR_JOBS_PATH_TAKEN(id, jobPath, other.id);
          }
          const p = new Params();
          const sets = [`state = ${p.add(to)}`, `updated_at = ${p.add(at)}`, ...patchSets(patch, p)];
          if (to === 'exposing' && !cols.includes('attempts')) sets.push('attempts = attempts + 1');
          if (was === 'failed' && to === 'queued' && !cols.includes('attempts')) sets.push('attempts = 0');
          if (to === 'exposing' && !cols.includes('started_at')) sets.push(`started_at = COALESCE(started_at, ${p.add(at)})`);
          if (!cols.includes('finished_at')) {
            if (isTerminal(to)) sets.push(`finished_at = ${p.add(at)}`);
            else if (isTerminal(was)) sets.push('finished_at = NULL');
          }
          if (isTerminal(to)) sets.push('lease_node = NULL', 'lease_expires_at = NULL');
          const res = await c.query(`UPDATE jobs SET ${sets.join(', ')} WHERE id = ${p.add(id)} AND state = ${p.add(was)} RETURNING *`, p.values);
          if (res.rowCount !== 1) return false;
          await addEvent(c, id, at, was, to, detail ?? patch?.lastError ?? null);
          if (to === 'done') {
            const done = job(res.rows[0]);
            await c.query(
              `INSERT INTO files (path, size, mtime_ms, job_id, recorded_at) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, job_id = excluded.job_id,
                 recorded_at = excluded.recorded_at, rev = nextval('files_rev')`,
              [done.path, done.size, done.mtimeMs, id, at],
            );
            known.set(done.path, knownKey(done.size, done.mtimeMs));
          }
          return true;
        });
      } catch (err) {
        // Another node reopened a job for the path between the check and the write.
        if (isPathTaken(err)) throw ERR_JOBS_PATH_TAKEN(id, (patch?.path as string | undefined) ?? '(its path)', 'another open job');
        throw err;
      }
    },

    async update(id, patch) {
      const p = new Params();
      const sets = [`updated_at = ${p.add(now())}`, ...patchSets(patch, p)];
      const r = await q(
        `UPDATE jobs SET ${sets.join(', ')} WHERE id = ${p.add(id)}
           AND NOT (state IN (${LEASED_IN}) AND lease_node IS NOT NULL AND lease_node <> ${p.add(nodeId)} AND lease_expires_at >= ${DB_NOW})`,
        p.values,
      );
      return r.rowCount === 1;
    },

    async get(id) {
      const r = await q('SELECT * FROM jobs WHERE id = $1', [id]);
      return r.rows[0] ? job(r.rows[0]) : undefined;
    },

    async list(query: JobQuery = {}) {
      const where: string[] = [];
      const p = new Params();
      if (query.states) {
        if (query.states.length === 0) return guard(async () => []);
        where.push(`state = ANY(${p.add(query.states)}::text[])`);
      }
      if (query.frameioFileIds) {
        if (query.frameioFileIds.length === 0) return guard(async () => []);
        where.push(`frameio_file_id = ANY(${p.add(query.frameioFileIds)}::text[])`);
      }
      if (query.path !== undefined) where.push(`path = ${p.add(query.path)}`);
      if (query.dueBy !== undefined) where.push(`(next_attempt_at IS NULL OR next_attempt_at <= ${p.add(query.dueBy)})`);
      const dir = query.order === 'desc' ? 'DESC' : 'ASC';
      let sql = `SELECT * FROM jobs${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at ${dir}, seq ${dir}`;
      if (query.limit !== undefined) sql += ` LIMIT ${p.add(Math.max(0, Math.floor(query.limit)))}`;
      return (await q(sql, p.values)).rows.map(job);
    },

    async counts() {
      const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
      for (const r of (await q('SELECT state, COUNT(*)::integer AS n FROM jobs GROUP BY state')).rows as { state: JobState; n: number }[]) out[r.state] = r.n;
      return out;
    },

    async isKnown(path, size, mtimeMs) {
      const r = await q('SELECT 1 FROM files WHERE path = $1 AND size = $2 AND mtime_ms = $3', [path, size, mtimeMs]);
      return r.rowCount === 1;
    },

    isKnownSync(path, size, mtimeMs) {
      if (closed) throw ERR_JOBS_STORE_CLOSED(url);
      if (!refreshing && Date.now() - lastRefresh > 1000) {
        refreshing = refreshKnown()
          .catch((err: unknown) => logger?.warn({ err: (err as Error).message, store: url }, 'could not refresh the known-files cache'))
          .finally(() => (refreshing = undefined));
      }
      return known.get(path) === knownKey(size, mtimeMs);
    },

    async recordBaseline(files: readonly BaselineFile[]) {
      const at = now();
      // One statement per 1,000 files: a first start on 100k files must not take 100k round trips.
      for (let i = 0; i < files.length || i === 0; i += 1000) {
        const chunk = files.slice(i, i + 1000);
        if (chunk.length === 0) return guard(async () => undefined);
        await q(
          `INSERT INTO files (path, size, mtime_ms, job_id, recorded_at)
           SELECT p, s, m, NULL, $4 FROM unnest($1::text[], $2::bigint[], $3::double precision[]) AS t(p, s, m)
           ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms, job_id = NULL,
             recorded_at = excluded.recorded_at, rev = nextval('files_rev')`,
          [chunk.map((f) => f.path), chunk.map((f) => f.size), chunk.map((f) => f.mtimeMs), at],
        );
        for (const f of chunk) known.set(f.path, knownKey(f.size, f.mtimeMs));
      }
    },

    async events(id): Promise<JobEvent[]> {
      const r = await q('SELECT at, from_state, to_state, detail FROM job_events WHERE job_id = $1 ORDER BY id', [id]);
      return (r.rows as Record<string, unknown>[]).map((e) => ({
        at: e.at as number,
        from: e.from_state as JobState | null,
        to: e.to_state as JobState,
        detail: e.detail as string | null,
      }));
    },

    async getMeta(key) {
      return ((await q('SELECT value FROM meta WHERE key = $1', [key])).rows[0] as { value: string } | undefined)?.value;
    },

    async setMeta(key, value) {
      await q('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
    },

    async claim({ limit, leaseMs, ...rules }): Promise<ClaimedJob[]> {
      const n = Math.max(0, Math.floor(limit));
      if (n === 0) return guard(async () => []);
      return tx(async (c) => {
        const at = now();
        // SKIP LOCKED: rows another node is claiming or writing right now are simply not offered here.
        const rows = (
          await c.query(
            `SELECT * FROM jobs WHERE state IN (${LEASED_IN}) AND (lease_node IS NULL OR lease_expires_at < ${DB_NOW}) AND (
               (state = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= $1))
               OR state IN (${IN_FLIGHT_IN})
               OR (state = 'stable' AND updated_at <= $2))${claimFilter(rules)}
             ORDER BY ${claimOrder(rules)}created_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED`,
            [at, at - leaseMs, n],
          )
        ).rows as Row[];
        if (rows.length === 0) return [];
        await c.query(`UPDATE jobs SET lease_node = $1, lease_expires_at = ${DB_NOW} + $2 WHERE id = ANY($3::text[])`, [nodeId, Math.round(leaseMs), rows.map((r) => r.id)]);
        return rows.map((r) => ({ job: job(r), previousNode: (r.lease_node as string | null) ?? null }));
      });
    },

    async heartbeat(held, leaseMs, info) {
      return tx(async (c) => {
        await c.query(`UPDATE jobs SET lease_expires_at = ${DB_NOW} + $1 WHERE lease_node = $2 AND id = ANY($3::text[])`, [Math.round(leaseMs), nodeId, held]);
        await c.query('UPDATE jobs SET lease_node = NULL, lease_expires_at = NULL WHERE lease_node = $1 AND NOT (id = ANY($2::text[]))', [nodeId, held]);
        await c.query(
          `INSERT INTO nodes (node_id, host, pid, started_at, heartbeat_at, stopped_at) VALUES ($1, $2, $3, $4, ${DB_NOW}, NULL)
           ON CONFLICT (node_id) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
             heartbeat_at = excluded.heartbeat_at, stopped_at = NULL`,
          [nodeId, info.host, info.pid, info.startedAt],
        );
        const lost = await c.query('SELECT id FROM jobs WHERE id = ANY($1::text[]) AND lease_node IS NOT NULL AND lease_node <> $2', [held, nodeId]);
        return (lost.rows as { id: string }[]).map((r) => r.id);
      });
    },

    async release() {
      await tx(async (c) => {
        await c.query('UPDATE jobs SET lease_node = NULL, lease_expires_at = NULL WHERE lease_node = $1', [nodeId]);
        await c.query(`UPDATE nodes SET stopped_at = ${DB_NOW} WHERE node_id = $1`, [nodeId]);
      });
    },

    async nodes(): Promise<FleetNode[]> {
      const held = new Map<string, string[]>();
      for (const r of (await q(`SELECT id, lease_node FROM jobs WHERE lease_node IS NOT NULL AND state IN (${LEASED_IN}) ORDER BY created_at, seq`)).rows as { id: string; lease_node: string }[]) {
        const list = held.get(r.lease_node) ?? [];
        list.push(r.id);
        held.set(r.lease_node, list);
      }
      return ((await q('SELECT * FROM nodes ORDER BY heartbeat_at DESC')).rows as Record<string, unknown>[]).map((r) => nodeFromRow(r, held));
    },

    async close() {
      if (closed) return;
      closed = true;
      await refreshing;
      await pool.end();
    },
  };
  return store;
}
