/**
 * Issue 4.3 and 3.9 on the real daemon: an import whose file gets no bytes served for
 * `upload.stallTimeoutSeconds` — a pull that goes silent half way, or one that never starts — or that
 * Frame.io reports failed is retried from scratch (the old Frame.io file deleted) with backoff, up to
 * `upload.maxAttempts`; then the job ends failed with the reason and the daemon goes on with other files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File, startStack, type LogLine } from './harness.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

test('stalled and failed imports are retried from scratch, then fail with the reason; the daemon goes on', { timeout: 180_000 }, async (t) => {
  const stack = await startStack({
    emulator: { pullChunkBytes: 256 * KiB },
    config: (c) => {
      c.watch.stabilitySeconds = 1;
      c.watch.pollIntervalSeconds = 0.3;
      c.upload = { maxAttempts: 2, stallTimeoutSeconds: 1.5, statusPollSeconds: 0.3 };
    },
  });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');
  await daemon.waitFor((l) => l.event === 'tunnel-ready', 60_000, 'the tunnel');
  const of = (name: string) => (l: LogLine) => String(l.file).endsWith(name);
  const entries = (name: string) => stack.emulator.ledger().filter((e) => e.name === name);
  const drop = async (name: string, size: number) => {
    const path = join(stack.watchDir, name);
    await writeFile(path, randomBytes(size));
    return path;
  };

  // 1. A pull that goes silent half way: Frame.io reads its first buffers, then nothing more.
  stack.emulator.setFaults({ pullBytesPerSecond: 1 });
  const half = await drop('half.mov', 8 * MiB);
  const stalled = await daemon.waitFor((l) => l.event === 'retry' && of('half.mov')(l), 30_000, 'the half-way stall to be retried');
  stack.emulator.setFaults({ pullBytesPerSecond: 0 });
  assert.match(String(stalled.err), /PF_ERR_UPLOAD_STALLED: no bytes were pulled for 1\.5s \(\d+ of 8388608 bytes served\)/);
  assert.equal(typeof stalled.delayMs, 'number');
  const halfDone = await daemon.waitFor((l) => l.event === 'done' && of('half.mov')(l), 60_000, 'half.mov to complete on its second attempt');
  assert.equal(halfDone.attempts, 2);
  const halfEntries = entries('half.mov');
  assert.deepEqual(halfEntries.map((e) => e.status), ['deleted', 'complete'], 'the stalled half-import is deleted, not left beside the good one');
  assert.ok(halfEntries[0]!.bytesReceived > 0, 'the first import had received part of the file');
  assert.equal(halfEntries[1]!.sha256, await sha256File(half));
  assert.ok(halfEntries[1]!.requests.some((r) => r.range?.startsWith('bytes=0-')), 'the retry pulled from the start');

  // 2. An import Frame.io accepts but never pulls.
  stack.emulator.setFaults({ stallPullsNext: 1 });
  const idle = await drop('idle.mov', 512 * KiB);
  const idleDone = await daemon.waitFor((l) => l.event === 'done' && of('idle.mov')(l), 60_000, 'idle.mov to complete after its stall');
  assert.equal(idleDone.attempts, 2);
  const idleEntries = entries('idle.mov');
  assert.deepEqual(idleEntries.map((e) => e.status), ['deleted', 'complete']);
  assert.equal(idleEntries[0]!.requests.length, 0);
  assert.equal(idleEntries[1]!.sha256, await sha256File(idle));

  // 3. Frame.io reports the import failed on every attempt: the job ends failed with the reason.
  stack.emulator.setFaults({ failImportsNext: 2 });
  await drop('broken.mov', 256 * KiB);
  const failed = await daemon.waitFor((l) => l.event === 'failed' && of('broken.mov')(l), 60_000, 'broken.mov to fail');
  assert.equal(failed.attempts, 2, 'upload.maxAttempts attempts were made');
  assert.match(String(failed.err), /PF_ERR_UPLOAD_REMOTE_FAILED: Frame\.io reported the import of file \S+ as failed \(upload_failed\)$/);
  assert.match(String(failed.msg), /^failed after 2 attempt\(s\): /);
  const retries = daemon.lines.filter((l) => l.event === 'retry' && of('broken.mov')(l));
  assert.equal(retries.length, 1);
  assert.ok(Number(retries[0]!.delayMs) >= 1_000 && Number(retries[0]!.delayMs) <= 2_000, `first retry waits within [base/2, base]: ${String(retries[0]!.delayMs)}`);
  const gap = Date.parse(String(daemon.lines.filter((l) => l.event === 'exposing' && of('broken.mov')(l))[1]?.time)) - Date.parse(String(retries[0]!.time));
  assert.ok(gap >= Number(retries[0]!.delayMs) - 20, `the second attempt started ${gap} ms after the retry line, not before its delay`);
  assert.deepEqual(entries('broken.mov').map((e) => e.status), ['deleted', 'deleted'], 'no failed import is left in Frame.io');

  // 4. The daemon goes on with other files.
  const after = await drop('after.mov', 256 * KiB);
  const afterDone = await daemon.waitFor((l) => l.event === 'done' && of('after.mov')(l), 60_000, 'the next file to be imported');
  assert.equal(afterDone.attempts, 1);
  assert.equal(entries('after.mov')[0]!.sha256, await sha256File(after));
  assert.equal(daemon.lines.filter((l) => l.event === 'failed').length, 1, 'only broken.mov failed');
  assert.equal(daemon.child.exitCode, null, 'the daemon is still running');
});
