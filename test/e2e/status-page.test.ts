/**
 * Issue 7.5 / 7.6 / 5.4 end to end: the real daemon, its status page in a real headless Chromium while the
 * emulator pulls a file slowly through the cloudflared stand-in, the Prometheus metrics scraped during that
 * run, and the proof that none of the admin paths is reachable through the tunnel's public hostname.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { resolveHost } from '../doubles/tunnel-registry.ts';
import { ROOT, startStack, until, type DaemonProcess, type Stack } from './harness.ts';

const MiB = 1024 * 1024;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function adminUrl(stack: Stack, daemon: DaemonProcess): Promise<string> {
  const line = await daemon.waitFor((l) => l.event === 'admin', 60_000, 'the admin listener line');
  const file = JSON.parse(await readFile(join(stack.stateDir, 'admin.json'), 'utf8')) as { url: string; pid: number };
  assert.equal(file.url, line.url, 'admin.json names the listener the daemon logged');
  assert.match(file.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  return file.url;
}

const series = (text: string, name: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1));
};

test('status page: a dropped file shows a moving progress bar and ends done with its Frame.io link; metrics move', { timeout: 180_000 }, async (t) => {
  const stack = await startStack({
    // 1 MiB ranges: loopback socket buffers (server → edge → emulator) hold several MiB per connection, so
    // with the default 8 MiB ranges the first four would count as sent at once and the bar would jump.
    emulator: { faults: { pullBytesPerSecond: 3 * MiB }, pullChunkBytes: MiB },
    config: (c) => {
      c.watch.stabilitySeconds = 1;
      c.watch.pollIntervalSeconds = 0.4;
      c.log.level = 'info';
    },
  });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  const url = await adminUrl(stack, daemon);
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');

  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 860 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  await page.goto(url);
  await page.waitForSelector('#live:text("live")', { timeout: 15_000 });
  // The tunnel comes up after the daemon starts; the page follows it live.
  await page.waitForSelector('#tunnel.ok', { timeout: 60_000 });
  assert.match((await page.textContent('#tunnel')) ?? '', /tunnel ready · [a-z-]+\.trycloudflare\.com · URL age \d+s/);

  const scrape = async () => (await (await fetch(`${url}/metrics`)).text());
  const before = await scrape();
  assert.equal(series(before, 'postflow_bytes_served_total'), 0);
  assert.equal(series(before, 'postflow_tunnel_ready'), 1);

  // A small file is done at once (a row with a link for the screenshot); the big one is pulled at 3 MiB/s.
  await writeFile(join(stack.watchDir, 'proxy_small.mp4'), randomBytes(256 * 1024));
  await mkdir(join(stack.watchDir, 'ep101'), { recursive: true });
  await writeFile(join(stack.watchDir, 'ep101', 'master_v2.mov'), randomBytes(24 * MiB));

  const bar = '#active li[data-state="importing"]:has-text("master_v2.mov")';
  await page.waitForSelector(bar, { timeout: 60_000 });
  const seen: number[] = [];
  let scrapedMid = '';
  // Samples of the bar as the page shows it, until the import leaves the list.
  while (seen.length < 200) {
    const li = await page.$(bar);
    if (!li) break;
    const p = Number(await li.getAttribute('data-percent'));
    const width = await li.$eval('.fill', (el) => (el as unknown as { style: { width: string } }).style.width);
    assert.equal(width, `${Math.min(100, p)}%`, 'the bar is as wide as the percent says');
    if (seen.at(-1) !== p) seen.push(p);
    if (!scrapedMid && p > 20 && p < 90) {
      scrapedMid = await scrape();
      await page.screenshot({ path: join(ROOT, 'test-artifacts', 'status-page-importing.png'), fullPage: true });
    }
    await page.waitForTimeout(250);
  }
  const moving = seen.filter((p) => p > 0 && p < 100);
  assert.ok(moving.length >= 3, `the bar moved through several values: ${seen.join(', ')}`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, `progress never goes back: ${seen.join(', ')}`);
  assert.ok(scrapedMid, 'metrics were scraped mid-import');
  assert.equal(series(scrapedMid, 'postflow_jobs{state="importing"}'), 1);
  assert.ok(series(scrapedMid, 'postflow_bytes_served_total') > 2 * MiB, 'bytes served counted during the pull');

  const done = await daemon.waitFor((l) => l.event === 'done' && String(l.file).endsWith('master_v2.mov'), 60_000, 'the big file done');
  const link = page.locator(`#done tr[data-job="${String(done.job)}"] a`);
  await link.waitFor({ timeout: 15_000 });
  assert.equal(await link.getAttribute('href'), done.viewUrl, 'the done row links to the Frame.io view URL');
  assert.match(String(done.viewUrl), /^https:\/\/next\.frame\.io\//);
  await page.waitForFunction("document.querySelector('#counts .done b')?.textContent === '2'", undefined, { timeout: 15_000 });
  assert.equal(await page.locator('#active li').count(), 0);
  await page.screenshot({ path: join(ROOT, 'test-artifacts', 'status-page.png'), fullPage: true });

  const after = await scrape();
  assert.ok(series(after, 'postflow_bytes_served_total') >= 24 * MiB + 256 * 1024);
  assert.equal(series(after, 'postflow_jobs{state="done"}'), 2);
  assert.equal(series(after, 'postflow_import_duration_seconds_count'), 2);
  assert.ok(series(after, 'postflow_import_duration_seconds_sum') >= 4, 'the 24 MiB pull at 3 MiB/s took several seconds');
  assert.equal(series(after, 'postflow_frameio_api_calls_total{operation="files.create_remote_upload",method="POST",status="202"}'), 2);
  assert.ok(series(after, 'postflow_watch_sweep_duration_seconds_count{folder="0"}') > series(before, 'postflow_watch_sweep_duration_seconds_count{folder="0"}'));
  assert.ok(series(after, 'postflow_process_cpu_user_seconds_total') > 0);
  assert.deepEqual(pageErrors, [], 'no script errors on the page');
  await page.close();

  const code = await daemon.stop();
  assert.equal(code.code, 0);
  await assert.rejects(readFile(join(stack.stateDir, 'admin.json')), { code: 'ENOENT' }, 'admin.json removed on a clean stop');
});

/** One request through the tunnel's edge, as the internet sees it (the edge sets Host to the public name). */
function viaEdge(edge: string, path: string, method = 'GET'): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const u = new URL(edge);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(method === 'GET' ? undefined : '{"level":"trace"}');
  });
}

test('none of the admin paths is reachable through the tunnel (issue 5.4)', { timeout: 120_000 }, async (t) => {
  const stack = await startStack({ config: (c) => ((c.log.level = 'info'), (c.watch.stabilitySeconds = 1), (c.watch.pollIntervalSeconds = 0.4)) });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  const url = await adminUrl(stack, daemon);
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');
  let status: { tunnel: { status: string; publicUrl: string } } | undefined;
  await until(async () => (status = (await (await fetch(`${url}/api/status`)).json()) as typeof status)!.tunnel.status === 'ready', 60_000, 'the tunnel to be ready');
  const publicHost = new URL(status!.tunnel.publicUrl).hostname;
  let edge: string | undefined;
  await until(() => (edge = resolveHost(stack.registry, publicHost)) !== undefined, 10_000, 'the public hostname to resolve');

  const paths = ['/', '/app.js', '/style.css', '/api/status', '/api/jobs', '/api/jobs?state=failed', '/metrics', '/events', '/api/log-level'];
  for (const path of paths) {
    const direct = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(5000) });
    assert.equal(direct.status, 200, `the admin listener itself serves ${path}`);
    await direct.body?.cancel();
    const r = await viaEdge(edge!, path);
    assert.ok(r.headers['cf-ray'], `${path} went through the stand-in's edge`);
    assert.equal(r.status, 404, `${path} through the tunnel`);
    assert.equal(r.body, '', `${path} through the tunnel has an empty body`);
  }
  for (const [method, path] of [['POST', '/api/retry-failed'], ['PUT', '/api/log-level'], ['POST', '/api/jobs/x/retry']] as const) {
    const r = await viaEdge(edge!, path, method);
    assert.ok(r.status === 404 || r.status === 405, `${method} ${path} through the tunnel: ${r.status}`);
    assert.equal(r.body, '');
  }
  const level = (await (await fetch(`${url}/api/log-level`)).json()) as { level: string };
  assert.equal(level.level, 'info', 'nothing sent through the tunnel changed the log level');

  // SIGHUP re-reads log.level from the config file.
  const cfg = JSON.parse(await readFile(stack.configFile, 'utf8'));
  cfg.log.level = 'debug';
  await writeFile(stack.configFile, JSON.stringify(cfg));
  daemon.child.kill('SIGHUP');
  await daemon.waitFor((l) => l.event === 'log-level' && l.to === 'debug' && l.source === 'SIGHUP', 15_000, 'the SIGHUP level change');
  assert.equal(((await (await fetch(`${url}/api/log-level`)).json()) as { level: string }).level, 'debug');
});
