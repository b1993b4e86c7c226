import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import {
  isStaleLock,
  parseTokenFile,
  readTokenFile,
  withTokenFileLock,
  writeTokenFile,
} from '../../src/frameio/token-file.ts';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pf-tokenfile-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('write is atomic, mode 0600, leaves no temp file, and reads back', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'refresh-token');
  await writeTokenFile(file, { refresh_token: 'rt-1', scope: 'openid', user_email: 'a@b.c' });
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(await readdir(dir), ['refresh-token']);
  const rec = await readTokenFile(file);
  assert.equal(rec?.refresh_token, 'rt-1');
  assert.equal(rec?.user_email, 'a@b.c');
  assert.match(String(rec?.saved_at), /^\d{4}-\d\d-\d\dT/);
  // Replacing keeps the mode and the other fields are whatever the new record says.
  await writeTokenFile(file, { ...rec!, refresh_token: 'rt-2', saved_at: undefined });
  assert.equal((await readTokenFile(file))?.refresh_token, 'rt-2');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
});

test('a missing or empty file is "not logged in"; a bare token is accepted', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'rt');
  assert.equal(await readTokenFile(file), undefined);
  await writeFile(file, '\n', { mode: 0o600 });
  assert.equal(await readTokenFile(file), undefined);
  await writeFile(file, 'rt-bare\n', { mode: 0o600 });
  assert.deepEqual(await readTokenFile(file), { refresh_token: 'rt-bare' });
});

test('refuses a token file readable by group or others, naming the fix', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'rt');
  await writeTokenFile(file, { refresh_token: 'rt-1' });
  await chmod(file, 0o644);
  await assert.rejects(readTokenFile(file), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'PF_ERR_FRAMEIO_TOKEN_FILE_PERMISSIONS');
    assert.match(err.message, /mode 644/);
    assert.match(err.message, /chmod 600/);
    return true;
  });
});

test('garbled files give a clear error', () => {
  assert.throws(() => parseTokenFile('/x', '{nope'), /PF_ERR|not valid JSON/);
  assert.throws(() => parseTokenFile('/x', '{"other": 1}'), (e: Error & { code?: string }) => e.code === 'PF_ERR_FRAMEIO_TOKEN_FILE_INVALID');
  assert.throws(() => parseTokenFile('/x', 'two words'), (e: Error & { code?: string }) => e.code === 'PF_ERR_FRAMEIO_TOKEN_FILE_INVALID');
});

test('the lock serialises holders within a process and is released on throw', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'rt');
  let inside = 0;
  let maxInside = 0;
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      withTokenFileLock(file, async () => {
        inside++;
        maxInside = Math.max(maxInside, inside);
        await delay(5);
        order.push(i);
        inside--;
      }),
    ),
  );
  assert.equal(maxInside, 1);
  assert.equal(order.length, 8);
  await assert.rejects(withTokenFileLock(file, async () => Promise.reject(new Error('boom'))), /boom/);
  assert.deepEqual(await readdir(dir), [], 'lock released after a throw');
});

test('a lock left by a dead process is broken; a live one times out with the holder named', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'rt');
  // pid 2^22+ is beyond pid_max on default Linux: certainly not running.
  await writeFile(`${file}.lock`, JSON.stringify({ pid: 4_194_304 + 17, host: hostname(), at: Date.now(), id: 'dead' }));
  const got = await withTokenFileLock(file, async () => 'ran', { timeoutMs: 2000 });
  assert.equal(got, 'ran');

  await writeFile(`${file}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now(), id: 'alive' }));
  const started = Date.now();
  await assert.rejects(withTokenFileLock(file, async () => 'never', { timeoutMs: 300 }), (err: Error & { code?: string; retryable?: boolean }) => {
    assert.equal(err.code, 'PF_ERR_FRAMEIO_TOKEN_LOCK_TIMEOUT');
    assert.equal(err.retryable, true);
    assert.match(err.message, new RegExp(`pid ${process.pid}`));
    return true;
  });
  assert.ok(Date.now() - started >= 300);
  // Too old counts as abandoned even when the pid is alive (pid reuse, or a holder stuck for a minute).
  await writeFile(`${file}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now() - 120_000, id: 'old' }));
  assert.equal(await withTokenFileLock(file, async () => 'ok', { timeoutMs: 2000 }), 'ok');
  await assert.rejects(readFile(file), { code: 'ENOENT' }, 'the lock does not create the token file');
});

test('stale-lock rule', () => {
  const alive = () => true;
  const dead = () => false;
  const lock = { pid: 10, host: 'h', at: 1000, id: 'x' };
  assert.equal(isStaleLock(lock, 2000, 60_000, 'h', alive), false);
  assert.equal(isStaleLock(lock, 2000, 60_000, 'h', dead), true);
  assert.equal(isStaleLock(lock, 2000, 60_000, 'other-host', dead), false, 'cannot judge a pid on another host');
  assert.equal(isStaleLock(lock, 62_000, 60_000, 'other-host', alive), true);
});
