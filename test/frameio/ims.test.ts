import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { createTokenProvider, parseImsAnswer, refreshInstant } from '../../src/frameio/ims.ts';
import { readTokenFile, writeTokenFile } from '../../src/frameio/token-file.ts';
import { startEmulator, type Emulator } from '../doubles/frameio/emulator.ts';

const logger = pino({ level: 'silent' });
const run = promisify(execFile);

interface Ctx {
  after: (fn: () => Promise<void> | void) => void;
}

async function setup(t: Ctx, opts: { ttl?: number } = {}): Promise<{ emu: Emulator; file: string; dir: string }> {
  const emu = await startEmulator({ accessTokenTtlSeconds: opts.ttl ?? 3600 });
  t.after(() => emu.close());
  const dir = await mkdtemp(join(tmpdir(), 'pf-ims-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'refresh-token');
  await writeTokenFile(file, { refresh_token: emu.issueRefreshToken() });
  return { emu, file, dir };
}

function provider(emu: Emulator, file: string | undefined, extra: Partial<Parameters<typeof createTokenProvider>[0]> = {}) {
  const p = createTokenProvider({
    imsTokenUrl: emu.imsTokenUrl,
    clientId: emu.clientId,
    clientSecret: emu.clientSecret,
    refreshTokenFile: file,
    logger,
    watchIntervalMs: 50,
    ...extra,
  });
  return p;
}

/** Resolves with `p`, or fails the test after `ms` without leaving a timer behind. */
async function within<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(why)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const imsCalls = (emu: Emulator) => emu.calls().filter((c) => c.operation === 'ims.token');

test('pure: refresh instant and IMS answer checks', () => {
  assert.equal(refreshInstant(0, 3_600_000, 300_000), 3_300_000);
  assert.equal(refreshInstant(0, 2000, 300_000), 1600, 'short lifetimes refresh at 80 %');
  assert.equal(typeof parseImsAnswer({ access_token: 'a', expires_in: 10 }), 'object');
  assert.equal(parseImsAnswer({ expires_in: 10 }), 'no access_token');
  assert.equal(parseImsAnswer({ access_token: 'a', expires_in: 0 }), 'no positive expires_in');
  assert.equal(parseImsAnswer('<html>'), 'not a JSON object');
});

test('access token is cached, refreshed before expiry, and the rotated refresh token written atomically (0600)', async (t) => {
  const { emu, file, dir } = await setup(t, { ttl: 2 });
  const tokens = provider(emu, file);
  t.after(() => tokens.close());
  const before = (await readTokenFile(file))!.refresh_token;
  const a = await tokens.getAccessToken();
  const b = await tokens.getAccessToken();
  assert.equal(a, b, 'cached');
  assert.equal(imsCalls(emu).length, 1);
  const rotated = (await readTokenFile(file))!.refresh_token;
  assert.notEqual(rotated, before, 'IMS rotated the refresh token and it was written back');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const { readdir } = await import('node:fs/promises');
  assert.deepEqual(await readdir(dir), ['refresh-token'], 'no temp or lock file left behind');

  await delay(1700); // past 80 % of the 2 s lifetime
  const c = await tokens.getAccessToken();
  assert.notEqual(c, a, 'refreshed');
  assert.equal(imsCalls(emu).length, 2);
  assert.notEqual((await readTokenFile(file))!.refresh_token, rotated);
  assert.ok(imsCalls(emu).every((x) => x.status === 200));
});

test('concurrent callers share one refresh (single flight)', async (t) => {
  const { emu, file } = await setup(t);
  const tokens = provider(emu, file);
  t.after(() => tokens.close());
  const got = await Promise.all(Array.from({ length: 20 }, () => tokens.getAccessToken()));
  assert.equal(new Set(got).size, 1);
  assert.equal(imsCalls(emu).length, 1);
  // invalidate() of an older token does not throw away a newer one.
  tokens.invalidate('at-something-else');
  assert.equal(await tokens.getAccessToken(), got[0]);
  tokens.invalidate(got[0]!);
  assert.notEqual(await tokens.getAccessToken(), got[0]);
  assert.equal(imsCalls(emu).length, 2);
});

test('two processes refreshing the same token file many times never lock each other out', async (t) => {
  const { emu, file } = await setup(t, { ttl: 3600 });
  const rounds = 40;
  const fixture = new URL('./fixtures/refresh-loop.ts', import.meta.url).pathname;
  let childDone = false;
  const child = run(process.execPath, [fixture, emu.imsTokenUrl, file, String(rounds)], { timeout: 60_000 }).finally(() => {
    childDone = true;
  });
  const tokens = provider(emu, file);
  t.after(() => tokens.close());
  let lost = false;
  tokens.on('auth-lost', () => (lost = true));
  const errors: string[] = [];
  // Keep refreshing for as long as the child does, so the two really contend for the file.
  let mine = 0;
  while (!childDone || mine < rounds) {
    try {
      tokens.invalidate(await tokens.getAccessToken());
      mine++;
    } catch (err) {
      errors.push((err as Error).message);
      break;
    }
  }
  const { stdout } = await child;
  const parentLastAt = Date.now();
  const theirs = JSON.parse(stdout) as { ok: number; errors: string[]; lost: boolean; firstAt: number; lastAt: number };
  assert.deepEqual(errors, []);
  assert.deepEqual(theirs.errors, []);
  assert.equal(theirs.ok, rounds);
  assert.equal(lost || theirs.lost, false);
  const calls = imsCalls(emu);
  assert.equal(calls.length, rounds + mine, 'every round really refreshed at IMS');
  // They really overlapped: the child's refreshes happened while this process was refreshing too.
  assert.ok(theirs.firstAt < parentLastAt && theirs.lastAt <= parentLastAt, 'the two processes refreshed at the same time');
  assert.ok(calls.every((c) => c.status === 200), `IMS refused a refresh: ${JSON.stringify(calls.filter((c) => c.status !== 200))}`);
  // The chain is intact: the file holds a live token.
  const fresh = provider(emu, file);
  t.after(() => fresh.close());
  assert.match(await fresh.getAccessToken(), /^at-/);
});

test('a revoked login: AUTH_REVOKED + one auth-lost, no IMS hammering, and a new login restores it', async (t) => {
  const { emu, file } = await setup(t, { ttl: 1 });
  const tokens = provider(emu, file);
  t.after(() => tokens.close());
  await tokens.getAccessToken();
  const lostEvents: Error[] = [];
  tokens.on('auth-lost', (err: Error) => lostEvents.push(err));
  emu.setFaults({ revokeRefreshTokens: true });
  await delay(1100); // access token expired
  await assert.rejects(tokens.getAccessToken(), (err: Error & { code?: string; retryable?: boolean }) => {
    assert.equal(err.code, 'PF_ERR_FRAMEIO_AUTH_REVOKED');
    assert.equal(err.retryable, false);
    assert.match(err.message, /postflow auth login/);
    assert.match(err.message, /invalid_grant/);
    return true;
  });
  assert.equal(tokens.isLost(), true);
  const callsAfterLoss = imsCalls(emu).length;
  await assert.rejects(tokens.getAccessToken(), { code: 'PF_ERR_FRAMEIO_AUTH_REVOKED' });
  await delay(200);
  assert.equal(imsCalls(emu).length, callsAfterLoss, 'the refused token is not presented again');
  assert.equal(lostEvents.length, 1);

  const restored = once(tokens, 'auth-restored');
  const waiter = tokens.waitRestored();
  emu.setFaults({ revokeRefreshTokens: false });
  await writeTokenFile(file, { refresh_token: emu.issueRefreshToken() }); // `postflow auth login`
  await within(restored, 5000, 'no auth-restored within 5 s');
  await waiter;
  assert.equal(tokens.isLost(), false);
  assert.match(await tokens.getAccessToken(), /^at-/);
});

test('no token file: NOT_LOGGED_IN + auth-lost; the file appearing restores the login', async (t) => {
  const emu = await startEmulator();
  t.after(() => emu.close());
  const dir = await mkdtemp(join(tmpdir(), 'pf-ims-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'refresh-token');
  const tokens = provider(emu, file);
  t.after(() => tokens.close());
  const lost = once(tokens, 'auth-lost');
  await assert.rejects(tokens.getAccessToken(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'PF_ERR_FRAMEIO_NOT_LOGGED_IN');
    assert.match(err.message, /postflow auth login/);
    return true;
  });
  await lost;
  const restored = once(tokens, 'auth-restored');
  await writeTokenFile(file, { refresh_token: emu.issueRefreshToken() });
  await within(restored, 5000, 'no auth-restored within 5 s');
});

test('IMS unreachable or failing is retryable, not a lost login', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pf-ims-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'refresh-token');
  await writeTokenFile(file, { refresh_token: 'rt-whatever' });
  // A port that was just free: connection refused.
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as AddressInfo).port;
  probe.close();
  const tokens = createTokenProvider({ imsTokenUrl: `http://127.0.0.1:${port}/ims/token/v3`, clientId: 'c', refreshTokenFile: file, logger });
  t.after(() => tokens.close());
  let lost = false;
  tokens.on('auth-lost', () => (lost = true));
  await assert.rejects(tokens.getAccessToken(), (err: Error & { code?: string; retryable?: boolean }) => {
    assert.equal(err.code, 'PF_ERR_FRAMEIO_IMS_UNAVAILABLE');
    assert.equal(err.retryable, true);
    return true;
  });
  // A 502 from IMS likewise.
  const bad = createServer((_req, res) => {
    res.writeHead(502);
    res.end('bad gateway');
  });
  bad.listen(0, '127.0.0.1');
  await once(bad, 'listening');
  t.after(() => {
    bad.closeAllConnections();
    bad.close();
  });
  const tokens2 = createTokenProvider({
    imsTokenUrl: `http://127.0.0.1:${(bad.address() as AddressInfo).port}/`,
    clientId: 'c',
    refreshTokenFile: file,
    logger,
  });
  t.after(() => tokens2.close());
  await assert.rejects(tokens2.getAccessToken(), { code: 'PF_ERR_FRAMEIO_IMS_UNAVAILABLE' });
  assert.equal(lost || tokens.isLost() || tokens2.isLost(), false);
  assert.equal((await readTokenFile(file))!.refresh_token, 'rt-whatever', 'the login is kept');
});

test('client credentials: no file, a wrong secret is a clear rejection', async (t) => {
  const emu = await startEmulator();
  t.after(() => emu.close());
  const tokens = provider(emu, undefined, { clientCredentials: { scopes: 'openid AdobeID frame.s2s.all' } });
  const a = await tokens.getAccessToken();
  assert.match(a, /^at-/);
  assert.equal(await tokens.getAccessToken(), a);
  const form = imsCalls(emu).length;
  assert.equal(form, 1);
  const wrong = provider(emu, undefined, { clientSecret: 'nope', clientCredentials: { scopes: ['openid'] } });
  await assert.rejects(wrong.getAccessToken(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'PF_ERR_FRAMEIO_IMS_REJECTED');
    assert.match(err.message, /invalid_client/);
    return true;
  });
  assert.throws(
    () => createTokenProvider({ imsTokenUrl: emu.imsTokenUrl, clientId: 'c', logger }),
    { code: 'PF_ERR_FRAMEIO_NO_CREDENTIALS' },
  );
});
