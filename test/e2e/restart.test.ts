/**
 * Issue 3 item 7: what a start does with the files it finds. First start: what is there is a baseline, not
 * uploaded (unless --upload-existing). Later starts: what appeared or changed while the daemon was down is
 * imported, once; restarting with nothing new imports nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File, startStack, type DaemonProcess, type Stack } from './harness.ts';

const KiB = 1024;

function fastStack() {
  return startStack({
    config: (c) => {
      c.watch.stabilitySeconds = 1;
      c.watch.pollIntervalSeconds = 0.3;
      c.workers = 2;
    },
  });
}

/**
 * Drops a sentinel file and waits until it is imported. Files the start-up sweep saw are stable no later
 * than the sentinel, so any (wrong) import of them has been requested by then: an event to wait for, not a
 * sleep.
 */
async function settle(stack: Stack, daemon: DaemonProcess, name: string): Promise<void> {
  const path = join(stack.watchDir, name);
  await writeFile(path, randomBytes(4 * KiB));
  await daemon.waitFor((l) => l.event === 'done' && l.file === path, 60_000, `the sentinel ${name} to be imported`);
}

async function startAndWait(stack: Stack, args: string[] = []): Promise<DaemonProcess> {
  const d = stack.startDaemon({ args });
  await d.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');
  return d;
}

async function stopClean(d: DaemonProcess): Promise<void> {
  const exit = await d.stop('SIGTERM');
  assert.equal(exit.code, 0, `clean exit (stderr: ${d.stderr.join(' | ')})`);
}

/** Live (not deleted) ledger entries by name. */
function imported(stack: Stack): Map<string, { count: number; sha256: string | null }> {
  const out = new Map<string, { count: number; sha256: string | null }>();
  for (const e of stack.emulator.ledger()) {
    if (e.status === 'deleted') continue;
    const prev = out.get(e.name);
    out.set(e.name, { count: (prev?.count ?? 0) + 1, sha256: e.sha256 });
  }
  return out;
}

test('restarts: baseline at first start, files that appeared or changed while down are imported once, nothing new → nothing imported', { timeout: 180_000 }, async (t) => {
  const stack = await fastStack();
  t.after(() => stack.close());
  await mkdir(join(stack.watchDir, 'ep1'));
  const old1 = join(stack.watchDir, 'old1.mov');
  const old2 = join(stack.watchDir, 'ep1', 'old2.mov');
  await writeFile(old1, randomBytes(64 * KiB));
  await writeFile(old2, randomBytes(32 * KiB));

  // First start: both files are a baseline.
  let d = await startAndWait(stack);
  const baseline = await d.waitFor((l) => l.event === 'baseline', 10_000, 'the baseline line');
  assert.equal(baseline.files, 2, 'both present files recorded as baseline');
  await settle(stack, d, 'sentinel-1.mov');
  assert.deepEqual([...imported(stack).keys()].sort(), ['sentinel-1.mov'], 'present files were not uploaded');
  await stopClean(d);

  // While down: one file re-exported (new contents), one new file in a sub folder.
  await writeFile(old1, randomBytes(80 * KiB));
  const fresh = join(stack.watchDir, 'ep1', 'new.mov');
  await writeFile(fresh, randomBytes(48 * KiB));

  d = await startAndWait(stack);
  assert.ok(!d.lines.some((l) => l.event === 'baseline'), 'a later start records no baseline');
  await d.waitFor((l) => l.event === 'done' && l.file === old1, 60_000, 'the changed file to be imported');
  await d.waitFor((l) => l.event === 'done' && l.file === fresh, 60_000, 'the new file to be imported');
  await settle(stack, d, 'sentinel-2.mov');
  await stopClean(d);

  // Twice more with nothing new: nothing imported but the sentinels.
  for (const n of [3, 4]) {
    d = await startAndWait(stack);
    await settle(stack, d, `sentinel-${n}.mov`);
    const resumed = d.lines.filter((l) => l.event === 'queued' && l.file !== join(stack.watchDir, `sentinel-${n}.mov`));
    assert.deepEqual(resumed.map((l) => l.file), [], `start ${n} queued nothing but its sentinel`);
    await stopClean(d);
  }

  const got = imported(stack);
  assert.deepEqual([...got.keys()].sort(), ['new.mov', 'old1.mov', 'sentinel-1.mov', 'sentinel-2.mov', 'sentinel-3.mov', 'sentinel-4.mov']);
  for (const [name, e] of got) assert.equal(e.count, 1, `${name} imported exactly once`);
  assert.equal(got.get('old1.mov')?.sha256, await sha256File(old1), 'the re-exported contents arrived');
  assert.equal(got.get('new.mov')?.sha256, await sha256File(fresh));
  assert.ok(!got.has('old2.mov'), 'the untouched baseline file was never uploaded');
});

test('--upload-existing on the first start uploads the present files, once; a plain restart adds nothing', { timeout: 120_000 }, async (t) => {
  const stack = await fastStack();
  t.after(() => stack.close());
  const files = ['a.mov', 'b.wav', 'c.mxf'].map((n) => join(stack.watchDir, n));
  for (const [i, f] of files.entries()) await writeFile(f, randomBytes((20 + i) * KiB));

  let d = await startAndWait(stack, ['--upload-existing']);
  assert.ok(!d.lines.some((l) => l.event === 'baseline'), 'no baseline with --upload-existing');
  for (const f of files) await d.waitFor((l) => l.event === 'done' && l.file === f, 60_000, `${f} to be imported`);
  await stopClean(d);

  // The flag only means something on a first start: given again later it must not re-import.
  d = await startAndWait(stack, ['--upload-existing']);
  await settle(stack, d, 'sentinel.mov');
  await stopClean(d);

  const got = imported(stack);
  assert.deepEqual([...got.keys()].sort(), ['a.mov', 'b.wav', 'c.mxf', 'sentinel.mov']);
  for (const f of files) {
    const e = got.get(f.split('/').pop()!)!;
    assert.equal(e.count, 1, `${f} imported exactly once`);
    assert.equal(e.sha256, await sha256File(f));
  }
});
