import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { isPostflowError } from '../../src/errors.ts';
import {
  ERR_JOBS_STORE_CORRUPT,
  ERR_JOBS_STORE_LOCKED,
  ERR_JOBS_STORE_READONLY,
  ERR_JOBS_STORE_TOO_NEW,
} from '../../src/jobs/errors.ts';
import { SQLITE_SCHEMA_VERSION, openSqliteStore } from '../../src/jobs/sqlite-store.ts';
import { fileFor, runStoreContract } from './store-contract.ts';

const CHILD = fileURLToPath(new URL('./fixtures/store-child.ts', import.meta.url));

function tempDir(t?: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'postflow-jobs-'));
  const cleanup = () => {
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  };
  if (t) t.after(cleanup);
  else after(cleanup);
  return dir;
}

runStoreContract('sqlite', async (now) => {
  const dir = mkdtempSync(join(tmpdir(), 'postflow-contract-'));
  const path = join(dir, 'jobs.db');
  return {
    open: () => openSqliteStore({ path, now }),
    reopen: () => openSqliteStore({ path, now }),
    destroy: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

interface ChildAnswer {
  ok?: boolean;
  code?: string;
  message?: string;
  written?: number;
  firstIntact?: boolean;
  lastIntact?: boolean;
}

/** Runs the fixture to completion and returns its one JSON line. */
function runChild(args: string[], opts: { uid?: number; gid?: number; wrap?: string[] } = {}): ChildAnswer {
  const cmd = opts.wrap ? opts.wrap[0]! : process.execPath;
  const argv = opts.wrap ? [...opts.wrap.slice(1), process.execPath, CHILD, ...args] : [CHILD, ...args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', uid: opts.uid, gid: opts.gid, timeout: 20_000 });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as ChildAnswer;
  } catch {
    throw new Error(`child gave no answer (status ${r.status}): ${r.stderr.slice(0, 500)}`);
  }
}

describe('SQLite store: files on disk', () => {
  test('creates its directory, WAL mode, schema version', async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'state', 'nested', 'jobs.db');
    const store = await openSqliteStore({ path });
    assert.equal(store.path, path);
    await store.setMeta('k', 'v');
    await store.close();
    const db = new DatabaseSync(path);
    t.after(() => db.close());
    assert.deepEqual({ ...db.prepare('PRAGMA journal_mode').get() }, { journal_mode: 'wal' });
    assert.deepEqual({ ...db.prepare('PRAGMA user_version').get() }, { user_version: SQLITE_SCHEMA_VERSION });
  });

  test('a file that is not a database → CORRUPT naming the path, and the file is left untouched', async (t) => {
    const path = join(tempDir(t), 'jobs.db');
    const garbage = Buffer.from('this is an .mov export, not a database '.repeat(300));
    writeFileSync(path, garbage);
    await assert.rejects(openSqliteStore({ path }), (e) => {
      assert.ok(isPostflowError(e, ERR_JOBS_STORE_CORRUPT), String(e));
      assert.ok(e.message.includes(path), e.message);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    assert.deepEqual(readFileSync(path), garbage, 'never overwritten: the operator may want it back');
  });

  test('damage inside a valid database → CORRUPT at open, not mid-run', async (t) => {
    const path = join(tempDir(t), 'jobs.db');
    const store = await openSqliteStore({ path });
    for (let i = 0; i < 300; i++) await store.discover(fileFor(`/watch/f${i}.mov`));
    await store.close();
    // Overwrite pages past the header (page size 4096) with noise: the header still says "SQLite".
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(4096 * 3, 0xa5), 0, 4096 * 3, 4096);
    closeSync(fd);
    await assert.rejects(openSqliteStore({ path }), (e) => isPostflowError(e, ERR_JOBS_STORE_CORRUPT) && e.message.includes(path));
  });

  test('a store written by a newer postflow is refused, not downgraded', async (t) => {
    const path = join(tempDir(t), 'jobs.db');
    await (await openSqliteStore({ path })).close();
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
    db.close();
    await assert.rejects(openSqliteStore({ path }), (e) => isPostflowError(e, ERR_JOBS_STORE_TOO_NEW) && e.message.includes(path));
  });

  test('another process holding the store → LOCKED; released when that process is killed', async (t) => {
    const path = join(tempDir(t), 'jobs.db');
    const child = spawn(process.execPath, [CHILD, 'hold', path], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.after(() => child.kill('SIGKILL'));
    const lines = createInterface({ input: child.stdout! });
    const first = await lines[Symbol.asyncIterator]().next();
    assert.deepEqual(JSON.parse(String(first.value)), { ok: true, held: true });
    const started = Date.now();
    await assert.rejects(openSqliteStore({ path, lockTimeoutMs: 100 }), (e) => {
      assert.ok(isPostflowError(e, ERR_JOBS_STORE_LOCKED), String(e));
      assert.ok(e.message.includes(path) && /another postflow daemon/.test(e.message), e.message);
      return true;
    });
    assert.ok(Date.now() - started < 5_000, 'fails within the lock timeout, not after a long wait');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL'); // a crashed daemon must not leave a stale lock behind
    await exited;
    const store = await openSqliteStore({ path, lockTimeoutMs: 100 });
    t.after(() => store.close());
    const [held] = await store.list();
    assert.equal(held?.path, '/r/held', 'what the killed process committed is there');
  });

  test('a directory the daemon may not write → READONLY naming the path', async (t) => {
    const dir = tempDir(t);
    const roDir = join(dir, 'state');
    mkdirSync(roDir);
    chmodSync(dir, 0o755);
    chmodSync(roDir, 0o555);
    const path = join(roDir, 'jobs.db');
    // Root ignores permission bits, so as root the store is opened by a child running as `nobody`: a real
    // EACCES from the kernel, not a simulated one.
    const asRoot = process.getuid?.() === 0;
    const answer = runChild(['open', path], asRoot ? { uid: 65534, gid: 65534 } : {});
    assert.equal(answer.code, ERR_JOBS_STORE_READONLY.code, JSON.stringify(answer));
    assert.ok(answer.message?.includes(path), answer.message);
  });

  test('a read-only database file in a writable directory → READONLY', async (t) => {
    const dir = tempDir(t);
    chmodSync(dir, 0o777); // writable for the child user too; only the file is read-only
    const path = join(dir, 'jobs.db');
    await (await openSqliteStore({ path })).close();
    chmodSync(path, 0o444);
    const asRoot = process.getuid?.() === 0;
    const answer = runChild(['open', path], asRoot ? { uid: 65534, gid: 65534 } : {});
    assert.equal(answer.code, ERR_JOBS_STORE_READONLY.code, JSON.stringify(answer));
    assert.ok(answer.message?.includes(path), answer.message);
  });

  test('a full disk → DISK_FULL, and what was committed before stays readable', async (t) => {
    // A real ENOSPC: a 256 KiB tmpfs, mounted in a private mount namespace of the child only (unshare), so
    // nothing is mounted on the host and it vanishes with the child.
    const probe = spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs "$1"', 'sh', tmpdir()], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      t.skip(`needs unshare with user+mount namespaces for a private tmpfs: ${probe.error?.message ?? probe.stderr.trim()}`);
      return;
    }
    const dir = tempDir(t);
    const path = join(dir, 'jobs.db');
    const answer = runChild(['fill', path], {
      wrap: ['unshare', '-rm', 'sh', '-c', `mount -t tmpfs -o size=256k tmpfs '${dir}' && exec "$@"`, 'sh'],
    });
    assert.equal(answer.code, 'PF_ERR_JOBS_STORE_DISK_FULL', JSON.stringify(answer));
    assert.ok(answer.message?.includes(path), answer.message);
    assert.ok((answer.written ?? 0) > 0, 'some writes succeeded before the disk filled');
    assert.equal(answer.firstIntact, true);
    assert.equal(answer.lastIntact, true, 'the last committed write survived the failed one');
  });
});
