/**
 * The fleet's shared Frame.io login against a real throwaway PostgreSQL and the IMS double (refresh tokens
 * rotate at every use; a used one answers invalid_grant): three "nodes" (three pools, three providers)
 * started from ONE copied refresh token never lock each other out, share one chain of refreshes, and the
 * row never holds a token in clear.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { isPostflowError } from '../../src/errors.ts';
import { ERR_LOGIN_STORE_UNAVAILABLE, ERR_LOGIN_UNSEALABLE } from '../../src/frameio/errors.ts';
import { LOGIN_TABLE, createFleetLoginChain, type LoginPool } from '../../src/frameio/fleet-login.ts';
import { createTokenProvider, type TokenProvider } from '../../src/frameio/ims.ts';
import { readTokenFile, writeTokenFile } from '../../src/frameio/token-file.ts';
import { Ims } from '../doubles/frameio/ims.ts';
import { captureLogs } from '../log-capture.ts';
import { pgSkipReason, startPgCluster, type PgCluster } from '../jobs/pg-cluster.ts';

interface Ctx {
  after: (fn: () => Promise<void> | void) => void;
}

const KEY = randomBytes(32).toString('hex');
const CLIENT = { clientId: 'fleet-client', clientSecret: 'fleet-secret' };

/** The IMS double behind a real HTTP endpoint, recording every token request's grant and answer. */
async function startIms(t: Ctx, ttlSeconds: number) {
  const ims = new Ims({ ...CLIENT, accessTokenTtlSeconds: ttlSeconds });
  const answers: { grant: string | null; status: number; error?: unknown }[] = [];
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(parts).toString('utf8'));
      const a = ims.token(form);
      answers.push({ grant: form.get('grant_type'), status: a.status, error: a.body?.error });
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(a.body ?? {}));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ims/token/v3`;
  return { ims, url, answers, refreshes: () => answers.filter((a) => a.grant === 'refresh_token' && a.status === 200).length };
}

const capture = () => captureLogs('debug');

interface Node {
  tokens: TokenProvider;
  file: string;
  lines: () => Record<string, unknown>[];
  lost: number;
  secrets: Set<string>;
}

function startNode(t: Ctx, url: string, imsUrl: string, file: string, name: string, key = KEY, wrap: (p: pg.Pool) => LoginPool = (p) => p): Node {
  const real = new pg.Pool({ connectionString: url, max: 3, connectionTimeoutMillis: 2000 });
  real.on('error', () => undefined);
  t.after(() => real.end().catch(() => undefined));
  const pool = wrap(real);
  const { logger, lines } = capture();
  const secrets = new Set<string>();
  const onSecret = (v: string) => secrets.add(v);
  const tokens = createTokenProvider({
    ...CLIENT,
    imsTokenUrl: imsUrl,
    logger,
    watchIntervalMs: 100,
    onSecret,
    chain: createFleetLoginChain({ pool, secretKey: key, refreshTokenFile: file, nodeId: name, logger, onSecret }),
  });
  t.after(() => tokens.close());
  const node: Node = { tokens, file, lines, lost: 0, secrets };
  tokens.on('auth-lost', () => node.lost++);
  return node;
}

const skip = pgSkipReason();

describe('fleet login on PostgreSQL', { skip }, () => {
  let cluster: PgCluster;
  before(async () => {
    cluster = await startPgCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('three nodes from ONE copied refresh token, tokens living 2 s, for 10 s: no invalid_grant, never lost, one chain of refreshes, every token valid when handed out, nothing in clear in the row', async (t) => {
    const url = await cluster.createDatabase();
    const ttl = 2;
    const { ims, url: imsUrl, answers, refreshes } = await startIms(t, ttl);
    const dir = await mkdtemp(join(tmpdir(), 'pf-fleet-login-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const files = [1, 2, 3].map((n) => join(dir, `node-${n}`, 'refresh-token'));
    for (const f of files) await mkdir(join(f, '..'), { mode: 0o700 });
    await writeTokenFile(files[0]!, { refresh_token: ims.issueRefreshToken(), saved_at: new Date().toISOString() });
    await copyFile(files[0]!, files[1]!); // an exact copy (same saved_at)
    const nodes = files.slice(0, 2).map((f, i) => startNode(t, url, imsUrl, f, `node-${i + 1}`));
    // Node 1 seeds the row; then node 3 gets a hand-made copy, newer by mtime, of the same (now dead) token.
    await nodes[0]!.tokens.getAccessToken();
    const seedToken = JSON.parse(await (await import('node:fs/promises')).readFile(files[0]!, 'utf8')).refresh_token as string;
    await writeFile(files[2]!, seedToken, { mode: 0o600 });
    nodes.push(startNode(t, url, imsUrl, files[2]!, 'node-3'));

    const started = Date.now();
    const invalidWhenGot: string[] = [];
    let got = 0;
    await Promise.all(
      nodes.map(async (node, i) => {
        while (Date.now() - started < 10_000) {
          const token = await node.tokens.getAccessToken();
          got++;
          const check = ims.checkAccessToken(token);
          if (check !== 'ok') invalidWhenGot.push(`node ${i + 1}: ${check}`);
          await delay(10 + i * 7);
        }
      }),
    );
    const elapsedS = (Date.now() - started) / 1000;

    assert.deepEqual(invalidWhenGot, [], 'every access token was valid at IMS when handed out');
    assert.deepEqual(answers.filter((a) => a.status !== 200), [], 'IMS never refused a refresh (no invalid_grant)');
    assert.deepEqual(nodes.map((n) => n.lost), [0, 0, 0], 'no node ever lost the login');
    // One chain: a refresh at 80 % of each 2 s lifetime, for the fleet, not one per node (that would be ~19).
    const n = refreshes();
    assert.ok(n >= Math.floor(elapsedS / ttl) && n <= Math.ceil(elapsedS / (0.8 * ttl)) + 2, `${n} refreshes in ${elapsedS.toFixed(1)} s with ${ttl} s tokens`);
    assert.ok(got > 300, `the nodes really kept asking (${got})`);
    t.diagnostic(`fleet login: ${JSON.stringify({ elapsedS: Number(elapsedS.toFixed(1)), imsRefreshes: n, tokensHandedOut: got })}`);
    // Node 2's exact copy and node 3's newer-by-mtime copy hold the seeding token: neither may replace the row.
    for (const node of nodes) assert.ok(!node.lines().some((l) => l.event === 'fleet-login-replaced' || l.event === 'fleet-login-file-refused'));
    assert.equal(nodes[0]!.lines().filter((l) => l.event === 'fleet-login-seeded').length, 1);

    // Every node told its scrubber every token it handed out or presented.
    for (const node of nodes) assert.ok(node.secrets.size > 0);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    t.after(() => db.end());
    const { rows } = await db.query<{ sealed: Buffer; whole: string }>(`SELECT sealed, t::text AS whole FROM ${LOGIN_TABLE} t`);
    assert.equal(rows.length, 1);
    const haystacks = [rows[0]!.whole, rows[0]!.sealed.toString('latin1'), rows[0]!.sealed.toString('base64'), rows[0]!.sealed.toString('hex')];
    for (const token of ims.issued) {
      for (const h of haystacks) assert.ok(!h.includes(token) && !h.includes(token.slice(3)), 'no token in clear in the row');
    }
  });

  test('a revoked login is lost on every node and restored on all of them when a new login lands on one node', async (t) => {
    const url = await cluster.createDatabase();
    const { ims, url: imsUrl } = await startIms(t, 1);
    const dir = await mkdtemp(join(tmpdir(), 'pf-fleet-login-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const seed = { refresh_token: ims.issueRefreshToken(), saved_at: new Date(Date.now() - 60_000).toISOString() };
    const nodes = [1, 2].map((i) => join(dir, `rt-${i}`));
    for (const f of nodes) await writeTokenFile(f, seed);
    const [a, b] = nodes.map((f, i) => startNode(t, url, imsUrl, f, `node-${i + 1}`));
    await a!.tokens.getAccessToken();
    await b!.tokens.getAccessToken();
    ims.revokeRefreshTokens();
    await delay(1100); // the shared access token expires; the stored refresh token is dead
    for (const node of [a!, b!]) {
      await assert.rejects(node.tokens.getAccessToken(), /PF_ERR_FRAMEIO_AUTH_REVOKED|rejected the refresh token/);
      assert.equal(node.tokens.isLost(), true);
    }
    assert.match(String(a!.lines().find((l) => l.event === 'auth-lost')?.msg), /fleet's login in PostgreSQL/);

    // `postflow auth login` on node 2: a new token file, newer than the seed.
    await writeTokenFile(b!.file, { refresh_token: ims.issueRefreshToken(), saved_at: new Date().toISOString() });
    await Promise.all([a!.tokens.waitRestored(AbortSignal.timeout(5000)), b!.tokens.waitRestored(AbortSignal.timeout(5000))]);
    assert.equal(ims.checkAccessToken(await a!.tokens.getAccessToken()), 'ok');
    assert.equal(ims.checkAccessToken(await b!.tokens.getAccessToken()), 'ok');
    assert.equal(b!.lines().filter((l) => l.event === 'fleet-login-replaced').length, 1);
    assert.ok(a!.lines().some((l) => l.event === 'auth-restored'), 'node 1 restored from the row node 2 wrote');
  });

  test('a stale newer file is refused by IMS without losing the fleet login; a node with another store.secretKey gets a typed error, not a crash', async (t) => {
    const url = await cluster.createDatabase();
    const { ims, url: imsUrl } = await startIms(t, 3600);
    const dir = await mkdtemp(join(tmpdir(), 'pf-fleet-login-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const fa = join(dir, 'rt-a');
    await writeTokenFile(fa, { refresh_token: ims.issueRefreshToken(), saved_at: new Date(Date.now() - 60_000).toISOString() });
    const a = startNode(t, url, imsUrl, fa, 'node-a');
    const first = await a.tokens.getAccessToken();
    // A file newer than the seed with a token IMS no longer knows: tried once, then the row's login stays.
    await writeTokenFile(fa, { refresh_token: 'rt-long-dead', saved_at: new Date().toISOString() });
    a.tokens.invalidate(first);
    const second = await a.tokens.getAccessToken();
    assert.notEqual(second, first);
    assert.equal(ims.checkAccessToken(second), 'ok');
    assert.equal(a.lost, 0);
    assert.equal(a.lines().filter((l) => l.event === 'fleet-login-file-refused').length, 1);

    const fb = join(dir, 'rt-b');
    await writeTokenFile(fb, { refresh_token: ims.issueRefreshToken() });
    const b = startNode(t, url, imsUrl, fb, 'node-b', randomBytes(32).toString('hex'));
    await assert.rejects(b.tokens.getAccessToken(), (err: unknown) => isPostflowError(err, ERR_LOGIN_UNSEALABLE) && /store\.secretKey/.test(err.message));
    assert.equal(b.tokens.isLost(), true, 'uploads pause instead of failing one by one');
    // ...and it did not overwrite the fleet's row: node a still works from it.
    a.tokens.invalidate(second);
    assert.equal(ims.checkAccessToken(await a.tokens.getAccessToken()), 'ok');
  });

  test('PostgreSQL unreachable: a retryable error, never a lost login; a rotated token the row could not take is kept in the file and reaches the row next time', async (t) => {
    const { ims, url: imsUrl, answers } = await startIms(t, 3600);
    const dir = await mkdtemp(join(tmpdir(), 'pf-fleet-login-'));
    t.after(() => rm(dir, { recursive: true, force: true }));

    const nowhere = join(dir, 'rt-nowhere');
    await writeTokenFile(nowhere, { refresh_token: ims.issueRefreshToken() });
    const off = startNode(t, 'postgres://postflow@127.0.0.1:1/none', imsUrl, nowhere, 'node-off');
    await assert.rejects(off.tokens.getAccessToken(), (err: unknown) => isPostflowError(err, ERR_LOGIN_STORE_UNAVAILABLE) && err.retryable);
    assert.equal(off.tokens.isLost(), false);
    assert.equal(answers.length, 0, 'IMS not asked without the row');

    // The row refuses the write that follows a successful IMS refresh (the database went away mid-refresh).
    const url = await cluster.createDatabase();
    const file = join(dir, 'rt-flaky');
    await writeTokenFile(file, { refresh_token: ims.issueRefreshToken(), saved_at: new Date(Date.now() - 60_000).toISOString() });
    let failWrites = true;
    const flaky = (p: pg.Pool): LoginPool => ({
      query: (text, values) => p.query(text, values),
      async connect() {
        const c = await p.connect();
        return {
          query: (text: string, values?: unknown[]) => (failWrites && text.startsWith('INSERT') ? Promise.reject(Object.assign(new Error('connection terminated'), { code: '57P01' })) : c.query(text, values)),
          release: (d?: boolean | Error) => c.release(d),
        };
      },
    });
    const node = startNode(t, url, imsUrl, file, 'node-flaky', KEY, flaky);
    await assert.rejects(node.tokens.getAccessToken(), (err: unknown) => isPostflowError(err, ERR_LOGIN_STORE_UNAVAILABLE));
    assert.equal(node.tokens.isLost(), false);
    const kept = (await readTokenFile(file))!;
    assert.ok(ims.issued.includes(kept.refresh_token) && kept.refresh_token.startsWith('rt-'), 'the rotated token is in the file');
    assert.equal(node.lines().filter((l) => l.event === 'fleet-login-kept-locally').length, 1);

    failWrites = false;
    assert.equal(ims.checkAccessToken(await node.tokens.getAccessToken()), 'ok');
    assert.equal(node.lost, 0);
    assert.deepEqual(answers.filter((a) => a.status !== 200), [], 'the kept token was live: no invalid_grant');
    assert.equal(node.lines().filter((l) => l.event === 'fleet-login-seeded').length, 1, 'seeded once: when the row took it');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    t.after(() => db.end());
    assert.equal((await db.query(`SELECT count(*)::int AS n FROM ${LOGIN_TABLE}`)).rows[0].n, 1);
  });
});
