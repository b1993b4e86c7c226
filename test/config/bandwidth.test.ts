// The timetable is local wall-clock time: pin the zone so the daylight-saving cases mean something.
process.env.TZ = 'Europe/Berlin';

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bandwidthProblem, formatRate, nextChange, parseBandwidth, parseRate, rateAt } from '../../src/config/bandwidth.ts';

const MiB = 1024 * 1024;

test('rates use rclone units: bare number KiB, K/M/G 1024-based, 0 and off mean no cap', () => {
  assert.equal(parseRate('50M'), 50 * MiB);
  assert.equal(parseRate('1.5G'), 1.5 * 1024 * MiB);
  assert.equal(parseRate('800K'), 800 * 1024);
  assert.equal(parseRate('666'), 666 * 1024);
  assert.equal(parseRate('512B'), 512);
  assert.equal(parseRate('10MiB'), 10 * MiB);
  assert.equal(parseRate('10M:100M'), 10 * MiB, 'UP:DOWN: the upload half');
  assert.equal(parseRate('off'), null);
  assert.equal(parseRate('0'), null);
  assert.throws(() => parseRate('fast'), /"fast" is not a rate/);
  assert.throws(() => parseRate('10X'), /not a rate/);
});

test('timetables parse; problems name the slot at fault', () => {
  const tt = parseBandwidth('Mon-08:00,10M Sat-00:00,off');
  assert.deepEqual(tt.slots, [
    { day: 1, minute: 480, rate: 10 * MiB },
    { day: 6, minute: 0, rate: null },
  ]);
  assert.equal(parseBandwidth('08:00,20M;19:00,off').slots.length, 2, 'semicolons separate too, as in rclone');
  assert.match(bandwidthProblem('25:00,1M') ?? '', /"25:00" is not a time/);
  assert.match(bandwidthProblem('Mon-08:00,10M Fri-9:00,bad') ?? '', /slot "Fri-9:00,bad": "bad" is not a rate/);
  assert.match(bandwidthProblem('Xyz-08:00,1M') ?? '', /"Xyz" is not a day/);
  assert.match(bandwidthProblem(12) ?? '', /not a string/);
  assert.equal(bandwidthProblem('50M'), undefined);
});

test('rate in force follows the local time of day, wrapping past midnight', () => {
  const tt = parseBandwidth('08:00,20M 19:00,off');
  assert.equal(rateAt(tt, new Date(2025, 5, 10, 7, 59)), null, 'before 08:00: yesterday 19:00 slot');
  assert.equal(rateAt(tt, new Date(2025, 5, 10, 8, 0)), 20 * MiB);
  assert.equal(rateAt(tt, new Date(2025, 5, 10, 18, 59)), 20 * MiB);
  assert.equal(rateAt(tt, new Date(2025, 5, 10, 19, 0)), null);
  assert.equal(nextChange(tt, new Date(2025, 5, 10, 12, 0))?.getTime(), new Date(2025, 5, 10, 19, 0).getTime());
  assert.equal(nextChange(tt, new Date(2025, 5, 10, 20, 0))?.getTime(), new Date(2025, 5, 11, 8, 0).getTime());
  assert.equal(nextChange(parseBandwidth('10M'), new Date()), undefined, 'a plain rate never changes');
});

test('weekday slots hold over the week until the next one', () => {
  const tt = parseBandwidth('Mon-08:00,10M Sat-00:00,off');
  // 2025-06-09 is a Monday.
  assert.equal(rateAt(tt, new Date(2025, 5, 9, 7, 0)), null, 'Monday before 08:00: still the weekend slot');
  assert.equal(rateAt(tt, new Date(2025, 5, 11, 3, 0)), 10 * MiB, 'Wednesday night');
  assert.equal(rateAt(tt, new Date(2025, 5, 14, 0, 0)), null, 'Saturday');
  assert.equal(nextChange(tt, new Date(2025, 5, 14, 12, 0))?.getTime(), new Date(2025, 5, 16, 8, 0).getTime());
});

test('across daylight-saving changes the switch stays at the wall time (Europe/Berlin)', () => {
  const tt = parseBandwidth('08:00,20M 19:00,off');
  // Spring forward on Sunday 2025-03-30: 08:00 is 07:00 UTC on Saturday and 06:00 UTC on Monday.
  assert.equal(rateAt(tt, new Date('2025-03-29T06:59:00Z')), null);
  assert.equal(rateAt(tt, new Date('2025-03-29T07:00:00Z')), 20 * MiB);
  assert.equal(rateAt(tt, new Date('2025-03-31T05:59:00Z')), null);
  assert.equal(rateAt(tt, new Date('2025-03-31T06:00:00Z')), 20 * MiB);
  // From Sunday evening the next switch is 08:00 CEST Monday: 10 h later, not the 11 h a fixed offset gives.
  assert.equal(nextChange(tt, new Date('2025-03-30T18:00:00Z'))?.toISOString(), '2025-03-31T06:00:00.000Z');
  // Fall back on Sunday 2025-10-26: 19:00 is 17:00 UTC on Saturday and 18:00 UTC on Sunday.
  assert.equal(nextChange(tt, new Date('2025-10-25T12:00:00Z'))?.toISOString(), '2025-10-25T17:00:00.000Z');
  assert.equal(nextChange(tt, new Date('2025-10-26T12:00:00Z'))?.toISOString(), '2025-10-26T18:00:00.000Z');
  assert.equal(rateAt(tt, new Date('2025-10-26T17:30:00Z')), 20 * MiB, '18:30 CET: still the day slot');
});

test('rates are written back readably', () => {
  assert.equal(formatRate(20 * MiB), '20 MiB/s');
  assert.equal(formatRate(1.5 * 1024 * MiB), '1.5 GiB/s');
  assert.equal(formatRate(null), 'off');
});
