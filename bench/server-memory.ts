/**
 * Issue 6 target 2: while 16 concurrent Range pulls of large files run, postflow's file server process
 * keeps RSS <= 150 MB and event-loop delay p99 <= 50 ms (perf_hooks.monitorEventLoopDelay inside the
 * server process, which runs alone in a child so its RSS is its own). The 2 GiB bench file is exposed under
 * 4 jobs (4 tokens, like 4 imports at once) and each is pulled in 4 ranges at once by curl: 16 pulls,
 * 8 GiB in all. The baseline printed beside it is the same server's RSS when idle, measured in this run.
 *
 *   node bench/server-memory.ts [--rounds 2] [--size-mib 2048] [--jobs 4] [--ranges 4]
 */
import { parseArgs } from 'node:util';
import { pullRanges } from './lib/curl.ts';
import { Report } from './lib/report.ts';
import { startServerChild } from './lib/server-child.ts';
import { fmt, machineLoad, mbps } from './lib/stats.ts';
import { ensureDataFile, MiB, warmPageCache } from './lib/work.ts';

const TARGET_RSS_MB = 150;
const TARGET_ELD_P99_MS = 50;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    'size-mib': { type: 'string', default: '2048' },
    jobs: { type: 'string', default: '4' },
    ranges: { type: 'string', default: '4' },
  },
});
const rounds = Number(values.rounds);
const size = Number(values['size-mib']) * MiB;
const jobs = Number(values.jobs);
const perJob = Number(values.ranges);
const name = `throughput-${size / MiB}MiB.bin`;
const file = ensureDataFile(name, size);
warmPageCache(file);
console.log(machineLoad());

const server = await startServerChild(Array.from({ length: jobs }, (_, i) => ({ path: file, name: `job${i}-${name}` })));
const report = new Report(`server-memory (issue 6 target 2): ${jobs * perJob} concurrent Range pulls`);
try {
  await new Promise((r) => setTimeout(r, 500));
  const idle = await server.stats();
  let peak = 0;
  let p99 = 0;
  let max = 0;
  for (let r = 0; r < rounds; r++) {
    await server.reset();
    const ranges = server.urls.flatMap((url) =>
      Array.from({ length: perJob }, (_, i) => ({ url, start: Math.floor((size * i) / perJob), end: Math.floor((size * (i + 1)) / perJob) - 1 })),
    );
    const res = await pullRanges(ranges);
    const s = await server.stats();
    peak = Math.max(peak, s.rssPeakMb);
    p99 = Math.max(p99, s.eldP99Ms);
    max = Math.max(max, s.eldMaxMs);
    console.log(
      `round ${r + 1}: ${ranges.length} pulls, ${fmt(res.bytes / MiB)} MiB in ${fmt(res.ms)} ms (${fmt(mbps(res.bytes, res.ms))} MB/s);` +
        ` peak RSS ${fmt(s.rssPeakMb)} MB (heap ${fmt(s.heapUsedMb)}, external+arraybuffers ${fmt(s.externalMb)} MB at end);` +
        ` event-loop delay p50 ${fmt(s.eldP50Ms, 1)} p99 ${fmt(s.eldP99Ms, 1)} max ${fmt(s.eldMaxMs, 1)} ms   (${machineLoad()})`,
    );
    if (s.covered.some((c) => c !== size)) throw new Error(`coverage counted ${s.covered.join(', ')} of ${size} bytes per job`);
  }
  report.note(`${rounds} rounds, worst of them; ${machineLoad()}`);
  report.check({ name: 'peak RSS', shown: `${fmt(peak)} MB`, baseline: `idle ${fmt(idle.rssMb)} MB`, target: `<= ${TARGET_RSS_MB} MB`, ok: peak <= TARGET_RSS_MB });
  report.check({ name: 'event-loop delay p99', shown: `${fmt(p99, 1)} ms (max ${fmt(max, 1)} ms)`, target: `<= ${TARGET_ELD_P99_MS} ms`, ok: p99 <= TARGET_ELD_P99_MS });
} finally {
  await server.stop();
}
report.finish();
