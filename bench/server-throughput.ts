/**
 * Issue 6 target 1: postflow's public file server against nginx (sendfile) serving the same 2 GiB file of
 * real bytes from the page cache, pulled over loopback by curl to /dev/null:
 *   - 4 parallel Range requests (the file in 4 quarters): postflow >= 0.90 x nginx throughput
 *   - 1 stream (one Range of the whole file):              postflow >= 0.80 x nginx throughput
 * The server runs as in the daemon (createFileServer + expose: token lookup, identity check, coverage
 * counting) in a child process. Rounds alternate nginx / postflow so load from elsewhere on a shared
 * machine hits both alike; the figures are medians, and the ratio checked is the median of each round's
 * back-to-back postflow/nginx ratio.
 *
 *   node bench/server-throughput.ts [--rounds 11] [--size-mib 2048] [--chunk-kib N] [--cpu-prof]
 * (--chunk-kib sets the server's read size, to compare sizes; --cpu-prof writes the server's profile to
 * bench/.work/profiles.) postflow uses its sendfile(2) addon when built; a second postflow server with
 * POSTFLOW_SENDFILE=0 is measured alongside for information (its read+write path, no target).
 */
import { parseArgs } from 'node:util';
import { pullParallel } from './lib/curl.ts';
import { startNginx } from './lib/nginx.ts';
import { processCpuMs } from './lib/proc.ts';
import { Report } from './lib/report.ts';
import { startServerChild } from './lib/server-child.ts';
import { fmt, machineLoad, mbps, median } from './lib/stats.ts';
import { ensureDataFile, MiB, warmPageCache, WORK_DIR, workPath } from './lib/work.ts';

const TARGET_PARALLEL = 0.9;
const TARGET_SINGLE = 0.8;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '11' },
    'size-mib': { type: 'string', default: '2048' },
    'chunk-kib': { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const size = Number(values['size-mib']) * MiB;
const name = `throughput-${size / MiB}MiB.bin`;
const file = ensureDataFile(name, size);
warmPageCache(file);
console.log(machineLoad());

const nginx = await startNginx(WORK_DIR);
const execArgv = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${workPath('profiles')}`] : [];
const readChunkBytes = values['chunk-kib'] === undefined ? undefined : Number(values['chunk-kib']) * 1024;
const postflow = await startServerChild([{ path: file, name }], { execArgv, ...(readChunkBytes ? { readChunkBytes } : {}) });
const readWrite = await startServerChild([{ path: file, name }], { env: { POSTFLOW_SENDFILE: '0' }, ...(readChunkBytes ? { readChunkBytes } : {}) });
const report = new Report('server-throughput (issue 6 target 1)');
try {
  const urls = { nginx: `${nginx.origin}/${name}`, postflow: postflow.urls[0] as string, readWrite: readWrite.urls[0] as string };
  const results: Record<'nginx' | 'postflow' | 'readWrite', Record<1 | 4, number[]>> = {
    nginx: { 1: [], 4: [] },
    postflow: { 1: [], 4: [] },
    readWrite: { 1: [], 4: [] },
  };
  // Server CPU per GiB served: independent of how much CPU other load left us, so it shows the cost gap.
  const pids = { nginx: nginx.pid, postflow: postflow.pid, readWrite: readWrite.pid };
  const cpu = { nginx: { ms: 0, bytes: 0 }, postflow: { ms: 0, bytes: 0 }, readWrite: { ms: 0, bytes: 0 } };
  // A first pull of each warms connections, JIT and the cache without counting.
  await pullParallel(urls.nginx, size, 4);
  await pullParallel(urls.postflow, size, 4);
  await pullParallel(urls.readWrite, size, 4);
  for (let r = 0; r < rounds; r++) {
    // Alternate which side goes first so a trend in the machine's load favours neither.
    const order = r % 2 === 0 ? (['nginx', 'postflow', 'readWrite'] as const) : (['postflow', 'nginx', 'readWrite'] as const);
    for (const streams of [4, 1] as const) {
      for (const who of order) {
        const c0 = processCpuMs(pids[who]);
        const res = await pullParallel(urls[who], size, streams);
        cpu[who].ms += processCpuMs(pids[who]) - c0;
        cpu[who].bytes += res.bytes;
        results[who][streams].push(mbps(res.bytes, res.ms));
      }
    }
    console.log(
      `round ${r + 1}: 4 streams nginx ${fmt(results.nginx[4].at(-1)!)} postflow ${fmt(results.postflow[4].at(-1)!)} MB/s;` +
        ` 1 stream nginx ${fmt(results.nginx[1].at(-1)!)} postflow ${fmt(results.postflow[1].at(-1)!)} MB/s;` +
        ` read+write 4/1: ${fmt(results.readWrite[4].at(-1)!)}/${fmt(results.readWrite[1].at(-1)!)} MB/s   (${machineLoad()})`,
    );
  }
  const stats = await postflow.stats();
  // Coverage counting was on: every byte the curls took must have been counted, once.
  if (stats.covered[0] !== size) throw new Error(`coverage counted ${stats.covered[0]} of ${size} bytes`);

  for (const streams of [4, 1] as const) {
    const n = median(results.nginx[streams]);
    const p = median(results.postflow[streams]);
    // Each round's pair ran back to back, so its ratio cancels most of the load drift between rounds.
    const paired = median(results.postflow[streams].map((x, i) => x / (results.nginx[streams][i] as number)));
    const target = streams === 4 ? TARGET_PARALLEL : TARGET_SINGLE;
    report.check({
      name: `${streams} stream${streams > 1 ? 's' : ''}`,
      shown: `postflow ${fmt(p)} MB/s, ratio ${fmt(paired, 2)}x (median of paired rounds; ratio of medians ${fmt(p / n, 2)}x)`,
      baseline: `nginx ${fmt(n)} MB/s`,
      target: `>= ${target}x`,
      ok: paired >= target,
    });
  }
  const perGiB = (who: 'nginx' | 'postflow' | 'readWrite') => (cpu[who].ms / cpu[who].bytes) * 1024 * MiB;
  report.note(`${rounds} rounds, ${size / MiB} MiB file, medians; postflow server peak RSS ${fmt(stats.rssPeakMb)} MB; ${machineLoad()}`);
  report.note(
    `server CPU per GiB served: nginx ${fmt(perGiB('nginx'))} ms, postflow ${fmt(perGiB('postflow'))} ms (${postflow.sending}),` +
      ` postflow read+write ${fmt(perGiB('readWrite'))} ms (main thread + pool threads)`,
  );
  for (const streams of [4, 1] as const) {
    const rw = median(results.readWrite[streams].map((x, i) => x / (results.nginx[streams][i] as number)));
    report.note(
      `${streams} stream(s) MB/s  nginx [${results.nginx[streams].map((x) => fmt(x)).join(' ')}]  postflow [${results.postflow[streams].map((x) => fmt(x)).join(' ')}]` +
        `  read+write [${results.readWrite[streams].map((x) => fmt(x)).join(' ')}] (ratio ${fmt(rw, 2)}x)`,
    );
  }
} finally {
  await postflow.stop();
  await readWrite.stop();
  await nginx.stop();
}
report.finish();
