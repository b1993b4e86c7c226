/**
 * Issue 6 target 3: one poll sweep of a 100,000-file tree (10 levels of folders) costs at most 1.5x the CPU
 * time of `find TREE -printf '%s %T@ %p\n'` on the same tree, measured in the same run; RSS stays within
 * 250 MB with every file tracked.
 *
 *   node bench/watch-sweep.ts [--files 100000] [--tree DIR] [--rounds 5]
 *
 * The tree is bench/lib/tree.ts's cached one unless --tree names another (never modified).
 *
 * The sweep is measured through the real watcher (worker thread, snapshot diff, main-thread bookkeeping)
 * in steady state: the figure is the median over rounds, after one warm-up sweep.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { createWatcher } from '../src/watch/watcher.ts';
import { ensureTree } from './lib/tree.ts';

const TARGET_RATIO = 1.5;
const TARGET_RSS_MB = 250;

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '100000' },
    tree: { type: 'string' },
    rounds: { type: 'string', default: '5' },
  },
});
const files = Number(values.files);
const rounds = Number(values.rounds);

/** CPU seconds (user + sys) of one `find` run, as the shell's `times` builtin reports for children. */
function findCpuMs(tree: string): number {
  const r = spawnSync('sh', ['-c', `find "$1" -printf '%s %T@ %p\\n' >/dev/null; times`, 'sh', tree], {
    encoding: 'utf8',
  });
  const children = r.stdout.trim().split('\n').at(-1) ?? '';
  const parts = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60_000 + Number(m[2]) * 1000);
  if (parts.length !== 2) throw new Error(`cannot read find's CPU time from: ${r.stdout} ${r.stderr}`);
  return (parts[0] ?? 0) + (parts[1] ?? 0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

const tree = values.tree !== undefined ? path.resolve(values.tree) : ensureTree(files).root;
{

  const watcher = createWatcher({
    folders: [{ path: tree }],
    pollIntervalMs: 3_600_000, // sweeps are driven by hand below
    stabilityMs: 1000,
    native: false,
    baseline: true,
    logger: pino({ level: 'warn' }),
  });
  let tracked = 0;
  watcher.on('sweep', (s) => (tracked = s.files));
  const c0 = process.cpuUsage();
  await watcher.start();
  const c1 = process.cpuUsage(c0);
  const firstMs = (c1.user + c1.system) / 1000;
  await watcher.sweepNow(); // warm-up: JIT and caches, like every sweep after the first in a daemon

  const sweepMs: number[] = [];
  const findMs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Interleaved so that noise from other load on the machine hits both alike.
    findMs.push(findCpuMs(tree));
    const c = process.cpuUsage();
    await watcher.sweepNow();
    const d = process.cpuUsage(c);
    sweepMs.push((d.user + d.system) / 1000);
  }
  const rssMb = process.memoryUsage().rss / 1e6;
  await watcher.stop();

  const ratio = median(sweepMs) / median(findMs);
  console.log(`files tracked          ${tracked}`);
  console.log(`first sweep CPU        ${firstMs.toFixed(0)} ms (cold, includes worker start-up)`);
  console.log(`sweep CPU (median)     ${median(sweepMs).toFixed(0)} ms   rounds: ${sweepMs.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`find -printf CPU       ${median(findMs).toFixed(0)} ms   rounds: ${findMs.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`ratio                  ${ratio.toFixed(2)}x   target <= ${TARGET_RATIO}x`);
  console.log(`RSS                    ${rssMb.toFixed(0)} MB   target <= ${TARGET_RSS_MB} MB`);
  const ok = ratio <= TARGET_RATIO && rssMb <= TARGET_RSS_MB && tracked === files;
  console.log(ok ? 'PASS' : 'FAIL');
  process.exitCode = ok ? 0 : 1;
}
