/**
 * Issue 6 target 7: with 100k known files (the cached tree, recorded as the baseline at a first start) and
 * 1,000 jobs in the store, a restarted daemon is ready — watching (first sweep done) and serving (file
 * server and tunnel up), i.e. its `started` log line — within 3 s of being spawned. Baselines measured in
 * the same run: the bin's bare start-up (`postflow --version`), and the same daemon's restart on an empty
 * watch folder with an empty store (what the 100k files and 1,000 jobs add).
 *
 *   node bench/restart.ts [--rounds 3] [--jobs 1000]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openSqliteStore } from '../src/jobs/sqlite-store.ts';
import { BIN } from '../test/e2e/harness.ts';
import { startStack, type Stack } from './lib/daemon.ts';
import { Report } from './lib/report.ts';
import { fmt, machineLoad, median } from './lib/stats.ts';
import { ensureTree } from './lib/tree.ts';

const TARGET_READY_MS = 3000;

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, jobs: { type: 'string', default: '1000' } } });
const rounds = Number(values.rounds);
const jobCount = Number(values.jobs);

const tree = ensureTree();
const report = new Report(`restart: ${tree.files} known files + ${jobCount} jobs in the store`);
report.note(machineLoad() + ' at start');

/** Spawn → `started`, in ms, then a graceful stop. */
async function timeStart(stack: Stack): Promise<number> {
  const t0 = performance.now();
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 120_000, 'the daemon to start');
  const ms = performance.now() - t0;
  const { code } = await daemon.stop();
  if (code !== 0) throw new Error(`daemon exited with ${code} after SIGTERM`);
  return ms;
}

/** The first `n` files of the tree, for jobs that point at real files. */
function someFiles(n: number): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (out.length >= n) return;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(tree.root);
  return out;
}

const bare: number[] = [];
for (let i = 0; i < rounds; i++) {
  const t0 = performance.now();
  spawnSync(process.execPath, [BIN, '--version']);
  bare.push(performance.now() - t0);
}

const configure = (root?: string) => (c: Record<string, any>) => {
  if (root !== undefined) c.watch.folders[0].path = root;
  c.watch.pollIntervalSeconds = 10;
  c.log = { level: 'info' };
};
const empty = await startStack({ config: configure() });
const big = await startStack({ config: configure(tree.root) });
try {
  const first = await timeStart(big);
  report.note(`first start (sweep + baseline of ${tree.files} files) ${fmt(first)} ms`);
  await timeStart(empty);

  const store = await openSqliteStore({ path: path.join(big.stateDir, 'postflow.db') });
  const t0 = performance.now();
  for (const [i, file] of someFiles(jobCount).entries()) {
    const st = fs.statSync(file);
    const job = await store.discover({
      folderIndex: 0,
      root: tree.root,
      path: file,
      relPath: path.relative(tree.root, file),
      name: path.basename(file),
      size: st.size,
      mtimeMs: st.mtimeMs,
      ino: st.ino,
      destination: big.emulator.rootFolderId,
    });
    await store.transition(job.id, 'discovered', 'stable');
    await store.transition(job.id, 'stable', 'queued');
    await store.transition(job.id, 'queued', 'exposing');
    await store.transition(job.id, 'exposing', 'importing', { frameioFileId: `bench-${i}` });
    await store.transition(job.id, 'importing', i % 10 === 0 ? 'failed' : 'done', i % 10 === 0 ? { lastError: 'bench' } : {});
  }
  const counts = await store.counts();
  await store.close();
  report.note(`store filled in ${fmt(performance.now() - t0)} ms: ${counts.done} done, ${counts.failed} failed jobs`);

  const bigMs: number[] = [];
  const emptyMs: number[] = [];
  // Alternated, so load from other work on the machine hits both alike.
  for (let i = 0; i < rounds; i++) {
    bigMs.push(await timeStart(big));
    emptyMs.push(await timeStart(empty));
  }
  report.check({
    name: 'ready after restart',
    shown: `median ${fmt(median(bigMs))} ms, worst ${fmt(Math.max(...bigMs))} ms   rounds: ${bigMs.map((x) => fmt(x)).join(' ')}`,
    baseline: `empty folder + store ${fmt(median(emptyMs))} ms; bare bin start ${fmt(median(bare))} ms`,
    target: `<= ${TARGET_READY_MS} ms`,
    ok: Math.max(...bigMs) <= TARGET_READY_MS,
  });
  report.note(machineLoad() + ' at end');
} finally {
  await big.close();
  await empty.close();
}
report.finish();
