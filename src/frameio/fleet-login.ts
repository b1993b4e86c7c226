/**
 * One Frame.io login for a fleet (issue 10 item 6). IMS rotates the refresh token at every use and the old
 * one dies at once, so daemons started from copies of one token file lock each other out. Daemons that
 * share a PostgreSQL store therefore share the login through it: one row (`frameio_login`) holds the current
 * refresh token and the current access token, sealed with `store.secretKey` (seal.ts), so the database
 * alone never reveals a token.
 *
 * A refresh is one transaction: a transaction-level advisory lock (so seeding an empty table is serialised
 * too) and the row `FOR UPDATE`; if the stored access token has plenty of life left (another node just
 * refreshed), it is used with no IMS call; otherwise the stored refresh token goes to IMS and the rotated
 * pair is written before the commit. Most calls never lock: a plain read finds a usable token first.
 * Times (obtained, expires) are on the database's clock, so skewed machine clocks do not matter.
 *
 * This node's refresh-token file seeds an empty row, and later stands for a new login: it replaces the row
 * only when it is newer than the file the row was last seeded from AND holds another token (`fileWins`).
 * A copy of the seeding file (same token) never wins, however recent its mtime, and a stale copy is ignored.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { PostflowError, isPostflowError } from '../errors.ts';
import { ERR_AUTH_REVOKED, ERR_LOGIN_STORE_UNAVAILABLE, ERR_LOGIN_UNSEALABLE, ERR_NOT_LOGGED_IN } from './errors.ts';
import type { AccessGrant, RefreshRequest, TokenChain } from './ims.ts';
import type { ImsTokenResponse } from './types.ts';
import { open, parseSecretKey, seal } from './seal.ts';
import { readTokenFile, writeTokenFile, type TokenRecord } from './token-file.ts';

export const LOGIN_TABLE = 'frameio_login';
/** The associated data every sealed login is bound to: bytes copied to another purpose do not open. */
export const LOGIN_AAD = `postflow:${LOGIN_TABLE}:v1`;
/** pg_advisory_xact_lock keys ('pfls': schema, 'pflg': refresh). */
const SCHEMA_LOCK = 0x70666c73;
const REFRESH_LOCK = 0x70666c67;

const SCHEMA = `CREATE TABLE IF NOT EXISTS ${LOGIN_TABLE} (
  id integer PRIMARY KEY CHECK (id = 1),
  sealed bytea NOT NULL,
  obtained_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  seed_ms double precision NOT NULL,
  updated_at timestamptz NOT NULL,
  updated_by text NOT NULL
)`;

const READ = `SELECT sealed, seed_ms,
  (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::double precision AS remaining_ms,
  (extract(epoch FROM expires_at - obtained_at) * 1000)::double precision AS lifetime_ms
FROM ${LOGIN_TABLE} WHERE id = 1`;

const WRITE = `INSERT INTO ${LOGIN_TABLE} (id, sealed, obtained_at, expires_at, seed_ms, updated_at, updated_by)
VALUES (1, $1, clock_timestamp(), clock_timestamp() + $2::double precision * interval '1 millisecond', $3, clock_timestamp(), $4)
ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed, obtained_at = excluded.obtained_at, expires_at = excluded.expires_at,
  seed_ms = excluded.seed_ms, updated_at = excluded.updated_at, updated_by = excluded.updated_by`;

/** What the sealed bytes hold. */
export interface SealedLogin {
  refresh_token: string;
  access_token: string;
  /** sha256 (hex) of the refresh token the row was last seeded with from a file. */
  seed_hash: string;
}

export interface LoginClient {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  release(destroy?: boolean | Error): void;
}

/** The part of a pg.Pool the login uses (the job store's pool in the daemon). */
export interface LoginPool {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  connect(): Promise<LoginClient>;
}

export interface FleetLoginOptions {
  pool: LoginPool;
  /** `store.secretKey`: 64 hex digits, the same on every node. */
  secretKey: string;
  /** This node's refresh-token file (`frameio.refreshTokenFile`): seeds the row, brings new logins. */
  refreshTokenFile: string;
  /** Written next to each row change, to tell who refreshed last. Default `host:pid`. */
  nodeId?: string;
  logger: Logger;
  /** Told every token read from the row, so the log scrubber knows them too. */
  onSecret?: (value: string) => void;
  /** A statement slower than this counts as the database being unreachable. Default 10 s. */
  queryTimeoutMs?: number;
  /** Longest wait for another node's refresh (its IMS call is bounded by 20 s). Default 30 s. */
  lockTimeoutMs?: number;
}

/** The token file as the fleet rule needs it: its token's hash and when it was written. */
export interface FileLogin {
  record: TokenRecord;
  hash: string;
  /** `saved_at` when the file has it (a copy keeps it), else the file's mtime. */
  timeMs: number;
}

interface Row {
  login: SealedLogin;
  seedMs: number;
  remainingMs: number;
  lifetimeMs: number;
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Pure: does this node's file replace the fleet's login? Only a file written after the one the row was
 * seeded from, holding a token the row neither was seeded with nor holds now (a new `auth login`).
 */
export function fileWins(file: { hash: string; timeMs: number } | undefined, row: { seedHash: string; seedMs: number; currentHash: string }): boolean {
  return file !== undefined && file.timeMs > row.seedMs && file.hash !== row.seedHash && file.hash !== row.currentHash;
}

/** Pure: the file's time for the rule: `saved_at` if it parses (copies keep it), else the mtime. */
export function fileTime(record: TokenRecord, mtimeMs: number): number {
  const saved = typeof record.saved_at === 'string' ? Date.parse(record.saved_at) : Number.NaN;
  return Number.isFinite(saved) ? saved : mtimeMs;
}

export function sealLogin(key: Buffer, login: SealedLogin): Buffer {
  return seal(key, JSON.stringify(login), LOGIN_AAD);
}

export function openLogin(key: Buffer, sealed: Buffer): SealedLogin {
  const text = open(key, sealed, LOGIN_AAD).toString('utf8');
  let parsed: Partial<SealedLogin>;
  try {
    parsed = JSON.parse(text) as Partial<SealedLogin>;
  } catch {
    throw ERR_LOGIN_UNSEALABLE('opened, but not the JSON postflow writes');
  }
  if (typeof parsed.refresh_token !== 'string' || typeof parsed.access_token !== 'string' || typeof parsed.seed_hash !== 'string') {
    throw ERR_LOGIN_UNSEALABLE('opened, but refresh_token, access_token or seed_hash is missing');
  }
  return { refresh_token: parsed.refresh_token, access_token: parsed.access_token, seed_hash: parsed.seed_hash };
}

class StatementTimeout extends Error {}

class FleetLoginChain implements TokenChain {
  readonly where = `the fleet's login in PostgreSQL (table ${LOGIN_TABLE})`;
  readonly #opts: FleetLoginOptions;
  readonly #key: Buffer;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  #schema: Promise<void> | undefined;
  /** Hashes of file tokens IMS refused: a stale file is tried once, not at every refresh. */
  readonly #deadFileTokens = new Set<string>();

  constructor(opts: FleetLoginOptions) {
    this.#opts = opts;
    this.#key = parseSecretKey(opts.secretKey);
    this.#log = opts.logger;
    this.#timeoutMs = opts.queryTimeoutMs ?? 10_000;
  }

  async refresh(req: RefreshRequest): Promise<AccessGrant> {
    // Most calls: another node has just stored a good token; a plain read, no lock.
    const [row, file] = await Promise.all([this.#guard(() => this.#read((text) => this.#timed(this.#opts.pool.query(text)))), this.#readFile(false)]);
    if (row !== undefined && !this.#fileWins(file, row) && this.#usable(row, req)) return this.#grant(row);
    return this.#guard(() => this.#refreshLocked(req));
  }

  async newLoginWritten(refused: string | undefined): Promise<boolean> {
    try {
      const row = await this.#read((text) => this.#timed(this.#opts.pool.query(text)));
      if (row !== undefined && row.login.refresh_token !== refused) return true;
      const file = await this.#readFile(false);
      if (file === undefined || file.record.refresh_token === refused) return false;
      return row === undefined || this.#fileWins(file, row);
    } catch {
      return false;
    }
  }

  #usable(row: Row, req: RefreshRequest): boolean {
    return row.login.access_token !== req.rejected && req.usable(row.remainingMs, row.lifetimeMs);
  }

  #fileWins(file: FileLogin | undefined, row: Row): boolean {
    if (file === undefined || this.#deadFileTokens.has(file.hash)) return false;
    return fileWins(file, { seedHash: row.login.seed_hash, seedMs: row.seedMs, currentHash: tokenHash(row.login.refresh_token) });
  }

  #grant(row: Row): AccessGrant {
    this.#opts.onSecret?.(row.login.refresh_token);
    this.#opts.onSecret?.(row.login.access_token);
    return { token: row.login.access_token, remainingMs: row.remainingMs, lifetimeMs: row.lifetimeMs };
  }

  async #refreshLocked(req: RefreshRequest): Promise<AccessGrant> {
    const client = await this.#opts.pool.connect();
    let broken = false;
    const q = async (text: string, values?: unknown[]) => {
      try {
        return await this.#timed(client.query(text, values));
      } catch (err) {
        if (err instanceof StatementTimeout) broken = true;
        throw err;
      }
    };
    let rotated: string | undefined;
    try {
      await q('BEGIN');
      await q(`SET LOCAL lock_timeout = ${Math.round(this.#opts.lockTimeoutMs ?? 30_000)}`);
      await q(`SELECT pg_advisory_xact_lock(${REFRESH_LOCK})`);
      const row = await this.#read((text) => q(text), ' FOR UPDATE');
      // With no row the file is the only login: then its own error (permissions, garbled) is the one to show.
      const file = await this.#readFile(row === undefined);
      let answer: ImsTokenResponse | undefined;
      let presented = '';
      let seed = { hash: '', ms: 0 };
      let fromFile: string | undefined;
      if (file !== undefined && (row === undefined || this.#fileWins(file, row))) {
        try {
          // Over an existing row the file is only a candidate: if IMS refuses it (a stale file after all),
          // the fleet keeps its login instead of losing it.
          answer = await req.exchange(file.record.refresh_token, { tentative: row !== undefined });
          presented = file.record.refresh_token;
          seed = { hash: file.hash, ms: file.timeMs };
          fromFile = row === undefined ? 'seeded from' : 'replaced by the newer login in';
        } catch (err) {
          if (row === undefined || !isPostflowError(err, ERR_AUTH_REVOKED)) throw err;
          this.#deadFileTokens.add(file.hash);
          this.#log.warn({ event: 'fleet-login-file-refused', file: this.#opts.refreshTokenFile }, `IMS refused the refresh token in ${this.#opts.refreshTokenFile} (newer than the fleet's login); keeping the fleet's login`);
        }
      }
      if (answer === undefined) {
        if (row === undefined) throw ERR_NOT_LOGGED_IN(this.#opts.refreshTokenFile);
        if (this.#usable(row, req)) {
          await q('COMMIT');
          return this.#grant(row);
        }
        presented = row.login.refresh_token;
        seed = { hash: row.login.seed_hash, ms: row.seedMs };
        answer = await req.exchange(presented);
      }
      rotated = answer.refresh_token ?? presented;
      const lifetimeMs = answer.expires_in * 1000;
      const sealed = sealLogin(this.#key, { refresh_token: rotated, access_token: answer.access_token, seed_hash: seed.hash });
      await q(WRITE, [sealed, lifetimeMs, seed.ms, this.#opts.nodeId ?? `${hostname()}:${process.pid}`]);
      await q('COMMIT');
      rotated = undefined;
      if (fromFile !== undefined) {
        const event = fromFile === 'seeded from' ? 'fleet-login-seeded' : 'fleet-login-replaced';
        this.#log.info({ event, file: this.#opts.refreshTokenFile }, `the fleet's Frame.io login ${fromFile} ${this.#opts.refreshTokenFile}`);
      }
      return { token: answer.access_token, remainingMs: lifetimeMs, lifetimeMs };
    } catch (err) {
      if (!broken) await client.query('ROLLBACK').catch(() => undefined);
      if (rotated !== undefined) await this.#keepRotated(rotated, err);
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * IMS rotated the token but the row could not take it: the new token exists only here. It goes into this
   * node's file, newer than any seed, so the next refresh puts it in the row (`fileWins`) — never lost.
   */
  async #keepRotated(refresh: string, err: unknown): Promise<void> {
    const file = this.#opts.refreshTokenFile;
    try {
      const old = await readTokenFile(file).catch(() => undefined);
      await writeTokenFile(file, { ...old, refresh_token: refresh, saved_at: new Date().toISOString() });
      this.#log.warn({ event: 'fleet-login-kept-locally', err: describe(err) }, `the rotated Frame.io login could not be stored in PostgreSQL; kept in ${file} until it can`);
    } catch (fileErr) {
      this.#log.error({ event: 'fleet-login-rotation-lost', err: describe(fileErr) }, `the rotated Frame.io login could be stored neither in PostgreSQL nor in ${file}; run \`postflow auth login\` if the fleet loses its login`);
    }
  }

  async #read(query: (text: string) => Promise<{ rows: unknown[] }>, suffix = ''): Promise<Row | undefined> {
    this.#schema ??= this.#createSchema();
    await this.#schema;
    const res = await query(READ + suffix);
    const r = res.rows[0] as { sealed: Buffer; seed_ms: number; remaining_ms: number; lifetime_ms: number } | undefined;
    if (r === undefined) return undefined;
    return { login: openLogin(this.#key, r.sealed), seedMs: r.seed_ms, remainingMs: r.remaining_ms, lifetimeMs: r.lifetime_ms };
  }

  /** This node's token file, or undefined (none, or unreadable when the row makes it optional). */
  async #readFile(required: boolean): Promise<FileLogin | undefined> {
    const path = this.#opts.refreshTokenFile;
    try {
      const record = await readTokenFile(path);
      if (record === undefined) return undefined;
      const st = await stat(path);
      return { record, hash: tokenHash(record.refresh_token), timeMs: fileTime(record, st.mtimeMs) };
    } catch (err) {
      if (required) throw err;
      return undefined;
    }
  }

  async #createSchema(): Promise<void> {
    try {
      // Nodes starting together take turns on the lock; the later ones find the table there.
      await this.#timed(this.#opts.pool.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK}); ${SCHEMA}`));
    } catch (err) {
      this.#schema = undefined;
      throw err;
    }
  }

  #timed<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    p.catch(() => undefined); // lost the race with the timer: its outcome no longer matters
    return Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StatementTimeout(`no answer within ${this.#timeoutMs} ms`)), this.#timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** Database faults become a retryable error; the login's own errors pass unchanged. */
  async #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      // Ours (IMS, the token file's checks) and file-system errors (they carry a path) say what they are.
      if (err instanceof PostflowError || (typeof err === 'object' && err !== null && 'path' in err)) throw err;
      throw ERR_LOGIN_STORE_UNAVAILABLE(describe(err));
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** The fleet's shared login as a TokenChain for createTokenProvider({ chain }). */
export function createFleetLoginChain(opts: FleetLoginOptions): TokenChain {
  return new FleetLoginChain(opts);
}
