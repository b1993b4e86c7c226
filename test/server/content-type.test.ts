import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentDisposition, contentTypeFor } from '../../src/server/content-type.ts';

test('media types by extension, case-insensitive, with a safe default', () => {
  assert.equal(contentTypeFor('cut.mov'), 'video/quicktime');
  assert.equal(contentTypeFor('CUT.MOV'), 'video/quicktime');
  assert.equal(contentTypeFor('a.mp4'), 'video/mp4');
  assert.equal(contentTypeFor('a.mxf'), 'application/mxf');
  assert.equal(contentTypeFor('a.wav'), 'audio/wav');
  assert.equal(contentTypeFor('a.aiff'), 'audio/aiff');
  assert.equal(contentTypeFor('a.aif'), 'audio/aiff');
  assert.equal(contentTypeFor('a.exr'), 'image/x-exr');
  assert.equal(contentTypeFor('a.pdf'), 'application/pdf');
  assert.equal(contentTypeFor('a.r3d'), 'application/octet-stream');
  assert.equal(contentTypeFor('noext'), 'application/octet-stream');
  assert.equal(contentTypeFor('a.weird'), 'application/octet-stream');
});

function parseDisposition(value: string): { ascii: string; utf8: string } {
  const m = /^attachment; filename="([^"\\]*)"; filename\*=UTF-8''([A-Za-z0-9%!#$&+^_`{}|~.-]*)$/.exec(value);
  assert.ok(m, `not a well-formed disposition: ${value}`);
  return { ascii: m[1] as string, utf8: decodeURIComponent(m[2] as string) };
}

test('plain names round-trip', () => {
  const d = parseDisposition(contentDisposition('reel 2 cut.mov'));
  assert.equal(d.ascii, 'reel 2 cut.mov');
  assert.equal(d.utf8, 'reel 2 cut.mov');
});

test('quotes and backslashes cannot close the quoted string', () => {
  const name = 'say "hi"\\there.mov';
  const value = contentDisposition(name);
  const d = parseDisposition(value);
  assert.equal(d.ascii, 'say _hi__there.mov');
  assert.equal(d.utf8, name);
});

test('newlines and control characters never reach the header', () => {
  const value = contentDisposition('a\r\nSet-Cookie: x=1\u0000\u0007.mov');
  assert.doesNotMatch(value, /[\u0000-\u001f\u007f]/);
  const d = parseDisposition(value);
  assert.equal(d.utf8, 'aSet-Cookie: x=1.mov');
});

test('non-ASCII names keep their exact form in filename* and an ASCII fallback', () => {
  const name = 'Épisode 1 – 日本語 🎬.mov';
  const value = contentDisposition(name);
  assert.match(value, /^[\x20-\x7e]+$/);
  const d = parseDisposition(value);
  assert.equal(d.utf8, name);
  assert.equal(d.ascii, '_pisode 1 _ ___ _.mov');
});

test("apostrophes and parentheses are percent-encoded in filename*", () => {
  const value = contentDisposition("director's cut (v2)*.mov");
  assert.match(value, /filename\*=UTF-8''director%27s%20cut%20%28v2%29%2A\.mov$/);
});
