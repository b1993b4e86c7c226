import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactText, redactUrl, redactUrlsIn, SecretSet } from '../../src/log/redact.ts';

const TOKEN = 'q3Xk9vT2mLpR8sWz4YbN1c'; // 22 base64url characters = 128 bits

test('the token segment of a public file URL is replaced, host and name stay', () => {
  assert.equal(redactUrl(`https://calm-words.trycloudflare.com/${TOKEN}/cut%20v2.mov`), 'https://calm-words.trycloudflare.com/<redacted>/cut%20v2.mov');
  assert.equal(redactUrl(`http://127.0.0.1:4312/${'a'.repeat(32)}/x.mxf`), 'http://127.0.0.1:4312/<redacted>/x.mxf');
});

test('API URLs keep their short segments; queries and user:password are cut', () => {
  assert.equal(redactUrl('https://api.frame.io/v4/accounts/abc/files/def/status'), 'https://api.frame.io/v4/accounts/abc/files/def/status');
  assert.equal(redactUrl('https://s3.example.com/bucket/part1?X-Amz-Signature=deadbeef&X-Amz-Expires=900'), 'https://s3.example.com/bucket/part1?<redacted>');
  assert.equal(redactUrl('https://user:hunter2@host.example/a'), 'https://<redacted>@host.example/a');
  assert.equal(redactUrl('not a url'), 'not a url');
});

test('URLs inside free text are redacted, sentence punctuation kept', () => {
  assert.equal(
    redactUrlsIn(`pull failed for https://h.example/${TOKEN}/a.mov. retrying (https://h.example/${TOKEN}/b.mov)`),
    'pull failed for https://h.example/<redacted>/a.mov. retrying (https://h.example/<redacted>/b.mov)',
  );
});

test('redactText removes secrets in plain, URL-encoded and JSON-escaped form', () => {
  const secret = 'p@ss/word"+x';
  const text = `body=client_secret=${encodeURIComponent(secret)} json={"s":${JSON.stringify(secret)}} raw ${secret}`;
  const out = redactText(text, [secret, '']);
  assert.ok(!out.includes(secret) && !out.includes(encodeURIComponent(secret)) && !out.includes(JSON.stringify(secret).slice(1, -1)), out);
  assert.equal(out.split('[redacted]').length - 1, 3);
});

test('SecretSet scrubs what it was given, ignores values too short to be secrets', () => {
  const s = new SecretSet();
  s.add('abc', undefined, null, '', 'refresh-token-value-1');
  assert.equal(s.size, 1);
  assert.equal(s.scrub('abc refresh-token-value-1 abc'), 'abc [redacted] abc');
  s.add('refresh-token-value-1-rotated');
  assert.equal(s.scrub('new refresh-token-value-1-rotated'), 'new [redacted]', 'the longer secret is replaced whole');
});
