import assert from 'node:assert/strict';
import { test } from 'node:test';
import { choosePath, msUntilDirect, TunnelOutage, type PathInput } from '../../src/upload/path-choice.ts';
import { REMOTE_UPLOAD_LIMIT } from '../../src/upload/run-job.ts';

const base: PathInput = { size: 1_000_000, setting: 'auto', tunnelDownForMs: null, directAfterTunnelDownMs: 120_000, remoteLimit: REMOTE_UPLOAD_LIMIT };

test('the remote-upload cap is 50 GB decimal, and only files above it are too large', () => {
  assert.equal(REMOTE_UPLOAD_LIMIT, 50_000_000_000);
  assert.deepEqual(choosePath({ ...base, size: REMOTE_UPLOAD_LIMIT }), { path: 'remote', reason: 'remote' });
  assert.deepEqual(choosePath({ ...base, size: REMOTE_UPLOAD_LIMIT + 1 }), { path: 'direct', reason: 'over-remote-limit' });
  assert.deepEqual(choosePath({ ...base, size: 51 * 1024 ** 3 }), { path: 'direct', reason: 'over-remote-limit' });
});

test('a file over the cap goes direct whatever the folder says, even "remote"', () => {
  for (const setting of ['auto', 'remote', 'direct'] as const) {
    assert.equal(choosePath({ ...base, setting, size: REMOTE_UPLOAD_LIMIT + 1 }).path, 'direct', setting);
  }
});

test('folder "direct" sends every file direct; "remote" never falls back on a down tunnel', () => {
  assert.deepEqual(choosePath({ ...base, setting: 'direct', size: 1 }), { path: 'direct', reason: 'folder-direct' });
  assert.deepEqual(choosePath({ ...base, setting: 'remote', tunnelDownForMs: 10 * 3_600_000 }), { path: 'remote', reason: 'remote' });
  assert.equal(msUntilDirect({ ...base, setting: 'remote', tunnelDownForMs: 10 * 3_600_000 }), null);
});

test('"auto" goes direct once the tunnel has been down for the configured time, not before', () => {
  assert.equal(choosePath({ ...base, tunnelDownForMs: 119_999 }).path, 'remote');
  assert.deepEqual(choosePath({ ...base, tunnelDownForMs: 120_000 }), { path: 'direct', reason: 'tunnel-down' });
  assert.equal(msUntilDirect({ ...base, tunnelDownForMs: 20_000 }), 100_000);
  assert.equal(msUntilDirect({ ...base, tunnelDownForMs: 500_000 }), 0);
  assert.equal(msUntilDirect({ ...base, tunnelDownForMs: null }), null, 'a ready tunnel: nothing to wait out');
  assert.equal(choosePath({ ...base, directAfterTunnelDownMs: 0, tunnelDownForMs: 0 }).path, 'direct', '0 switches at once');
});

test('the outage clock starts at the first down, ignores repeated downs, and resets when the tunnel is ready', () => {
  const o = new TunnelOutage();
  assert.equal(o.downFor(1000), null);
  o.down(1000);
  o.down(5000); // cloudflared restarting again during the same outage
  assert.equal(o.downFor(9000), 8000);
  o.up();
  assert.equal(o.downFor(9000), null);
  o.down(10_000);
  assert.equal(o.downFor(10_500), 500);
  assert.equal(new TunnelOutage(42).downFor(100), 58, 'a tunnel not ready when the clock is made counts from then');
});
