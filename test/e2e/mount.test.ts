/**
 * Issue 4 item 9: the mount comes and goes. A LucidLink filespace that drops (here: the watch folder renamed
 * away, then removed outright) and comes back is picked up again without a restart, with one warning per
 * outage; files that appeared meanwhile are queued, and an import that was running when it dropped is not
 * lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sha256File, startStack, until, type LogLine } from './harness.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

const goneWarnings = (lines: LogLine[]) => lines.filter((l) => /watch folder is gone/.test(String(l.msg)));
const backLines = (lines: LogLine[]) => lines.filter((l) => /watch folder is back/.test(String(l.msg)));

test('a watch folder that disappears and comes back is picked up again, one warning per outage, nothing lost', { timeout: 240_000 }, async (t) => {
  // Small Range requests, so that the outage cuts an import between two of them (as a dropped mount would).
  const stack = await startStack({ emulator: { pullChunkBytes: 256 * KiB } });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');
  const done = (p: string) => daemon.lines.filter((l) => l.event === 'done' && l.file === p).length;

  const early = join(stack.watchDir, 'early.mov');
  await writeFile(early, randomBytes(300 * KiB));
  await until(() => done(early) === 1, 60_000, 'early.mov to be imported');

  // An import in flight when the mount drops.
  stack.emulator.setFaults({ pullBytesPerSecond: 1 * MiB });
  const inflight = join(stack.watchDir, 'inflight.mov');
  await writeFile(inflight, randomBytes(5 * MiB));
  const inflightSha = await sha256File(inflight);
  await until(() => stack.emulator.ledger().some((e) => e.name === 'inflight.mov' && e.bytesReceived > 0), 60_000, 'Frame.io to be pulling inflight.mov');

  // Outage 1: the folder is renamed away (an unmounted filespace looks the same: the path is gone).
  const away = `${stack.watchDir}.away`;
  await rename(stack.watchDir, away);
  await daemon.waitFor((l) => goneWarnings([l]).length === 1, 30_000, 'the folder-gone warning');
  // The cut-off import fails at Frame.io and its next attempt finds the folder gone: it must wait, not end.
  await daemon.waitFor((l) => l.event === 'folder-wait' && l.file === inflight, 60_000, 'the in-flight job to wait for its folder');
  const meanwhile = [join(stack.watchDir, 'meanwhile-1.mov'), join(stack.watchDir, 'sub', 'meanwhile-2.mov')];
  await mkdir(join(away, 'sub'));
  for (const p of meanwhile) await writeFile(p.replace(stack.watchDir, away), randomBytes(200 * KiB));
  assert.equal(goneWarnings(daemon.lines).length, 1, 'one warning while the folder is gone, not one per poll');
  stack.emulator.setFaults({ pullBytesPerSecond: 0 });
  await rename(away, stack.watchDir);
  await daemon.waitFor((l) => backLines([l]).length === 1, 30_000, 'the folder-back line');

  for (const p of [...meanwhile, inflight]) await until(() => done(p) === 1, 90_000, `${p} to be imported after the folder came back`);

  // Outage 2: the folder is removed outright and recreated with a new file.
  await rm(stack.watchDir, { recursive: true });
  await until(() => goneWarnings(daemon.lines).length === 2, 30_000, 'the second folder-gone warning');
  await sleep(1500);
  await mkdir(stack.watchDir);
  const after = join(stack.watchDir, 'after.mov');
  await writeFile(after, randomBytes(150 * KiB));
  const afterSha = await sha256File(after);
  await until(() => done(after) === 1, 60_000, 'after.mov to be imported');
  await sleep(1500); // a second import of anything would show now

  assert.equal(goneWarnings(daemon.lines).length, 2, 'exactly one warning per outage');
  const ledger = stack.emulator.ledger();
  const complete = (name: string) => ledger.filter((e) => e.name === name && e.status === 'complete');
  for (const name of ['early.mov', 'inflight.mov', 'meanwhile-1.mov', 'meanwhile-2.mov', 'after.mov']) {
    assert.equal(complete(name).length, 1, `${name} imported exactly once (ledger: ${JSON.stringify(ledger.filter((e) => e.name === name).map((e) => e.status))})`);
  }
  assert.equal(complete('inflight.mov')[0]!.sha256, inflightSha, 'the import cut by the outage completed with the right bytes');
  assert.equal(complete('after.mov')[0]!.sha256, afterSha);
  assert.ok(
    ledger.filter((e) => e.name === 'inflight.mov' && e.status !== 'complete').every((e) => e.status === 'deleted' || e.status === 'failed'),
    'the cut-off attempt left nothing half-imported',
  );
  assert.deepEqual(daemon.lines.filter((l) => l.event === 'failed' || l.event === 'cancelled').map((l) => `${String(l.file)}: ${String(l.msg)}`), [], 'no job failed or was cancelled because of the outage');
});
