/**
 * Issue 4 item 8 through the real CLI: a job store the daemon cannot use (damaged file, held by another
 * running daemon, read-only state dir) stops the start with exit 1 and ONE line on stderr that names the
 * database path and says what to do — no stack trace — and leaves what was there untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, sha256File, startStack, type Stack } from './harness.ts';

/** Runs `postflow run` to its end (it must fail fast) and returns exit code and output. */
function runToEnd(stack: Stack, opts: { uid?: number; gid?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'run', '--config', stack.configFile], {
      env: { ...process.env, CLOUDFLARED_STANDIN_REGISTRY: stack.registry, POSTFLOW_DEBUG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...opts,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`postflow run did not exit within 30 s; stderr: ${stderr}`));
    }, 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function assertOneClearLine(stderr: string, dbPath: string, code: string, fix: RegExp): void {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${stderr}`);
  const line = lines[0]!;
  assert.ok(line.includes(dbPath), `the line names ${dbPath}: ${line}`);
  assert.ok(line.includes(code), `the line carries ${code}: ${line}`);
  assert.match(line, fix, 'the line says what to do');
  assert.doesNotMatch(line, /\bat .+:\d+:\d+/, 'no stack frame');
}

test('a damaged state DB: exit 1, one line naming the path and the fix, the file left as it was', { timeout: 60_000 }, async (t) => {
  const stack = await startStack();
  t.after(() => stack.close());
  const dbPath = join(stack.stateDir, 'postflow.db');
  // A real database whose header was overwritten: the bytes an operator may still want to recover.
  const bytes = Buffer.concat([Buffer.from('not an sqlite file at all '), randomBytes(8192)]);
  await writeFile(dbPath, bytes);

  const out = await runToEnd(stack);
  assert.equal(out.code, 1, `exit code (stderr: ${out.stderr})`);
  assertOneClearLine(out.stderr, dbPath, 'PF_ERR_JOBS_STORE_CORRUPT', /move it aside/);
  assert.deepEqual(await readFile(dbPath), bytes, 'the damaged file is not touched');
  assert.equal(stack.emulator.calls().length, 0, 'nothing reached Frame.io');
});

test('a state DB held by another running daemon: the second exits 1 with one line; the first goes on importing', { timeout: 120_000 }, async (t) => {
  const stack = await startStack();
  t.after(() => stack.close());
  const dbPath = join(stack.stateDir, 'postflow.db');
  const first = stack.startDaemon();
  await first.waitFor((l) => l.event === 'started', 60_000, 'the first daemon to start');
  const pidFile = await readFile(join(stack.stateDir, 'cloudflared.pid'), 'utf8').catch(() => '');

  const out = await runToEnd(stack);
  assert.equal(out.code, 1, `exit code (stderr: ${out.stderr})`);
  assertOneClearLine(out.stderr, dbPath, 'PF_ERR_JOBS_STORE_LOCKED', /stop the other one or give this one its own state dir/);
  assert.equal(await readFile(join(stack.stateDir, 'cloudflared.pid'), 'utf8').catch(() => ''), pidFile, "the first daemon's cloudflared pid file is untouched");

  // Nothing lost: the first daemon (its store, its tunnel) still works.
  const file = join(stack.watchDir, 'after-lock.mov');
  await writeFile(file, randomBytes(256 * 1024));
  await first.waitFor((l) => l.event === 'done' && String(l.file) === file, 60_000, 'the first daemon to import a new file');
  const entries = stack.emulator.ledger().filter((e) => e.name === 'after-lock.mov' && e.status === 'complete');
  assert.equal(entries.length, 1);
  assert.equal(entries[0]!.sha256, await sha256File(file));
  const exit = await first.stop('SIGTERM');
  assert.equal(exit.code, 0);
});

test('a read-only state dir, or a store file the daemon may not write: exit non-zero with one line naming the path and the fix; the jobs recorded there survive', { timeout: 60_000 }, async (t) => {
  const stack = await startStack();
  t.after(async () => {
    await chmod(stack.stateDir, 0o700).catch(() => undefined);
    await stack.close();
  });
  const dbPath = join(stack.stateDir, 'postflow.db');
  const tokenFile = join(stack.stateDir, 'refresh-token');
  // A store from an earlier run, with one job in it, that must come through unharmed.
  const { openSqliteStore } = await import('../../src/jobs/sqlite-store.ts');
  const seed = await openSqliteStore({ path: dbPath });
  const job = await seed.discover({ folderIndex: 0, root: stack.watchDir, path: join(stack.watchDir, 'x.mov'), relPath: 'x.mov', name: 'x.mov', size: 1, mtimeMs: 1, ino: 1, destination: stack.emulator.projectId });
  await seed.close();
  const before = await sha256File(dbPath);

  // Root ignores permission bits, so as root the daemon runs as `nobody` (a real EACCES from the kernel).
  // Its config and login are its own; the state dir / the store file are not writable for it.
  const asRoot = process.getuid?.() === 0;
  const as = asRoot ? { uid: 65534, gid: 65534 } : {};
  await chmod(stack.dir, 0o755);
  await chmod(dbPath, 0o644);
  if (asRoot) for (const p of [stack.configFile, tokenFile, stack.watchDir]) await chown(p, 65534, 65534);

  // 1. The state dir itself is read-only (ProtectSystem without ReadWritePaths, a root-owned dir): the
  //    configuration check stops the start (exit 78).
  await chmod(stack.stateDir, 0o555);
  const dirRo = await runToEnd(stack, as);
  assert.equal(dirRo.code, 78, `exit code (stderr: ${dirRo.stderr})`);
  assertOneClearLine(dirRo.stderr, stack.stateDir, 'stateDir', /not writable by this user — expected a folder postflow can write to/);

  // 2. The dir is writable but the store file is not (left by a `sudo postflow run`): the store says so.
  await chmod(stack.stateDir, 0o777);
  const fileRo = await runToEnd(stack, as);
  assert.equal(fileRo.code, 1, `exit code (stderr: ${fileRo.stderr})`);
  assertOneClearLine(fileRo.stderr, dbPath, 'PF_ERR_JOBS_STORE_READONLY', /writable by the daemon's user/);
  assert.equal(stack.emulator.ledger().length, 0, 'nothing was imported');

  assert.equal(await sha256File(dbPath), before, 'the store file is unchanged');
  await chmod(stack.stateDir, 0o700);
  const reopened = await openSqliteStore({ path: dbPath });
  t.after(() => reopened.close());
  assert.equal((await reopened.get(job.id))?.path, job.path, 'the recorded job is still there');
});
