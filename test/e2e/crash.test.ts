/**
 * Issue 4 item 1: crash safety. The real daemon is killed with SIGKILL at many points of the flow — picked
 * from its own log events (queued, exposing, importing, progress, sent, done), from time, and inside the
 * window between "remote_upload sent" and "answer stored" — and restarted each time. At the end every file
 * is in Frame.io exactly once with the right sha256, nothing half-imported is left beside it, and every
 * job in the store is done.
 *
 * The window is reached with a small HTTP proxy between the daemon and the emulator: armed, it passes one
 * remote_upload on (so Frame.io creates the file) but holds the answer back, and the daemon is killed while
 * it waits. The next start must find that file in the destination folder and delete it before importing
 * again (run-job.ts cleanupPrevious), not leave a second copy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openSqliteStore } from '../../src/jobs/sqlite-store.ts';
import { descendants, isAlive, sha256File, startStack, until, type DaemonProcess, type LogLine } from './harness.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

interface ApiProxy {
  url: string;
  /** Holds back the answer of the next remote_upload; resolves with the Frame.io file it created. */
  holdNextRemoteUpload(): Promise<{ fileId: string; name: string }>;
  disarm(): void;
  close(): Promise<void>;
}

/** A pass-through proxy to the emulator's API that can swallow one remote_upload answer on demand. */
async function startApiProxy(target: string): Promise<ApiProxy> {
  let armed: ((v: { fileId: string; name: string }) => void) | undefined;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', target);
    const hold = armed !== undefined && req.method === 'POST' && url.pathname.endsWith('/files/remote_upload') ? armed : undefined;
    if (hold) armed = undefined;
    const up = request(url, { method: req.method, headers: req.headers }, (answer) => {
      if (!hold) {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        return;
      }
      // Frame.io has created the file and answered; the daemon never hears it.
      const parts: Buffer[] = [];
      answer.on('data', (b: Buffer) => parts.push(b));
      answer.on('end', () => {
        const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { data?: { id?: string; name?: string } };
        hold({ fileId: String(body.data?.id), name: String(body.data?.name) });
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    holdNextRemoteUpload: () => new Promise((resolve) => (armed = resolve)),
    disarm: () => (armed = undefined),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

type KillPoint = 'queued' | 'exposing' | 'window' | 'importing' | 'progress' | 'sent' | 'done' | 'time';
const SCHEDULE: readonly KillPoint[] = ['queued', 'exposing', 'window', 'importing', 'progress', 'sent', 'done', 'time'];
const KILLS = 24;
const FILES = 32;

test('SIGKILL at 24 points of the flow over 32 files: every file in Frame.io exactly once, intact; no job stuck', { timeout: 420_000 }, async (t) => {
  let proxy: ApiProxy | undefined;
  const stack = await startStack({
    // Slow pulls and a slightly slow API widen every window between two log events.
    emulator: { faults: { pullBytesPerSecond: 3 * MiB, apiDelayMs: 30 } },
    config: (c) => {
      c.watch.stabilitySeconds = 1;
      c.watch.pollIntervalSeconds = 0.3;
      c.workers = 4;
      c.upload = { statusPollSeconds: 0.5, maxAttempts: 50 };
      c.log = { level: 'info' };
    },
  });
  proxy = await startApiProxy(stack.emulator.url);
  // Point the daemon's API calls at the proxy (IMS stays direct): rewrite the config the harness wrote.
  (stack.config as { frameio: { apiUrl: string } }).frameio.apiUrl = `${proxy.url}/v4`;
  await writeFile(stack.configFile, JSON.stringify(stack.config, null, 2), { mode: 0o600 });
  const cloudflareds = new Set<number>();
  t.after(async () => {
    // Orphans of a failed run: only the cloudflared processes our own daemons started, by pid.
    for (const pid of cloudflareds) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await proxy?.close();
    await stack.close();
  });

  // Files: a mix of sizes, dropped in four waves — two while a daemon runs, two while it is down.
  const sizes = [64 * KiB, 300 * KiB + 7, 1 * MiB, 3 * MiB + 1, 6 * MiB];
  const files = Array.from({ length: FILES }, (_, i) => ({
    path: join(stack.watchDir, i % 3 === 0 ? `ep${i % 4}` : '', `clip-${String(i).padStart(2, '0')}.mov`),
    size: sizes[i % sizes.length]!,
  }));
  const waves = [0, 1, 2, 3].map((w) => files.filter((_, i) => i % 4 === w));
  const drop = async (wave: number) => {
    for (const f of waves[wave]!) {
      await mkdir(join(f.path, '..'), { recursive: true });
      await writeFile(f.path, randomBytes(f.size));
    }
  };

  const all: DaemonProcess[] = [];
  const start = async (): Promise<DaemonProcess> => {
    const d = stack.startDaemon();
    all.push(d);
    await d.waitFor((l) => l.event === 'started', 90_000, 'the daemon to start');
    for (const pid of await descendants(d.child.pid!)) cloudflareds.add(pid);
    return d;
  };

  let d = await start();
  await drop(0);
  const kills: { point: KillPoint; planned: KillPoint; file?: unknown }[] = [];
  const held: { fileId: string; name: string }[] = [];
  const startedAt = Date.now();

  for (let k = 0; k < KILLS; k++) {
    const planned = SCHEDULE[k % SCHEDULE.length]!;
    let point: KillPoint = planned;
    let file: unknown;
    const fallbackMs = 1500 + Math.floor(Math.random() * 1500);
    if (planned === 'time') {
      await new Promise((r) => setTimeout(r, 300 + Math.floor(Math.random() * 2000)));
    } else if (planned === 'window') {
      const hit = await Promise.race([proxy.holdNextRemoteUpload(), d.exited.then(() => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000))]);
      proxy.disarm();
      if (hit) {
        held.push(hit);
        file = hit.name;
        // The daemon cannot have stored an answer it never got.
        assert.ok(!d.lines.some((l) => l.event === 'importing' && l.frameioFileId === hit.fileId), 'no importing line for the held answer');
      } else point = 'time';
    } else {
      const seen = d.lines.length;
      const line = await d
        .waitFor((l: LogLine) => l.event === planned && d.lines.indexOf(l) >= seen, fallbackMs * 2, planned)
        .catch(() => undefined);
      if (line) file = line.file;
      else point = 'time';
    }
    const ours = await descendants(d.child.pid!);
    for (const pid of ours) cloudflareds.add(pid);
    d.child.kill('SIGKILL');
    await d.exited;
    kills.push({ point, planned, file });
    // Waves 1 and 2 appear while the daemon is down (just before a 'queued' kill point), 3 while it runs.
    if (k === 7) await drop(1);
    if (k === 15) await drop(2);
    d = await start();
    if (k === 19) await drop(3);
    // The start ended the cloudflared the killed daemon left behind (pid file), before it spawned its own.
    await until(() => ours.every((pid) => !isAlive(pid)), 10_000, 'the orphaned cloudflared to be ended by the new start');
  }

  // The last daemon runs to the end: every file done, by the runs' done lines or, for a job whose line a
  // kill cut off (between the store's commit and the log write), by the store itself, read-only.
  const doneInStore = (): string[] => {
    const db = new DatabaseSync(join(stack.stateDir, 'postflow.db'), { readOnly: true, timeout: 1000 });
    try {
      return (db.prepare(`SELECT path FROM jobs WHERE state = 'done'`).all() as { path: string }[]).map((r) => r.path);
    } catch {
      return []; // busy or mid-checkpoint: the next look sees it
    } finally {
      db.close();
    }
  };
  const doneFiles = () => new Set(all.flatMap((p) => p.lines.filter((l) => l.event === 'done').map((l) => String(l.file))));
  const allDone = () => {
    const done = doneFiles();
    if (files.every((f) => done.has(f.path))) return true;
    for (const p of doneInStore()) done.add(p);
    return files.every((f) => done.has(f.path));
  };
  try {
    await until(allDone, 240_000, 'every file to be imported', 250);
  } catch (err) {
    // What is missing and why: the store's word on each missing file, and the last daemon's warnings.
    const store = await openSqliteStore({ path: join(stack.stateDir, 'postflow.db') });
    const jobs = await store.list().finally(() => store.close());
    const missing = files.filter((f) => !doneFiles().has(f.path)).map((f) => {
      const j = jobs.find((x) => x.path === f.path);
      return j ? { name: j.name, state: j.state, attempts: j.attempts, nextAttemptAt: j.nextAttemptAt, lastError: j.lastError } : { path: f.path, job: 'none' };
    });
    const warnings = d.lines.filter((l) => Number(l.level) >= 40).slice(-8).map((l) => `${String(l.event)} ${String(l.msg)}`);
    throw new Error(`${(err as Error).message}; now ${Date.now()}; missing ${JSON.stringify(missing)}; kills ${JSON.stringify(kills)}; warnings ${JSON.stringify(warnings)}`);
  }
  const exit = await d.stop('SIGTERM');
  assert.equal(exit.code, 0, `clean exit (stderr: ${d.stderr.join(' | ')})`);

  // Frame.io: exactly one complete copy of each file, with the right bytes; no half import left visible.
  const ledger = stack.emulator.ledger();
  const duplicates: string[] = [];
  for (const f of files) {
    const name = f.path.split('/').pop()!;
    const complete = ledger.filter((e) => e.name === name && e.status === 'complete');
    if (complete.length > 1) duplicates.push(name);
    assert.equal(complete.length, 1, `${name}: ${JSON.stringify(ledger.filter((e) => e.name === name).map((e) => [e.fileId, e.status]))}`);
    assert.equal(complete[0]!.sha256, await sha256File(f.path), `${name} arrived intact`);
  }
  const leftovers = ledger.filter((e) => e.status !== 'complete' && e.status !== 'deleted');
  assert.deepEqual(leftovers.map((e) => [e.name, e.status, e.error]), [], 'every abandoned attempt was deleted');
  assert.equal(ledger.filter((e) => e.status === 'complete').length, FILES, 'nothing else was imported');
  for (const h of held) {
    assert.equal(ledger.find((e) => e.fileId === h.fileId)?.status, 'deleted', `the file created in the window (${h.name}) was found and deleted`);
  }

  // The store: every job done, none stuck.
  const store = await openSqliteStore({ path: join(stack.stateDir, 'postflow.db') });
  const jobs = await store.list();
  await store.close();
  const notDone = jobs.filter((j) => j.state !== 'done');
  assert.deepEqual(notDone.map((j) => [j.name, j.state, j.lastError]), [], 'every job is done');
  assert.equal(jobs.length, FILES, 'one job per file');

  // Coverage of the kill points and the figures for the report.
  const byPoint = new Map<string, number>();
  for (const k of kills) byPoint.set(k.point, (byPoint.get(k.point) ?? 0) + 1);
  const count = (ev: string) => all.reduce((n, p) => n + p.lines.filter((l) => l.event === ev).length, 0);
  const figures = {
    kills: kills.length,
    byPoint: Object.fromEntries(byPoint),
    files: FILES,
    duplicates: duplicates.length,
    attemptsAtFrameio: ledger.length,
    deletedAttempts: ledger.filter((e) => e.status === 'deleted').length,
    windowKills: held.length,
    cleanupsByName: count('cleanup'),
    resumed: count('resume'),
    retries: count('retry'),
    retryReasons: [...new Set(all.flatMap((p) => p.lines.filter((l) => l.event === 'retry').map((l) => String(l.err).slice(0, 80))))],
    staleCloudflaredKilled: count('tunnel-stale-killed'),
    seconds: Math.round((Date.now() - startedAt) / 1000),
  };
  t.diagnostic(`crash figures: ${JSON.stringify(figures)}`);
  assert.ok(kills.length >= 20);
  assert.ok(held.length >= 2, `the remote_upload window was hit at least twice (${held.length})`);
  assert.ok(byPoint.size >= 7, `kills spread over the flow: ${JSON.stringify(figures.byPoint)}`);
  assert.ok(figures.cleanupsByName >= held.length, 'each window kill was cleaned up by looking in the folder');
});

test('a crash in the remote_upload window deletes only the file that attempt created, never an earlier import of the same name', { timeout: 120_000 }, async (t) => {
  let proxy: ApiProxy | undefined;
  const stack = await startStack({
    config: (c) => {
      // Two files of one name land in one Frame.io folder as separate files.
      c.watch.folders[0].layout = 'flat';
      c.watch.folders[0].onExisting = 'new';
      c.watch.stabilitySeconds = 1;
      c.watch.pollIntervalSeconds = 0.3;
      c.upload = { statusPollSeconds: 0.5 };
    },
  });
  proxy = await startApiProxy(stack.emulator.url);
  (stack.config as { frameio: { apiUrl: string } }).frameio.apiUrl = `${proxy.url}/v4`;
  await writeFile(stack.configFile, JSON.stringify(stack.config, null, 2), { mode: 0o600 });
  const cloudflareds = new Set<number>();
  t.after(async () => {
    for (const pid of cloudflareds) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await proxy?.close();
    await stack.close();
  });

  let d = stack.startDaemon();
  await d.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');
  const first = join(stack.watchDir, 'ep1', 'cut.mov');
  await mkdir(join(first, '..'));
  await writeFile(first, randomBytes(200 * KiB));
  const firstDone = await d.waitFor((l) => l.event === 'done' && l.file === first, 60_000, 'the first cut.mov to be imported');

  // A second cut.mov, from another episode: its remote_upload creates a file, the answer never arrives.
  const second = join(stack.watchDir, 'ep2', 'cut.mov');
  const held = proxy.holdNextRemoteUpload();
  await mkdir(join(second, '..'));
  await writeFile(second, randomBytes(300 * KiB));
  const hit = await held;
  for (const pid of await descendants(d.child.pid!)) cloudflareds.add(pid);
  d.child.kill('SIGKILL');
  await d.exited;

  d = stack.startDaemon();
  await d.waitFor((l) => l.event === 'done' && l.file === second, 60_000, 'the second cut.mov to be imported after the restart');
  for (const pid of await descendants(d.child.pid!)) cloudflareds.add(pid);
  assert.equal((await d.stop('SIGTERM')).code, 0);

  const ledger = stack.emulator.ledger();
  const show = JSON.stringify(ledger.map((e) => [e.fileId, e.status]));
  assert.equal(ledger.find((e) => e.fileId === firstDone.frameioFileId)?.status, 'complete', `the earlier import of ep1/cut.mov is untouched (${show})`);
  assert.equal(ledger.find((e) => e.fileId === hit.fileId)?.status, 'deleted', `the file created in the window is deleted (${show})`);
  const complete = ledger.filter((e) => e.status === 'complete');
  assert.deepEqual(complete.map((e) => e.sha256).sort(), [await sha256File(first), await sha256File(second)].sort(), 'both files there once, intact');
});
