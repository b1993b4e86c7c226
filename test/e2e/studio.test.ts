/**
 * Issue 9 through the real daemon: a folder in quiet hours queues files but starts no import, `postflow
 * status` says when the window opens; a bad edit of the config file is refused with one line and changes
 * nothing; a good edit (quiet hours off, a bandwidth cap) is taken while running; the three files of one
 * sub-folder drop end in one batch notice.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { BIN, startStack } from './harness.ts';

const MiB = 1024 * 1024;
const hhmm = (d: Date): string => `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;

test('quiet hours hold new imports, status shows the opening, config edits apply live (bad ones refused), one batch notice', { timeout: 180_000 }, async (t) => {
  const now = new Date();
  // A window around now, two hours long (it may cross midnight, which quiet hours allow).
  const quiet = `${hhmm(new Date(now.getTime() - 3_600_000))}-${hhmm(new Date(now.getTime() + 3_600_000))}`;
  const stack = await startStack({
    config: (c) => {
      c.watch.folders[0].quietHours = quiet;
      c.watch.folders[0].batchGapSeconds = 1;
      c.watch.folders[0].priority = 3;
    },
  });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  await mkdir(join(stack.watchDir, 'ep1'));
  for (const name of ['a.mov', 'b.mov', 'c.mov']) await writeFile(join(stack.watchDir, 'ep1', name), randomBytes(2 * MiB));
  for (const name of ['a.mov', 'b.mov', 'c.mov']) {
    await daemon.waitFor((l) => l.event === 'queued' && String(l.file).endsWith(name), 30_000, `${name} queued`);
  }
  // Claims run every second; three rounds with nothing started is the quiet window holding.
  const queuedAt = daemon.lines.length;
  await new Promise((r) => setTimeout(r, 3_000));
  assert.ok(!daemon.lines.slice(queuedAt).some((l) => l.event === 'exposing' || l.event === 'importing'), 'no import starts in quiet hours');
  assert.equal(stack.emulator.ledger().length, 0);

  const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'status', '--config', stack.configFile]);
  const opens = hhmm(new Date(now.getTime() + 3_600_000));
  assert.match(stdout, new RegExp(`quiet hours: next window opens (\\w{3} \\w{3} \\d{2} )?${opens}`), stdout);
  const jobs = await promisify(execFile)(process.execPath, [BIN, 'jobs', '--state', 'queued', '--config', stack.configFile]);
  assert.match(jobs.stdout, /PRIO/, 'the queue shows its priorities');

  // A bad edit: one error line naming the key, the quiet window stays.
  const bad = structuredClone(stack.config) as any;
  bad.watch.folders[0].quietHours = '09:00-25:00';
  await writeFile(stack.configFile, JSON.stringify(bad, null, 2), { mode: 0o600 });
  const refused = await daemon.waitFor((l) => l.event === 'reload-failed', 20_000, 'the bad edit refused');
  assert.match(String(refused.msg), /watch\.folders\[0\]\.quietHours: found "09:00-25:00"/);
  assert.equal(daemon.lines.filter((l) => l.event === 'reload-failed').length, 1, 'one line for one bad edit');
  assert.ok(!daemon.lines.some((l) => l.event === 'config-reloaded'));

  // A good edit: quiet hours off and a 4 MiB/s cap, taken while running.
  const good = structuredClone(stack.config) as any;
  good.watch.folders[0].quietHours = '';
  good.bandwidth = '4M';
  await writeFile(stack.configFile, JSON.stringify(good, null, 2), { mode: 0o600 });
  const reloaded = await daemon.waitFor((l) => l.event === 'config-reloaded', 20_000, 'the good edit applied');
  assert.deepEqual([...(reloaded.applied as string[])].sort(), ['bandwidth', 'watch.folders[0].quietHours']);
  assert.equal(reloaded.bandwidth, 4 * MiB);
  await daemon.waitFor((l) => l.event === 'bandwidth' && l.global === 4 * MiB, 5_000, 'the cap in force');

  const batch = await daemon.waitFor((l) => l.event === 'batch', 90_000, 'the batch notice');
  assert.equal(batch.files, 3);
  assert.equal(batch.done, 3);
  assert.equal(batch.failed, 0);
  assert.equal(batch.subFolder, 'ep1');
  assert.equal(batch.totalBytes, 6 * MiB);
  assert.equal(daemon.lines.filter((l) => l.event === 'batch').length, 1, 'one notice for the drop');
  assert.equal(stack.emulator.ledger().filter((e) => e.status === 'complete').length, 3);
});
