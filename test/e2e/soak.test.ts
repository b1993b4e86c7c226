/**
 * Issue 4 item 10: a bounded soak. A few hundred small exports and a few large ones are dropped while
 * faults are injected at random (429s, 503s, failed imports, cloudflared crashes) and access tokens expire
 * every 3 s. The end state is the whole claim: Frame.io's ledger of completed imports equals the set of
 * dropped files, each exactly once, each with the right sha256. The fault schedule comes from a seeded
 * generator (printed, and settable with SOAK_SEED) so a failure can be replayed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack, until } from './harness.ts';
import { seededRandom } from '../seeded-random.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const SMALL = 240;
const LARGE = 3;


test('soak: hundreds of files through random API faults, failed imports, tunnel crashes and 3 s tokens', { timeout: 300_000 }, async (t) => {
  const seed = Number(process.env.SOAK_SEED ?? Date.now() % 1_000_000);
  const rand = seededRandom(seed);
  t.diagnostic(`SOAK_SEED=${seed}`);

  const stack = await startStack({
    emulator: { accessTokenTtlSeconds: 3, pullChunkBytes: 2 * MiB },
    config: (c) => {
      c.watch.stabilitySeconds = 1;
      c.watch.pollIntervalSeconds = 0.5;
      c.workers = 6;
      c.upload = { maxAttempts: 10, statusPollSeconds: 1 };
      c.log.level = 'info';
      // Stacking a re-export as a version looks for a namesake by listing the destination after every
      // import, and that listing (folders.index) is limited to 100 calls a minute: a burst of hundreds of
      // files would take minutes on that budget alone. Every file here is new, so the soak imports with
      // onExisting "new" and measures the flow under faults, not that budget.
      c.watch.folders[0].onExisting = 'new';
      // Each file costs at least three API calls; the default global cap (4/s) would make this a 3-minute
      // run. The per-operation buckets (5/s for remote uploads and status) still pace it.
      c.frameio.maxRequestsPerSecond = 15;
    },
  });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');
  const startedAt = Date.now();

  // name → sha256 of what was dropped
  const dropped = new Map<string, string>();
  const put = async (rel: string, bytes: Buffer) => {
    await writeFile(join(stack.watchDir, rel), bytes);
    dropped.set(rel.slice(rel.lastIndexOf('/') + 1), createHash('sha256').update(bytes).digest('hex'));
  };

  const faultLog: string[] = [];
  let dropping = true;
  // Every kind of fault at least once (in a seeded order), then seeded random picks.
  type Fault = 'api-on' | 'api-off' | 'fail-imports' | 'kill-tunnel';
  const firstRound: Fault[] = ['api-on', 'fail-imports', 'kill-tunnel', 'api-off'].sort(() => rand() - 0.5) as Fault[];
  const pick = (): Fault => {
    const r = rand();
    return r < 0.3 ? 'api-on' : r < 0.5 ? 'api-off' : r < 0.8 ? 'fail-imports' : 'kill-tunnel';
  };
  const chaos = (async () => {
    while (dropping) {
      await sleep(1500 + rand() * 2500);
      if (!dropping) break;
      const fault = firstRound.shift() ?? pick();
      if (fault === 'api-on') {
        stack.emulator.setFaults({ status429EveryN: 5, status503EveryN: 7 });
        faultLog.push('429/5th + 503/7th on');
      } else if (fault === 'api-off') {
        stack.emulator.setFaults({ status429EveryN: 0, status503EveryN: 0 });
        faultLog.push('429/503 off');
      } else if (fault === 'fail-imports') {
        const n = 1 + Math.floor(rand() * 3);
        stack.emulator.setFaults({ failImportsNext: n });
        faultLog.push(`failImportsNext ${n}`);
      } else if (faultLog.filter((f) => f === 'tunnel killed').length < 3) {
        const pid = Number((await readFile(join(stack.stateDir, 'cloudflared.pid'), 'utf8').catch(() => '0')).trim());
        try {
          if (!(pid > 0)) throw new Error('no pid');
          process.kill(pid, 'SIGKILL');
          faultLog.push('tunnel killed');
        } catch {
          firstRound.push('kill-tunnel'); // between two cloudflareds: try again at the next step
        }
      }
    }
    stack.emulator.setFaults({ status429EveryN: 0, status503EveryN: 0 });
  })();

  // Drops spread over ~30 s: small files in batches into a few sub-folders, the large ones among them.
  await Promise.all(['ep1', 'ep2', 'ep3'].map((d) => mkdir(join(stack.watchDir, d))));
  for (let i = 0; i < SMALL; i++) {
    await put(`ep${1 + (i % 3)}/shot_${String(i).padStart(4, '0')}.exr`, randomBytes(4 * KiB + Math.floor(rand() * 60 * KiB)));
    if (i % 20 === 19) await sleep(2000);
    if (i % 80 === 40) await put(`master_${i}.mov`, randomBytes(24 * MiB + i));
  }
  assert.equal(dropped.size, SMALL + LARGE);
  dropping = false;
  await chaos;
  t.diagnostic(`faults injected: ${faultLog.join(', ')}`);

  const completeNames = () => new Set(stack.emulator.ledger().filter((e) => e.status === 'complete').map((e) => e.name));
  try {
    await until(() => [...dropped.keys()].every((n) => completeNames().has(n)), 180_000, 'every dropped file to be complete in Frame.io', 500);
  } catch (err) {
    const have = completeNames();
    const missing = [...dropped.keys()].filter((n) => !have.has(n));
    const lastWarnings = daemon.lines.filter((l) => typeof l.level === 'number' && l.level >= 40).slice(-15);
    const events = new Map<string, number>();
    for (const l of daemon.lines) events.set(String(l.event), (events.get(String(l.event)) ?? 0) + 1);
    await daemon.stop('SIGTERM'); // the store is locked while the daemon runs
    const { DatabaseSync } = await import('node:sqlite');
    const db = new DatabaseSync(join(stack.stateDir, 'postflow.db'), { readOnly: true });
    const rows = missing.slice(0, 5).map((n) => db.prepare('SELECT name, state, attempts, next_attempt_at - ? AS dueInMs, updated_at - ? AS updatedMsAgo, last_error FROM jobs WHERE name = ?').all(Date.now(), Date.now(), n));
    db.close();
    throw new Error(
      `${(err as Error).message}: ${missing.length} of ${dropped.size} missing (e.g. ${missing.slice(0, 5).join(', ')}); jobs: ${JSON.stringify(rows)}; ` +
        `log events ${JSON.stringify(Object.fromEntries(events))}; last warnings: ${lastWarnings.map((l) => `${String(l.file ?? '')} ${String(l.msg)}`).join(' | ')}`,
    );
  }
  await sleep(2000); // a duplicate import would land now
  t.diagnostic(`all ${dropped.size} files complete ${Math.round((Date.now() - startedAt) / 1000)} s after start`);

  const perOperation: Record<string, number> = {};
  for (const c of stack.emulator.calls()) perOperation[`${c.operation} ${c.status}`] = (perOperation[`${c.operation} ${c.status}`] ?? 0) + 1;
  t.diagnostic(`API calls: ${JSON.stringify(perOperation)}`);
  const ledger = stack.emulator.ledger();
  const complete = ledger.filter((e) => e.status === 'complete');
  const byName = new Map<string, string[]>();
  for (const e of complete) byName.set(e.name, [...(byName.get(e.name) ?? []), e.sha256 ?? 'null']);
  const twice = [...byName].filter(([, shas]) => shas.length > 1).map(([n]) => n);
  assert.deepEqual(twice, [], 'no file imported twice');
  assert.deepEqual([...byName.keys()].filter((n) => !dropped.has(n)), [], 'nothing imported that was not dropped');
  const wrong = [...dropped].filter(([n, sha]) => byName.get(n)?.[0] !== sha).map(([n]) => n);
  assert.deepEqual(wrong, [], 'every file arrived with its sha256');
  assert.ok(!ledger.some((e) => e.status === 'importing'), 'no import left half-done at Frame.io');
  assert.deepEqual(daemon.lines.filter((l) => l.event === 'failed').map((l) => `${String(l.file)}: ${String(l.err)}`), [], 'no job failed');
  assert.ok(faultLog.includes('tunnel killed') && faultLog.some((f) => f.startsWith('failImportsNext')) && faultLog.some((f) => f.startsWith('429')), `every kind of fault was injected (${faultLog.join(', ')})`);
  assert.ok(daemon.lines.some((l) => l.event === 'tunnel-restart'), 'the daemon restarted the killed cloudflared');
});
