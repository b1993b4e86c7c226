/** The pure parts of the fleet login: sealing with store.secretKey, and when a node's token file wins. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isPostflowError } from '../../src/errors.ts';
import { ERR_LOGIN_KEY_INVALID, ERR_LOGIN_UNSEALABLE } from '../../src/frameio/errors.ts';
import { LOGIN_AAD, fileTime, fileWins, openLogin, sealLogin, tokenHash } from '../../src/frameio/fleet-login.ts';
import { open, parseSecretKey, seal } from '../../src/frameio/seal.ts';

const KEY = parseSecretKey('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff');
const OTHER = parseSecretKey(randomBytes(32).toString('hex'));

test('seal/open round-trips; every seal has its own IV, and the token is nowhere in the bytes', () => {
  const secret = 'rt-' + randomBytes(24).toString('base64url');
  const a = seal(KEY, secret, LOGIN_AAD);
  const b = seal(KEY, secret, LOGIN_AAD);
  assert.equal(open(KEY, a, LOGIN_AAD).toString(), secret);
  assert.notDeepEqual(a, b, 'a random IV per write');
  assert.notDeepEqual(a.subarray(1, 13), b.subarray(1, 13));
  for (const enc of ['utf8', 'base64', 'base64url', 'hex'] as const) {
    assert.ok(!a.toString(enc).includes(secret.slice(3)), `not readable as ${enc}`);
  }
  assert.equal(a.length, 1 + 12 + 16 + Buffer.byteLength(secret));
});

test('a wrong key, another purpose or a flipped byte is a typed error naming store.secretKey, not a crash', () => {
  const sealed = seal(KEY, 'hello', LOGIN_AAD);
  const refusals: [string, () => unknown][] = [
    ['wrong key', () => open(OTHER, sealed, LOGIN_AAD)],
    ['other purpose', () => open(KEY, sealed, 'postflow:elsewhere:v1')],
    ['flipped ciphertext byte', () => open(KEY, Buffer.concat([sealed.subarray(0, -1), Buffer.from([sealed.at(-1)! ^ 1])]), LOGIN_AAD)],
    ['flipped tag byte', () => open(KEY, Buffer.from(sealed.map((v, i) => (i === 20 ? v ^ 1 : v))), LOGIN_AAD)],
    ['truncated', () => open(KEY, sealed.subarray(0, 10), LOGIN_AAD)],
    ['unknown version', () => open(KEY, Buffer.from(sealed.map((v, i) => (i === 0 ? 9 : v))), LOGIN_AAD)],
  ];
  for (const [why, fn] of refusals) {
    assert.throws(fn, (err: unknown) => {
      assert.ok(isPostflowError(err, ERR_LOGIN_UNSEALABLE), `${why}: ${String(err)}`);
      assert.match(err.message, /store\.secretKey/);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
  }
});

test('store.secretKey must be 64 hex digits', () => {
  assert.equal(parseSecretKey('AB'.repeat(32)).length, 32);
  for (const bad of ['', 'ab', 'zz'.repeat(32), 'ab'.repeat(33)]) {
    assert.throws(() => parseSecretKey(bad), (err: unknown) => isPostflowError(err, ERR_LOGIN_KEY_INVALID) && /openssl rand -hex 32/.test(err.message));
  }
});

test('sealed login: round trip, and a sealed blob that is not a login is refused', () => {
  const login = { refresh_token: 'rt-1', access_token: 'at-1', seed_hash: tokenHash('rt-0') };
  assert.deepEqual(openLogin(KEY, sealLogin(KEY, login)), login);
  assert.throws(() => openLogin(KEY, seal(KEY, '{"refresh_token":"x"}', LOGIN_AAD)), (err: unknown) => isPostflowError(err, ERR_LOGIN_UNSEALABLE));
  assert.throws(() => openLogin(OTHER, sealLogin(KEY, login)), (err: unknown) => isPostflowError(err, ERR_LOGIN_UNSEALABLE));
});

test('file wins only when newer than the seed AND holding another token', () => {
  const row = { seedHash: tokenHash('rt-seed'), seedMs: 1000, currentHash: tokenHash('rt-now') };
  assert.equal(fileWins(undefined, row), false);
  assert.equal(fileWins({ hash: tokenHash('rt-new'), timeMs: 2000 }, row), true, 'a new auth login');
  assert.equal(fileWins({ hash: tokenHash('rt-seed'), timeMs: 9000 }, row), false, 'a later copy of the seeding file');
  assert.equal(fileWins({ hash: tokenHash('rt-now'), timeMs: 9000 }, row), false, 'the token the row holds');
  assert.equal(fileWins({ hash: tokenHash('rt-old'), timeMs: 999 }, row), false, 'an older login');
  assert.equal(fileWins({ hash: tokenHash('rt-old'), timeMs: 1000 }, row), false, 'same instant: the row stays');
});

test('file time: saved_at (copies keep it) over mtime; mtime when saved_at is missing or garbled', () => {
  assert.equal(fileTime({ refresh_token: 'x', saved_at: '2026-01-01T00:00:00.000Z' }, 5), Date.parse('2026-01-01T00:00:00.000Z'));
  assert.equal(fileTime({ refresh_token: 'x' }, 5), 5);
  assert.equal(fileTime({ refresh_token: 'x', saved_at: 'yesterday' }, 5), 5);
});
