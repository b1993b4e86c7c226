/**
 * Issue 4.4 on the real daemon: Frame.io answers 429 to every 5th API call and 503 to every 7th (both with
 * Retry-After: 1). A run of 30 files still lands every file exactly once with the right sha256, the client
 * waits out every Retry-After, and never sends more calls per second than `frameio.maxRequestsPerSecond` —
 * timed on the daemon's own call log, which must match the emulator's record of what arrived.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File, startStack, until } from './harness.ts';

const FILES = 30;
const MAX_RPS = 6;

test('30 files through 429s on every 5th call and 503s on every 7th: each imported once, Retry-After honoured, rate capped', { timeout: 300_000 }, async (t) => {
  const stack = await startStack({
    emulator: { faults: { status429EveryN: 5, status503EveryN: 7, retryAfterSeconds: 1 } },
    config: (c) => {
      c.watch.stabilitySeconds = 1;
      c.watch.pollIntervalSeconds = 0.5;
      c.frameio.maxRequestsPerSecond = MAX_RPS;
      c.upload = { maxAttempts: 5, statusPollSeconds: 0.5, stallTimeoutSeconds: 60 };
    },
  });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  const files = new Map<string, string>();
  for (let i = 0; i < FILES; i++) {
    const name = `shot${String(i).padStart(2, '0')}.mov`;
    const path = join(stack.watchDir, name);
    await writeFile(path, randomBytes(64 * 1024 + i * 4096));
    files.set(name, path);
  }
  const startedAt = Date.now();
  await until(() => daemon.lines.filter((l) => l.event === 'done' || l.event === 'failed').length >= FILES, 240_000, `${FILES} jobs to end`, 250);
  const seconds = (Date.now() - startedAt) / 1000;
  await new Promise((r) => setTimeout(r, 1_000)); // anything imported twice would show by now

  assert.equal(daemon.lines.filter((l) => l.event === 'failed').length, 0, 'no job failed');
  const ledger = stack.emulator.ledger();
  for (const [name, path] of files) {
    const complete = ledger.filter((e) => e.name === name && e.status === 'complete');
    assert.equal(complete.length, 1, `${name} imported exactly once: ${JSON.stringify(ledger.filter((e) => e.name === name).map((e) => e.status))}`);
    assert.equal(complete[0]!.sha256, await sha256File(path));
    assert.ok(ledger.filter((e) => e.name === name).every((e) => e.status === 'complete' || e.status === 'deleted'), `${name}: nothing else left in Frame.io`);
  }

  // Two records of the same calls. The daemon's `frameio-call` lines (debug) say when each call left it
  // (sent = time − durationMs); the emulator's say when each arrived. Timing is checked on the sends:
  // arrival adds the machine's scheduling, and on a loaded runner a call the daemon sent before it had read
  // a 429 can arrive 0.7 s after that 429 (timers run before I/O in a loop iteration that was held up).
  // The emulator's record keeps the daemon honest: it must have logged every call the emulator answered.
  const logged = daemon.lines.filter((l) => l.event === 'frameio-call');
  const calls = stack.emulator.calls().filter((c) => c.path.startsWith('/v4/'));
  const sends = logged.map((l) => ({ operation: String(l.operation), status: Number(l.status), at: Date.parse(String(l.time)) - Number(l.durationMs) }));
  const byStatus = (xs: { status: number }[]) => Object.fromEntries(Object.entries(Object.groupBy(xs, (x) => x.status)).map(([s, v]) => [s, v!.length]));
  assert.deepEqual(byStatus(sends), byStatus(calls), 'the daemon logged every call the emulator answered, with its status');
  const limited = sends.filter((c) => c.status === 429);
  const unavailable = sends.filter((c) => c.status === 503);
  assert.ok(limited.length >= 10 && unavailable.length >= 5, `the faults fired (${limited.length} × 429, ${unavailable.length} × 503)`);

  // Never more than MAX_RPS calls sent within any one second.
  sends.sort((a, b) => a.at - b.at);
  let peak = 0;
  for (let i = 0, j = 0; i < sends.length; i++) {
    while (sends[j]!.at <= sends[i]!.at - 1000) j++;
    peak = Math.max(peak, i - j + 1);
  }
  assert.ok(peak <= MAX_RPS, `at most ${MAX_RPS} calls sent in any second, saw ${peak}`);

  // A 429 blocks its whole operation for Retry-After from the moment the daemon read it (its
  // `frameio-rate-limited` line); a call already sent by then was in flight and is no breach.
  const slack = 50;
  const blocks = daemon.lines.filter((l) => l.event === 'frameio-rate-limited');
  assert.equal(blocks.length, limited.length, 'each 429 read and waited out');
  for (const b of blocks) {
    assert.equal(b.waitMs, 1000, 'the wait is the Retry-After');
    const readAt = Date.parse(String(b.time));
    // +5: both stamps are rounded to the ms, and a call in the 429's own millisecond left before it was read.
    const early = sends.find((d) => d.operation === b.operation && d.at > readAt + 5 && d.at < readAt + 1000 - slack);
    assert.equal(early, undefined, `${String(b.operation)} sent ${early ? early.at - readAt : 0} ms after a 429 with Retry-After: 1 was read`);
  }
  // A 503 delays the retry of that request by Retry-After: on the emulator's clock, the next call of the
  // same path cannot arrive sooner (the retry is sent after the 503 arrived, so load only adds time).
  // Only paths one job alone calls (a file's own URL): there the next call of the same path is the retry.
  let checked = 0;
  for (const c of calls.filter((x) => x.status === 503 && x.method !== 'POST' && x.path.includes('/files/'))) {
    const retry = calls.find((d) => d.method === c.method && d.path === c.path && d.at > c.at);
    if (!retry) continue;
    checked++;
    assert.ok(retry.at - c.at >= 1000 - slack, `${c.method} ${c.operation} retried ${retry.at - c.at} ms after a 503 with Retry-After: 1`);
  }
  assert.ok(checked >= 1, 'at least one 503 on a file URL was retried and checked');
  t.diagnostic(`${FILES} files in ${seconds.toFixed(1)} s; ${sends.length} API calls, ${limited.length} × 429, ${unavailable.length} × 503, peak ${peak} calls/s (cap ${MAX_RPS}); ${checked} 503 retries checked`);
});
