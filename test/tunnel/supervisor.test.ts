import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { isPostflowError } from '../../src/errors.ts';
import { ERR_TUNNEL_CLOUDFLARED_MISSING } from '../../src/tunnel/errors.ts';
import { createTunnel, type Tunnel, type TunnelOptions } from '../../src/tunnel/supervisor.ts';
import { resolveHost } from '../doubles/tunnel-registry.ts';

const STANDIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'doubles', 'cloudflared', 'cloudflared');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function captureLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const origin: Server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' }).end(`origin saw ${req.method} ${req.url} range=${req.headers.range ?? '-'}`);
});
await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
const root = mkdtempSync(join(tmpdir(), 'pf-tunnel-'));
const registry = join(root, 'registry');
after(() => {
  origin.close();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
function makeTunnel(t: { after(fn: () => unknown): void }, extra: Partial<TunnelOptions> = {}, env: Record<string, string> = {}) {
  const stateDir = join(root, `state-${++n}`);
  const cap = captureLogger();
  const tunnel = createTunnel({
    mode: 'quick',
    cloudflaredPath: STANDIN,
    originUrl,
    stateDir,
    logger: cap.logger,
    readyPollMs: 50,
    startTimeoutMs: 5_000,
    backoff: { baseMs: 100, maxMs: 1_000 },
    random: () => 1,
    env: { CLOUDFLARED_STANDIN_REGISTRY: registry, ...env },
    ...extra,
  });
  t.after(() => tunnel.stop());
  return { tunnel, stateDir, lines: cap.lines };
}

function nextEvent<K extends 'url' | 'ready' | 'down' | 'restart'>(tunnel: Tunnel, name: K, ms = 8_000) {
  return once(tunnel, name, { signal: AbortSignal.timeout(ms) });
}

describe('tunnel supervisor against the cloudflared stand-in', () => {
  test('quick tunnel: URL read from stderr, ready via /ready, reachable through the edge, stop leaves no process', async (t) => {
    const { tunnel, stateDir } = makeTunnel(t);
    const urlEvent = nextEvent(tunnel, 'url');
    await tunnel.start();
    const url = await tunnel.waitReady(AbortSignal.timeout(8_000));
    assert.match(url, /^https:\/\/[a-z]+-[a-z]+-[a-z]+-[a-z]+\.trycloudflare\.com$/);
    assert.deepEqual(await urlEvent, [url, null]);
    const st = tunnel.state();
    assert.equal(st.status, 'ready');
    assert.equal(st.publicUrl, url);
    assert.equal(typeof st.urlSince, 'number');
    const pid = st.pid!;
    assert.equal(readFileSync(join(stateDir, 'cloudflared.pid'), 'utf8').trim(), String(pid));
    // The child runs with a clean HOME under stateDir and an explicit config file.
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(cmdline.includes('--config') && cmdline.includes(join(stateDir, 'cloudflared.yml')));
    assert.match(readFileSync(`/proc/${pid}/environ`, 'utf8'), new RegExp(`(^|\\0)HOME=${join(stateDir, 'cloudflared-home')}\\0`));

    let edge: string | undefined;
    for (let i = 0; i < 50 && !edge; i++) {
      edge = resolveHost(registry, new URL(url).hostname);
      if (!edge) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(edge, 'hostname published in the registry');
    const res = await fetch(`${edge}/tok/file.mov`, { headers: { range: 'bytes=0-9' } });
    assert.equal(await res.text(), 'origin saw GET /tok/file.mov range=bytes=0-9');

    await tunnel.stop();
    assert.equal(alive(pid), false, 'cloudflared gone after stop()');
    assert.equal(existsSync(join(stateDir, 'cloudflared.pid')), false);
    assert.equal(tunnel.state().status, 'stopped');
    await assert.rejects(tunnel.waitReady(AbortSignal.timeout(50)));
  });

  test('crash: cloudflared exits, is restarted after a backoff, and a NEW url is announced', async (t) => {
    const { tunnel, lines } = makeTunnel(t, { stableMs: 100 }, { CLOUDFLARED_STANDIN_EXIT_AFTER_MS: '1000' });
    await tunnel.start();
    const first = await tunnel.waitReady(AbortSignal.timeout(8_000));
    const down = nextEvent(tunnel, 'down');
    const restart = nextEvent(tunnel, 'restart');
    const url = nextEvent(tunnel, 'url');
    // 'down' may come first from a failed /ready probe or from the exit itself, whichever is seen first.
    const [reason] = await down;
    assert.match(String(reason), /exited with code 1|lost its edge connections/);
    const [info] = await restart;
    assert.deepEqual(info, { attempt: 1, delayMs: 100 });
    const logged = lines.find((l) => l.event === 'tunnel-restart');
    assert.match(String(logged?.reason), /exited with code 1 \(last error: stand-in: crashing/);
    const [next, previous] = await url;
    assert.equal(previous, first);
    assert.notEqual(next, first);
    assert.equal(tunnel.state().restarts >= 1, true);
    assert.ok(lines.some((l) => l.event === 'tunnel-restart' && l.delayMs === 100));
    assert.ok(lines.some((l) => l.event === 'cloudflared-log' && l.level === 40), 'the ERR line was logged as a warning');
    // It was ready longer than stableMs before crashing again, so the backoff starts over.
    const [again] = await nextEvent(tunnel, 'restart');
    assert.deepEqual(again, { attempt: 1, delayMs: 100 });
    assert.equal(tunnel.state().restarts, 2);
  });

  test('FAIL_START repeated: restarts back off with growing, logged delays and never resolve ready', async (t) => {
    const { tunnel, lines } = makeTunnel(t, { backoff: { baseMs: 50, maxMs: 400 } }, { CLOUDFLARED_STANDIN_FAIL_START: '1' });
    const restarts: Array<{ delayMs: number; at: number }> = [];
    tunnel.on('restart', ({ delayMs }) => restarts.push({ delayMs, at: Date.now() }));
    let ready = false;
    tunnel.on('ready', () => (ready = true));
    await tunnel.start();
    for (let i = 0; i < 5; i++) await nextEvent(tunnel, 'restart', 15_000);
    assert.deepEqual(restarts.slice(0, 5).map((r) => r.delayMs), [50, 100, 200, 400, 400]);
    // Never a tight loop: each new start waited at least the announced delay (the next failure follows it).
    for (let i = 1; i < restarts.length; i++) {
      assert.ok(restarts[i]!.at - restarts[i - 1]!.at >= restarts[i - 1]!.delayMs, `restart ${i} came after its delay`);
    }
    const logged = lines.filter((l) => l.event === 'tunnel-restart').map((l) => l.delayMs);
    assert.deepEqual(logged.slice(0, 5), [50, 100, 200, 400, 400]);
    assert.match(String(tunnel.state().lastError), /failed to request quick Tunnel/);
    assert.equal(ready, false);
    assert.equal(tunnel.state().status === 'ready', false);
  });

  test('unready: /ready stays 503 → down, then restarted on a new URL', async (t) => {
    const { tunnel } = makeTunnel(t, { unreadyTimeoutMs: 300 }, { CLOUDFLARED_STANDIN_UNREADY_AFTER_MS: '500' });
    await tunnel.start();
    const first = await tunnel.waitReady(AbortSignal.timeout(8_000));
    const [reason] = await nextEvent(tunnel, 'down');
    assert.match(String(reason), /edge connections/);
    assert.equal(tunnel.state().status, 'down');
    const [next] = await nextEvent(tunnel, 'url');
    assert.notEqual(next, first);
    assert.equal(await tunnel.waitReady(AbortSignal.timeout(100)), next);
  });

  test('probe: ready waits for the public hostname to resolve, and gives up waiting after probeGraceMs', async (t) => {
    const probed: string[] = [];
    const resolves = async (url: string) => {
      probed.push(url);
      return resolveHost(registry, new URL(url).hostname) !== undefined;
    };
    const { tunnel } = makeTunnel(t, { probe: resolves }, { CLOUDFLARED_STANDIN_DNS_DELAY_MS: '600' });
    const t0 = Date.now();
    await tunnel.start();
    const url = await tunnel.waitReady(AbortSignal.timeout(8_000));
    assert.ok(Date.now() - t0 >= 550, 'not ready before the hostname resolves');
    assert.ok(resolveHost(registry, new URL(url).hostname));
    assert.ok(probed.length >= 2 && probed.every((u) => u === url));

    const { tunnel: never, lines } = makeTunnel(t, { probe: async () => false, probeGraceMs: 300 });
    await never.start();
    await never.waitReady(AbortSignal.timeout(8_000));
    assert.ok(lines.some((l) => l.event === 'tunnel-probe-gave-up'));
  });

  test('named tunnel: fixed hostname, token only in the environment', async (t) => {
    const { tunnel } = makeTunnel(t, { mode: 'named', namedToken: 'c2VjcmV0LXRva2Vu', namedHostname: 'uploads.example.test' }, {
      CLOUDFLARED_STANDIN_HOSTNAME: 'uploads.example.test',
    });
    // The stand-in validates the token's shape like the real binary; this one is not a token → it exits.
    // A well-formed one is built by the stand-in's helper.
    const { standinToken } = await import('../doubles/cloudflared/cloudflared.ts');
    const token = standinToken('uploads.example.test');
    const { tunnel: good } = makeTunnel(t, { mode: 'named', namedToken: token, namedHostname: 'uploads.example.test' });
    await good.start();
    assert.equal(await good.waitReady(AbortSignal.timeout(8_000)), 'https://uploads.example.test');
    const cmdline = readFileSync(`/proc/${good.state().pid}/cmdline`, 'utf8');
    assert.equal(cmdline.includes(token), false, 'the token is not on the command line');
    assert.match(cmdline, /tunnel\0.*\0run$|tunnel\0.*\0run\0$/s);
    assert.ok(resolveHost(registry, 'uploads.example.test'));
    await good.stop();
    assert.equal(resolveHost(registry, 'uploads.example.test'), undefined, 'unpublished on SIGTERM');
    const restarted = nextEvent(tunnel, 'restart', 15_000);
    await tunnel.start();
    await restarted;
    assert.match(String(tunnel.state().lastError), /token is not valid/);
  });

  test('a stale cloudflared left by a SIGKILLed daemon is killed at start', async (t) => {
    const stateDir = join(root, `stale-${++n}`);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(stateDir, { recursive: true });
    const config = join(stateDir, 'cloudflared.yml');
    writeFileSync(config, 'no-autoupdate: true\n');
    const stale = spawn(STANDIN, ['tunnel', '--no-autoupdate', '--config', config, '--metrics', '127.0.0.1:0', '--url', originUrl], {
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, CLOUDFLARED_STANDIN_REGISTRY: registry, HOME: stateDir },
      stdio: 'ignore',
    });
    t.after(() => stale.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(join(stateDir, 'cloudflared.pid'), `${stale.pid}\n`);
    const exited = once(stale, 'exit');
    const cap = captureLogger();
    const tunnel = createTunnel({ mode: 'quick', cloudflaredPath: STANDIN, originUrl, stateDir, logger: cap.logger, readyPollMs: 50, env: { CLOUDFLARED_STANDIN_REGISTRY: registry } });
    t.after(() => tunnel.stop());
    await tunnel.start();
    await exited;
    assert.equal(alive(stale.pid!), false);
    assert.ok(cap.lines.some((l) => l.event === 'tunnel-stale-killed' && l.pid === stale.pid));
    assert.notEqual(tunnel.state().pid, stale.pid);
    await tunnel.waitReady(AbortSignal.timeout(8_000));
  });

  test('a pid file naming some other process is not acted on', async (t) => {
    const stateDir = join(root, `other-${++n}`);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(stateDir, { recursive: true });
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], { stdio: 'ignore' });
    t.after(() => other.kill('SIGKILL'));
    writeFileSync(join(stateDir, 'cloudflared.pid'), `${other.pid}\n`);
    const { tunnel } = makeTunnel(t, { stateDir });
    await tunnel.start();
    assert.equal(alive(other.pid!), true);
  });

  test('missing binary → PF_ERR_TUNNEL_CLOUDFLARED_MISSING naming the path, install and config key', async (t) => {
    const { tunnel } = makeTunnel(t, { cloudflaredPath: join(root, 'nope', 'cloudflared') });
    const err: unknown = await tunnel.start().then(() => null, (e: unknown) => e);
    assert.ok(isPostflowError(err, ERR_TUNNEL_CLOUDFLARED_MISSING));
    assert.match(err.message, /nope\/cloudflared/);
    assert.match(err.message, /brew install cloudflared/);
    assert.match(err.message, /tunnel\.cloudflaredPath/);
    const { tunnel: onPath } = makeTunnel(t, { cloudflaredPath: 'cloudflared-surely-not-installed' });
    await assert.rejects(onPath.start(), { code: 'PF_ERR_TUNNEL_CLOUDFLARED_MISSING' });
  });
});
