import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { describeMount, renderResults, runDoctor } from '../../src/cli/doctor.ts';
import { loadConfig } from '../../src/config/load.ts';
import { startEmulator, type Emulator } from '../doubles/frameio/emulator.ts';
import { resolveHost } from '../doubles/tunnel-registry.ts';
import { BIN, CLOUDFLARED } from '../e2e/harness.ts';

const run = promisify(execFile);

async function setup(t: TestContext, tweak: (c: Record<string, any>, e: Emulator) => void = () => {}) {
  const dir = await mkdtemp(join(tmpdir(), 'postflow-doctor-'));
  const emulator = await startEmulator({ registryDir: join(dir, 'registry') });
  t.after(async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });
  const watch = join(dir, 'watch');
  const state = join(dir, 'state');
  await mkdir(watch);
  await mkdir(join(dir, 'watch2'));
  await mkdir(state, { mode: 0o700 });
  await writeFile(join(state, 'refresh-token'), emulator.issueRefreshToken(), { mode: 0o600 });
  const config: Record<string, any> = {
    watch: { folders: [{ path: watch, destination: emulator.projectId }] },
    frameio: { apiUrl: emulator.apiUrl, accountId: emulator.accountId, imsTokenUrl: emulator.imsTokenUrl, clientId: emulator.clientId, clientSecret: emulator.clientSecret },
    tunnel: { cloudflaredPath: CLOUDFLARED, startTimeoutSeconds: 20 },
    stateDir: state,
  };
  tweak(config, emulator);
  const configFile = join(dir, 'postflow.json');
  await writeFile(configFile, JSON.stringify(config), { mode: 0o600 });
  return { dir, watch, state, emulator, configFile, registry: join(dir, 'registry') };
}

/** What the public internet does with a trycloudflare.com name, through the stand-in's registry (our DNS). */
function registryFetch(registry: string): typeof fetch {
  return async (input, init) => {
    const url = new URL(String(input));
    const edge = resolveHost(registry, url.hostname);
    if (!edge) throw new TypeError('fetch failed', { cause: Object.assign(new Error(`getaddrinfo ENOTFOUND ${url.hostname}`), { code: 'ENOTFOUND' }) });
    return fetch(`${edge}${url.pathname}`, init);
  };
}

test('doctor: everything passes against the emulator and the stand-in, the probe comes back through the public URL after the name resolves', async (t) => {
  const s = await setup(t);
  const config = loadConfig({ argvConfigPath: s.configFile, env: {}, cwd: s.dir });
  const results = await runDoctor(config, {
    logger: pino({ level: 'silent' }),
    probeFetch: registryFetch(s.registry),
    // The name is published 1.5 s after cloudflared starts: the probe must wait it out, not fail.
    tunnelEnv: { CLOUDFLARED_STANDIN_REGISTRY: s.registry, CLOUDFLARED_STANDIN_DNS_DELAY_MS: '1500' },
    mounts: `/dev/sda1 / ext4 rw 0 0\nlucidlink ${s.watch} fuse.lucidlink rw,nosuid,nodev 0 0\n`,
    probeRetryMs: 300,
    probeTimeoutMs: 30_000,
  });
  const text = renderResults(results);
  assert.ok(results.every((r) => r.ok), text);
  assert.deepEqual(results.map((r) => r.name), ['Node.js', 'cloudflared', 'watch folder 1', 'state dir', 'file-server port', 'Frame.io login', 'destination 1', 'tunnel', 'public URL']);
  assert.match(text, /✔ cloudflared: 2025\.8\.1 \(/);
  assert.match(text, /✔ watch folder 1: .* — looks like a LucidLink mount \(fuse\.lucidlink at /);
  assert.match(text, /✔ Frame\.io login: GET \/v4\/me: Postflow Test <postflow-test@example\.com>/);
  assert.match(text, /✔ destination 1: .* → folder "/);
  assert.match(text, /✔ public URL: a probe file fetched through https:\/\/[a-z-]+\.trycloudflare\.com came back intact \(.* after \d+ "not resolvable yet"\)/);
  assert.match(text, /all checks passed/);
  // Nothing left behind in the state dir (the probe used a scratch folder of its own).
  assert.deepEqual(await readdir(s.state), ['refresh-token']);
});

test('doctor through the bin: a missing cloudflared, a busy port, an unknown destination and a revoked login each fail with a fix, exit 1', async (t) => {
  const busy: Server = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => busy.close(() => r())));
  const port = (busy.address() as { port: number }).port;
  const s = await setup(t, (c, e) => {
    c.tunnel.cloudflaredPath = '/nonexistent/cloudflared';
    c.server = { port };
    c.watch.folders.push({ path: join(c.stateDir, '..', 'watch2'), destination: 'no-such-folder' });
    void e;
  });
  s.emulator.setFaults({ revokeRefreshTokens: true });
  const out = await run(process.execPath, [BIN, 'doctor', '--config', s.configFile]).then(
    () => assert.fail('doctor should exit 1'),
    (e: { code: number; stdout: string }) => e,
  );
  assert.equal(out.code, 1);
  const text = out.stdout;
  assert.match(text, /^✔ Node\.js: v24\./m);
  assert.match(text, /^✖ cloudflared: PF_ERR_TUNNEL_CLOUDFLARED_MISSING.*\n {4}fix: install it \(macOS: `brew install cloudflared`/m);
  assert.match(text, /^✔ watch folder 2: .* — a local folder/m);
  assert.match(text, new RegExp(`^✖ file-server port: 127\\.0\\.0\\.1:${port} is not free \\(EADDRINUSE\\)\\n {4}fix: is postflow already running`, 'm'));
  assert.match(text, /^✖ Frame\.io login: PF_ERR_FRAMEIO_AUTH_REVOKED.*\n {4}fix: run `postflow auth login`/m);
  assert.match(text, /^✖ destination 2: no-such-folder: not checked \(no working login\)/m);
  assert.match(text, /^✖ tunnel: not started \(cloudflared missing\)/m);
  assert.match(text, /checks failed$/m);
});

test('doctor: an unknown destination is named with its fix when the login works', async (t) => {
  const s = await setup(t, (c) => c.watch.folders.push({ path: join(c.stateDir, '..', 'watch2'), destination: 'no-such-folder' }));
  const config = loadConfig({ argvConfigPath: s.configFile, env: {}, cwd: s.dir });
  const results = await runDoctor(config, { logger: pino({ level: 'silent' }), tunnelEnv: { CLOUDFLARED_STANDIN_REGISTRY: s.registry }, probeFetch: registryFetch(s.registry), probeRetryMs: 200 });
  const dest = results.find((r) => r.name === 'destination 2')!;
  assert.equal(dest.ok, false);
  assert.match(dest.detail, /PF_ERR_FRAMEIO_DESTINATION_NOT_FOUND/);
  assert.match(dest.fix!, /watch\.folders\[1\]\.destination/);
  assert.ok(results.find((r) => r.name === 'destination 1')!.ok);
});

test('LucidLink detection from the mount table (Linux) and /Volumes (macOS)', () => {
  const mounts = '/dev/sda1 / ext4 rw 0 0\nlucid /media/lucid\\040studio fuse.lucidlink rw 0 0\n';
  assert.match(describeMount('/media/lucid studio/exports', 'linux', mounts), /^looks like a LucidLink mount \(fuse\.lucidlink at \/media\/lucid studio\)/);
  assert.match(describeMount('/media/lucid studio2/x', 'linux', mounts), /^a local folder \(ext4 at \/,/);
  assert.match(describeMount('/Volumes/studio/exports', 'darwin', ''), /^looks like a LucidLink mount/);
  assert.match(describeMount('/Users/me/exports', 'darwin', ''), /^a local folder/);
});
