import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { standinToken } from './cloudflared/cloudflared.ts';
import { resolveHost } from './tunnel-registry.ts';

const STANDIN = join(dirname(fileURLToPath(import.meta.url)), 'cloudflared', 'cloudflared');
const root = mkdtempSync(join(tmpdir(), 'pf-standin-'));
const registry = join(root, 'registry');
const home = join(root, 'home');
mkdirSync(home);

// A tiny origin: GET answers Range requests over a known 1 MiB body; POST echoes; /slow answers after 400 ms.
const body = Buffer.alloc(1 << 20, 0);
for (let i = 0; i < body.length; i++) body[i] = i % 251;
let lastHeaders: Record<string, string | string[] | undefined> = {};
const origin: Server = createServer((req, res) => {
  lastHeaders = req.headers;
  if (req.method === 'POST') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.pipe(res);
    return;
  }
  if (req.url === '/slow') {
    setTimeout(() => res.writeHead(200).end('slow done'), 400);
    return;
  }
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (m) {
    const start = Number(m[1]);
    const end = Number(m[2]);
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': end - start + 1 });
    res.end(body.subarray(start, end + 1));
  } else {
    res.writeHead(200, { 'content-length': body.length }).end(body);
  }
});
await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
after(() => {
  origin.close();
  origin.closeAllConnections();
  rmSync(root, { recursive: true, force: true });
});

interface Running {
  child: ChildProcess;
  stderr: () => string;
  line: (re: RegExp, ms?: number) => Promise<RegExpExecArray>;
  exit: Promise<[number | null, string | null]>;
}

function run(t: { after(fn: () => unknown): void }, args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(STANDIN, args, {
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, HOME: home, CLOUDFLARED_STANDIN_REGISTRY: registry, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = once(child, 'exit') as Promise<[number | null, string | null]>;
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    stderr: () => err,
    exit,
    async line(re, ms = 5_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = re.exec(err);
        if (m) return m;
        if (Date.now() > deadline || child.exitCode !== null) assert.fail(`no line ${re} in:\n${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

const quickArgs = (extra: string[] = []) => ['tunnel', '--no-autoupdate', '--metrics', '127.0.0.1:0', ...extra, '--url', originUrl];

async function edgeOf(hostname: string, ms = 3_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const edge = resolveHost(registry, hostname);
    if (edge) return edge;
    if (Date.now() > deadline) assert.fail(`${hostname} never published`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('cloudflared stand-in', () => {
  test('--version prints the real format', async (t) => {
    const r = run(t, ['--version']);
    let out = '';
    r.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    assert.deepEqual(await r.exit, [0, null]);
    assert.match(out, /^cloudflared version \d{4}\.\d+\.\d+ \(built \d{4}-\d{2}-\d{2}-\d{4} UTC\)\n$/);
  });

  test('quick tunnel: real log lines, metrics endpoints, Range forwarded end to end, SIGTERM exits 0 and unpublishes', async (t) => {
    const r = run(t, quickArgs());
    const url = await r.line(/^\S+Z INF \|  (https:\/\/([a-z]+(?:-[a-z]+){3}\.trycloudflare\.com)) +\|$/m);
    const hostname = url[2]!;
    await r.line(/INF \+-{80,}\+\n\S+ INF \|  Your quick Tunnel has been created! Visit it at \(it may take some time to be reachable\):  \|/);
    const metrics = (await r.line(/INF Starting metrics server on (127\.0\.0\.1:\d+)\/metrics/))[1]!;
    await r.line(/(Registered tunnel connection connIndex=\d connection=[0-9a-f-]{36} event=0 ip=198\.41\.\d+\.\d+ location=[a-z]{3}\d\d protocol=quic\n[^\n]*){4}/);

    const ready = await fetch(`http://${metrics}/ready`);
    assert.equal(ready.status, 200);
    const readyBody = (await ready.json()) as Record<string, unknown>;
    assert.equal(readyBody.status, 200);
    assert.equal(readyBody.readyConnections, 4);
    assert.match(String(readyBody.connectorId), /^[0-9a-f-]{36}$/);
    assert.deepEqual(await (await fetch(`http://${metrics}/quicktunnel`)).json(), { hostname });
    assert.equal(await (await fetch(`http://${metrics}/healthcheck`)).text(), 'OK\n');

    const edge = await edgeOf(hostname);
    const part = await fetch(`${edge}/tok123/clip.mov`, { headers: { range: 'bytes=1000-66535' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 1000-66535/${body.length}`);
    assert.match(part.headers.get('cf-ray') ?? '', /^[0-9a-f]{16}-[A-Z]{3}$/);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), body.subarray(1000, 66536));
    assert.equal(lastHeaders.host, hostname);
    assert.equal(lastHeaders['x-forwarded-proto'], 'https');
    assert.equal(lastHeaders['cf-connecting-ip'], '127.0.0.1');
    assert.equal(lastHeaders['x-forwarded-for'], '127.0.0.1');
    assert.match(String(lastHeaders['cf-ray']), /^[0-9a-f]{16}-[A-Z]{3}$/);
    assert.equal(lastHeaders.range, 'bytes=1000-66535');

    const echoed = await fetch(`${edge}/upload`, { method: 'POST', body: body.subarray(0, 300_000) });
    assert.deepEqual(Buffer.from(await echoed.arrayBuffer()), body.subarray(0, 300_000));

    const prom = await (await fetch(`http://${metrics}/metrics`)).text();
    assert.match(prom, /^cloudflared_tunnel_ha_connections 4$/m);
    assert.match(prom, /^cloudflared_tunnel_total_requests 2$/m);

    r.child.kill('SIGTERM');
    assert.deepEqual(await r.exit, [0, null]);
    assert.match(r.stderr(), /INF Initiating graceful shutdown due to signal terminated/);
    assert.equal(resolveHost(registry, hostname), undefined);
  });

  test('SIGTERM waits for a request in flight; a second signal exits at once', async (t) => {
    const r = run(t, quickArgs(['--grace-period', '5s']));
    const hostname = (await r.line(/https:\/\/(\S+\.trycloudflare\.com)/))[1]!;
    const edge = await edgeOf(hostname);
    const slow = fetch(`${edge}/slow`).then((res) => res.text());
    await new Promise((res) => setTimeout(res, 100));
    r.child.kill('SIGTERM');
    assert.equal(await slow, 'slow done');
    assert.deepEqual(await r.exit, [0, null]);

    const r2 = run(t, quickArgs(['--grace-period', '30s']));
    const host2 = (await r2.line(/https:\/\/(\S+\.trycloudflare\.com)/))[1]!;
    const edge2 = await edgeOf(host2);
    const hanging = fetch(`${edge2}/slow`).catch(() => 'aborted');
    await new Promise((res) => setTimeout(res, 50));
    const t0 = Date.now();
    r2.child.kill('SIGTERM');
    await new Promise((res) => setTimeout(res, 50));
    r2.child.kill('SIGTERM');
    assert.deepEqual(await r2.exit, [0, null]);
    assert.ok(Date.now() - t0 < 1_000);
    await hanging;
  });

  test('refuses a quick tunnel when $HOME/.cloudflared/config.yml exists', async (t) => {
    const otherHome = join(root, 'home-with-config');
    mkdirSync(join(otherHome, '.cloudflared'), { recursive: true });
    writeFileSync(join(otherHome, '.cloudflared', 'config.yml'), 'tunnel: abc\n');
    const r = run(t, quickArgs(), { HOME: otherHome });
    assert.deepEqual(await r.exit, [1, null]);
    assert.match(r.stderr(), /ERR Quick Tunnels cannot be used while a configuration file is present: \S+config\.yml/);
    // An explicit --config lifts it, as with the real binary.
    const ok = run(t, ['tunnel', '--config', join(root, 'explicit.yml'), '--metrics', '127.0.0.1:0', '--url', originUrl], { HOME: otherHome });
    await ok.line(/Registered tunnel connection/);
  });

  test('fault switches: FAIL_START, EXIT_AFTER_MS, UNREADY_AFTER_MS, DNS_DELAY_MS, SIGUSR1/SIGUSR2', async (t) => {
    const failing = run(t, quickArgs(), { CLOUDFLARED_STANDIN_FAIL_START: '1' });
    assert.deepEqual(await failing.exit, [1, null]);
    assert.match(failing.stderr(), /^\S+Z ERR failed to request quick Tunnel: /m);

    const crashing = run(t, quickArgs(), { CLOUDFLARED_STANDIN_EXIT_AFTER_MS: '300' });
    assert.deepEqual(await crashing.exit, [1, null]);

    const r = run(t, quickArgs(), { CLOUDFLARED_STANDIN_UNREADY_AFTER_MS: '400', CLOUDFLARED_STANDIN_DNS_DELAY_MS: '200' });
    const hostname = (await r.line(/https:\/\/(\S+\.trycloudflare\.com)/))[1]!;
    const metrics = (await r.line(/Starting metrics server on (\S+)\/metrics/))[1]!;
    assert.equal(resolveHost(registry, hostname), undefined, 'not resolvable before the DNS delay');
    const edge = await edgeOf(hostname);
    assert.equal((await fetch(`${edge}/x`, { headers: { range: 'bytes=0-1' } })).status, 206);
    await r.line(/ERR Serve tunnel error error="timeout: no recent network activity" connIndex=0/);
    await r.line(/WRN Retrying connection in up to 1s connIndex=3/);
    assert.equal((await fetch(`http://${metrics}/ready`)).status, 503);
    const cut = await fetch(`${edge}/x`);
    assert.equal(cut.status, 530);
    r.child.kill('SIGUSR2');
    await r.line(/(Registered tunnel connection[^\n]*\n[^]*){8}/);
    assert.equal((await fetch(`http://${metrics}/ready`)).status, 200);
    // Losing the edge connections breaks requests in flight, as with the real service.
    const inFlight = fetch(`${edge}/slow`).then((res) => res.text());
    await new Promise((res) => setTimeout(res, 100));
    r.child.kill('SIGUSR1');
    await assert.rejects(inFlight);
    assert.equal((await fetch(`http://${metrics}/ready`)).status, 503);
  });

  test('named tunnel: `tunnel run --token`, or TUNNEL_TOKEN; fixed hostname', async (t) => {
    const token = standinToken('media.studio.test');
    const r = run(t, ['tunnel', '--no-autoupdate', '--metrics', '127.0.0.1:0', 'run', '--token', token, '--url', originUrl]);
    await r.line(/INF Starting tunnel tunnelID=[0-9a-f-]{36}/);
    await r.line(/Registered tunnel connection connIndex=3/);
    assert.doesNotMatch(r.stderr(), /trycloudflare/);
    const edge = await edgeOf('media.studio.test');
    assert.equal((await fetch(`${edge}/a`, { headers: { range: 'bytes=0-0' } })).status, 206);
    r.child.kill('SIGTERM');
    assert.deepEqual(await r.exit, [0, null]);

    const viaEnv = run(t, ['tunnel', '--metrics', '127.0.0.1:0', '--url', originUrl, 'run'], { TUNNEL_TOKEN: token, CLOUDFLARED_STANDIN_HOSTNAME: 'other.studio.test' });
    await viaEnv.line(/Registered tunnel connection/);
    await edgeOf('other.studio.test');

    const bad = run(t, ['tunnel', 'run', '--token', 'not-a-token', '--url', originUrl]);
    assert.deepEqual(await bad.exit, [1, null]);
    assert.match(bad.stderr(), /ERR Provided Tunnel token is not valid/);
  });

  test('CLI errors and default metrics port', async (t) => {
    const bad = run(t, ['tunnel', '--bogus', '--url', originUrl]);
    assert.deepEqual(await bad.exit, [1, null]);
    assert.match(bad.stderr(), /Incorrect Usage: flag provided but not defined: -bogus/);
    const misplaced = run(t, ['tunnel', 'run', '--metrics', '127.0.0.1:0', '--token', 'x']);
    assert.deepEqual(await misplaced.exit, [1, null]);

    const r = run(t, ['tunnel', '--url', originUrl]);
    const port = Number((await r.line(/Starting metrics server on 127\.0\.0\.1:(\d+)\/metrics/))[1]);
    assert.ok(port >= 20241 && port <= 20245, `port ${port} from the 20241–20245 range`);
    const ready = await fetch(`http://127.0.0.1:${port}/healthcheck`);
    assert.equal(ready.status, 200);
  });
});
