process.env.TZ = 'Europe/Berlin';

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBandwidth } from '../../src/config/bandwidth.ts';
import { createShaper } from '../../src/shaping/shaper.ts';
import { TokenBucket } from '../../src/shaping/token-bucket.ts';

const MiB = 1024 * 1024;

test('token bucket: a burst goes at once, then each debit waits its share of the rate, in order', () => {
  const b = new TokenBucket(1 * MiB, 250);
  assert.equal(b.debit(128 * 1024, 0), 0, 'an idle bucket lets a quarter second of bytes go at once');
  assert.equal(b.debit(128 * 1024, 0), 0);
  // The burst is spent: each further 1 MiB costs a second, queued behind the earlier ones.
  assert.equal(b.debit(MiB, 0), 1000);
  assert.equal(b.debit(MiB, 0), 2000);
  assert.equal(b.debit(MiB, 3000), 750, 'time passing pays the debt, and a second idle earns the burst back');
  b.setRate(2 * MiB);
  assert.equal(b.debit(MiB, 10_000), 250, 'after idling: burst credit, then the new rate');
  assert.equal(b.sliceBytes(), Math.floor((2 * MiB) / 20));
  assert.throws(() => new TokenBucket(0), /rate must be > 0/);
});

test('shaper: no cap answers synchronously (the full-speed path); slices follow the tightest cap', () => {
  const off = createShaper({ global: parseBandwidth('off'), folders: [undefined] });
  assert.equal(off.take(10 * MiB, 0), undefined);
  assert.equal(off.sliceBytes(0), Infinity);
  const s = createShaper({ global: parseBandwidth('4M'), folders: [undefined, parseBandwidth('1M')] });
  assert.equal(s.sliceBytes(0), Math.floor((4 * MiB) / 20));
  assert.equal(s.sliceBytes(1), Math.floor(MiB / 20));
  assert.equal(s.sliceBytes(undefined), Math.floor((4 * MiB) / 20), 'a file of no folder: the global cap');
});

test('shaper: the folder cap makes its folder wait, in real time', async () => {
  const s = createShaper({ global: parseBandwidth('64M'), folders: [undefined, parseBandwidth('512K')] });
  const t0 = performance.now();
  const waits: Array<Promise<void> | undefined> = [];
  for (let i = 0; i < 4; i++) waits.push(s.take(128 * 1024, 1));
  assert.equal(s.take(128 * 1024, 0), undefined, 'folder 0 is not held up by folder 1\'s cap');
  assert.ok(waits.slice(2).every((w) => w instanceof Promise), 'past the burst, folder 1 waits');
  await Promise.all(waits);
  const ms = performance.now() - t0;
  // 512 KiB at 512 KiB/s less the 250 ms burst: 750 ms.
  assert.ok(ms > 650 && ms < 1500, `4 × 128 KiB at 512 KiB/s took ${ms.toFixed(0)} ms`);
});

test('shaper: the timetable switches at its time with an injected clock, also across a DST change', () => {
  let now = new Date('2025-03-30T17:59:30Z').getTime(); // Sunday 19:59:30 CEST, the day clocks went forward
  const logs: unknown[] = [];
  const logger = { info: (o: unknown) => logs.push(o) } as unknown as import('pino').Logger;
  const s = createShaper({ global: parseBandwidth('08:00,20M 20:00,2M'), folders: [parseBandwidth('Mon-08:00,1M Tue-00:00,off')], now: () => now, logger });
  assert.deepEqual(s.rates(), { global: 20 * MiB, folders: [null] });
  now += 29_000;
  assert.equal(s.refresh(), false, 'nothing changes before 20:00');
  now += 1_000;
  assert.equal(s.refresh(), true);
  assert.deepEqual(s.rates(), { global: 2 * MiB, folders: [null] });
  assert.equal(s.sliceBytes(0), Math.max(16 * 1024, Math.floor((2 * MiB) / 20)));
  // Monday 08:00 CEST is 06:00 UTC (it was 07:00 UTC a week earlier): both timetables switch then.
  now = new Date('2025-03-31T05:59:59Z').getTime();
  s.refresh();
  assert.deepEqual(s.rates(), { global: 2 * MiB, folders: [null] });
  now = new Date('2025-03-31T06:00:00Z').getTime();
  assert.equal(s.refresh(), true);
  assert.deepEqual(s.rates(), { global: 20 * MiB, folders: [MiB] });
  assert.ok(logs.some((l) => (l as { event?: string; global?: number }).event === 'bandwidth' && (l as { global: number }).global === 20 * MiB));
  s.setSchedules({ global: parseBandwidth('off'), folders: [undefined] });
  assert.equal(s.take(100 * MiB, 0), undefined, 'reloaded to off: no waiting at all');
});
