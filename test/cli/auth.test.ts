import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { challengeOf, readPasted } from '../../src/cli/auth-pkce.ts';
import { startEmulator, type Emulator } from '../doubles/frameio/emulator.ts';
import { BIN } from '../e2e/harness.ts';

interface Setup {
  emulator: Emulator;
  configFile: string;
  tokenFile: string;
}

async function setup(t: TestContext): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'postflow-auth-'));
  const emulator = await startEmulator();
  t.after(async () => {
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  });
  const stateDir = join(dir, 'state');
  await mkdir(stateDir, { mode: 0o700 });
  const tokenFile = join(stateDir, 'refresh-token');
  const configFile = join(dir, 'postflow.json');
  // A PKCE credential: no client secret, the code verifier proves the login.
  await writeFile(
    configFile,
    JSON.stringify({
      frameio: {
        apiUrl: emulator.apiUrl,
        accountId: emulator.accountId,
        imsTokenUrl: emulator.imsTokenUrl,
        imsAuthorizeUrl: emulator.imsAuthorizeUrl,
        clientId: emulator.clientId,
        refreshTokenFile: tokenFile,
      },
      stateDir,
    }),
    { mode: 0o600 },
  );
  return { emulator, configFile, tokenFile };
}

interface Cli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  waitStdout(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

function cli(t: TestContext, args: string[]): Cli {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
    for (const w of waiters) w();
  });
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exited.then(() => undefined);
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitStdout(re, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            cleanup();
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${re} in stdout: ${out} / stderr: ${err}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        void exited.then(() => {
          if (waiters.has(check)) {
            cleanup();
            reject(new Error(`exited before ${re}; stdout: ${out} / stderr: ${err}`));
          }
        });
        check();
      });
    },
  };
}

const SCOPES = 'openid profile email offline_access additional_info.roles';

test('auth login: the browser approves, the loopback redirect completes the PKCE login, the token is stored 0600; auth status says who and until when', async (t) => {
  const s = await setup(t);
  const login = cli(t, ['auth', 'login', '--port', '0', '--config', s.configFile]);
  const [, printed] = await login.waitStdout(/^\s+(http\S+)$/m);
  const authorize = new URL(printed!);
  assert.equal(authorize.origin + authorize.pathname, s.emulator.imsAuthorizeUrl);
  assert.equal(authorize.searchParams.get('scope'), SCOPES);
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  assert.match(authorize.searchParams.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);
  assert.match(authorize.searchParams.get('redirect_uri')!, /^http:\/\/127\.0\.0\.1:\d+\/callback$/);

  // What a browser does: the authorize endpoint redirects (auto-approval), the browser follows to the loopback.
  const approved = await fetch(authorize, { redirect: 'manual' });
  assert.equal(approved.status, 302);
  const back = await fetch(approved.headers.get('location')!);
  assert.equal(back.status, 200);
  assert.match(await back.text(), /logged in/);
  assert.equal(await login.exited, 0, login.stderr());
  assert.match(login.stdout(), /✔ logged in as Postflow Test <postflow-test@example\.com>; refresh token saved to .* \(mode 0600\)/);

  assert.equal((await stat(s.tokenFile)).mode & 0o777, 0o600);
  const record = JSON.parse(await readFile(s.tokenFile, 'utf8')) as { refresh_token: string; saved_at: string; scope: string };
  assert.match(record.refresh_token, /^rt-/);
  assert.equal(record.scope, SCOPES);

  const status = cli(t, ['auth', 'status', '--config', s.configFile]);
  assert.equal(await status.exited, 0, status.stderr());
  assert.match(status.stdout(), /✔ logged in to Frame.io as Postflow Test <postflow-test@example\.com>/);
  const until = /access token valid until (\S+) \((\d+) min\)/.exec(status.stdout());
  assert.ok(until, status.stdout());
  assert.ok(Math.abs(Date.parse(until[1]!) - (Date.now() + 3600_000)) < 60_000);
  assert.match(status.stdout(), new RegExp(`refresh token in ${s.tokenFile}, saved ${record.saved_at.slice(0, 16)}`));
  // status used the login, so the token rotated and was written back (the old one is dead at IMS now).
  const after = JSON.parse(await readFile(s.tokenFile, 'utf8')) as { refresh_token: string; scope: string };
  assert.notEqual(after.refresh_token, record.refresh_token);
  assert.equal(after.scope, SCOPES, 'fields written by login survive rotation');
});

test('auth login on a headless machine: the redirect URL pasted on stdin completes the login', async (t) => {
  const s = await setup(t);
  const login = cli(t, ['auth', 'login', '--port', '0', '--config', s.configFile]);
  const [, printed] = await login.waitStdout(/^\s+(http\S+)$/m);
  // Approved in a browser elsewhere: it lands on 127.0.0.1 of *that* machine, so nothing reaches ours.
  const approved = await fetch(printed!, { redirect: 'manual' });
  const landed = approved.headers.get('location')!;
  login.child.stdin!.write(`\n${landed}\n`);
  assert.equal(await login.exited, 0, login.stderr());
  assert.match(JSON.parse(await readFile(s.tokenFile, 'utf8')).refresh_token, /^rt-/);
});

test('auth login refuses a redirect from another login (state mismatch) and stores nothing', async (t) => {
  const s = await setup(t);
  const login = cli(t, ['auth', 'login', '--port', '0', '--config', s.configFile]);
  const [, printed] = await login.waitStdout(/^\s+(http\S+)$/m);
  const forged = new URL(printed!);
  forged.searchParams.set('state', 'someone-else');
  const approved = await fetch(forged, { redirect: 'manual' });
  const back = await fetch(approved.headers.get('location')!);
  assert.equal(back.status, 400);
  assert.equal(await login.exited, 1);
  assert.match(login.stderr(), /PF_ERR_CLI_AUTH_LOGIN_FAILED: login did not complete \(the redirect's state does not match/);
  await assert.rejects(stat(s.tokenFile), /ENOENT/);
});

test('auth status without a login, and with a revoked one, exits 1 and says to log in', async (t) => {
  const s = await setup(t);
  const none = cli(t, ['auth', 'status', '--config', s.configFile]);
  assert.equal(await none.exited, 1);
  assert.match(none.stdout(), /✖ not logged in: no refresh token in .* — run `postflow auth login`/);

  await writeFile(s.tokenFile, JSON.stringify({ refresh_token: s.emulator.issueRefreshToken() }), { mode: 0o600 });
  s.emulator.setFaults({ revokeRefreshTokens: true });
  const revoked = cli(t, ['auth', 'status', '--config', s.configFile]);
  assert.equal(await revoked.exited, 1);
  assert.match(revoked.stdout(), /✖ the login expired or was revoked: PF_ERR_FRAMEIO_AUTH_REVOKED/);
  assert.match(revoked.stdout(), /run `postflow auth login`/);
});

test('pasted text: a redirect URL is checked like a redirect, a bare code is taken as is', () => {
  assert.deepEqual(readPasted('http://127.0.0.1:8765/callback?code=abc&state=s1', 's1'), { code: 'abc' });
  assert.deepEqual(readPasted('  code-xyz  ', 's1'), { code: 'code-xyz' });
  assert.equal(readPasted('   ', 's1'), undefined);
  assert.match((readPasted('http://127.0.0.1:8765/callback?code=abc&state=other', 's1') as { error: string }).error, /state/);
  assert.match((readPasted('http://127.0.0.1:8765/callback?error=access_denied', 's1') as { error: string }).error, /access_denied/);
});

test('the S256 challenge is base64url(sha256(verifier)) without padding, as WebCrypto computes it', async () => {
  const verifier = 'a-verifier_with.all~allowed-chars0123456789abcdefghijklmnop';
  const digest = Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const expected = digest.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  assert.equal(challengeOf(verifier), expected);
  assert.equal(challengeOf(verifier).length, 43);
});
