/**
 * Issue 10 item 6, end to end: three real daemons sharing one PostgreSQL store and `store.secretKey`, each
 * started with a COPY of the same refresh-token file, Frame.io access tokens living 3 s. Without the shared
 * login the first refresh of one node kills the token the others hold; with it, files keep being imported
 * across many token lifetimes, IMS never answers invalid_grant, and no node logs auth-lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pgSkipReason } from '../jobs/pg-cluster.ts';
import { BIN, startFleet, until } from './harness.ts';

const TTL_SECONDS = 3;
const WAVES = 4;
const PER_WAVE = 5;
const skip = pgSkipReason();
const execFileP = promisify(execFile);

test('fleet login: three daemons from one copied token file share one login through PostgreSQL — files imported over many token lifetimes, never locked out', { skip, timeout: 120_000 }, async (t) => {
  // Nodes 2 and 3 start with a copy of node 1's token file — the same refresh token.
  const { stack, configs, daemons, startedAt } = await startFleet(t, {
    database: 'fleetlogin',
    login: 'copied',
    store: { leaseTimeoutSeconds: 3, secretKey: randomBytes(32).toString('hex') },
    emulator: { accessTokenTtlSeconds: TTL_SECONDS },
  });

  // Files in waves a token lifetime apart, so every node needs Frame.io across several refreshes.
  let dropped = 0;
  for (let w = 0; w < WAVES; w++) {
    await Promise.all(Array.from({ length: PER_WAVE }, (_, i) => writeFile(join(stack.watchDir, `w${w}-${i}.mov`), randomBytes(4096 + i))));
    dropped += PER_WAVE;
    await delay(TTL_SECONDS * 1000);
  }
  const complete = () => stack.emulator.ledger().filter((e) => e.status === 'complete').length;
  await until(() => complete() >= dropped, 60_000, 'every file imported', 100);
  const elapsedS = (Date.now() - startedAt) / 1000;

  // A command on a node whose token file is a stale copy (the fleet has rotated past it) checks the fleet's
  // login, not the file: it says the login works, and redeems nothing the fleet needs (IMS checked below).
  const status = await execFileP(process.execPath, [BIN, 'auth', 'status', '--config', configs[2]!], { timeout: 30_000 }).catch((err: { code?: number; stdout?: string; stderr?: string }) => err);
  assert.match(String(status.stdout), /logged in to Frame\.io[\s\S]*the fleet's login, shared through PostgreSQL/, `auth status on a node with a stale copy: ${status.stdout}${status.stderr}`);
  await Promise.all(Array.from({ length: PER_WAVE }, (_, i) => writeFile(join(stack.watchDir, `after-status-${i}.mov`), randomBytes(2048 + i))));
  dropped += PER_WAVE;
  await until(() => complete() >= dropped, 60_000, 'files dropped after auth status imported', 100);

  const ims = stack.emulator.calls().filter((c) => c.operation === 'ims.token');
  assert.deepEqual(ims.filter((c) => c.status !== 200).map((c) => c.status), [], 'IMS never refused a refresh (invalid_grant)');
  for (const [i, d] of daemons.entries()) {
    assert.deepEqual(d.lines.filter((l) => l.event === 'auth-lost' || l.event === 'uploads-paused').map((l) => l.msg), [], `node ${i + 1} never lost the login`);
  }
  assert.equal(daemons.flatMap((d) => d.lines.filter((l) => l.event === 'fleet-login-seeded')).length, 1, 'one node seeded the fleet login');
  // One chain of refreshes for the fleet (a refresh at 80 % of each lifetime, plus 401-driven ones), not three.
  assert.ok(ims.length <= Math.ceil(elapsedS / (0.8 * TTL_SECONDS)) + 4, `${ims.length} IMS token calls in ${elapsedS.toFixed(1)} s with ${TTL_SECONDS} s tokens`);
  assert.equal(complete(), dropped);
  const perNode = daemons.map((d) => d.lines.filter((l) => l.event === 'done').length);
  assert.ok(perNode.filter((n) => n > 0).length >= 2, `several nodes imported with the shared login: ${perNode.join(', ')}`);
  t.diagnostic(`fleet login: ${JSON.stringify({ elapsedS: Math.round(elapsedS), imsCalls: ims.length, donePerNode: perNode })}`);
  for (const d of daemons) assert.equal((await d.stop('SIGTERM')).code, 0);
});
