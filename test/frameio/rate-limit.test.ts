import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PUBLISHED_LIMITS, RateLimiter, parseRateLimitHeaders, parseRetryAfter } from '../../src/frameio/rate-limit.ts';

function fakeClock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
    sleep: async (ms: number) => {
      t += ms;
    },
  };
}

test('published limits are seeded for the operations postflow calls', () => {
  assert.deepEqual(PUBLISHED_LIMITS['files.create_remote_upload'], { limit: 5, windowMs: 1000 });
  assert.deepEqual(PUBLISHED_LIMITS['files.show_file_upload_status'], { limit: 5, windowMs: 1000 });
  assert.deepEqual(PUBLISHED_LIMITS['files.show'], { limit: 10, windowMs: 1000 });
  assert.deepEqual(PUBLISHED_LIMITS['folders.create'], { limit: 3, windowMs: 1000 });
  assert.deepEqual(PUBLISHED_LIMITS['folders.index'], { limit: 100, windowMs: 60_000 });
  assert.deepEqual(PUBLISHED_LIMITS['version_stacks.create'], { limit: 10, windowMs: 60_000 });
  assert.deepEqual(PUBLISHED_LIMITS['files.delete'], { limit: 100, windowMs: 60_000 });
});

test('an operation bucket allows its burst, then refills gradually', () => {
  const clock = fakeClock();
  const rl = new RateLimiter({ maxRequestsPerSecond: Infinity, now: clock.now });
  for (let i = 0; i < 3; i++) assert.equal(rl.reserve('folders.create'), 0);
  const wait = rl.reserve('folders.create');
  assert.equal(wait, 334, 'a third of a second refills one folders.create token');
  clock.advance(333);
  assert.ok(rl.reserve('folders.create') > 0, 'not yet refilled');
  clock.advance(1);
  assert.equal(rl.reserve('folders.create'), 0);
  // Other operations have their own bucket.
  assert.equal(rl.reserve('files.show'), 0);
});

test('per-minute limits pace at limit/window', () => {
  const clock = fakeClock();
  const rl = new RateLimiter({ maxRequestsPerSecond: 100, now: clock.now, guardMs: 0 });
  for (let i = 0; i < 10; i++) {
    assert.equal(rl.reserve('version_stacks.create'), 0);
    clock.advance(101); // stay under the global cap
  }
  const wait = rl.reserve('version_stacks.create');
  assert.ok(wait > 4000 && wait <= 6000, `10/min refills one token every 6 s, minus what passed; got ${wait}`);
});

test('the global cap is never exceeded in any sliding window, whatever the mix', async () => {
  const clock = fakeClock();
  const rl = new RateLimiter({ maxRequestsPerSecond: 4, now: clock.now, sleep: clock.sleep, guardMs: 0 });
  const grants: number[] = [];
  const ops = ['files.show', 'files.show_file_upload_status', 'unknown.op', 'files.delete'];
  for (let i = 0; i < 40; i++) {
    await rl.acquire(ops[i % ops.length]!);
    grants.push(clock.now());
  }
  for (let i = 0; i + 4 < grants.length; i++) {
    assert.ok(grants[i + 4]! - grants[i]! >= 1000, `5 grants within ${grants[i + 4]! - grants[i]!} ms at ${i}`);
  }
  // ...and it is a cap, not a crawl: 40 calls at 4/s take 39 intervals of 250 ms.
  assert.equal(grants.at(-1)! - grants[0]!, 39 * 250);
});

test('the global cap spaces calls evenly (no burst), widened by the guard', () => {
  const clock = fakeClock();
  const rl = new RateLimiter({ maxRequestsPerSecond: 2, now: clock.now, guardMs: 50 });
  assert.equal(rl.reserve('x'), 0);
  assert.equal(rl.reserve('y'), 525, 'another operation still waits its turn');
  clock.advance(525);
  assert.equal(rl.reserve('y'), 0);
  // After idle time there is no catch-up burst either.
  clock.advance(10_000);
  assert.equal(rl.reserve('x'), 0);
  assert.equal(rl.reserve('x'), 525);
});

test('headers correct the bucket: remaining lowers tokens, limit/window replace the seed', () => {
  const clock = fakeClock();
  const rl = new RateLimiter({ maxRequestsPerSecond: Infinity, now: clock.now });
  assert.equal(rl.reserve('files.show'), 0);
  rl.observe('files.show', { limit: 10, remaining: 0, windowMs: 1000 });
  assert.equal(rl.snapshot('files.show')!.tokens, 0, 'another process spent the budget');
  assert.equal(rl.reserve('files.show'), 100);
  // A remaining above our count never raises it.
  rl.observe('files.show', { remaining: 9 });
  assert.ok(rl.snapshot('files.show')!.tokens < 1);
  // A new limit from the server replaces the published one.
  rl.observe('files.show', { limit: 2, windowMs: 1000, remaining: 2 });
  assert.equal(rl.snapshot('files.show')!.capacity, 2);
  assert.equal(rl.snapshot('files.show')!.ratePerSecond, 2);
  // An operation we had no seed for gets a bucket from its headers.
  assert.equal(rl.snapshot('comments.create'), undefined);
  rl.observe('comments.create', { limit: 100, remaining: 0, windowMs: 60_000 });
  assert.equal(rl.reserve('comments.create'), 600);
});

test('penalize blocks the operation for the Retry-After time, then allows one call and refills from there', () => {
  const clock = fakeClock();
  const rl = new RateLimiter({ maxRequestsPerSecond: Infinity, now: clock.now });
  // A real over-limit 429 says remaining 0 (observe), then Retry-After blocks (penalize).
  rl.observe('files.show', { limit: 10, remaining: 0, windowMs: 1000 });
  rl.penalize('files.show', 2000);
  assert.equal(rl.reserve('files.show'), 2000);
  clock.advance(1999);
  assert.equal(rl.reserve('files.show'), 1);
  clock.advance(1);
  assert.equal(rl.reserve('files.show'), 0, 'Retry-After promised one slot');
  assert.equal(rl.reserve('files.show'), 100, 'then the bucket refills at its rate, not in a burst');
  clock.advance(100);
  assert.equal(rl.reserve('files.show'), 0);
  // A 429 whose headers still show budget only blocks for its Retry-After.
  rl.observe('files.list', { limit: 5, remaining: 4, windowMs: 1000 });
  rl.penalize('files.list', 1000);
  assert.equal(rl.reserve('files.list'), 1000);
  clock.advance(1000);
  for (let i = 0; i < 4; i++) assert.equal(rl.reserve('files.list'), 0);
  // Unknown operations are blocked too.
  rl.penalize('mystery.op', 500);
  assert.equal(rl.reserve('mystery.op'), 500);
});

test('acquire rejects when its signal aborts while waiting', async () => {
  const rl = new RateLimiter({ maxRequestsPerSecond: 1 });
  await rl.acquire('a');
  const ac = new AbortController();
  const pending = rl.acquire('a', ac.signal);
  setTimeout(() => ac.abort(new Error('stop')), 20);
  await assert.rejects(pending, /stop/);
});

test('header and Retry-After parsing', () => {
  const h = new Headers({ 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '3', 'x-ratelimit-window': '1000' });
  assert.deepEqual(parseRateLimitHeaders(h), { limit: 5, remaining: 3, windowMs: 1000 });
  assert.deepEqual(parseRateLimitHeaders(new Headers({ 'x-ratelimit-limit': 'lots' })), {});
  assert.equal(parseRetryAfter('2', 0), 2000);
  assert.equal(parseRetryAfter('0.5', 0), 500);
  assert.equal(parseRetryAfter(null, 0), undefined);
  assert.equal(parseRetryAfter('soon', 0), undefined);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', now), 3000);
});

test('rejects a nonsensical global cap; a cap below 1/s widens the window', () => {
  assert.throws(() => new RateLimiter({ maxRequestsPerSecond: 0 }), RangeError);
  const clock = fakeClock();
  const rl = new RateLimiter({ maxRequestsPerSecond: 0.5, now: clock.now, guardMs: 0 });
  assert.equal(rl.reserve('x'), 0);
  assert.equal(rl.reserve('x'), 2000);
  const rl2 = new RateLimiter({ maxRequestsPerSecond: 2.5, now: clock.now, guardMs: 0 });
  assert.equal(rl2.reserve('x'), 0);
  assert.equal(rl2.reserve('x'), 500, '2.5/s rounds down to 2/s');
});
