/**
 * Issue 6 target 5: 10,000 small files appear at once (a folder renamed into the watch folder); the real
 * daemon imports every one through the Frame.io emulator and the cloudflared stand-in with no event lost
 * (each file imported exactly once, with its bytes), RSS ≤ 300 MB, and job orchestration (store, queue,
 * API calls) ≥ 100 jobs/s.
 *
 * Orchestration is measured apart from byte transfer: files are 1 KiB, the emulator's limits are off, and
 * Frame.io's per-user pacing (5 remote_upload/s) is lifted by a proxy that multiplies the x-ratelimit-*
 * budget the emulator announces (the client adopts whatever budget the server announces, as it would for
 * an account with higher limits). The figure checked is jobs per CPU-second of the daemon process — its
 * own overhead, whatever the emulator and stand-in (sharing the same 2 cores) cost; the wall-clock rate
 * of each stage is printed beside it.
 *
 *   node bench/burst.ts [--files 10000] [--workers 64] [--dump daemon-lines.jsonl]
 *     [--node-options='--cpu-prof --cpu-prof-dir=DIR'] (NODE_OPTIONS for the daemon, to profile it)
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sha256File } from '../test/e2e/harness.ts';
import { daemonPid, procFigures, startStack } from './lib/daemon.ts';
import { Report } from './lib/report.ts';
import { fmt, machineLoad } from './lib/stats.ts';
import { scratchDir } from './lib/tree.ts';

const TARGET_JOBS_PER_CPU_S = 100;
const TARGET_RSS_MB = 300;

const { values } = parseArgs({ options: { files: { type: 'string', default: '10000' }, workers: { type: 'string', default: '64' }, dump: { type: 'string' }, 'node-options': { type: 'string' } } });
const files = Number(values.files);
const workers = Number(values.workers);

/** Forwards to the emulator, announcing a 1000x rate-limit budget. */
function startBudgetProxy(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const to = new URL(target);
  const server = http.createServer((req, res) => {
    const up = http.request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers, agent },
      (ures) => {
        const headers = { ...ures.headers };
        for (const h of ['x-ratelimit-limit', 'x-ratelimit-remaining']) if (headers[h] !== undefined) headers[h] = String(Number(headers[h]) * 1000);
        res.writeHead(ures.statusCode ?? 502, headers);
        ures.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((r) => {
            agent.destroy();
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    }),
  );
}

const report = new Report(`burst: ${files} files at once, ${workers} workers`);
report.note(machineLoad() + ' at start');
const work = scratchDir('burst');
const watchDir = path.join(work, 'watch');
const staging = path.join(work, 'staging', 'delivery');
fs.mkdirSync(watchDir, { recursive: true });
fs.mkdirSync(staging, { recursive: true });
for (let i = 0; i < files; i++) fs.writeFileSync(path.join(staging, `clip_${String(i).padStart(5, '0')}.mov`), `burst file ${i}\n`.padEnd(1024, '.'));

let proxy: Awaited<ReturnType<typeof startBudgetProxy>> | undefined;
const stack = await startStack({
  emulator: { faults: { enforceRateLimits: false } },
  config: (c) => {
    c.watch.folders[0].path = watchDir;
    c.watch.stabilitySeconds = 1;
    c.watch.pollIntervalSeconds = 0.5;
    c.workers = workers;
    c.frameio.maxRequestsPerSecond = 100_000;
    c.upload = { statusPollSeconds: 0.25 };
    c.log = { level: 'info' };
  },
});
try {
  proxy = await startBudgetProxy(stack.emulator.url);
  const config = JSON.parse(fs.readFileSync(stack.configFile, 'utf8')) as Record<string, any>;
  config.frameio.apiUrl = `${proxy.url}/v4`;
  fs.writeFileSync(stack.configFile, JSON.stringify(config, null, 2), { mode: 0o600 });

  const daemon = stack.startDaemon(values['node-options'] === undefined ? {} : { env: { NODE_OPTIONS: values['node-options'] } });
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');
  const pid = daemonPid(daemon);
  const before = procFigures(pid);
  let peakRss = before.rssMb;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, procFigures(pid).rssMb)), 250);
  const ticker = setInterval(() => {
    const f = procFigures(pid);
    console.log(`  ${Math.round((Date.now() - appearedAt) / 1000)} s: queued ${count('queued')}, done ${count('done')}, emulator complete ${stack.emulator.ledger().filter((e) => e.status === 'complete').length}, RSS ${fmt(f.rssMb)} MB, CPU ${fmt(f.cpuMs - before.cpuMs)} ms`);
  }, 5000);

  // Counted incrementally: the harness keeps every line, and re-scanning them per line is quadratic.
  const counts = new Map<string, number>();
  let scanned = 0;
  const count = (event: string): number => {
    for (; scanned < daemon.lines.length; scanned++) {
      const e = daemon.lines[scanned]!.event;
      if (typeof e === 'string') counts.set(e, (counts.get(e) ?? 0) + 1);
    }
    return counts.get(event) ?? 0;
  };
  const until = async (event: string, n: number, timeoutMs: number) => {
    const end = Date.now() + timeoutMs;
    while (count(event) < n) {
      if (daemon.child.exitCode !== null) throw new Error(`daemon exited while waiting for ${n} ${event} lines`);
      if (Date.now() > end) throw new Error(`timed out: ${count(event)} of ${n} ${event} lines after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const appearedAt = Date.now();
  fs.renameSync(staging, path.join(watchDir, 'delivery'));
  const timeOf = (l: Record<string, unknown>) => Date.parse(String(l.time));
  await until('queued', files, 600_000);
  const lastQueued = Date.now();
  await until('done', files, 1_200_000);
  const lastDone = Date.now();
  clearInterval(sampler);
  clearInterval(ticker);
  const after = procFigures(pid);
  peakRss = Math.max(peakRss, after.rssMb);

  const queuedLines = daemon.lines.filter((l) => l.event === 'queued');
  const firstQueued = Math.min(...queuedLines.map(timeOf));
  const cpuS = (after.cpuMs - before.cpuMs) / 1000;
  const jobsPerCpuS = files / cpuS;

  // No event lost: every file imported exactly once, with its bytes.
  const ledger = stack.emulator.ledger().filter((e) => e.status !== 'deleted');
  const byName = new Map<string, number>();
  for (const e of ledger) byName.set(e.name, (byName.get(e.name) ?? 0) + 1);
  const complete = ledger.filter((e) => e.status === 'complete').length;
  const once = [...byName.values()].filter((n) => n === 1).length;
  const sample = ledger.find((e) => e.name === 'clip_00042.mov');
  const sampleOk = sample?.sha256 === (await sha256File(path.join(watchDir, 'delivery', 'clip_00042.mov')));
  const lost = files - once;
  report.check({
    name: 'every file imported once',
    shown: `${complete} complete, ${once} names exactly once, ${byName.size} names in all; sha256 of a sample ${sampleOk ? 'matches' : 'DIFFERS'}`,
    target: `${files} each once`,
    ok: complete === files && once === files && byName.size === files && sampleOk && lost === 0,
  });
  report.check({
    name: 'orchestration',
    shown: `${fmt(jobsPerCpuS)} jobs per daemon CPU-second (${fmt(cpuS, 1)} CPU-s for ${files} jobs)`,
    baseline: `wall: ${fmt(files / ((lastDone - appearedAt) / 1000))} jobs/s appear→all done; discovery→all queued ${fmt(files / ((lastQueued - appearedAt) / 1000))} files/s; first queued→all done ${fmt(files / ((lastDone - firstQueued) / 1000))} jobs/s`,
    target: `>= ${TARGET_JOBS_PER_CPU_S} jobs/s`,
    ok: jobsPerCpuS >= TARGET_JOBS_PER_CPU_S,
  });
  report.check({
    name: 'daemon RSS',
    shown: `peak ${fmt(peakRss)} MB sampled, VmHWM ${fmt(after.hwmMb)} MB`,
    baseline: `idle before the burst ${fmt(before.rssMb)} MB`,
    target: `<= ${TARGET_RSS_MB} MB`,
    ok: after.hwmMb <= TARGET_RSS_MB,
  });
  report.note(`appear → first queued ${firstQueued - appearedAt} ms, → all queued ${lastQueued - appearedAt} ms, → all done ${lastDone - appearedAt} ms`);
  report.note(machineLoad() + ' at end');
  if (values.dump !== undefined) fs.writeFileSync(values.dump, daemon.lines.map((l) => JSON.stringify(l)).join('\n'));
  await daemon.stop();
} finally {
  await stack.close();
  await proxy?.close();
  fs.rmSync(work, { recursive: true, force: true });
}
report.finish();
