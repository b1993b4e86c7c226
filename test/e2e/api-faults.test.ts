/**
 * Issue 4.4 on the real daemon: Frame.io answers 429 to every 5th API call and 503 to every 7th (both with
 * Retry-After: 1). A run of 30 files still lands every file exactly once with the right sha256, the client
 * waits out every Retry-After, and the API never sees more calls per second than
 * `frameio.maxRequestsPerSecond` — measured on the emulator's own record of when each call arrived.
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

  const calls = stack.emulator.calls().filter((c) => c.path.startsWith('/v4/'));
  const limited = calls.filter((c) => c.status === 429);
  const unavailable = calls.filter((c) => c.status === 503);
  assert.ok(limited.length >= 10 && unavailable.length >= 5, `the faults fired (${limited.length} × 429, ${unavailable.length} × 503)`);

  // Never more than MAX_RPS calls arrive within any one second.
  let peak = 0;
  for (let i = 0, j = 0; i < calls.length; i++) {
    while (calls[j]!.at <= calls[i]!.at - 1000) j++;
    peak = Math.max(peak, i - j + 1);
  }
  assert.ok(peak <= MAX_RPS, `at most ${MAX_RPS} calls in any second, saw ${peak}`);

  // A 429 blocks its whole operation for Retry-After; a 503 delays the retry of that request by it.
  const slack = 50;
  for (const c of limited) {
    const early = calls.find((d) => d.operation === c.operation && d.at > c.at && d.at < c.at + 1000 - slack);
    assert.equal(early, undefined, `${c.operation} called ${early ? early.at - c.at : 0} ms after a 429 with Retry-After: 1`);
  }
  let checked = 0;
  // Only paths one job alone calls (a file's own URL): there the next call of the same path is the retry.
  for (const c of unavailable.filter((x) => x.method !== 'POST' && x.path.includes('/files/'))) {
    const retry = calls.find((d) => d.method === c.method && d.path === c.path && d.at > c.at);
    if (!retry) continue;
    checked++;
    assert.ok(retry.at - c.at >= 1000 - slack, `${c.method} ${c.operation} retried ${retry.at - c.at} ms after a 503 with Retry-After: 1`);
  }
  assert.ok(checked >= 1, 'at least one 503 on a file URL was retried and checked');
  t.diagnostic(`${FILES} files in ${seconds.toFixed(1)} s; ${calls.length} API calls, ${limited.length} × 429, ${unavailable.length} × 503, peak ${peak} calls/s (cap ${MAX_RPS}); ${checked} 503 retries checked`);
});
