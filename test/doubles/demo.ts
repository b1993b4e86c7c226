/**
 * `npm run demo`: the real daemon on a local `demo/` folder against the built-in doubles (the Frame.io V4
 * emulator and the cloudflared stand-in), for a newcomer who has no Frame.io account yet. Drop a file into
 * demo/ and watch it being noticed, exposed, pulled through the tunnel and confirmed, with progress lines.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEmulator } from './frameio/emulator.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cwd = process.cwd();
const watchDir = resolve(cwd, 'demo');
const stateDir = resolve(cwd, '.postflow-demo');
const registry = join(stateDir, 'tunnel-registry');
const sample = !process.argv.includes('--no-sample');

await mkdir(watchDir, { recursive: true });
await mkdir(stateDir, { recursive: true, mode: 0o700 });

const emulator = await startEmulator({ registryDir: registry });
const refreshTokenFile = join(stateDir, 'refresh-token');
await writeFile(refreshTokenFile, `${emulator.issueRefreshToken()}\n`, { mode: 0o600 });
await chmod(refreshTokenFile, 0o600);
const configFile = join(stateDir, 'postflow.json');
const config = {
  watch: { folders: [{ path: watchDir, destination: emulator.projectId }], stabilitySeconds: 3, pollIntervalSeconds: 1 },
  frameio: {
    apiUrl: emulator.apiUrl,
    accountId: emulator.accountId,
    imsTokenUrl: emulator.imsTokenUrl,
    clientId: 'postflow-test-client',
    clientSecret: 'test-secret',
    refreshTokenFile,
  },
  tunnel: { mode: 'quick', cloudflaredPath: join(root, 'test', 'doubles', 'cloudflared', 'cloudflared') },
  server: { host: '127.0.0.1', port: 0 },
  workers: 4,
  stateDir,
};
await writeFile(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });

process.stdout.write(`
postflow demo
  watch folder : ${watchDir}   ← drop files here (e.g. head -c 300M /dev/urandom > demo/cut_v1.mov)
  Frame.io     : emulator at ${emulator.url} (project ${emulator.projectId})
  tunnel       : cloudflared stand-in (${config.tunnel.cloudflaredPath})
  state        : ${stateDir}
  Ctrl-C stops it.

`);

const daemon = spawn(process.execPath, [join(root, 'bin', 'postflow.js'), 'run', '--config', configFile, ...(process.stdout.isTTY ? ['--pretty'] : [])], {
  stdio: 'inherit',
  env: { ...process.env, CLOUDFLARED_STANDIN_REGISTRY: registry },
  // Its own process group: a terminal's Ctrl-C reaches only this script, which stops the daemon once (a
  // second signal would make the daemon skip its graceful stop).
  detached: true,
});

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  daemon.kill('SIGTERM');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

daemon.on('exit', async (code) => {
  await emulator.close();
  const imported = emulator.ledger().filter((e) => e.status === 'complete');
  process.stdout.write(`\nemulator received ${imported.length} file(s):\n`);
  for (const e of imported) process.stdout.write(`  ${e.name}  ${e.size} bytes  sha256 ${e.sha256}\n`);
  process.exit(code ?? 0);
});

if (sample) {
  // Give the daemon its first sweep (files present then are the baseline), then drop a sample export the way
  // a render node would: written over a few seconds, so the stability rule has something to wait for.
  await sleep(4000);
  if (!stopping && (await readdir(watchDir)).length === 0) {
    const target = join(watchDir, 'sample_export_v1.mov');
    process.stdout.write(`demo: writing ${target} (64 MiB, over ~2 s) — pass --no-sample to skip\n`);
    const out = createWriteStream(target);
    for (let i = 0; i < 8; i++) {
      out.write(randomBytes(8 * 1024 * 1024));
      await sleep(250);
    }
    out.end();
  }
}
