/**
 * The admin listener over real sockets with a real SQLite store behind it: JSON API, retry, log level,
 * metrics, the event stream, the page, and the guards against foreign Host names and cross-site writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log/logger.ts';
import { openSqliteStore } from '../../src/jobs/sqlite-store.ts';
import type { JobStore } from '../../src/jobs/store.ts';
import { createAdminService } from '../../src/admin/service.ts';
import { readAdminFile } from '../../src/admin/discovery.ts';
import { isLoopbackHost } from '../../src/admin/server.ts';
import { findJob, retryAllFailed, retryJob } from '../../src/admin/actions.ts';

async function failedJob(store: JobStore, name: string) {
  const job = await store.discover({ folderIndex: 0, root: '/w', path: `/w/${name}`, relPath: name, name, size: 10, mtimeMs: 1, ino: 1, destination: 'd' });
  await store.transition(job.id, 'discovered', 'stable');
  await store.transition(job.id, 'stable', 'queued');
  await store.transition(job.id, 'queued', 'exposing');
  await store.transition(job.id, 'exposing', 'failed', { lastError: 'PF_ERR_UPLOAD_STALLED: nothing served', finishedAt: Date.now() });
  return job.id;
}

async function setup(t: import('node:test').TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'postflow-admin-'));
  const store = await openSqliteStore({ path: join(dir, 'postflow.db') });
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write(chunk, _e, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  const logger = createLogger({ level: 'info', pretty: false, destination: sink });
  const enqueued: string[] = [];
  const admin = createAdminService({ host: '127.0.0.1', port: 0, stateDir: dir, logger, store, folders: [{ path: '/w', destination: 'd' }], eventIntervalMs: 100 });
  admin.attach({ enqueue: (j) => enqueued.push(j.id), tunnel: () => ({ status: 'ready', publicUrl: 'https://a.trycloudflare.com', urlSince: Date.now() - 5000, restarts: 1, lastError: null }) });
  const { url } = await admin.start();
  t.after(async () => {
    await admin.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, store, logger, lines, admin, url, enqueued };
}

/** A raw request, so the Host and Origin headers are exactly what the test says. */
function raw(url: string, opts: { method?: string; host?: string; origin?: string; body?: string }): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method ?? 'GET', setHost: false, headers: { host: opts.host ?? u.host, ...(opts.origin ? { origin: opts.origin } : {}), ...(opts.body ? { 'content-type': 'application/json' } : {}) } },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

test('admin.json names the listener (mode 0600) and goes away on stop', async (t) => {
  const { dir, url, admin } = await setup(t);
  const addr = await readAdminFile(dir);
  assert.equal(addr?.url, url);
  assert.equal(addr?.pid, process.pid);
  assert.equal((await stat(join(dir, 'admin.json'))).mode & 0o777, 0o600);
  await admin.stop();
  assert.equal(await readAdminFile(dir), undefined);
});

test('status and jobs over the API; retry re-queues and offers the job to the pool', async (t) => {
  const { store, url, enqueued } = await setup(t);
  const id = await failedJob(store, 'a.mov');
  await failedJob(store, 'b.mov');
  const status = (await (await fetch(`${url}/api/status`)).json()) as any;
  assert.equal(status.queue.counts.failed, 2);
  assert.equal(status.recentFailed[0].reason, 'PF_ERR_UPLOAD_STALLED: nothing served');
  assert.equal(status.tunnel.status, 'ready');
  assert.equal(status.tunnel.restarts, 1);
  assert.ok(status.tunnel.urlAgeSeconds >= 5);

  const failed = (await (await fetch(`${url}/api/jobs?state=failed`)).json()) as any;
  assert.equal(failed.jobs.length, 2);
  const bad = await fetch(`${url}/api/jobs?state=nope`);
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as any).error, 'PF_ERR_ADMIN_BAD_STATE');

  const r = await fetch(`${url}/api/jobs/${id.slice(0, 8)}/retry`, { method: 'POST' });
  assert.equal(r.status, 200);
  assert.equal(((await r.json()) as any).job.state, 'queued');
  assert.deepEqual(enqueued, [id]);
  assert.equal((await store.get(id))?.attempts, 0, 'attempts start over');
  const again = await fetch(`${url}/api/jobs/${id}/retry`, { method: 'POST' });
  assert.equal(again.status, 409, 'a queued job cannot be retried');
  assert.equal((await fetch(`${url}/api/jobs/ffffffff/retry`, { method: 'POST' })).status, 404);

  const all = (await (await fetch(`${url}/api/retry-failed`, { method: 'POST' })).json()) as any;
  assert.equal(all.retried.length, 1);
  assert.equal(enqueued.length, 2);
  assert.equal((await store.counts()).failed, 0);
});

test('log level changes at run time for every child logger, and bad levels are refused', async (t) => {
  const { url, logger, lines } = await setup(t);
  const child = logger.child({ room: 'x' }).child({ job: 'j' });
  child.debug('hidden');
  const res = await fetch(`${url}/api/log-level`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ level: 'debug' }) });
  assert.deepEqual(await res.json(), { level: 'debug', previous: 'info' });
  child.debug('shown');
  assert.deepEqual(lines.filter((l) => l.msg === 'hidden' || l.msg === 'shown').map((l) => l.msg), ['shown']);
  assert.ok(lines.some((l) => l.event === 'log-level' && l.to === 'debug'));
  const bad = await fetch(`${url}/api/log-level`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ level: 'loud' }) });
  assert.equal(bad.status, 400);
  assert.equal(logger.level, 'debug');
  assert.deepEqual(await (await fetch(`${url}/api/log-level`)).json(), { level: 'debug' });
});

test('a foreign Host (DNS rebinding) gets nothing; a cross-site write is refused', async (t) => {
  const { url, store } = await setup(t);
  const id = await failedJob(store, 'c.mov');
  for (const path of ['/', '/api/status', '/metrics', '/events']) {
    const r = await raw(`${url}${path}`, { host: 'evil.example:80' });
    assert.equal(r.status, 421, path);
    assert.doesNotMatch(r.body, /c\.mov|postflow_/);
  }
  const cross = await raw(`${url}/api/jobs/${id}/retry`, { method: 'POST', origin: 'https://evil.example' });
  assert.equal(cross.status, 403);
  assert.equal((await store.get(id))?.state, 'failed');
  const same = await raw(`${url}/api/jobs/${id}/retry`, { method: 'POST', origin: url });
  assert.equal(same.status, 200);
  assert.ok(isLoopbackHost('localhost:8080') && isLoopbackHost('[::1]:1') && isLoopbackHost('127.0.0.2'));
  assert.ok(!isLoopbackHost('127.0.0.1.evil.com') && !isLoopbackHost('0.0.0.0') && !isLoopbackHost(undefined));
});

test('the page and its assets are served with a strict CSP; metrics are Prometheus text', async (t) => {
  const { url, admin } = await setup(t);
  const page = await fetch(`${url}/`);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  const html = await page.text();
  assert.equal(html, await readFile(new URL('../../src/admin/page/index.html', import.meta.url), 'utf8'));
  assert.doesNotMatch(html, /https?:\/\/(?!127)/, 'no external assets');
  assert.equal((await fetch(`${url}/app.js`)).status, 200);
  assert.equal((await fetch(`${url}/style.css`)).status, 200);
  assert.equal((await fetch(`${url}/nope`)).status, 404);
  admin.metrics.frameioCall({ operation: 'files.show', method: 'GET', status: 200 });
  const m = await fetch(`${url}/metrics`);
  assert.match(m.headers.get('content-type') ?? '', /text\/plain/);
  const text = await m.text();
  assert.match(text, /postflow_frameio_api_calls_total\{operation="files.show",method="GET",status="200"\} 1/);
  assert.match(text, /postflow_tunnel_ready 1/);
  assert.match(text, /postflow_process_cpu_user_seconds_total/);
});

test('the event stream pushes the status again and again', async (t) => {
  const { url } = await setup(t);
  const ac = new AbortController();
  t.after(() => ac.abort());
  const res = await fetch(`${url}/events`, { signal: ac.signal });
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = res.body!.getReader();
  let text = '';
  while ((text.match(/event: status/g) ?? []).length < 2) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString('utf8');
  }
  const events = text.split('\n\n').filter((e) => e.startsWith('event: status'));
  assert.ok(events.length >= 2);
  const data = JSON.parse(events[0]!.split('\ndata: ')[1]!);
  assert.equal(data.daemon.running, true);
  ac.abort();
});

test('actions on a store: unique prefixes, ambiguity, only failed jobs retry', async (t) => {
  const { store } = await setup(t);
  const a = await failedJob(store, 'x.mov');
  await assert.rejects(findJob(store, 'zz'), { code: 'PF_ERR_ADMIN_UNKNOWN_JOB' });
  assert.equal((await findJob(store, a.slice(0, 6))).id, a);
  // uuids rarely share a prefix by chance: a store holding two that do shows the ambiguity.
  const twins = { get: async () => undefined, list: async () => [{ id: 'abcd1111-0' }, { id: 'abcd2222-0' }] } as unknown as JobStore;
  await assert.rejects(findJob(twins, 'abcd'), { code: 'PF_ERR_ADMIN_AMBIGUOUS_JOB' });
  assert.equal((await findJob(twins, 'abcd2')).id, 'abcd2222-0');
  await assert.rejects(findJob(twins, 'abc'), { code: 'PF_ERR_ADMIN_UNKNOWN_JOB' }, 'prefixes under 4 characters are refused');
  for (let i = 0; i < 3; i++) await failedJob(store, `m${i}.mov`);
  const done = await retryJob(store, a);
  assert.equal(done.state, 'queued');
  await assert.rejects(retryJob(store, a), { code: 'PF_ERR_ADMIN_NOT_RETRYABLE' });
  const out = await retryAllFailed(store);
  assert.equal(out.retried.length, 3);
  assert.equal((await store.events(a)).at(-1)?.detail, 'retry requested by an operator');
});

test('a failed job whose file has a newer open job is reported as superseded, not re-queued', async (t) => {
  const { store } = await setup(t);
  const old = await failedJob(store, 'same.mov');
  await store.discover({ folderIndex: 0, root: '/w', path: '/w/same.mov', relPath: 'same.mov', name: 'same.mov', size: 99, mtimeMs: 2, ino: 1, destination: 'd' });
  await assert.rejects(retryJob(store, old), { code: 'PF_ERR_ADMIN_SUPERSEDED' });
  assert.equal((await store.get(old))?.state, 'failed');
});
