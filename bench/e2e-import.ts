/**
 * Issue 6 target 6: a 1 GiB file dropped into a watched folder is imported by the Frame.io emulator through
 * the real daemon (bin/postflow.js) and the cloudflared stand-in's edge in at most 1.15 x the time the same
 * emulator takes to pull the same file straight from nginx, plus the stability window.
 *
 * Baseline round: remote_upload with nginx's loopback URL as source_url (allowLoopbackSources), timed
 * from the request to the emulator's import completing. postflow round: a hard link of the same file
 * appears in the watch folder, timed from then to the emulator's import completing; the allowance is the
 * stability window the watcher must see unchanged (stabilitySeconds, judged by sweeps one poll interval
 * apart, so stabilitySeconds + pollIntervalSeconds). Rounds alternate; figures are medians. Also printed:
 * where postflow's time goes (detection, queue to remote_upload, pull) and when the daemon logs `done`.
 *
 *   node bench/e2e-import.ts [--rounds 3] [--size-mib 1024] [--stability 1] [--poll 0.3]
 */
import { linkSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { startEmulator, type LedgerEntry } from '../test/doubles/frameio/emulator.ts';
import { CLOUDFLARED, descendants, spawnDaemon, type DaemonProcess, type LogLine } from '../test/e2e/harness.ts';
import { startNginx } from './lib/nginx.ts';
import { processCpuMs } from './lib/proc.ts';
import { Report } from './lib/report.ts';
import { fmt, machineLoad, median } from './lib/stats.ts';
import { ensureDataFile, MiB, warmPageCache, WORK_DIR, workPath } from './lib/work.ts';

const TARGET_RATIO = 1.15;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'size-mib': { type: 'string', default: '1024' },
    stability: { type: 'string', default: '1' },
    poll: { type: 'string', default: '0.3' },
  },
});
const rounds = Number(values.rounds);
const size = Number(values['size-mib']) * MiB;
const stabilitySeconds = Number(values.stability);
const pollSeconds = Number(values.poll);
const allowanceMs = (stabilitySeconds + pollSeconds) * 1000;
const dataName = `e2e-${size / MiB}MiB.bin`;
const data = ensureDataFile(dataName, size);
warmPageCache(data);
console.log(machineLoad());

const dir = workPath('e2e');
rmSync(dir, { recursive: true, force: true });
const watchDir = join(dir, 'watch');
const stateDir = join(dir, 'state');
const registry = join(dir, 'registry');
mkdirSync(watchDir, { recursive: true });
mkdirSync(stateDir, { recursive: true, mode: 0o700 });

async function until<T>(get: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

const finished = (emu: { ledger(): LedgerEntry[] }, name: string) => () => {
  const e = emu.ledger().find((x) => x.name === name && x.status !== 'deleted' && x.status !== 'importing');
  if (e && e.status !== 'complete') throw new Error(`import of ${name} ended ${e.status}: ${e.error ?? ''}`);
  return e;
};

const emulator = await startEmulator({ registryDir: registry, allowLoopbackSources: true, logger: pino({ level: 'warn' }) });
const nginx = await startNginx(WORK_DIR);
let daemon: DaemonProcess | undefined;
const report = new Report('e2e-import (issue 6 target 6)');
try {
  const refreshTokenFile = join(stateDir, 'refresh-token');
  writeFileSync(refreshTokenFile, emulator.issueRefreshToken(), { mode: 0o600 });
  const configFile = join(dir, 'postflow.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      watch: { folders: [{ path: watchDir, destination: emulator.projectId }], stabilitySeconds, pollIntervalSeconds: pollSeconds },
      frameio: {
        apiUrl: emulator.apiUrl,
        accountId: emulator.accountId,
        imsTokenUrl: emulator.imsTokenUrl,
        clientId: emulator.clientId,
        clientSecret: emulator.clientSecret,
        refreshTokenFile,
      },
      tunnel: { mode: 'quick', cloudflaredPath: CLOUDFLARED },
      server: { host: '127.0.0.1', port: 0 },
      workers: 1,
      stateDir,
      log: { level: 'info' },
    }),
    { mode: 0o600 },
  );
  daemon = spawnDaemon(['run', '--config', configFile], { CLOUDFLARED_STANDIN_REGISTRY: registry });
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  // CPU of the daemon and of the tunnel stand-in (its child) per postflow round: load-independent costs.
  const daemonPid = daemon.child.pid as number;
  const edgePid = (await descendants(daemonPid))[0] ?? 0;
  const cpu = { daemon: 0, edge: 0, bytes: 0 };
  const accessToken = emulator.issueAccessToken();
  const viaNginx = async (name: string): Promise<number> => {
    const t0 = Date.now();
    const res = await fetch(`${emulator.apiUrl}/accounts/${emulator.accountId}/folders/${emulator.rootFolderId}/files/remote_upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'x-api-key': emulator.clientId, 'content-type': 'application/json' },
      body: JSON.stringify({ data: { name, source_url: `${nginx.origin}/${dataName}` } }),
    });
    if (res.status !== 202) throw new Error(`remote_upload answered ${res.status}: ${await res.text()}`);
    const e = await until(finished(emulator, name), 300_000, `the nginx import of ${name}`);
    return (e.completedAt as number) - t0;
  };
  const viaPostflow = async (name: string) => {
    const t0 = Date.now();
    const d0 = processCpuMs(daemonPid);
    const e0 = processCpuMs(edgePid);
    linkSync(data, join(watchDir, name));
    const e = await until(finished(emulator, name), 300_000, `the postflow import of ${name}`);
    const d = daemon as DaemonProcess;
    // The daemon's log time is ISO (pino isoTime), same clock as ours.
    const when = (l: LogLine | undefined) => (l === undefined ? Number.NaN : Date.parse(String(l.time)));
    const at = (event: string) => when(d.lines.find((l) => l.event === event && String(l.file).endsWith(name)));
    const done = await d.waitFor((l) => l.event === 'done' && String(l.file).endsWith(name), 60_000, `done for ${name}`);
    cpu.daemon += processCpuMs(daemonPid) - d0;
    cpu.edge += processCpuMs(edgePid) - e0;
    cpu.bytes += size;
    return {
      total: (e.completedAt as number) - t0,
      queued: at('queued') - t0,
      toRequest: (e.firstRequestAt as number) - at('queued'),
      pull: (e.completedAt as number) - (e.firstRequestAt as number),
      doneLag: when(done) - (e.completedAt as number),
    };
  };

  // Warm-up: tunnel connections, JIT, the emulator's first pull.
  await viaNginx('warmup-nginx.mov');
  await viaPostflow('warmup-postflow.mov');
  const nginxMs: number[] = [];
  const pf: Array<Awaited<ReturnType<typeof viaPostflow>>> = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ['nginx', 'postflow'] : ['postflow', 'nginx'];
    for (const who of order) {
      if (who === 'nginx') nginxMs.push(await viaNginx(`round${r}-nginx.mov`));
      else pf.push(await viaPostflow(`round${r}-postflow.mov`));
    }
    const p = pf.at(-1)!;
    console.log(
      `round ${r + 1}: nginx direct ${fmt(nginxMs.at(-1)!)} ms; postflow ${fmt(p.total)} ms = stable+queued ${fmt(p.queued)} + to first request ${fmt(p.toRequest)}` +
        ` + pull ${fmt(p.pull)} ms; daemon logged done ${fmt(p.doneLag)} ms after the import completed   (${machineLoad()})`,
    );
  }
  const n = median(nginxMs);
  const total = median(pf.map((p) => p.total));
  const limit = TARGET_RATIO * n + allowanceMs;
  report.note(`${rounds} rounds of ${size / MiB} MiB, medians; stability ${stabilitySeconds} s, poll ${pollSeconds} s; ${machineLoad()}`);
  report.note(`nginx direct ms [${nginxMs.map((x) => fmt(x)).join(' ')}]; postflow ms [${pf.map((p) => fmt(p.total)).join(' ')}]`);
  report.note(
    `postflow medians: to queued ${fmt(median(pf.map((p) => p.queued)))} ms, queued to first request ${fmt(median(pf.map((p) => p.toRequest)))} ms,` +
      ` pull ${fmt(median(pf.map((p) => p.pull)))} ms (= ${fmt(median(pf.map((p) => p.pull)) / n, 2)}x nginx direct), done logged ${fmt(median(pf.map((p) => p.doneLag)))} ms after completion`,
  );
  const perGiB = (ms: number) => fmt((ms / cpu.bytes) * 1024 * MiB);
  report.note(`CPU per GiB imported: daemon ${perGiB(cpu.daemon)} ms, cloudflared stand-in (edge proxy) ${perGiB(cpu.edge)} ms`);
  report.check({
    name: 'drop to imported',
    shown: `postflow ${fmt(total)} ms (${fmt((total - allowanceMs) / n, 2)}x nginx after the ${fmt(allowanceMs)} ms window)`,
    baseline: `nginx direct ${fmt(n)} ms`,
    target: `<= ${TARGET_RATIO} x nginx + ${fmt(allowanceMs)} ms = ${fmt(limit)} ms`,
    ok: total <= limit,
  });
} finally {
  if (daemon) {
    const stopped = daemon.stop('SIGTERM');
    const t = setTimeout(() => daemon?.child.kill('SIGKILL'), 15_000);
    await stopped;
    clearTimeout(t);
  }
  await emulator.close();
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}
report.finish();
