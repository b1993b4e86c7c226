import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { startEmulator, type Emulator, type EmulatorOptions } from './frameio/emulator.ts';
import { OrderedHasher } from './frameio/ordered-hash.ts';
import { RateLimiter } from './frameio/rate-limits.ts';
import { registerHost } from './tunnel-registry.ts';

async function emulator(t: TestContext, opts: EmulatorOptions = {}): Promise<Emulator> {
  const emu = await startEmulator(opts);
  t.after(() => emu.close());
  return emu;
}

async function token(emu: Emulator, form: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(emu.imsTokenUrl, { method: 'POST', body: new URLSearchParams(form) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function api(emu: Emulator, accessToken = emu.issueAccessToken()) {
  return async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(path.startsWith('http') ? path : `${emu.url}${path.startsWith('/v4') ? '' : '/v4'}${path}`, {
      method,
      headers: { authorization: `Bearer ${accessToken}`, 'x-api-key': emu.clientId, 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: (text ? JSON.parse(text) : undefined) as any };
  };
}

/** A Range-capable origin for `data`, counting concurrent requests and remembering their Host headers. */
async function rangeServer(t: TestContext, data: Buffer, delayMs = 15) {
  const stats = { inFlight: 0, maxInFlight: 0, hosts: new Set<string>(), ranges: [] as string[] };
  const server: Server = createServer(async (req, res) => {
    stats.hosts.add(String(req.headers.host));
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-length': data.length, 'accept-ranges': 'bytes' });
      return res.end();
    }
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    const m = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
    if (m) stats.ranges.push(`${m[1]}-${m[2]}`);
    await sleep(delayMs);
    if (m) {
      const a = Number(m[1]);
      const b = Math.min(Number(m[2]), data.length - 1);
      res.writeHead(206, { 'content-length': b - a + 1, 'content-range': `bytes ${a}-${b}/${data.length}` });
      res.end(data.subarray(a, b + 1));
    } else {
      res.writeHead(200, { 'content-length': data.length });
      res.end(data);
    }
    res.on('close', () => stats.inFlight--);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stats };
}

async function waitForStatus(call: ReturnType<typeof api>, statusPath: string, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await call('GET', statusPath);
    if (r.status === 200 && (r.json.data.upload_complete || r.json.data.upload_failed)) return r.json.data;
    if (Date.now() > end) throw new Error(`import not finished after ${timeoutMs} ms: ${JSON.stringify(r.json)}`);
    await sleep(25);
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('IMS refresh_token grant rotates: the old refresh token is rejected at once, the new one works', async (t) => {
  const emu = await emulator(t);
  const first = emu.issueRefreshToken();
  const creds = { client_id: emu.clientId, client_secret: emu.clientSecret };
  const a = await token(emu, { grant_type: 'refresh_token', refresh_token: first, ...creds });
  assert.equal(a.status, 200);
  assert.equal(a.body.token_type, 'bearer');
  assert.equal(a.body.expires_in, 3600);
  assert.equal(typeof a.body.access_token, 'string');
  assert.notEqual(a.body.refresh_token, first);
  const again = await token(emu, { grant_type: 'refresh_token', refresh_token: first, ...creds });
  assert.equal(again.status, 400);
  assert.equal(again.body.error, 'invalid_grant');
  const b = await token(emu, { grant_type: 'refresh_token', refresh_token: String(a.body.refresh_token), ...creds });
  assert.equal(b.status, 200);
  const me = await api(emu, String(b.body.access_token))('GET', '/me');
  assert.equal(me.status, 200);
  assert.equal(me.json.data.email, 'postflow-test@example.com');
  const wrongSecret = await token(emu, { grant_type: 'refresh_token', refresh_token: String(b.body.refresh_token), client_id: emu.clientId, client_secret: 'nope' });
  assert.equal(wrongSecret.status, 401);
  assert.equal(wrongSecret.body.error, 'invalid_client');
});

test('IMS client_credentials gives no refresh token; authorization_code with PKCE S256 checks the verifier', async (t) => {
  const emu = await emulator(t);
  const cc = await token(emu, { grant_type: 'client_credentials', client_id: emu.clientId, client_secret: emu.clientSecret });
  assert.equal(cc.status, 200);
  assert.equal(cc.body.refresh_token, undefined);

  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const redirect = 'http://127.0.0.1:9/callback';
  const authorize = async () => {
    const u = new URL(emu.imsAuthorizeUrl);
    u.search = new URLSearchParams({
      client_id: emu.clientId, redirect_uri: redirect, scope: 'openid offline_access', response_type: 'code',
      code_challenge: challenge, code_challenge_method: 'S256', state: 'xyz',
    }).toString();
    const res = await fetch(u, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const loc = new URL(String(res.headers.get('location')));
    assert.equal(`${loc.origin}${loc.pathname}`, redirect);
    assert.equal(loc.searchParams.get('state'), 'xyz');
    return String(loc.searchParams.get('code'));
  };
  const bad = await token(emu, { grant_type: 'authorization_code', code: await authorize(), code_verifier: 'wrong', redirect_uri: redirect, client_id: emu.clientId });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error, 'invalid_grant');
  const code = await authorize();
  const good = await token(emu, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirect, client_id: emu.clientId });
  assert.equal(good.status, 200);
  assert.equal(typeof good.body.refresh_token, 'string');
  const reused = await token(emu, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirect, client_id: emu.clientId });
  assert.equal(reused.status, 400);
});

test('V4 needs x-api-key and a live bearer; answers carry x-ratelimit headers', async (t) => {
  const emu = await emulator(t);
  const call = api(emu);
  const ok = await call('GET', '/accounts');
  assert.equal(ok.status, 200);
  assert.equal(ok.json.data[0].id, emu.accountId);
  assert.equal(ok.headers.get('x-ratelimit-limit'), '100');
  assert.equal(ok.headers.get('x-ratelimit-window'), '60000');
  assert.equal(ok.headers.get('x-ratelimit-remaining'), '99');

  const noKey = await fetch(`${emu.apiUrl}/me`, { headers: { authorization: `Bearer ${emu.issueAccessToken()}` } });
  assert.equal(noKey.status, 401);
  assert.match(((await noKey.json()) as any).errors[0].detail, /x-api-key/);
  const noBearer = await fetch(`${emu.apiUrl}/me`, { headers: { 'x-api-key': emu.clientId } });
  assert.equal(noBearer.status, 401);

  const expiredEmu = await emulator(t, { accessTokenTtlSeconds: 0 });
  const expired = await api(expiredEmu)('GET', '/me');
  assert.equal(expired.status, 401);
  assert.equal(expired.json.errors[0].detail, 'Access token has expired');
});

test('navigation: workspace → project → root folder; children paginate with links.next that drops the query', async (t) => {
  const emu = await emulator(t);
  const call = api(emu);
  const ws = await call('GET', `/accounts/${emu.accountId}/workspaces`);
  assert.equal(ws.json.data[0].id, emu.workspaceId);
  const projects = await call('GET', `/accounts/${emu.accountId}/workspaces/${emu.workspaceId}/projects`);
  assert.equal(projects.json.data[0].root_folder_id, emu.rootFolderId);
  const project = await call('GET', `/accounts/${emu.accountId}/projects/${emu.projectId}`);
  assert.equal(project.json.data.root_folder_id, emu.rootFolderId);

  const root = `/accounts/${emu.accountId}/folders/${emu.rootFolderId}`;
  for (let i = 0; i < 7; i++) {
    const r = await call('POST', `${root}/folders`, { data: { name: `reel${i}` } });
    assert.equal(r.status, 201);
    assert.equal(r.json.data.type, 'folder');
    assert.equal(r.json.data.parent_id, emu.rootFolderId);
  }
  const names: string[] = [];
  let next: string | null = `/v4${root}/children?page_size=3&type=folder&include_total_count=true`;
  let pages = 0;
  while (next) {
    const page = await call('GET', pages === 0 ? next : `${next}&page_size=3`);
    assert.equal(page.status, 200);
    if (pages === 0) assert.equal(page.json.total_count, 7);
    names.push(...page.json.data.map((f: { name: string }) => f.name));
    next = page.json.links.next;
    if (next) {
      assert.doesNotMatch(next, /page_size|type=/);
      assert.match(next, /^\/v4\/accounts\/.+\/children\?after=/);
    }
    pages++;
  }
  assert.equal(pages, 3);
  assert.deepEqual(names, ['reel0', 'reel1', 'reel2', 'reel3', 'reel4', 'reel5', 'reel6']);
  const tooBig = await call('GET', `${root}/children?page_size=501`);
  assert.equal(tooBig.status, 422);
  const missing = await call('GET', `/accounts/${emu.accountId}/folders/00000000-0000-0000-0000-000000000000`);
  assert.equal(missing.status, 404);
  assert.ok(missing.json.errors[0].detail);
});

test('unknown body fields and bad names answer 422 in the V4 error shape', async (t) => {
  const emu = await emulator(t);
  const call = api(emu);
  const path = `/accounts/${emu.accountId}/folders/${emu.rootFolderId}/files/remote_upload`;
  const extra = await call('POST', path, { data: { name: 'a.mov', source_url: 'https://x.trycloudflare.com/t/a.mov', foo: 1 } });
  assert.equal(extra.status, 422);
  assert.deepEqual(extra.json.errors[0], { detail: 'Unexpected field: foo', source: { pointer: '/data/foo' }, title: 'Invalid value' });
  const long = await call('POST', path, { data: { name: 'x'.repeat(256), source_url: 'https://x.trycloudflare.com/t/a' } });
  assert.equal(long.status, 422);
  const missing = await call('POST', path, { data: { name: 'a.mov' } });
  assert.equal(missing.status, 422);
  assert.equal(missing.json.errors[0].detail, 'Missing field: source_url');
  const folder = await call('POST', `/accounts/${emu.accountId}/folders/${emu.rootFolderId}/folders`, { data: { name: 'ok', color: 'red' } });
  assert.equal(folder.status, 422);
});

test('remote import pulls a loopback source with parallel Range requests and records its sha256', async (t) => {
  const data = randomBytes(4 * 1024 * 1024 + 777);
  const src = await rangeServer(t, data);
  const emu = await emulator(t, { allowLoopbackSources: true, pullChunkBytes: 256 * 1024, pullConcurrency: 4 });
  const call = api(emu);
  const sourceUrl = `${src.origin}/tok123/clip.mov?x=1`;
  const r = await call('POST', `/accounts/${emu.accountId}/folders/${emu.rootFolderId}/files/remote_upload`, { data: { name: 'clip.mov', source_url: sourceUrl } });
  assert.equal(r.status, 202);
  assert.equal(r.json.data.status, 'created');
  assert.equal(r.json.data.file_size, data.length);
  assert.equal(r.json.data.media_type, 'video/quicktime');
  assert.equal(r.json.links.status, `/v4/accounts/${emu.accountId}/files/${r.json.data.id}/status`);
  const status = await waitForStatus(call, r.json.links.status);
  assert.equal(status.upload_complete, true);
  assert.equal(status.upload_failed, false);
  const file = await call('GET', `/accounts/${emu.accountId}/files/${r.json.data.id}`);
  assert.equal(file.json.data.status, 'uploaded');
  assert.equal(file.json.data.view_url, `https://next.frame.io/project/${emu.projectId}/view/${r.json.data.id}`);

  const [entry] = emu.ledger();
  assert.ok(entry);
  assert.equal(entry.status, 'complete');
  assert.equal(entry.sha256, sha256(data));
  assert.equal(entry.size, data.length);
  assert.equal(entry.sourceUrl, sourceUrl);
  const gets = entry.requests.filter((q) => q.method === 'GET');
  assert.equal(gets.length, Math.ceil(data.length / (256 * 1024)));
  assert.ok(gets.every((q) => q.status === 206 && /^bytes=\d+-\d+$/.test(q.range ?? '')));
  assert.ok(src.stats.maxInFlight >= 2, `expected parallel ranges, saw at most ${src.stats.maxInFlight} at once`);
  assert.ok(src.stats.maxInFlight <= 4);
  assert.ok(entry.firstRequestAt !== null && entry.completedAt !== null && entry.completedAt >= entry.firstRequestAt);
  const listed = await call('GET', `/accounts/${emu.accountId}/folders/${emu.rootFolderId}/files`);
  assert.deepEqual(listed.json.data.map((f: { name: string }) => f.name), ['clip.mov']);
});

test('source hostnames resolve through the tunnel registry (Host kept); loopback is refused by default; unknown names fail after retries', async (t) => {
  const data = randomBytes(300_000);
  const src = await rangeServer(t, data, 0);
  const dir = mkdtempSync(join(tmpdir(), 'emu-registry-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  registerHost(dir, 'quiet-words-here.trycloudflare.com', src.origin);
  const emu = await emulator(t, { registryDir: dir, dnsRetries: 2, dnsRetryDelayMs: 20, pullChunkBytes: 100_000 });
  const call = api(emu);
  const upload = (name: string, source_url: string) =>
    call('POST', `/accounts/${emu.accountId}/folders/${emu.rootFolderId}/files/remote_upload`, { data: { name, source_url } });

  const viaTunnel = await upload('a.mov', 'https://quiet-words-here.trycloudflare.com/t0k/a.mov');
  assert.equal((await waitForStatus(call, viaTunnel.json.links.status)).upload_complete, true);
  assert.ok(src.stats.hosts.has('quiet-words-here.trycloudflare.com'));

  const loop = await upload('b.mov', `${src.origin}/t0k/b.mov`);
  assert.equal(loop.status, 202);
  assert.equal((await waitForStatus(call, loop.json.links.status)).upload_failed, true);

  const unknown = await upload('c.mov', 'https://not-yet-there.trycloudflare.com/t0k/c.mov');
  assert.equal((await waitForStatus(call, unknown.json.links.status)).upload_failed, true);
  const byName = new Map(emu.ledger().map((e) => [e.name, e]));
  assert.equal(byName.get('a.mov')?.sha256, sha256(data));
  assert.match(byName.get('b.mov')?.error ?? '', /not reachable from the internet/);
  assert.equal(byName.get('c.mov')?.requests.filter((q) => q.method === 'DNS').length, 3);
  assert.match(byName.get('c.mov')?.error ?? '', /ENOTFOUND/);
});

test('faults: 429 on every 5th call with Retry-After, 503 on every 7th', async (t) => {
  const emu = await emulator(t, { faults: { status429EveryN: 5, status503EveryN: 7, retryAfterSeconds: 2 } });
  const call = api(emu);
  const statuses: number[] = [];
  for (let i = 1; i <= 14; i++) {
    const r = await call('GET', '/me');
    statuses.push(r.status);
    if (r.status === 429 || r.status === 503) {
      assert.equal(r.headers.get('retry-after'), '2');
      assert.ok(r.json.errors[0].detail);
    }
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 429, 200, 503, 200, 200, 429, 200, 200, 200, 503]);
  assert.deepEqual(emu.calls().filter((c) => c.operation === 'users.show').map((c) => c.status), statuses);
});

test('faults: failImportsNext, abortPullAfterBytes, revoked refresh tokens; deleting a file aborts its import', async (t) => {
  const data = randomBytes(1_000_000);
  const src = await rangeServer(t, data, 0);
  const emu = await emulator(t, { allowLoopbackSources: true, pullChunkBytes: 100_000, faults: { failImportsNext: 1 } });
  const call = api(emu);
  const upload = (name: string) =>
    call('POST', `/accounts/${emu.accountId}/folders/${emu.rootFolderId}/files/remote_upload`, { data: { name, source_url: `${src.origin}/t/${name}` } });

  const failed = await upload('one.mov');
  assert.equal((await waitForStatus(call, failed.json.links.status)).upload_failed, true);
  const fine = await upload('two.mov');
  assert.equal((await waitForStatus(call, fine.json.links.status)).upload_complete, true);

  emu.setFaults({ abortPullAfterBytes: 300_000 });
  const broken = await upload('three.mov');
  assert.equal((await waitForStatus(call, broken.json.links.status)).upload_failed, true);
  emu.setFaults({ abortPullAfterBytes: 0, pullBytesPerSecond: 200_000 });
  const slow = await upload('four.mov');
  await sleep(100);
  const del = await call('DELETE', `/accounts/${emu.accountId}/files/${slow.json.data.id}`);
  assert.equal(del.status, 204);
  assert.equal((await call('GET', slow.json.links.status)).status, 404);
  const byName = new Map(emu.ledger().map((e) => [e.name, e]));
  assert.equal(byName.get('one.mov')?.status, 'failed');
  assert.equal(byName.get('two.mov')?.sha256, sha256(data));
  assert.match(byName.get('three.mov')?.error ?? '', /abortPullAfterBytes/);
  assert.equal(byName.get('four.mov')?.status, 'deleted');
  assert.ok((byName.get('four.mov')?.bytesReceived ?? Infinity) < data.length);

  const rt = emu.issueRefreshToken();
  await fetch(`${emu.url}/_emulator/faults`, { method: 'POST', body: JSON.stringify({ revokeRefreshTokens: true }) });
  const revoked = await token(emu, { grant_type: 'refresh_token', refresh_token: rt, client_id: emu.clientId, client_secret: emu.clientSecret });
  assert.equal(revoked.status, 400);
  assert.equal(revoked.body.error, 'invalid_grant');
  const fresh = (await (await fetch(`${emu.url}/_emulator/refresh-token`, { method: 'POST' })).json()) as { refresh_token: string };
  const relogged = await token(emu, { grant_type: 'refresh_token', refresh_token: fresh.refresh_token, client_id: emu.clientId, client_secret: emu.clientSecret });
  assert.equal(relogged.status, 200);
  const bad = await fetch(`${emu.url}/_emulator/faults`, { method: 'POST', body: JSON.stringify({ nope: 1 }) });
  assert.equal(bad.status, 400);
});

test('enforced rate limits answer 429 past the per-operation budget (folders.create 3/s)', async (t) => {
  const emu = await emulator(t, { faults: { enforceRateLimits: true } });
  const call = api(emu);
  const path = `/accounts/${emu.accountId}/folders/${emu.rootFolderId}/folders`;
  const results = await Promise.all([1, 2, 3, 4].map((i) => call('POST', path, { data: { name: `f${i}` } })));
  const statuses = results.map((r) => r.status).sort();
  assert.deepEqual(statuses, [201, 201, 201, 429]);
  assert.ok(results.every((r) => r.headers.get('x-ratelimit-limit') === '3' && r.headers.get('x-ratelimit-window') === '1000'));
});

test('local upload: presigned part URLs, S3-style checks, hashed in part order once all parts arrive', async (t) => {
  const emu = await emulator(t);
  const call = api(emu);
  const data = randomBytes(12_000_001);
  const r = await call('POST', `/accounts/${emu.accountId}/folders/${emu.rootFolderId}/files/local_upload`, { data: { name: 'big.mxf', file_size: data.length } });
  assert.equal(r.status, 201);
  const parts = r.json.data.upload_urls as { size: number; url: string }[];
  assert.equal(parts.length, 3);
  assert.equal(parts.reduce((n, p) => n + p.size, 0), data.length);
  const put = (i: number, contentType = 'application/mxf') => {
    const offset = parts.slice(0, i).reduce((n, p) => n + p.size, 0);
    const p = parts[i]!;
    return fetch(p.url, { method: 'PUT', headers: { 'content-type': contentType, 'x-amz-acl': 'private' }, body: data.subarray(offset, offset + p.size) });
  };
  assert.equal((await put(0, 'video/mp4')).status, 403);
  // Out of order on purpose: the emulator must still hash in part order.
  for (const i of [2, 0, 1]) assert.equal((await put(i)).status, 200);
  const status = await waitForStatus(call, `/accounts/${emu.accountId}/files/${r.json.data.id}/status`);
  assert.equal(status.upload_complete, true);
  const [entry] = emu.ledger();
  assert.equal(entry?.sha256, sha256(data));
  assert.equal(entry?.kind, 'local_upload');

  const short = await emulator(t, { uploadUrlTtlSeconds: 0 });
  const s = await api(short)('POST', `/accounts/${short.accountId}/folders/${short.rootFolderId}/files/local_upload`, { data: { name: 'a.txt', file_size: 5 } });
  assert.equal(s.json.data.upload_urls.length, 1);
  await sleep(5);
  const expired = await fetch(s.json.data.upload_urls[0].url, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'hello' });
  assert.equal(expired.status, 403);
  assert.match(await expired.text(), /<Code>AccessDenied<\/Code>/);
});

test('version stacks: stacking two files, listing the stack, moving a third file in', async (t) => {
  const data = randomBytes(1000);
  const emu = await emulator(t);
  const call = api(emu);
  const folder = `/accounts/${emu.accountId}/folders/${emu.rootFolderId}`;
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await call('POST', `${folder}/files/local_upload`, { data: { name: 'cut.mov', file_size: data.length } });
    ids.push(r.json.data.id);
  }
  const bad = await call('POST', `${folder}/version_stacks`, { data: { file_ids: [ids[0]] } });
  assert.equal(bad.status, 422);
  const stack = await call('POST', `${folder}/version_stacks`, { data: { file_ids: [ids[0], ids[1]] } });
  assert.equal(stack.status, 201);
  assert.equal(stack.json.data.type, 'version_stack');
  assert.equal(stack.json.data.head_version.id, ids[1]);
  const moved = await call('PATCH', `/accounts/${emu.accountId}/files/${ids[2]}/move`, { data: { parent_id: stack.json.data.id } });
  assert.equal(moved.status, 200);
  const children = await call('GET', `/accounts/${emu.accountId}/version_stacks/${stack.json.data.id}/children`);
  assert.deepEqual(children.json.data.map((f: { id: string }) => f.id), ids);
  const top = await call('GET', `${folder}/children`);
  assert.deepEqual(top.json.data.map((a: { type: string }) => a.type), ['version_stack']);
  const state = (await (await fetch(`${emu.url}/_emulator/state`)).json()) as Record<string, string>;
  assert.equal(state.rootFolderId, emu.rootFolderId);
  assert.equal(state.apiUrl, emu.apiUrl);
});

test('a chunk cut off mid-body is resumed from the byte where it broke, and the sha256 still matches', async (t) => {
  const data = randomBytes(400_000);
  let cut = false;
  const server = createServer((req, res) => {
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-length': data.length });
      return res.end();
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range))!;
    const a = Number(m[1]);
    const b = Number(m[2]);
    res.writeHead(206, { 'content-length': b - a + 1, 'content-range': `bytes ${a}-${b}/${data.length}` });
    if (a === 100_000 && !cut) {
      cut = true;
      res.write(data.subarray(a, a + 30_000), () => res.destroy());
      return;
    }
    res.end(data.subarray(a, b + 1));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const emu = await emulator(t, { allowLoopbackSources: true, pullChunkBytes: 100_000 });
  const call = api(emu);
  const r = await call('POST', `/accounts/${emu.accountId}/folders/${emu.rootFolderId}/files/remote_upload`, {
    data: { name: 'cut.wav', source_url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/t/cut.wav` },
  });
  assert.equal((await waitForStatus(call, r.json.links.status)).upload_complete, true);
  const [entry] = emu.ledger();
  assert.equal(entry?.sha256, sha256(data));
  const ranges = entry?.requests.map((q) => q.range) ?? [];
  assert.ok(ranges.includes('bytes=100000-199999'));
  const resumed = ranges.find((x) => x?.startsWith('bytes=1') && x !== 'bytes=100000-199999' && x.endsWith('-199999'));
  assert.ok(resumed, `expected a resumed range in ${JSON.stringify(ranges)}`);
  assert.ok(Number(/=(\d+)-/.exec(resumed)?.[1]) > 100_000);
});

test('OrderedHasher hashes out-of-order chunks in order and holds pullers to the window', async () => {
  const parts = [randomBytes(10), randomBytes(20), randomBytes(30)];
  const h = new OrderedHasher();
  h.write(2, parts[2]!);
  h.finish(2);
  h.write(1, parts[1]!);
  assert.equal(h.hashedBytes, 0);
  assert.equal(h.bufferedBytes, 50);
  let released = false;
  const waiting = h.waitForWindow(3, 2).then(() => { released = true; });
  await sleep(5);
  assert.equal(released, false);
  h.write(0, parts[0]!);
  h.finish(0);
  h.finish(1);
  await waiting;
  assert.equal(released, true);
  assert.equal(h.position, 3);
  assert.equal(h.bufferedBytes, 0);
  assert.equal(h.digest(), sha256(Buffer.concat(parts)));
});

test('RateLimiter drains per operation and refills gradually with the clock', () => {
  let now = 0;
  const rl = new RateLimiter(() => now);
  const take = () => rl.take('folders.create', true);
  assert.deepEqual([take()?.remaining, take()?.remaining, take()?.remaining], [2, 1, 0]);
  assert.equal(take()?.allowed, false);
  now += 334; // a third of the 1 s window gives back one call of the three
  assert.equal(take()?.allowed, true);
  assert.equal(take()?.allowed, false);
  assert.equal(rl.take('files.show', true)?.remaining, 9);
  assert.equal(rl.take('no.such_operation', true), undefined);
  assert.equal(new RateLimiter(() => 0).take('folders.create', false)?.allowed, true);
});

test('sourceDnsDelayMs: a fresh tunnel hostname fails to resolve at first, the importer retries and completes', async (t) => {
  const data = randomBytes(50_000);
  const src = await rangeServer(t, data, 0);
  const dir = mkdtempSync(join(tmpdir(), 'emu-registry-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  registerHost(dir, 'fresh-tunnel-name.trycloudflare.com', src.origin);
  const emu = await emulator(t, { registryDir: dir, dnsRetries: 10, dnsRetryDelayMs: 50, faults: { sourceDnsDelayMs: 250 } });
  const call = api(emu);
  const r = await call('POST', `/accounts/${emu.accountId}/folders/${emu.rootFolderId}/files/remote_upload`, {
    data: { name: 'fresh.mov', source_url: 'https://fresh-tunnel-name.trycloudflare.com/t/fresh.mov' },
  });
  assert.equal(r.status, 202);
  assert.equal(r.json.data.file_size, 0); // the name did not resolve yet when the 202 was written
  assert.equal((await waitForStatus(call, r.json.links.status)).upload_complete, true);
  const [entry] = emu.ledger();
  assert.ok((entry?.requests.filter((q) => q.method === 'DNS').length ?? 0) >= 1);
  assert.equal(entry?.sha256, sha256(data));
  assert.equal((await call('GET', `/accounts/${emu.accountId}/files/${r.json.data.id}`)).json.data.file_size, data.length);
});
