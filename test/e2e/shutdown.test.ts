/**
 * Issue 4 item 7: SIGTERM/SIGINT stop the daemon gracefully. New work stops at once; an import in flight
 * gets `shutdown.graceSeconds` to finish; state is persisted, cloudflared stopped, exit 0. What did not
 * finish resumes on the next start, without a second copy in Frame.io.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/jobs/sqlite-store.ts';
import { descendants, isAlive, sha256File, startStack, until, type Stack } from './harness.ts';

const MiB = 1024 * 1024;

function slowStack(graceSeconds: number) {
  return startStack({
    emulator: { faults: { pullBytesPerSecond: 2 * MiB } },
    config: (c) => {
      c.watch.stabilitySeconds = 1;
      c.watch.pollIntervalSeconds = 0.3;
      c.workers = 1;
      c.shutdown = { graceSeconds };
      c.upload = { statusPollSeconds: 0.5 };
    },
  });
}

async function jobStates(stack: Stack): Promise<Map<string, string>> {
  const store = await openSqliteStore({ path: join(stack.stateDir, 'postflow.db'), lockTimeoutMs: 100 });
  try {
    return new Map((await store.list()).map((j) => [j.name, j.state]));
  } finally {
    await store.close();
  }
}

test('SIGTERM: the import in flight finishes within the grace period, a queued one waits for the next start; exit 0, no child left', { timeout: 120_000 }, async (t) => {
  const stack = await slowStack(30);
  t.after(() => stack.close());
  let d = stack.startDaemon();
  await d.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  const inFlight = join(stack.watchDir, 'in-flight.mov'); // ~3 s at the emulator's 2 MiB/s
  await writeFile(inFlight, randomBytes(6 * MiB));
  await d.waitFor((l) => l.event === 'importing' && l.file === inFlight, 30_000, 'the import to start');
  const waiting = join(stack.watchDir, 'waiting.mov'); // one worker: this one waits behind the other
  await writeFile(waiting, randomBytes(1 * MiB));
  await d.waitFor((l) => l.event === 'queued' && l.file === waiting, 30_000, 'the second file to be queued');
  assert.ok(!d.lines.some((l) => l.event === 'done'), 'the first import is still running when the signal comes');

  const children = await descendants(d.child.pid!);
  assert.ok(children.length >= 1, 'cloudflared runs');
  const signalledAt = Date.now();
  const exit = await d.stop('SIGTERM');
  const tookMs = Date.now() - signalledAt;
  assert.equal(exit.code, 0, `exit code (stderr: ${d.stderr.join(' | ')})`);
  assert.ok(tookMs < 30_000, `stopped before the grace period was over (${tookMs} ms)`);
  const stoppingAt = d.lines.findIndex((l) => l.event === 'stopping');
  const doneAt = d.lines.findIndex((l) => l.event === 'done' && l.file === inFlight);
  assert.ok(stoppingAt >= 0 && doneAt > stoppingAt, 'the import in flight finished after the signal');
  assert.ok(!d.lines.some((l) => l.file === waiting && (l.event === 'exposing' || l.event === 'importing')), 'no new import started after the signal');
  assert.ok(d.lines.some((l) => l.event === 'tunnel-stopped'), 'cloudflared stopped');
  await until(() => children.every((pid) => !isAlive(pid)), 3000, 'children to be gone');

  const states = await jobStates(stack);
  assert.equal(states.get('in-flight.mov'), 'done');
  assert.equal(states.get('waiting.mov'), 'queued', 'the waiting job is persisted as queued');

  // The next start resumes the waiting job; the finished one is not imported again.
  stack.emulator.setFaults({ pullBytesPerSecond: 0 });
  d = stack.startDaemon();
  await d.waitFor((l) => l.event === 'done' && l.file === waiting, 60_000, 'the waiting file to be imported after the restart');
  assert.equal((await d.stop('SIGTERM')).code, 0);
  const live = stack.emulator.ledger().filter((e) => e.status !== 'deleted');
  assert.deepEqual(live.map((e) => [e.name, e.status]).sort(), [['in-flight.mov', 'complete'], ['waiting.mov', 'complete']]);
  for (const [name, path] of [['in-flight.mov', inFlight], ['waiting.mov', waiting]] as const) {
    assert.equal(live.find((e) => e.name === name)!.sha256, await sha256File(path), `${name} arrived intact`);
  }
});

test('SIGINT with a grace period too short: the import is stopped, exit 0, and the next start re-imports it without a duplicate', { timeout: 120_000 }, async (t) => {
  const stack = await slowStack(1);
  t.after(() => stack.close());
  let d = stack.startDaemon();
  await d.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  const big = join(stack.watchDir, 'long.mov'); // ~10 s at 2 MiB/s, far beyond the 1 s grace
  await writeFile(big, randomBytes(20 * MiB));
  const importing = await d.waitFor((l) => l.event === 'importing' && l.file === big, 30_000, 'the import to start');
  await d.waitFor((l) => l.event === 'progress' && l.file === big, 30_000, 'bytes to flow');

  const signalledAt = Date.now();
  const exit = await d.stop('SIGINT');
  const tookMs = Date.now() - signalledAt;
  assert.equal(exit.code, 0, `exit code (stderr: ${d.stderr.join(' | ')})`);
  assert.ok(tookMs >= 1000, `the import got its grace period (${tookMs} ms)`);
  assert.ok(tookMs < 10_000, `stopped soon after the grace period (${tookMs} ms)`);
  assert.ok(d.lines.some((l) => l.event === 'interrupted' && l.file === big), 'the job says it resumes on the next start');
  assert.ok(!d.lines.some((l) => l.event === 'done'), 'the import did not finish');
  assert.equal((await jobStates(stack)).get('long.mov'), 'queued', 'persisted as queued');
  const half = stack.emulator.ledger().filter((e) => e.name === 'long.mov');
  assert.equal(half.length, 1);
  assert.notEqual(half[0]!.status, 'complete', 'the interrupted import is not complete at Frame.io');
  assert.equal(half[0]!.fileId, importing.frameioFileId);

  stack.emulator.setFaults({ pullBytesPerSecond: 0 });
  d = stack.startDaemon();
  const resumed = await d.waitFor((l) => l.event === 'resume' && l.file === big, 60_000, 'the job to resume');
  assert.equal(resumed.was, 'queued');
  await d.waitFor((l) => l.event === 'done' && l.file === big, 60_000, 'the re-import to finish');
  assert.equal((await d.stop('SIGTERM')).code, 0);

  const entries = stack.emulator.ledger().filter((e) => e.name === 'long.mov');
  const complete = entries.filter((e) => e.status === 'complete');
  assert.equal(complete.length, 1, `exactly one complete copy (ledger: ${JSON.stringify(entries.map((e) => [e.fileId, e.status]))})`);
  assert.equal(complete[0]!.sha256, await sha256File(big));
  const old = entries.find((e) => e.fileId === importing.frameioFileId)!;
  assert.equal(old.status, 'deleted', 'the half import of the interrupted attempt was deleted');
  assert.ok(!entries.some((e) => e.status === 'importing'), 'nothing left importing');
});
