/**
 * Issue 10 item 6, end to end: three real daemons sharing one PostgreSQL store and `store.secretKey`, each
 * started with a COPY of the same refresh-token file, Frame.io access tokens living 3 s. Without the shared
 * login the first refresh of one node kills the token the others hold; with it, files keep being imported
 * across many token lifetimes, IMS never answers invalid_grant, and no node logs auth-lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pgSkipReason, startPgCluster } from '../jobs/pg-cluster.ts';
import { BIN, killRecordedCloudflared, spawnDaemon, startStack, until, type DaemonProcess } from './harness.ts';

const TTL_SECONDS = 3;
const WAVES = 4;
const PER_WAVE = 5;
const skip = pgSkipReason();
const execFileP = promisify(execFile);

test('fleet login: three daemons from one copied token file share one login through PostgreSQL — files imported over many token lifetimes, never locked out', { skip, timeout: 120_000 }, async (t) => {
  const cluster = await startPgCluster();
  const url = await cluster.createDatabase('fleetlogin');
  const secretKey = randomBytes(32).toString('hex');
  const stack = await startStack({
    emulator: { accessTokenTtlSeconds: TTL_SECONDS },
    config: (c) => {
      c.store = { url, leaseTimeoutSeconds: 3, secretKey };
      c.watch.stabilitySeconds = 1;
      c.watch.pollIntervalSeconds = 0.5;
      c.upload = { statusPollSeconds: 0.5 };
      c.frameio.maxRequestsPerSecond = 50;
      c.log = { level: 'info' };
    },
  });
  const extra: { stateDir: string; d?: DaemonProcess }[] = [];
  t.after(async () => {
    for (const e of extra) {
      if (e.d && e.d.child.exitCode === null && e.d.child.signalCode === null) e.d.child.kill('SIGKILL');
      await e.d?.exited;
      await killRecordedCloudflared(e.stateDir);
    }
    await stack.close();
    await cluster.stop();
  });

  // Nodes 2 and 3: their own state dir, and a copy of node 1's token file — the same refresh token.
  const configs = [stack.configFile];
  for (const n of [2, 3]) {
    const stateDir = join(stack.dir, `state-${n}`);
    await mkdir(stateDir, { mode: 0o700 });
    const refreshTokenFile = join(stateDir, 'refresh-token');
    await copyFile(String((stack.config.frameio as Record<string, unknown>).refreshTokenFile), refreshTokenFile);
    const cfg = structuredClone(stack.config);
    cfg.stateDir = stateDir;
    (cfg.frameio as Record<string, unknown>).refreshTokenFile = refreshTokenFile;
    const file = join(stack.dir, `postflow-${n}.json`);
    await writeFile(file, JSON.stringify(cfg, null, 2), { mode: 0o600 });
    configs.push(file);
    extra.push({ stateDir });
  }
  const startedAt = Date.now();
  const daemons = [
    stack.startDaemon(),
    ...extra.map((e, i) => (e.d = spawnDaemon(['run', '--config', configs[i + 1]!], { CLOUDFLARED_STANDIN_REGISTRY: stack.registry }))),
  ];
  await Promise.all(daemons.map((d, i) => d.waitFor((l) => l.event === 'started', 60_000, `daemon ${i + 1} to start`)));

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
