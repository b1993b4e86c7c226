import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { standinToken } from './cloudflared/cloudflared.ts';
import { startEdge, type Edge, type EdgeOptions } from './cloudflared/edge.ts';
import { resolveHost } from './tunnel-registry.ts';

const STANDIN = join(dirname(fileURLToPath(import.meta.url)), 'cloudflared', 'cloudflared');
const root = mkdtempSync(join(tmpdir(), 'pf-standin-'));
const registry = join(root, 'registry');
const home = join(root, 'home');
mkdirSync(home);

// A tiny origin: GET answers Range requests over a known 1 MiB body; POST echoes (chunked), POST
// /echo-length echoes with a Content-Length; /slow answers after 400 ms; /chunked answers in pieces with no
// length; /stream sends 256 MiB as the client reads and reports how it ended.
const body = Buffer.alloc(1 << 20, 0);
for (let i = 0; i < body.length; i++) body[i] = i % 251;
let lastHeaders: Record<string, string | string[] | undefined> = {};
/** Every connection the origin accepted, in order: keep-alive pooling shows as few of them. */
const originConns: Socket[] = [];
/** Called when a /stream response closes, with whether it was sent whole. */
let onStreamClosed: ((finished: boolean) => void) | undefined;
const chunkedParts = ['first part,', ' second part,', ' last part'];

function stream(res: ServerResponse): void {
  const total = 256 * (1 << 20);
  const chunk = Buffer.alloc(64 * 1024, 7);
  let sent = 0;
  res.writeHead(200, { 'content-length': total });
  res.on('close', () => onStreamClosed?.(res.writableFinished));
  const pump = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

const origin: Server = createServer((req, res) => {
  lastHeaders = req.headers;
  if (req.method === 'POST' && req.url === '/echo-length') {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => res.writeHead(200, { 'content-length': Buffer.concat(parts).length }).end(Buffer.concat(parts)));
    return;
  }
  if (req.method === 'POST') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.pipe(res);
    return;
  }
  if (req.url === '/slow') {
    setTimeout(() => res.writeHead(200).end('slow done'), 400);
    return;
  }
  if (req.url === '/chunked') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    chunkedParts.forEach((part, i) => setTimeout(() => (i === chunkedParts.length - 1 ? res.end(part) : res.write(part)), 20 * i));
    return;
  }
  if (req.url === '/stream') return stream(res);
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
origin.on('connection', (socket: Socket) => originConns.push(socket));
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

interface Got {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The request went out on a connection that had carried an earlier one. */
  reused: boolean;
  socket: Socket;
}

function send(url: string, opts: { agent?: Agent | false; method?: string; headers?: Record<string, string>; body?: Buffer; chunked?: boolean } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: opts.method ?? 'GET', agent: opts.agent, headers: opts.headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), reused: req.reusedSocket, socket: req.socket as Socket }),
      );
    });
    req.on('error', reject);
    // Written in two pieces, Node sends the body chunked; in one `end`, with a Content-Length.
    if (opts.chunked && opts.body) req.write(opts.body.subarray(0, 1000));
    req.end(opts.chunked ? opts.body?.subarray(1000) : opts.body);
  });
}

/** Sends raw bytes on one connection and returns everything that comes back until the edge closes it. */
function raw(url: string, data: string): Promise<{ bytes: Buffer; closedAfterMs: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = connect({ host: hostname, port: Number(port) }, () => socket.write(data, 'latin1'));
    const parts: Buffer[] = [];
    socket.on('data', (d: Buffer) => parts.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve({ bytes: Buffer.concat(parts), closedAfterMs: Date.now() - t0 }));
  });
}

/** Splits back-to-back responses by their Content-Length (HEAD answers have none). */
function splitResponses(bytes: Buffer, methods: string[]): Array<{ head: string; body: Buffer }> {
  const out: Array<{ head: string; body: Buffer }> = [];
  let at = 0;
  for (const method of methods) {
    const end = bytes.indexOf('\r\n\r\n', at);
    assert.notEqual(end, -1, `a head for the ${method} response`);
    const head = bytes.subarray(at, end).toString('latin1');
    const length = method === 'HEAD' ? 0 : Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]);
    out.push({ head, body: bytes.subarray(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
  assert.equal(at, bytes.length, 'nothing after the last response');
  return out;
}

async function closed(sockets: Socket[]): Promise<void> {
  await Promise.all(sockets.map((s) => (s.destroyed ? undefined : once(s, 'close'))));
}

async function quickEdge(t: { after(fn: () => unknown): void }): Promise<string> {
  const r = run(t, quickArgs());
  return edgeOf((await r.line(/https:\/\/(\S+\.trycloudflare\.com)/))[1]!);
}

async function inProcessEdge(t: { after(fn: () => unknown): void }, extra: Partial<EdgeOptions> = {}): Promise<Edge> {
  const edge = await startEdge({ origin: new URL(originUrl), hostname: 'media.edge.test', colo: 'ams08', maxInFlight: 100, ...extra });
  t.after(() => edge.close());
  return edge;
}

function keepAliveAgent(t: { after(fn: () => unknown): void }): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  return agent;
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

  test('keep-alive: Range GETs, HEAD and a full GET on one client connection, over one origin connection', async (t) => {
    const edge = await quickEdge(t);
    const agent = keepAliveAgent(t);
    const c0 = originConns.length;
    const ranges: Array<[number, number]> = [[0, 99], [1000, 66535], [500_000, 600_000]];
    for (const [i, [start, end]] of ranges.entries()) {
      const got = await send(`${edge}/tok/clip.mov`, { agent, headers: { range: `bytes=${start}-${end}` } });
      assert.equal(got.status, 206);
      assert.equal(got.reused, i > 0);
      assert.equal(got.headers.connection, 'keep-alive');
      assert.equal(got.headers.server, 'cloudflare');
      assert.match(String(got.headers['cf-ray']), /^[0-9a-f]{16}-[A-Z]{3}$/);
      assert.deepEqual(got.body, body.subarray(start, end + 1));
    }
    const head = await send(`${edge}/tok/clip.mov`, { agent, method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.reused, true);
    assert.equal(head.headers['content-length'], String(body.length));
    assert.equal(head.body.length, 0);
    const full = await send(`${edge}/tok/clip.mov`, { agent });
    assert.equal(full.reused, true);
    assert.deepEqual(full.body, body);
    assert.equal(originConns.length - c0, 1, 'one origin connection for five requests');
  });

  test('origin pool: 20 sequential requests, half on fresh client connections, reuse the origin connection', async (t) => {
    const edge = await quickEdge(t);
    const agent = keepAliveAgent(t);
    const c0 = originConns.length;
    for (let i = 0; i < 20; i++) {
      const fresh = i % 2 === 0;
      const got = await send(`${edge}/r${i}`, { agent: fresh ? false : agent, headers: { range: `bytes=${i}-${i + 9}` } });
      assert.equal(got.status, 206);
      assert.deepEqual(got.body, body.subarray(i, i + 10));
      // A client that says `Connection: close` (Node without an agent does) gets it back.
      assert.equal(got.headers.connection, fresh ? 'close' : 'keep-alive');
    }
    assert.ok(originConns.length - c0 <= 2, `${originConns.length - c0} origin connections for 20 requests`);
  });

  test('a POST with a Content-Length body, then a GET on the same connection; a chunked POST closes it', async (t) => {
    const edge = await quickEdge(t);
    const agent = keepAliveAgent(t);
    const upload = body.subarray(0, 300_000);
    const post = await send(`${edge}/echo-length`, { agent, method: 'POST', body: upload });
    assert.equal(post.status, 200);
    assert.deepEqual(post.body, upload);
    const get = await send(`${edge}/x`, { agent, headers: { range: 'bytes=10-19' } });
    assert.equal(get.reused, true);
    assert.deepEqual(get.body, body.subarray(10, 20));

    const chunkedPost = await send(`${edge}/echo-length`, { agent, method: 'POST', body: upload, chunked: true });
    assert.equal(lastHeaders['transfer-encoding'], 'chunked');
    assert.deepEqual(chunkedPost.body, upload);
    assert.equal(chunkedPost.headers.connection, 'close');
    await closed([chunkedPost.socket]);
    const after = await send(`${edge}/x`, { agent, headers: { range: 'bytes=0-0' } });
    assert.equal(after.reused, false);
    assert.equal(after.status, 206);
  });

  test('a chunked origin response with no length arrives whole, with Connection: close, and the connection closes', async (t) => {
    const edge = await quickEdge(t);
    const agent = keepAliveAgent(t);
    const c0 = originConns.length;
    const got = await send(`${edge}/chunked`, { agent });
    assert.equal(got.status, 200);
    assert.equal(got.headers['transfer-encoding'], 'chunked');
    assert.equal(got.headers.connection, 'close');
    assert.equal(got.body.toString(), chunkedParts.join(''));
    await closed([got.socket]);
    // Unframed, the origin connection could not be reused either: it is closed, not pooled.
    await closed(originConns.slice(c0));
    const next = await send(`${edge}/x`, { agent, headers: { range: 'bytes=0-3' } });
    assert.equal(next.reused, false);
    assert.deepEqual(next.body, body.subarray(0, 4));
  });

  test('a client that hangs up mid-body makes the origin see the connection close; the pool is unharmed', async (t) => {
    const edge = await quickEdge(t);
    const agent = keepAliveAgent(t);
    await send(`${edge}/warm`, { agent, headers: { range: 'bytes=0-0' } }); // a pooled origin connection to reuse
    const c0 = originConns.length;
    const originSaw = new Promise<boolean>((resolve) => (onStreamClosed = resolve));
    t.after(() => (onStreamClosed = undefined));
    const req = httpRequest(`${edge}/stream`, { agent }, (res) => res.once('data', () => req.destroy()));
    req.on('error', () => undefined);
    req.end();
    const finished = await Promise.race([originSaw, new Promise((r) => setTimeout(() => r('timeout'), 5_000))]);
    assert.equal(finished, false, 'the origin saw its response cut off');
    assert.equal(originConns.length, c0, 'the stream went over the pooled origin connection');
    const next = await send(`${edge}/x`, { headers: { range: 'bytes=5-9' } });
    assert.deepEqual(next.body, body.subarray(5, 10));
  });
});

describe('cloudflared stand-in edge (in process)', () => {
  test('pipelined requests are answered in order; Connection: close ends the connection', async (t) => {
    const edge = await inProcessEdge(t);
    const req = (line: string, extra = '') => `${line} HTTP/1.1\r\nhost: x\r\n${extra}\r\n`;
    const { bytes } = await raw(
      edge.url,
      req('GET /a', 'range: bytes=0-9\r\n') + req('HEAD /a') + req('GET /a', 'range: bytes=20-29\r\nconnection: close\r\n'),
    );
    const [first, head, last] = splitResponses(bytes, ['GET', 'HEAD', 'GET']);
    assert.match(first!.head, /^HTTP\/1\.1 206 /);
    assert.match(first!.head, /\r\nConnection: keep-alive(\r\n|$)/);
    assert.deepEqual(first!.body, body.subarray(0, 10));
    assert.match(head!.head, /^HTTP\/1\.1 200 /);
    assert.deepEqual(last!.body, body.subarray(20, 30));
    assert.match(last!.head, /\r\nConnection: close(\r\n|$)/);
    assert.equal(edge.totalRequests, 3);
  });

  test('HTTP/1.0 without keep-alive is closed after one response; an idle client connection closes after clientIdleMs', async (t) => {
    // With the default 400 s idle limit, only the HTTP/1.0 rule can close this one within the test.
    const old = await raw((await inProcessEdge(t)).url, 'GET /a HTTP/1.0\r\nrange: bytes=0-4\r\n\r\n');
    assert.deepEqual(splitResponses(old.bytes, ['GET'])[0]!.body, body.subarray(0, 5));
    assert.match(splitResponses(old.bytes, ['GET'])[0]!.head, /\r\nConnection: close(\r\n|$)/);
    const edge = await inProcessEdge(t, { clientIdleMs: 300 });
    const idle = await raw(edge.url, 'GET /a HTTP/1.1\r\nrange: bytes=0-4\r\n\r\n');
    assert.deepEqual(splitResponses(idle.bytes, ['GET'])[0]!.body, body.subarray(0, 5));
    assert.ok(idle.closedAfterMs >= 280 && idle.closedAfterMs < 3_000, `closed after ${idle.closedAfterMs} ms`);
  });

  test('maxInFlight counts requests, not idle keep-alive connections', async (t) => {
    const edge = await inProcessEdge(t, { maxInFlight: 1 });
    const agent = keepAliveAgent(t);
    assert.equal((await send(`${edge.url}/a`, { agent, headers: { range: 'bytes=0-0' } })).status, 206);
    const slow = send(`${edge.url}/slow`, { agent: false });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(edge.inFlight(), 1);
    const refused = await send(`${edge.url}/a`, { agent: false });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.toString(), 'error code: 1015');
    assert.equal((await slow).body.toString(), 'slow done');
    // The edge counts the request done once its write of the last byte completes, which may be just after.
    for (let i = 0; edge.inFlight() > 0 && i < 50; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(edge.inFlight(), 0);
    const again = await send(`${edge.url}/a`, { agent, headers: { range: 'bytes=0-0' } });
    assert.equal(again.status, 206);
    assert.equal(again.reused, true);
  });

  test('cutActive closes idle keep-alive client connections and pooled origin connections too', async (t) => {
    const edge = await inProcessEdge(t);
    const agent = keepAliveAgent(t);
    const c0 = originConns.length;
    const got = await send(`${edge.url}/a`, { agent, headers: { range: 'bytes=0-0' } });
    assert.equal(originConns.length - c0, 1);
    const inFlight = send(`${edge.url}/slow`, { agent: false });
    await new Promise((r) => setTimeout(r, 100));
    edge.cutActive();
    await assert.rejects(inFlight);
    await closed([got.socket, ...originConns.slice(c0)]);
    assert.equal(edge.inFlight(), 0);
  });

  test('drain closes idle client connections at once and lets a request in flight finish, closed after', async (t) => {
    const edge = await inProcessEdge(t);
    const agent = keepAliveAgent(t);
    const idle = await send(`${edge.url}/a`, { agent, headers: { range: 'bytes=0-0' } });
    const slow = send(`${edge.url}/slow`, { agent: keepAliveAgent(t) });
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    const drained = edge.drain(5_000);
    await closed([idle.socket]);
    assert.equal(edge.inFlight(), 1, 'the idle connection closed while a request was still in flight');
    const done = await slow;
    assert.equal(done.body.toString(), 'slow done');
    assert.equal(done.headers.connection, 'close', 'a draining edge does not keep the connection');
    await drained;
    assert.ok(Date.now() - t0 < 1_000, 'drain ended with the request, not the grace period');
  });

  test('a request on a pooled connection the origin dropped is sent again on a fresh one; a dead origin is a 502', async (t) => {
    // An origin that answers the first request on each connection and drops the connection at the second.
    const perConnection: number[] = [];
    const flaky = createNetServer((socket) => {
      const i = perConnection.push(0) - 1;
      let text = '';
      socket.on('error', () => undefined);
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        for (let end = text.indexOf('\r\n\r\n'); end !== -1; end = text.indexOf('\r\n\r\n')) {
          text = text.slice(end + 4);
          if (++perConnection[i]! === 1) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
          else socket.destroy();
        }
      });
    });
    await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
    t.after(() => flaky.close());
    const edge = await inProcessEdge(t, { origin: new URL(`http://127.0.0.1:${(flaky.address() as AddressInfo).port}`) });
    for (let n = 0; n < 2; n++) {
      const got = await send(`${edge.url}/a`, { agent: false });
      assert.equal(got.status, 200);
      assert.equal(got.body.toString(), 'ok');
    }
    assert.deepEqual(perConnection, [2, 1]);

    const gone = await new Promise<number>((r) => {
      const probe = createNetServer().listen(0, '127.0.0.1', () => {
        const port = (probe.address() as AddressInfo).port;
        probe.close(() => r(port));
      });
    });
    const dead = await inProcessEdge(t, { origin: new URL(`http://127.0.0.1:${gone}`) });
    const bad = await send(`${dead.url}/a`, { agent: false });
    assert.equal(bad.status, 502);
    assert.equal(bad.body.toString(), 'error code: 502');
  });
});
