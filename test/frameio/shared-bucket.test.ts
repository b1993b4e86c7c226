import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimiter } from '../../src/frameio/rate-limit.ts';
import {
  adjust,
  adjustedSeed,
  adjustmentFromHeaders,
  mergeAdjustments,
  refill,
  seedBucket,
  take,
  type SharedBucket,
} from '../../src/frameio/shared-bucket.ts';

const fivePerSecond = { limit: 5, windowMs: 1000 };

test('a fresh bucket grants its capacity at once, then one call per 1/rate', () => {
  let b = seedBucket(fivePerSecond, 1000);
  for (let i = 0; i < 5; i++) {
    const r = take(b, 1000);
    assert.equal(r.waitMs, 0, `call ${i + 1} of the burst`);
    b = r.bucket;
  }
  const sixth = take(b, 1000);
  assert.equal(sixth.waitMs, 200);
  assert.equal(sixth.bucket.tokens, 0, 'a refused call takes nothing');
  const later = take(sixth.bucket, 1100);
  assert.equal(later.waitMs, 100, 'half a token refilled after 100 ms');
  assert.equal(take(later.bucket, 1200).waitMs, 0);
});

test('refill is capped at capacity, and a clock that steps back adds nothing', () => {
  const b: SharedBucket = { ...seedBucket(fivePerSecond, 0), tokens: 1 };
  assert.equal(refill(b, 10_000).tokens, 5);
  const back = refill(b, -500);
  assert.equal(back.tokens, 1);
  assert.equal(back.updatedMs, 0, 'time is never moved backwards');
});

test('a 429 blocks until its end, nothing refills meanwhile, and one call may go when it ends', () => {
  let b = seedBucket(fivePerSecond, 0);
  b = adjust(b, { remaining: 0, blockMs: 3000 }, 0);
  assert.equal(take(b, 1000).waitMs, 2000);
  assert.equal(refill(b, 2999).tokens, 0, 'no refill while blocked');
  const atEnd = take(b, 3000);
  assert.equal(atEnd.waitMs, 0, 'Retry-After names when the server takes the next call');
  assert.equal(atEnd.bucket.tokens, 0);
  assert.equal(take(atEnd.bucket, 3100).waitMs, 100, 'then the normal pace resumes from the block end');
  // A shorter block later does not shorten a longer one.
  const longer = adjust(adjust(b, { blockMs: 100 }, 500), { blockMs: 5000 }, 600);
  assert.equal(longer.blockedUntilMs, 5600);
  assert.equal(adjust(longer, { blockMs: 10 }, 700).blockedUntilMs, 5600);
});

test('answers lower the tokens but never raise them; a new limit and window replace the old', () => {
  const b = { ...seedBucket(fivePerSecond, 0), tokens: 2 };
  assert.equal(adjust(b, { remaining: 4 }, 0).tokens, 2);
  assert.equal(adjust(b, { remaining: 0 }, 0).tokens, 0);
  const changed = adjust({ ...b, tokens: 5 }, { limit: { limit: 3, windowMs: 1000 } }, 0);
  assert.deepEqual([changed.capacity, changed.refillPerMs, changed.tokens], [3, 0.003, 3]);
  const seeded = adjustedSeed(fivePerSecond, { limit: { limit: 10, windowMs: 60_000 }, remaining: 7, blockMs: 50 }, 100);
  assert.deepEqual(seeded, { tokens: 7, capacity: 10, refillPerMs: 10 / 60_000, updatedMs: 100, blockedUntilMs: 150 });
  assert.equal(adjustedSeed(fivePerSecond, {}, 0).blockedUntilMs, 0);
});

test('queued adjustments merge: later limit, lowest remaining, longest block', () => {
  const m = mergeAdjustments(
    { limit: { limit: 5, windowMs: 1000 }, remaining: 1, blockMs: 900 },
    { limit: { limit: 3, windowMs: 1000 }, remaining: 4, blockMs: 100 },
  );
  assert.deepEqual(m, { limit: { limit: 3, windowMs: 1000 }, remaining: 1, blockMs: 900 });
  assert.deepEqual(mergeAdjustments({}, { remaining: 2 }), { remaining: 2 });
  assert.deepEqual(mergeAdjustments({}, {}), {});
});

test('headers: limit and window count only together and sane', () => {
  assert.deepEqual(adjustmentFromHeaders({ limit: 5, windowMs: 1000, remaining: 3 }), { limit: { limit: 5, windowMs: 1000 }, remaining: 3 });
  assert.deepEqual(adjustmentFromHeaders({ limit: 5 }), {});
  assert.deepEqual(adjustmentFromHeaders({ limit: 0, windowMs: 1000, remaining: 0 }), { remaining: 0 });
  assert.deepEqual(adjustmentFromHeaders({}), {});
});

test('one node alone: the shared bucket grants exactly when the per-node RateLimiter bucket does', () => {
  let now = 0;
  // A global cap far above the operation's limit, so only the per-operation bucket decides.
  const local = new RateLimiter({ maxRequestsPerSecond: 100_000, guardMs: 0, now: () => now });
  let shared = seedBucket(fivePerSecond, 0);
  const steps: [number, 'take' | 'block' | 'remaining'][] = [];
  // Deterministic mixed script: bursts, pauses, a 429 and a low remaining.
  for (let i = 0; i < 60; i++) steps.push([i < 10 ? 1 : 37, i === 20 ? 'block' : i === 40 ? 'remaining' : 'take']);
  for (const [dt, kind] of steps) {
    now += dt;
    if (kind === 'block') {
      local.penalize('files.show_file_upload_status', 700);
      shared = adjust(shared, { blockMs: 700 }, now);
    } else if (kind === 'remaining') {
      local.observe('files.show_file_upload_status', { remaining: 0 });
      shared = adjust(shared, { remaining: 0 }, now);
    } else {
      const wait = local.reserve('files.show_file_upload_status');
      const r = take(shared, now);
      shared = r.bucket;
      assert.equal(r.waitMs === 0, wait === 0, `grant decision at t=${now}`);
      if (wait > 0) assert.equal(Math.max(1, Math.ceil(r.waitMs)), wait, `wait at t=${now}`);
    }
  }
});
