/**
 * Issue 4 item 5: the Frame.io login under stress. Access tokens that expire every few seconds, a refresh
 * token revoked mid-run (queue pauses, one clear error, resumes by itself after a new login is written),
 * and two postflow processes (the daemon and `postflow upload`) sharing the one rotating refresh token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, sha256File, startStack, until, type LogLine } from './harness.ts';

const KiB = 1024;

/** Writes `count` files of random bytes into `dir`; returns their paths. */
async function drop(dir: string, prefix: string, count: number, size: number): Promise<string[]> {
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const p = join(dir, `${prefix}-${i}.mov`);
    await writeFile(p, randomBytes(size + i));
    paths.push(p);
  }
  return paths;
}

/** Every path imported exactly once (status complete) with the bytes on disk. */
async function assertImportedOnce(ledger: ReturnType<Awaited<ReturnType<typeof startStack>>['emulator']['ledger']>, paths: string[]): Promise<void> {
  for (const p of paths) {
    const name = p.slice(p.lastIndexOf('/') + 1);
    const complete = ledger.filter((e) => e.name === name && e.status === 'complete');
    assert.equal(complete.length, 1, `${name} imported exactly once (ledger: ${JSON.stringify(ledger.filter((e) => e.name === name).map((e) => e.status))})`);
    assert.equal(complete[0]!.sha256, await sha256File(p), `${name} arrived intact`);
  }
}

const failedLines = (lines: LogLine[]) => lines.filter((l) => l.event === 'failed' || (typeof l.level === 'number' && l.level >= 50));

test('access tokens expiring every 2 s: daemon and a `postflow upload` beside it share the rotating login', { timeout: 180_000 }, async (t) => {
  const stack = await startStack({ emulator: { accessTokenTtlSeconds: 2 }, config: (c) => (c.workers = 2) });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  // Files dropped in waves over ~8 s, so imports span several token lifetimes.
  const watched: string[] = [];
  for (let wave = 0; wave < 4; wave++) {
    watched.push(...(await drop(stack.watchDir, `wave${wave}`, 3, 200 * KiB)));
    await new Promise((r) => setTimeout(r, 2000));
  }

  // One-shot uploads from a second process with the same config (same refresh-token file) meanwhile.
  const outside = await drop(stack.dir, 'oneshot', 3, 300 * KiB);
  const cli = spawn(process.execPath, [BIN, 'upload', ...outside, '--folder', stack.emulator.projectId, '--config', stack.configFile], {
    env: { ...process.env, CLOUDFLARED_STANDIN_REGISTRY: stack.registry },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (cli.exitCode === null && cli.signalCode === null) cli.kill('SIGKILL');
  });
  let cliOut = '';
  cli.stdout.on('data', (b: Buffer) => (cliOut += b.toString()));
  cli.stderr.on('data', (b: Buffer) => (cliOut += b.toString()));
  const cliExit = await new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
  assert.equal(cliExit, 0, `postflow upload exit code (output: ${cliOut.slice(-2000)})`);

  await until(() => watched.every((p) => daemon.lines.some((l) => l.event === 'done' && l.file === p)), 120_000, 'every watched file to be done');
  await assertImportedOnce(stack.emulator.ledger(), [...watched, ...outside]);

  const tokenCalls = stack.emulator.calls().filter((c) => c.operation === 'ims.token');
  assert.ok(tokenCalls.length >= 6, `the short-lived tokens were refreshed many times (${tokenCalls.length} refreshes)`);
  assert.deepEqual(
    tokenCalls.filter((c) => c.status !== 200).map((c) => c.status),
    [],
    'no refresh was refused (an invalid_grant would mean the two processes broke each other\'s token chain)',
  );
  assert.deepEqual(failedLines(daemon.lines).map((l) => l.msg), [], 'no job failed and no error was logged by the daemon');
  assert.ok(!/invalid_grant|auth-lost/.test(cliOut), 'the one-shot upload never lost its login');
});

test('a revoked refresh token pauses the queue with one clear error; a new login resumes it by itself', { timeout: 180_000 }, async (t) => {
  const stack = await startStack({ emulator: { accessTokenTtlSeconds: 2 } });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  const before = await drop(stack.watchDir, 'before', 2, 100 * KiB);
  await until(() => before.every((p) => daemon.lines.some((l) => l.event === 'done' && l.file === p)), 60_000, 'the first files to be done');

  stack.emulator.setFaults({ revokeRefreshTokens: true });
  const waiting = await drop(stack.watchDir, 'during', 4, 150 * KiB);
  await daemon.waitFor((l) => l.event === 'auth-lost', 60_000, 'the login to be reported lost');
  // Several poll intervals and token lifetimes pass while the login is lost.
  await new Promise((r) => setTimeout(r, 6000));

  const errors = daemon.lines.filter((l) => typeof l.level === 'number' && l.level >= 50);
  assert.equal(errors.length, 1, `exactly one error line while the login is lost: ${JSON.stringify(errors.map((l) => l.msg))}`);
  assert.match(String(errors[0]!.msg), /postflow auth login/, 'the error says how to log in again');
  assert.ok(!daemon.lines.some((l) => l.event === 'failed'), 'no job marked failed while the login is lost');
  const completeDuring = stack.emulator.ledger().filter((e) => e.status === 'complete' && e.name.startsWith('during-'));
  assert.equal(completeDuring.length, 0, 'nothing was imported without a login');
  const refusedRefreshes = stack.emulator.calls().filter((c) => c.operation === 'ims.token' && c.status !== 200).length;
  assert.ok(refusedRefreshes <= 2, `IMS is not hammered with a dead token (${refusedRefreshes} refused refreshes)`);

  // What `postflow auth login` does: a fresh refresh token written to the shared file, mode 0600.
  const refreshTokenFile = (stack.config.frameio as { refreshTokenFile: string }).refreshTokenFile;
  await writeFile(`${refreshTokenFile}.new`, JSON.stringify({ refresh_token: stack.emulator.issueRefreshToken() }), { mode: 0o600 });
  const { rename } = await import('node:fs/promises');
  await rename(`${refreshTokenFile}.new`, refreshTokenFile);

  await daemon.waitFor((l) => l.event === 'auth-restored', 30_000, 'the login to be restored');
  await until(() => waiting.every((p) => daemon.lines.some((l) => l.event === 'done' && l.file === p)), 90_000, 'the waiting files to be imported');
  await assertImportedOnce(stack.emulator.ledger(), [...before, ...waiting]);
  assert.ok(!daemon.lines.some((l) => l.event === 'failed'), 'no job failed at any point');
});
