/** The bin as an operator meets it: help texts, exit codes, one-line errors, `config`, `upload`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIN, sha256File, startStack } from '../e2e/harness.ts';

const run = promisify(execFile);

async function postflow(args: string[], env: Record<string, string> = {}, cwd?: string) {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, cwd, timeout: 120_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('--help lists the commands; every command has its own --help', async () => {
  const main = await postflow(['--help']);
  assert.equal(main.code, 0);
  for (const c of ['run', 'upload', 'config']) assert.match(main.stdout, new RegExp(`^  ${c}\\b`, 'm'));
  for (const c of ['run', 'upload', 'config']) {
    const r = await postflow([c, '--help']);
    assert.equal(r.code, 0, c);
    assert.match(r.stdout, new RegExp(`^Usage: postflow ${c}`), c);
  }
  const help = await postflow(['help', 'upload']);
  assert.match(help.stdout, /^Usage: postflow upload/);
});

test('the bin keeps V8\'s compile cache in systemd\'s CacheDirectory, or where NODE_COMPILE_CACHE says; NODE_DISABLE_COMPILE_CACHE turns it off', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'postflow-cc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cached = async (where: string) => (await readdir(where, { recursive: true }).catch(() => [])).length;
  const { NODE_COMPILE_CACHE: _, ...parentEnv } = process.env;
  const bare = async (env: Record<string, string>) => {
    const r = await run(process.execPath, [BIN, 'config', '--help'], { env: { ...parentEnv, ...env }, timeout: 60_000 });
    assert.match(r.stdout, /^Usage: postflow config/);
  };
  await bare({ CACHE_DIRECTORY: join(dir, 'systemd') });
  assert.ok((await cached(join(dir, 'systemd', 'node-compile-cache'))) > 0, 'compiled modules cached under $CACHE_DIRECTORY');
  await bare({ CACHE_DIRECTORY: join(dir, 'ignored'), NODE_COMPILE_CACHE: join(dir, 'chosen') });
  assert.ok((await cached(join(dir, 'chosen'))) > 0, 'NODE_COMPILE_CACHE wins');
  assert.equal(await cached(join(dir, 'ignored')), 0);
  await bare({ CACHE_DIRECTORY: join(dir, 'off'), NODE_DISABLE_COMPILE_CACHE: '1' });
  assert.equal(await cached(join(dir, 'off')), 0, 'turned off');
});

test('an unknown command or flag is one clear line, not a stack trace', async () => {
  const unknown = await postflow(['frobnicate']);
  assert.equal(unknown.code, 64);
  assert.equal(unknown.stderr.trim().split('\n').length, 1);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const flag = await postflow(['run', '--frob']);
  assert.equal(flag.code, 64);
  assert.match(flag.stderr, /--frob/);
  assert.doesNotMatch(flag.stderr, /^\s+at /m);
});

test('a broken config stops start-up with exit 78 and one line per problem naming the key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'postflow-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = join(dir, 'postflow.json');
  await writeFile(
    cfg,
    JSON.stringify({ watch: { folders: [{ path: join(dir, 'missing'), destination: 'x' }], pollIntervalSeconds: 'soon' }, workerz: 3, stateDir: join(dir, 'state') }),
    { mode: 0o600 },
  );
  const r = await postflow(['run', '--config', cfg]);
  assert.equal(r.code, 78);
  const lines = r.stderr.trim().split('\n');
  assert.ok(lines.length >= 3, r.stderr);
  assert.ok(lines.some((l) => l.includes('workerz')), 'names the unknown key');
  assert.ok(lines.some((l) => l.includes('watch.pollIntervalSeconds')), 'names the mistyped key');
  assert.ok(lines.some((l) => l.includes('watch.folders[0].path')), 'names the missing folder');
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');

  const bad = join(dir, 'bad.json');
  await writeFile(bad, '{ "watch": { ', { mode: 0o600 });
  const r2 = await postflow(['config', '--config', bad]);
  assert.equal(r2.code, 78);
  assert.match(r2.stderr, /bad\.json/);
});

test('`postflow config` prints the effective config with secrets redacted', async (t) => {
  const stack = await startStack();
  t.after(() => stack.close());
  const r = await postflow(['config', '--config', stack.configFile]);
  assert.equal(r.code, 0, r.stderr);
  const shown = JSON.parse(r.stdout) as { frameio: { clientSecret: string; clientId: string }; watch: { folders: { path: string }[] } };
  assert.equal(shown.frameio.clientSecret, '[redacted]');
  assert.equal(shown.frameio.clientId, 'postflow-test-client');
  assert.equal(shown.watch.folders[0]!.path, stack.watchDir);
  assert.ok(!r.stdout.includes('test-secret'));
});

test('`postflow upload` imports the given files once and exits 0; a missing file makes it exit 1', { timeout: 180_000 }, async (t) => {
  const stack = await startStack();
  t.after(() => stack.close());
  const a = join(stack.dir, 'a.mov');
  const b = join(stack.dir, 'b.wav');
  await writeFile(a, randomBytes(2 * 1024 * 1024 + 3));
  await writeFile(b, randomBytes(70_000));
  const env = { CLOUDFLARED_STANDIN_REGISTRY: stack.registry };
  const ok = await postflow(['upload', a, b, '--folder', stack.emulator.rootFolderId, '--config', stack.configFile], env);
  assert.equal(ok.code, 0, ok.stderr + ok.stdout.slice(-2000));
  const done = ok.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event?: string; file?: string }).filter((l) => l.event === 'done');
  assert.equal(done.length, 2);
  const ledger = stack.emulator.ledger().filter((e) => e.status === 'complete');
  assert.deepEqual(ledger.map((e) => e.name).sort(), ['a.mov', 'b.wav']);
  assert.equal(ledger.find((e) => e.name === 'a.mov')!.sha256, await sha256File(a));
  assert.equal(ledger.find((e) => e.folderId === stack.emulator.rootFolderId)?.folderId, stack.emulator.rootFolderId);

  const partial = await postflow(['upload', a, join(stack.dir, 'nope.mov'), '--folder', stack.emulator.rootFolderId, '--config', stack.configFile], env);
  assert.equal(partial.code, 1);
  assert.equal(stack.emulator.ledger().filter((e) => e.status === 'complete').length, 3, 'the existing file was still uploaded');
});
