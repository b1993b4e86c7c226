/**
 * Issue 4 item 6: files that change under postflow. An export that is rewritten or deleted while it waits
 * in the queue or while Frame.io pulls it, and one replaced by a new export after it was imported. The
 * emulator's ledger is the judge: what Frame.io holds at the end, byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File, startStack, until, type DaemonProcess, type LogLine, type Stack } from './harness.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

const entriesOf = (stack: Stack, name: string) => stack.emulator.ledger().filter((e) => e.name === name);
const isLine = (event: string, path: string) => (l: LogLine) => l.event === event && l.file === path;

async function waitPulling(stack: Stack, name: string): Promise<void> {
  await until(() => entriesOf(stack, name).some((e) => e.status === 'importing' && e.bytesReceived > 0), 60_000, `Frame.io to be pulling ${name}`);
}

function noFailures(daemon: DaemonProcess): void {
  assert.deepEqual(daemon.lines.filter((l) => l.event === 'failed').map((l) => l.msg), [], 'no job failed');
}

test('changed or deleted DURING the import: import cancelled and its Frame.io file deleted; the new contents imported once', { timeout: 180_000 }, async (t) => {
  const stack = await startStack({ emulator: { faults: { pullBytesPerSecond: 1 * MiB } } });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  const inPlace = join(stack.watchDir, 'grade_v1.mov'); // rewritten in place (same inode)
  const swapped = join(stack.watchDir, 'mix_v1.wav'); // replaced by rename (a new inode, as most exporters do)
  const deleted = join(stack.watchDir, 'titles.mov');
  for (const p of [inPlace, swapped, deleted]) await writeFile(p, randomBytes(6 * MiB));
  await Promise.all(['grade_v1.mov', 'mix_v1.wav', 'titles.mov'].map((n) => waitPulling(stack, n)));

  await writeFile(inPlace, randomBytes(3 * MiB + 5));
  await writeFile(`${swapped}.tmp`, randomBytes(2 * MiB + 7));
  await rename(`${swapped}.tmp`, swapped);
  await rm(deleted);
  const newSha = { inPlace: await sha256File(inPlace), swapped: await sha256File(swapped) };

  await daemon.waitFor(isLine('cancelled', deleted), 30_000, 'the deleted file\'s job to be cancelled');
  await daemon.waitFor(isLine('changed', inPlace), 30_000, 'the in-place rewrite to cancel its import');
  await daemon.waitFor(isLine('changed', swapped), 30_000, 'the swapped file to cancel its import');
  stack.emulator.setFaults({ pullBytesPerSecond: 0 });

  for (const p of [inPlace, swapped]) await daemon.waitFor(isLine('done', p), 90_000, `${p} to be imported again`);

  for (const [name, sha] of [['grade_v1.mov', newSha.inPlace], ['mix_v1.wav', newSha.swapped]] as const) {
    const entries = entriesOf(stack, name);
    const complete = entries.filter((e) => e.status === 'complete');
    assert.equal(complete.length, 1, `${name}: exactly one complete import (ledger: ${JSON.stringify(entries.map((e) => e.status))})`);
    assert.equal(complete[0]!.sha256, sha, `${name}: Frame.io holds the NEW contents`);
    assert.ok(entries.filter((e) => e.status !== 'complete').every((e) => e.status === 'deleted'), `${name}: the cancelled import's file was deleted, not left beside the good one`);
  }
  const titles = entriesOf(stack, 'titles.mov');
  assert.ok(titles.length >= 1 && titles.every((e) => e.status === 'deleted'), `titles.mov: its half import was deleted (${JSON.stringify(titles.map((e) => e.status))})`);
  noFailures(daemon);
});

test('changed or deleted while QUEUED, and replaced by a new export after it was done', { timeout: 180_000 }, async (t) => {
  // One worker, held busy by a slow import, so the other files wait in the queue.
  const stack = await startStack({ emulator: { faults: { pullBytesPerSecond: 1 * MiB } }, config: (c) => (c.workers = 1) });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  const blocker = join(stack.watchDir, 'reel1.mov');
  await writeFile(blocker, randomBytes(5 * MiB));
  await waitPulling(stack, 'reel1.mov');
  const grows = join(stack.watchDir, 'reel2.mov');
  const goes = join(stack.watchDir, 'reel3.mov');
  await writeFile(grows, randomBytes(200 * KiB));
  await writeFile(goes, randomBytes(200 * KiB));
  await daemon.waitFor(isLine('queued', grows), 30_000, 'reel2 to be queued');
  await daemon.waitFor(isLine('queued', goes), 30_000, 'reel3 to be queued');
  const oldGrowsSha = await sha256File(grows);

  await appendFile(grows, randomBytes(64 * KiB));
  await rm(goes);
  const newGrowsSha = await sha256File(grows);
  await daemon.waitFor(isLine('cancelled', goes), 30_000, 'the deleted file\'s job to be cancelled');
  stack.emulator.setFaults({ pullBytesPerSecond: 0 });

  await daemon.waitFor(isLine('done', blocker), 60_000, 'reel1 to be done');
  await daemon.waitFor(isLine('done', grows), 60_000, 'reel2 (grown) to be done');
  assert.ok(
    daemon.lines.some((l) => isLine('queued', grows)(l) && l.size === 264 * KiB),
    'reel2 went back to waiting for stability and was queued again with its new size',
  );
  const grown = entriesOf(stack, 'reel2.mov');
  assert.equal(grown.filter((e) => e.status === 'complete').length, 1, `reel2: one complete import (${JSON.stringify(grown.map((e) => e.status))})`);
  assert.equal(grown.find((e) => e.status === 'complete')!.sha256, newGrowsSha, 'reel2: the grown contents were imported');
  assert.ok(!grown.some((e) => e.sha256 === oldGrowsSha), 'reel2: the contents from before the change never reached Frame.io');
  assert.equal(entriesOf(stack, 'reel3.mov').length, 0, 'reel3 (deleted while queued) never reached Frame.io');
  assert.match(String(daemon.lines.find(isLine('cancelled', goes))!.msg), /removed/, 'the cancel line says the file was removed');

  // A new export with the same name after the first was imported: a new job, imported again.
  const firstSha = await sha256File(blocker);
  await writeFile(`${blocker}.tmp`, randomBytes(1 * MiB + 3));
  await rename(`${blocker}.tmp`, blocker);
  const secondSha = await sha256File(blocker);
  await until(() => daemon.lines.filter(isLine('done', blocker)).length === 2, 60_000, 'the re-export of reel1 to be done');
  const reel1 = entriesOf(stack, 'reel1.mov').filter((e) => e.status === 'complete');
  assert.deepEqual(reel1.map((e) => e.sha256).sort(), [firstSha, secondSha].sort(), 'both exports of reel1 are in Frame.io, each once');
  assert.equal(daemon.lines.filter(isLine('done', blocker))[1]!.landing, 'version', 'the re-export was stacked as a new version (onExisting default)');
  noFailures(daemon);
});
