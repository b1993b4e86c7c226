import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { DEFAULT_PLIST_PATHS, renderPlist } from '../../src/service/launchd-plist.ts';
import { DEFAULT_UNIT_PATHS, renderSystemUnit, renderUserUnit } from '../../src/service/systemd-unit.ts';
import { BIN, ROOT } from '../e2e/harness.ts';
import { parsePlist } from './plist.ts';

const run = promisify(execFile);

/** `systemd-analyze verify` output: it exits 0 on unknown keys and merely warns, so any output is a failure. */
async function verify(unitPath: string, opts: { user?: boolean; runtimeDir?: string } = {}): Promise<{ code: number; output: string }> {
  const args = ['verify', ...(opts.user ? ['--user'] : []), unitPath];
  const env = { ...process.env, ...(opts.runtimeDir ? { XDG_RUNTIME_DIR: opts.runtimeDir } : {}), SYSTEMD_LOG_COLOR: '0' };
  try {
    const { stdout, stderr } = await run('systemd-analyze', args, { env });
    return { code: 0, output: `${stdout}${stderr}`.trim() };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: `${e.stdout}${e.stderr}`.trim() };
  }
}

/** Directives of one INI section, in order (a key may repeat). */
function section(unit: string, name: string): [string, string][] {
  const out: [string, string][] = [];
  let inside = false;
  for (const line of unit.split('\n')) {
    if (/^\[.*\]$/.test(line)) inside = line === `[${name}]`;
    else if (inside && line.trim() !== '' && !line.startsWith('#')) {
      const eq = line.indexOf('=');
      out.push([line.slice(0, eq), line.slice(eq + 1)]);
    }
  }
  return out;
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'postflow-service-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('the committed unit and plist are the renderers\' output for the default paths', async () => {
  assert.equal(await readFile(join(ROOT, 'systemd', 'postflow.service'), 'utf8'), renderSystemUnit(DEFAULT_UNIT_PATHS));
  assert.equal(await readFile(join(ROOT, 'launchd', 'io.postflow.daemon.plist'), 'utf8'), renderPlist(DEFAULT_PLIST_PATHS));
});

test('the system unit with this installation\'s paths passes systemd-analyze verify, and a broken one does not', async (t) => {
  const dir = await tempDir(t);
  const good = join(dir, 'postflow.service');
  await writeFile(good, renderSystemUnit({ installDir: ROOT, configFile: '/etc/postflow/postflow.json', graceSeconds: 30, user: 'postflow' }));
  assert.deepEqual(await verify(good), { code: 0, output: '' });

  // The check itself must be able to fail: a misspelt directive and a missing binary are both caught.
  const typo = join(dir, 'typo.service');
  await writeFile(typo, (await readFile(good, 'utf8')).replace('ProtectHome=', 'ProtectHomes='));
  assert.match((await verify(typo)).output, /Unknown key 'ProtectHomes'/);
  const missing = join(dir, 'missing.service');
  await writeFile(missing, renderSystemUnit({ installDir: join(dir, 'nowhere'), configFile: '/etc/postflow/postflow.json', graceSeconds: 30, user: 'postflow' }));
  const bad = await verify(missing);
  assert.notEqual(bad.code, 0);
  assert.match(bad.output, /is not executable/);
});

test('the user unit passes systemd-analyze verify --user', async (t) => {
  const dir = await tempDir(t);
  const runtime = join(dir, 'run');
  await mkdir(runtime, { mode: 0o700 });
  const unit = join(dir, 'postflow.service');
  await writeFile(unit, renderUserUnit({ installDir: ROOT, configFile: join(dir, 'postflow.json'), graceSeconds: 12 }));
  assert.deepEqual(await verify(unit, { user: true, runtimeDir: runtime }), { code: 0, output: '' });
  assert.ok(section(await readFile(unit, 'utf8'), 'Service').some(([k, v]) => k === 'TimeoutStopSec' && v === '52'));
});

test('the system unit carries the lifecycle and hardening the issue asks for', () => {
  const unit = renderSystemUnit({ installDir: '/srv/post flow', configFile: '/etc/postflow/postflow.json', graceSeconds: 45, user: 'postflow' });
  const svc = new Map(section(unit, 'Service'));
  const all = section(unit, 'Service');
  const u = new Map(section(unit, 'Unit'));
  assert.match(svc.get('Type')!, /^(simple|notify)$/);
  assert.equal(svc.get('Restart'), 'on-failure');
  assert.ok(Number(u.get('StartLimitBurst')) > 0 && Number(u.get('StartLimitIntervalSec')) > 0);
  assert.equal(svc.get('User'), 'postflow');
  assert.equal(svc.get('StateDirectory'), 'postflow');
  assert.equal(svc.get('ExecStart'), '"/srv/post flow/bin/postflow.js" run --config /etc/postflow/postflow.json');
  assert.equal(svc.get('NoNewPrivileges'), 'yes');
  assert.equal(svc.get('ProtectSystem'), 'strict');
  assert.equal(svc.get('ReadWritePaths'), '/var/lib/postflow');
  assert.equal(svc.get('ProtectHome'), 'read-only');
  assert.equal(svc.get('PrivateTmp'), 'yes');
  for (const k of ['ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs']) assert.equal(svc.get(k), 'yes', k);
  assert.match(svc.get('RestrictAddressFamilies')!, /AF_INET6/);
  assert.equal(svc.get('CapabilityBoundingSet'), '');
  assert.equal(svc.get('KillSignal'), 'SIGTERM');
  assert.equal(svc.get('ExecReload'), '/bin/kill -HUP $MAINPID'); // SIGHUP re-reads log.level
  assert.equal(svc.get('TimeoutStopSec'), '85'); // 45 s grace + 40 s to stop cloudflared and close the store
  assert.ok(all.some(([k, v]) => k === 'Environment' && v.startsWith('"PATH=/srv/post flow/node_modules/node/bin:')));
  assert.equal(new Map(section(unit, 'Install')).get('WantedBy'), 'multi-user.target');
});

test('the plist is a valid property list with the keys launchd needs', () => {
  const plist = parsePlist(renderPlist({ ...DEFAULT_PLIST_PATHS, installDir: '/Applications/Post & Flow', graceSeconds: 10 })) as Record<string, any>;
  assert.equal(plist.Label, 'io.postflow.daemon');
  assert.deepEqual(plist.ProgramArguments, ['/Applications/Post & Flow/bin/postflow.js', 'run', '--config', DEFAULT_PLIST_PATHS.configFile]);
  assert.equal(plist.RunAtLoad, true);
  assert.deepEqual(plist.KeepAlive, { SuccessfulExit: false });
  assert.equal(typeof plist.ThrottleInterval, 'number');
  assert.equal(plist.ExitTimeOut, 50);
  assert.equal(plist.WorkingDirectory, '/Applications/Post & Flow');
  assert.equal(plist.StandardOutPath, `${DEFAULT_PLIST_PATHS.logDir}/postflow.log`);
  assert.equal(plist.StandardErrorPath, `${DEFAULT_PLIST_PATHS.logDir}/postflow.err.log`);
  assert.match(plist.EnvironmentVariables.PATH, /^\/Applications\/Post & Flow\/node_modules\/node\/bin:/);
  assert.equal(plist.EnvironmentVariables.POSTFLOW_STATE_DIR, DEFAULT_PLIST_PATHS.stateDir);
  assert.equal(plist.UserName, '_postflow');
});

test('the plist parser rejects what launchd would reject', () => {
  const good = renderPlist({ ...DEFAULT_PLIST_PATHS });
  assert.throws(() => parsePlist(good.replace('<key>RunAtLoad</key>\n  <true/>', '<key>RunAtLoad</key>')), /has no value|expected <key>/);
  assert.throws(() => parsePlist(good.replace('</dict>\n</plist>', '</plist>')), /expected/);
  assert.throws(() => parsePlist(good.replace('<string>run</string>', '<string>a & b</string>')), /bare &/);
  assert.throws(() => parsePlist(good.replace('<true/>', '<yes/>')), /not a plist element/);
});

test('`postflow service install` writes the unit with real paths and prints what to run next', async (t) => {
  const dir = await tempDir(t);
  const config = join(dir, 'postflow.json');
  await writeFile(config, JSON.stringify({ shutdown: { graceSeconds: 20 } }));
  const env = { ...process.env, HOME: dir };
  const { stdout } = await run(process.execPath, [BIN, 'service', 'install', '--platform', 'linux', '--config', config, '--unit-dir', dir], { env });
  const unitPath = join(dir, 'postflow.service');
  assert.match(stdout, new RegExp(`wrote ${unitPath}`));
  assert.match(stdout, /systemctl daemon-reload && sudo systemctl enable --now postflow/);
  const unit = await readFile(unitPath, 'utf8');
  assert.match(unit, new RegExp(`^ExecStart=${ROOT}/bin/postflow.js run --config ${config}$`, 'm'));
  assert.match(unit, /^TimeoutStopSec=60$/m);
  assert.deepEqual(await verify(unitPath), { code: 0, output: '' });

  const dry = await run(process.execPath, [BIN, 'service', 'install', '--user', '--dry-run', '--platform', 'darwin', '--config', config, '--unit-dir', join(dir, 'agents')], { env });
  assert.match(dry.stdout, /launchctl bootstrap gui\/\$\(id -u\)/);
  const body = dry.stdout.slice(dry.stdout.indexOf('<?xml'), dry.stdout.indexOf('</plist>') + '</plist>'.length);
  const plist = parsePlist(`${body}\n`) as Record<string, any>;
  assert.equal(plist.ProgramArguments[0], `${ROOT}/bin/postflow.js`);
  assert.equal(plist.UserName, undefined); // a LaunchAgent runs as the logged-in user
  assert.equal(plist.StandardOutPath, join(dir, 'Library', 'Logs', 'postflow', 'postflow.log'));
  await assert.rejects(readFile(join(dir, 'agents', 'io.postflow.daemon.plist')), /ENOENT/); // dry run writes nothing

  await assert.rejects(run(process.execPath, [BIN, 'service', 'uninstall'], { env }), (e: { code: number; stderr: string }) => e.code === 64 && /service install/.test(e.stderr));
});
