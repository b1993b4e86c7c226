/**
 * `postflow status`, `jobs` and `retry` as an operator uses them: against the running daemon (through
 * admin.json and its API), against the store of a stopped one, and after a kill -9 left a stale admin.json.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIN, startStack, until } from '../e2e/harness.ts';

const run = promisify(execFile);

async function postflow(args: string[]) {
  try {
    const r = await run(process.execPath, [BIN, ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('status, jobs and retry through the running daemon, then from the store of a stopped one', { timeout: 240_000 }, async (t) => {
  const stack = await startStack({
    emulator: { faults: { failImportsNext: 1 } },
    config: (c) => {
      c.watch.stabilitySeconds = 1;
      c.watch.pollIntervalSeconds = 0.4;
      c.upload = { maxAttempts: 1 };
      c.log.level = 'info';
    },
  });
  t.after(() => stack.close());
  const cfg = ['--config', stack.configFile];
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  await writeFile(join(stack.watchDir, 'broken.mov'), randomBytes(64 * 1024));
  const failed = await daemon.waitFor((l) => l.event === 'failed', 60_000, 'the first import to fail');
  await writeFile(join(stack.watchDir, 'fine.mov'), randomBytes(64 * 1024));
  const done = await daemon.waitFor((l) => l.event === 'done', 60_000, 'the second import');

  // Running: the CLI reads the daemon's API (the store is locked by the daemon).
  const text = await postflow(['status', ...cfg]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^postflow: running \(pid \d+/);
  assert.match(text.stdout, /^tunnel: (ready|starting) https:\/\/[a-z-]+\.trycloudflare\.com/m);
  assert.match(text.stdout, /queue: 0 queued · 0 importing · 0 settling · 1 done · 1 failed/);
  assert.match(text.stdout, new RegExp(`Recent failures:\\n.*\\n  ${String(failed.job).slice(0, 8)} .* broken\\.mov +\\S`));
  assert.ok(text.stdout.includes(String(done.viewUrl)), 'the done file with its Frame.io link');

  const json = await postflow(['status', '--json', ...cfg]);
  const view = JSON.parse(json.stdout);
  assert.equal(view.daemon.running, true);
  assert.equal(view.queue.counts.failed, 1);
  assert.equal(view.recentFailed[0].id, failed.job);
  assert.ok(view.recentFailed[0].reason.length > 0);
  assert.equal(view.recentDone[0].viewUrl, done.viewUrl);

  const jobs = JSON.parse((await postflow(['jobs', '--state', 'failed', '--json', ...cfg])).stdout);
  assert.deepEqual(jobs.map((j: { name: string }) => j.name), ['broken.mov']);
  const table = await postflow(['jobs', ...cfg]);
  assert.match(table.stdout, /^  ID +STATE +SIZE +TRIES +UPDATED +FILE +DETAIL$/m);
  assert.match(table.stdout, /failed .*broken\.mov/);
  const bad = await postflow(['jobs', '--state', 'bogus', ...cfg]);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /"bogus" is not one of discovered, stable/);

  // Retry through the daemon: it starts at once (the emulator's one injected failure is used up).
  const retry = await postflow(['retry', String(failed.job).slice(0, 8), ...cfg]);
  assert.equal(retry.code, 0, retry.stderr);
  assert.match(retry.stdout, /re-queued .* \(the daemon starts it now\)/);
  await daemon.waitFor((l) => l.event === 'done' && String(l.file).endsWith('broken.mov'), 60_000, 'the retried import');
  const again = await postflow(['retry', String(failed.job), ...cfg]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /PF_ERR_ADMIN_NOT_RETRYABLE: job .* is done/);

  // One more failure, then the daemon stops: everything is read from (and written to) the store.
  stack.emulator.setFaults({ failImportsNext: 1 });
  await writeFile(join(stack.watchDir, 'late.mov'), randomBytes(64 * 1024));
  await daemon.waitFor((l) => l.event === 'failed' && String(l.file).endsWith('late.mov'), 60_000, 'the third import to fail');
  assert.equal((await daemon.stop()).code, 0);
  await assert.rejects(access(join(stack.stateDir, 'admin.json')), 'admin.json removed on stop');

  const stopped = await postflow(['status', ...cfg]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.match(stopped.stdout, /^postflow: not running \(read from the job store\)/);
  assert.match(stopped.stdout, /2 done · 1 failed/);
  assert.match(stopped.stdout, /late\.mov/);
  const offline = await postflow(['retry', '--failed', '--json', ...cfg]);
  assert.equal(offline.code, 0, offline.stderr);
  const out = JSON.parse(offline.stdout);
  assert.equal(out.via, 'store');
  assert.deepEqual(out.retried.map((j: { name: string; state: string }) => [j.name, j.state]), [['late.mov', 'queued']]);

  // The next start picks the re-queued job up.
  const second = stack.startDaemon();
  await second.waitFor((l) => l.event === 'done' && String(l.file).endsWith('late.mov'), 90_000, 'the job re-queued offline to import');

  // kill -9 leaves a stale admin.json behind: the CLI notices and reads the store.
  second.child.kill('SIGKILL');
  await second.exited;
  await access(join(stack.stateDir, 'admin.json'));
  const afterKill = JSON.parse((await postflow(['status', '--json', ...cfg])).stdout);
  assert.equal(afterKill.daemon.running, false);
  assert.equal(afterKill.queue.counts.done, 3);

  await until(() => stack.emulator.ledger().filter((e) => e.status === 'complete').length === 3, 10_000, 'three imports in the ledger');
  const names = stack.emulator.ledger().filter((e) => e.status === 'complete').map((e) => e.name).sort();
  assert.deepEqual(names, ['broken.mov', 'fine.mov', 'late.mov'], 'each file imported once');
});

test('status, jobs and retry have --help and refuse bad usage with one line', async () => {
  for (const c of ['status', 'jobs', 'retry']) {
    const r = await postflow([c, '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^Usage: postflow ${c}`));
  }
  const main = await postflow(['--help']);
  for (const c of ['status', 'jobs', 'retry']) assert.match(main.stdout, new RegExp(`^  ${c}\\b`, 'm'));
  const none = await postflow(['retry']);
  assert.equal(none.code, 64);
  assert.equal(none.stderr.trim().split('\n').length, 1);
  const both = await postflow(['retry', 'abcd', '--failed']);
  assert.equal(both.code, 64);
});
