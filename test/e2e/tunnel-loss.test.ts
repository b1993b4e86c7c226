/**
 * Issue 4.2 on the real daemon: cloudflared (the stand-in) dies or loses its edge connections while several
 * imports are pulled through it. The supervisor restarts it under a new quick-tunnel hostname; every import
 * in flight is re-issued on the new URL, the half-imported Frame.io file of the old URL is deleted, and
 * every file lands exactly once with the right sha256 — without spending the job's attempts. Repeated
 * crashes back off with growing, logged delays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File, startStack, until, type DaemonProcess, type LogLine, type Stack } from './harness.ts';

const MiB = 1024 * 1024;

async function cloudflaredPid(stack: Stack): Promise<number> {
  return Number((await readFile(join(stack.stateDir, 'cloudflared.pid'), 'utf8')).trim());
}

/** Drops `count` files, waits until Frame.io is pulling every one of them, returns path → name. */
async function dropAndWaitForPulls(stack: Stack, count: number, size: number): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const name = `reel${i}.mov`;
    const path = join(stack.watchDir, name);
    await writeFile(path, randomBytes(size + i));
    files.set(path, name);
  }
  await until(
    () => [...files.values()].every((name) => stack.emulator.ledger().some((e) => e.name === name && e.status === 'importing' && e.bytesReceived > 0)),
    60_000,
    'Frame.io to be pulling every file',
  );
  return files;
}

async function assertEachOnce(stack: Stack, daemon: DaemonProcess, files: Map<string, string>, firstUrl: string): Promise<void> {
  const ledger = stack.emulator.ledger();
  for (const [path, name] of files) {
    const entries = ledger.filter((e) => e.name === name);
    const complete = entries.filter((e) => e.status === 'complete');
    assert.equal(complete.length, 1, `${name} imported exactly once: ${JSON.stringify(entries.map((e) => e.status))}`);
    assert.equal(complete[0]!.sha256, await sha256File(path), `${name} arrived intact`);
    assert.ok(!complete[0]!.sourceUrl!.startsWith(firstUrl), `${name} completed through the new tunnel URL`);
    const old = entries.filter((e) => e.sourceUrl!.startsWith(firstUrl));
    assert.ok(old.length >= 1 && old.every((e) => e.status === 'deleted'), `${name}: the old URL's import is deleted, not left beside the good one: ${JSON.stringify(entries.map((e) => [e.status, e.sourceUrl?.slice(0, 40)]))}`);
  }
  const done = daemon.lines.filter((l) => l.event === 'done');
  assert.equal(done.length, files.size);
  for (const d of done) assert.equal(d.attempts, 1, `a tunnel loss costs no attempt (${String(d.file)})`);
  assert.ok(!daemon.lines.some((l) => l.event === 'failed' || l.event === 'retry'), 'no job failed or was retried for the tunnel');
}

function stackConfig(c: Record<string, any>): void {
  c.watch.stabilitySeconds = 1;
  c.watch.pollIntervalSeconds = 0.3;
  c.upload = { maxAttempts: 2, statusPollSeconds: 0.5, stallTimeoutSeconds: 60 };
}

test('cloudflared killed during four imports: restarted, every import re-issued on the new URL, old halves deleted', { timeout: 180_000 }, async (t) => {
  const stack = await startStack({ config: stackConfig, emulator: { pullChunkBytes: MiB, faults: { pullBytesPerSecond: MiB } } });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');
  const firstUrl = String((await daemon.waitFor((l) => l.event === 'tunnel-url', 60_000, 'the tunnel URL')).publicUrl);
  assert.match(firstUrl, /^https:\/\/[a-z-]+\.trycloudflare\.com$/);

  const files = await dropAndWaitForPulls(stack, 4, 12 * MiB);
  const pid = await cloudflaredPid(stack);
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  const restart = await daemon.waitFor((l) => l.event === 'tunnel-restart', 30_000, 'the supervisor to notice');
  assert.match(String(restart.reason), /SIGKILL/);
  assert.equal(typeof restart.delayMs, 'number');
  const newUrl = await daemon.waitFor((l) => l.event === 'tunnel-url' && l.publicUrl !== firstUrl, 60_000, 'a new tunnel URL');
  assert.notEqual(newUrl.publicUrl, firstUrl);
  stack.emulator.setFaults({ pullBytesPerSecond: 0 });

  const urlAt = Date.now();
  await until(() => daemon.lines.filter((l) => l.event === 'done').length >= files.size, 90_000, 'every import to complete');
  t.diagnostic(`kill → new URL ${urlAt - killedAt} ms, → all ${files.size} imports done ${Date.now() - killedAt} ms`);
  const reissued = new Set(daemon.lines.filter((l) => l.event === 'reissue').map((l) => l.job));
  assert.equal(reissued.size, files.size, 'every import in flight was re-issued');
  await assertEachOnce(stack, daemon, files, firstUrl);
  assert.notEqual(await cloudflaredPid(stack), pid, 'a new cloudflared runs');
});

test('cloudflared stops answering /ready (edge connections dropped): imports wait, then go through the restarted tunnel', { timeout: 180_000 }, async (t) => {
  const stack = await startStack({ config: stackConfig, emulator: { pullChunkBytes: MiB, faults: { pullBytesPerSecond: MiB } } });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');
  const firstUrl = String((await daemon.waitFor((l) => l.event === 'tunnel-url', 60_000, 'the tunnel URL')).publicUrl);

  const files = await dropAndWaitForPulls(stack, 3, 12 * MiB);
  // The stand-in's SIGUSR1 is CLOUDFLARED_STANDIN_UNREADY_AFTER_MS on demand: every edge connection drops,
  // /ready answers 503, requests through the tunnel break. The process itself stays up.
  process.kill(await cloudflaredPid(stack), 'SIGUSR1');
  await daemon.waitFor((l) => l.event === 'tunnel-unready', 10_000, 'the supervisor to see the tunnel unready');
  // While it is down, the broken pulls are blamed on the tunnel: the jobs wait instead of failing.
  await daemon.waitFor((l) => l.event === 'reissue' && l.reason === 'tunnel-lost', 30_000, 'a job to wait for the tunnel');
  stack.emulator.setFaults({ pullBytesPerSecond: 0 });
  const unhealthy = await daemon.waitFor((l) => l.event === 'tunnel-unhealthy', 60_000, 'the supervisor to give up on the unready cloudflared');
  assert.match(String(unhealthy.reason), /stayed unready/);
  await daemon.waitFor((l) => l.event === 'tunnel-url' && l.publicUrl !== firstUrl, 60_000, 'a new tunnel URL');

  await until(() => daemon.lines.filter((l) => l.event === 'done').length >= files.size, 90_000, 'every import to complete');
  await assertEachOnce(stack, daemon, files, firstUrl);
});

test('cloudflared that keeps crashing is restarted with growing delays, never in a tight loop', { timeout: 120_000 }, async (t) => {
  const stack = await startStack({ config: stackConfig });
  t.after(() => stack.close());
  const daemon = stack.startDaemon({ env: { CLOUDFLARED_STANDIN_EXIT_AFTER_MS: '300' } });
  await until(() => daemon.lines.filter((l) => l.event === 'tunnel-restart').length >= 4, 60_000, 'four restarts');
  const restarts = daemon.lines.filter((l) => l.event === 'tunnel-restart');
  const delays = restarts.map((l) => Number(l.delayMs));
  for (let i = 1; i < delays.length; i++) assert.ok(delays[i]! >= delays[i - 1]!, `restart delays grow: ${delays.join(', ')}`);
  assert.ok(delays[3]! >= 4 * delays[0]! * 0.5, `the fourth delay is several times the first: ${delays.join(', ')}`);
  assert.deepEqual(restarts.map((l) => l.attempt), [1, 2, 3, 4]);
  for (const l of restarts) assert.match(String(l.msg), /cloudflared restart #\d+ in \d+ ms: cloudflared exited with code 1/);

  // Each restart really waited its delay before the next cloudflared started.
  const starts = daemon.lines.filter((l) => l.event === 'tunnel-starting');
  const at = (l: LogLine) => Date.parse(String(l.time));
  for (const r of restarts.slice(0, 3)) {
    const next = starts.find((s) => at(s) >= at(r));
    assert.ok(next, 'a start follows each restart line');
    assert.ok(at(next) - at(r) >= Number(r.delayMs) - 20, `started ${at(next) - at(r)} ms after a ${String(r.delayMs)} ms backoff`);
  }
  assert.ok(daemon.child.exitCode === null, 'the daemon keeps running while its tunnel is down');
});
