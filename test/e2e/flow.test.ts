/**
 * Issue 3's end-to-end proof: the real daemon, the Frame.io emulator really downloading through the
 * cloudflared stand-in, real files dropped into the watched folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { descendants, isAlive, sha256File, startStack, until } from './harness.ts';

const MiB = 1024 * 1024;

test('a watched folder flows into Frame.io: slow export, sub-folder files, temp files ignored', { timeout: 240_000 }, async (t) => {
  const stack = await startStack();
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  // A large export written slowly: chunks every 400 ms over ~6 s, longer than the 2 s stability window.
  const slow = join(stack.watchDir, 'master_v1.mov');
  const writeSlowly = (async () => {
    const fh = await open(slow, 'w');
    for (let i = 0; i < 15; i++) {
      await fh.write(randomBytes(20 * MiB));
      await fh.sync();
      await sleep(400);
    }
    await fh.close();
    return Date.now();
  })();
  await mkdir(join(stack.watchDir, 'ep101', 'reel2'), { recursive: true });
  const small1 = join(stack.watchDir, 'ep101', 'reel2', 'cut.mp4');
  const small2 = join(stack.watchDir, 'ep101', 'mix.wav');
  await writeFile(small1, randomBytes(3 * MiB + 17));
  await writeFile(small2, randomBytes(512 * 1024));
  await writeFile(join(stack.watchDir, '.DS_Store'), randomBytes(1024));
  await writeFile(join(stack.watchDir, 'ep101', 'render.part'), randomBytes(4096));
  const slowFinishedAt = await writeSlowly;

  await until(() => stack.emulator.ledger().filter((e) => e.status === 'complete').length >= 3, 150_000, 'three imports to complete');
  await daemon.waitFor((l) => l.event === 'done' && String(l.file).endsWith('master_v1.mov'), 30_000, 'the done line of the slow file');
  await sleep(1500); // anything imported twice would show up now

  const ledger = stack.emulator.ledger();
  const byName = (name: string) => ledger.filter((e) => e.name === name && e.status !== 'deleted');
  for (const [path, name] of [
    [slow, 'master_v1.mov'],
    [small1, 'cut.mp4'],
    [small2, 'mix.wav'],
  ] as const) {
    const entries = byName(name);
    assert.equal(entries.length, 1, `${name} imported exactly once (ledger: ${JSON.stringify(ledger.map((e) => [e.name, e.status]))})`);
    assert.equal(entries[0]!.sha256, await sha256File(path), `${name} arrived with the same sha256`);
  }
  assert.ok(!ledger.some((e) => e.name === '.DS_Store' || e.name === 'render.part'), 'temp files are never imported');

  const slowEntry = byName('master_v1.mov')[0]!;
  const firstRequest = Math.min(...slowEntry.requests.map((r) => r.at));
  assert.ok(firstRequest >= slowFinishedAt, `the slow file was first requested ${slowFinishedAt - firstRequest} ms before its last write`);
  assert.ok(slowEntry.requests.filter((r) => r.range).length >= 2, 'the emulator pulled with Range requests');

  const progress = daemon.lines.filter((l) => l.event === 'progress' && String(l.file).endsWith('master_v1.mov'));
  assert.ok(progress.length >= 1, 'progress lines logged for the large file');
  for (const p of progress) {
    assert.equal(typeof p.percent, 'number');
    assert.equal(typeof p.bytes, 'number');
    assert.equal(typeof p.rate, 'number');
    assert.ok(typeof p.job === 'string', 'every job line carries the job id');
  }
  const done = daemon.lines.filter((l) => l.event === 'done');
  assert.equal(done.length, 3);
  for (const d of done) {
    assert.match(String(d.viewUrl), /^https:\/\/next\.frame\.io\/project\/.+\/view\/.+/);
    assert.equal(typeof d.frameioFileId, 'string');
    assert.equal(typeof d.size, 'number');
    assert.equal(typeof d.durationMs, 'number');
    assert.equal(typeof d.rate, 'number');
  }

  const summaries = daemon.lines.filter((l) => l.event === 'summary');
  assert.deepEqual(summaries.map((l) => l.state), ['done', 'done', 'done'], 'one summary line per job, at its end');
  assert.deepEqual(new Set(summaries.map((l) => l.job)), new Set(done.map((l) => l.job)));

  // SIGTERM: exit 0 within 10 s, no child process left behind (cloudflared included).
  const children = await descendants(daemon.child.pid!);
  assert.ok(children.length >= 1, 'cloudflared runs as a child of the daemon');
  const stopAt = Date.now();
  const exit = await daemon.stop('SIGTERM');
  assert.equal(exit.code, 0, `exit code (stderr: ${daemon.stderr.join(' | ')})`);
  assert.ok(Date.now() - stopAt < 10_000, 'stopped within 10 s');
  await until(() => children.every((pid) => !isAlive(pid)), 3000, 'children to be gone');
});
