/**
 * Issue 9 item 7: the bandwidth cap holds at three settings, and shaping costs (almost) nothing at full
 * speed. postflow's file server runs alone in a child (so its CPU time is its own), the same way the daemon
 * builds it, with the shaper given on the command line.
 *
 * 1. Cap: 8 parallel Range pulls (curl) of one file for `--seconds` each at 4M, 16M and 64M: served rate
 *    within 5 % of the cap.
 * 2. Cost: the file pulled at full speed (4 parallel ranges) by the unshaped server (baseline) and by a
 *    server whose shaper is "off", and one whose cap is far above what loopback moves (100G: every chunk
 *    asks the token bucket): server CPU per GiB (all its CPU over all it sent, in rounds of rotating
 *    order, each round the file pulled `--passes` times) within 5 % of the baseline.
 *
 *   node bench/bandwidth.ts [--seconds 15] [--rounds 15] [--passes 2] [--size-mib 1024]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { parseBandwidth } from '../src/config/bandwidth.ts';
import { createFileServer } from '../src/server/public-server.ts';
import { createShaper } from '../src/shaping/shaper.ts';
import { pullRanges } from './lib/curl.ts';
import { Report } from './lib/report.ts';
import { fmt, machineLoad, median } from './lib/stats.ts';
import { ensureDataFile, GiB, MiB, warmPageCache } from './lib/work.ts';

if (process.argv[2] === '--child') {
  // The servers: `--child <file> <bandwidth|none>...`, one per bandwidth, in this one process; answers 'cpu'
  // with its CPU time so far. One process for the contenders the cost check compares, pulled one at a
  // time: in separate processes a lasting per-process difference (where the kernel charges loopback
  // softirq work, thread placement) showed as ±8 % between two servers running the same code.
  const [file, ...bandwidths] = process.argv.slice(3) as [string, ...string[]];
  const servers = await Promise.all(
    bandwidths.map(async (bw) => {
      const shaper = bw === 'none' ? undefined : createShaper({ global: parseBandwidth(bw), folders: [] });
      const server = createFileServer({ host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), maxConnectionsPerToken: 64, ...(shaper ? { shaper } : {}) });
      const { origin } = await server.listen();
      const exposure = await server.expose({ jobId: 'bench', path: file, name: 'bench.bin', folderIndex: 0 });
      return { server, url: origin + exposure.urlPath };
    }),
  );
  process.on('message', (m: string) => {
    if (m === 'cpu') {
      const u = process.cpuUsage();
      process.send!({ cpuMs: (u.user + u.system) / 1000 });
    } else if (m === 'stop') void Promise.all(servers.map((x) => x.server.close())).then(() => process.exit(0));
  });
  process.send!({ urls: servers.map((x) => x.url) });
} else {
  await main();
}

interface Child {
  /** One per bandwidth given, in order. */
  urls: string[];
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

async function startChild(file: string, bandwidths: readonly string[]): Promise<Child> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--child', file, ...bandwidths], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = <T>(): Promise<T> => new Promise((resolve) => child.once('message', (m) => resolve(m as T)));
  const { urls } = await next<{ urls: string[] }>();
  return {
    urls,
    async cpuMs() {
      const p = next<{ cpuMs: number }>();
      child.send('cpu');
      return (await p).cpuMs;
    },
    async stop() {
      const gone = new Promise((r) => child.once('exit', r));
      child.send('stop');
      await gone;
    },
  };
}

/** Keeps `streams` curls pulling random 8 MiB ranges until `ms` have passed; bytes received per second. */
async function pullFor(url: string, size: number, streams: number, ms: number): Promise<number> {
  const t0 = performance.now();
  let bytes = 0;
  const span = 8 * MiB;
  await Promise.all(
    Array.from({ length: streams }, async () => {
      while (performance.now() - t0 < ms) {
        const start = Math.floor(Math.random() * ((size - span) / MiB)) * MiB;
        const got = await pullRanges([{ url, start, end: start + span - 1 }]);
        bytes += got.bytes;
      }
    }),
  );
  return bytes / ((performance.now() - t0) / 1000);
}

/**
 * One sample: the file pulled `passes` times over (4 parallel ranges each). With sendfile one GiB costs the
 * server ~100 ms of CPU, and the kernel accounts CPU time in ticks of a few ms: one pass is too short a
 * sample for a 5 % target.
 */
async function cpuPerGiB(child: Child, url: string, size: number, passes: number): Promise<{ cpu: number; mbps: number }> {
  const before = await child.cpuMs();
  let bytes = 0;
  let ms = 0;
  for (let p = 0; p < passes; p++) {
    const r = await pullRanges(Array.from({ length: 4 }, (_, i) => ({ url, start: (size / 4) * i, end: (size / 4) * (i + 1) - 1 })));
    bytes += r.bytes;
    ms += r.ms;
  }
  const cpu = (await child.cpuMs()) - before;
  return { cpu: cpu / (bytes / GiB), mbps: bytes / MiB / (ms / 1000) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '15' }, rounds: { type: 'string', default: '15' }, passes: { type: 'string', default: '2' }, 'size-mib': { type: 'string', default: '1024' } } });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const passes = Number(values.passes);
  const size = Number(values['size-mib']) * MiB;
  const file = ensureDataFile(`throughput-${size / MiB}MiB.bin`, size);
  warmPageCache(file);
  console.log(machineLoad());
  const report = new Report('bandwidth (issue 9): cap held at three settings, shaping cost at full speed');

  for (const cap of ['4M', '16M', '64M']) {
    const child = await startChild(file, [cap]);
    try {
      const rate = await pullFor(child.urls[0]!, size, 8, seconds * 1000);
      const want = parseBandwidth(cap).slots[0]!.rate!;
      const off = rate / want - 1;
      report.check({ name: `served rate at cap ${cap}`, shown: `${fmt(rate / MiB, 2)} MiB/s (${off >= 0 ? '+' : ''}${fmt(off * 100, 2)} %)`, baseline: `${want / MiB} MiB/s cap`, target: 'within 5 % of the cap', ok: Math.abs(off) <= 0.05 });
    } finally {
      await child.stop();
    }
  }

  const kinds = ['none', 'off', '100G'] as const;
  const child = await startChild(file, kinds);
  const urlOf = (k: (typeof kinds)[number]) => child.urls[kinds.indexOf(k)]!;
  try {
    const cpu: Record<string, number[]> = { none: [], off: [], '100G': [] };
    const speed: Record<string, number[]> = { none: [], off: [], '100G': [] };
    for (const k of kinds) await cpuPerGiB(child, urlOf(k), size, 1); // warm-up: each server's paths, not only the first
    for (let r = 0; r < rounds; r++) {
      // Rounds in rotating order, so a load change on the machine hits every contender alike.
      for (const k of r % 2 === 0 ? kinds : [...kinds].reverse()) {
        const m = await cpuPerGiB(child, urlOf(k), size, passes);
        cpu[k]!.push(m.cpu);
        speed[k]!.push(m.mbps);
      }
    }
    // Cost = all the CPU a server spent over all the GiB it sent (the mean of equal-sized samples). Single
    // samples vary ±5–10 % with where the kernel does loopback work; medians of those, or of per-round
    // ratios, still moved ±5 % between runs of identical code, the total within ±3 %.
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const base = mean(cpu.none!);
    report.note(`unshaped: ${fmt(base)} ms CPU per GiB at ${fmt(median(speed.none!))} MiB/s (${rounds} rounds of ${passes} pulls of ${fmt(size / GiB, 2)} GiB)`);
    for (const k of ['off', '100G'] as const) {
      const ratio = mean(cpu[k]!) / base;
      report.check({
        name: `server CPU per GiB, shaper ${k === 'off' ? '"off"' : 'cap 100G (unreached)'}`,
        shown: `${fmt(mean(cpu[k]!))} ms/GiB (${fmt(ratio, 3)}x, ${fmt(median(speed[k]!))} MiB/s)`,
        baseline: `${fmt(base)} ms/GiB unshaped`,
        target: '≤ 1.05x',
        ok: ratio <= 1.05,
      });
    }
  } finally {
    await child.stop();
  }
  report.finish();
}
