import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newToken, TOKEN_PATTERN, TokenRegistry } from '../../src/server/tokens.ts';
import { hostOf, parseTarget } from '../../src/server/request-target.ts';

test('tokens are 256-bit base64url and distinct', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const t = newToken();
    assert.match(t, TOKEN_PATTERN);
    assert.equal(Buffer.from(t, 'base64url').length, 32);
    seen.add(t);
  }
  assert.equal(seen.size, 1000);
});

test('lookup finds issued tokens only; revoke removes them', () => {
  const reg = new TokenRegistry<string>({ maxLifetimeMs: 1000, now: () => 0 });
  const { token } = reg.issue('job-1');
  assert.equal(reg.lookup(token), 'job-1');
  const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
  assert.equal(reg.lookup(flipped), undefined);
  assert.equal(reg.lookup(''), undefined);
  assert.equal(reg.revoke(token), true);
  assert.equal(reg.lookup(token), undefined);
  assert.equal(reg.size, 0);
});

test('tokens expire after the maximum lifetime (injected clock), on lookup and on sweep', () => {
  let now = 1_000;
  const expired: string[] = [];
  const reg = new TokenRegistry<string>({ maxLifetimeMs: 500, now: () => now, onExpire: (v) => expired.push(v) });
  const a = reg.issue('a');
  reg.issue('b');
  assert.equal(a.expiresAt, 1_500);
  now = 1_499;
  assert.equal(reg.lookup(a.token), 'a');
  now = 1_500;
  assert.equal(reg.lookup(a.token), undefined);
  assert.deepEqual(expired, ['a']);
  assert.equal(reg.sweep(), 1);
  assert.deepEqual(expired, ['a', 'b']);
  assert.equal(reg.size, 0);
});

test('request targets: only /<token>/<one name segment>', () => {
  const t = newToken();
  assert.deepEqual(parseTarget(`/${t}/cut.mov`), { token: t, name: 'cut.mov' });
  assert.deepEqual(parseTarget(`/${t}/a%20b%C3%A9.mov?x=1`), { token: t, name: 'a bé.mov' });
  for (const bad of [
    undefined, '', '/', `/${t}`, `/${t}/`, `//${t}/a`, `/${t}/a/b`, `/${t}/..`, `/${t}/%2e%2e`, `/${t}/a%2Fb`,
    `/${t}/a%5Cb`, `/${t}/a%00b`, `/${t}/%zz`, `/${t}x/a`, `/${t.slice(1)}/a`, `http://h/${t}/a`, '*',
    `/${t}/${'a'.repeat(3000)}`, `/../${t}/a`,
  ]) {
    assert.equal(parseTarget(bad), undefined, String(bad));
  }
});

test('Host header: names, IPs and ports pass; userinfo, paths, spaces and bad ports do not', () => {
  assert.equal(hostOf('abc-def.trycloudflare.com'), 'abc-def.trycloudflare.com');
  assert.equal(hostOf('127.0.0.1:8080'), '127.0.0.1');
  assert.equal(hostOf('[::1]:80'), '[::1]');
  assert.equal(hostOf('Example.COM'), 'example.com');
  for (const bad of [undefined, '', 'a b', 'user@host', 'host/path', 'host:99999', 'host:', '-bad.com', 'a..b', 'h\u0000', '[::1', 'x'.repeat(300)]) {
    assert.equal(hostOf(bad), undefined, String(bad));
  }
});
