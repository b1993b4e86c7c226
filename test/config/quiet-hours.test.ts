process.env.TZ = 'Europe/Berlin';

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isQuiet, opensAt, parseQuietHours, quietHoursProblem } from '../../src/config/quiet-hours.ts';

test('windows parse, several per folder, past midnight allowed; problems name the window', () => {
  assert.deepEqual(parseQuietHours('09:00-18:00'), [{ start: 540, end: 1080 }]);
  assert.deepEqual(parseQuietHours('09:00-12:00 22:00-06:00'), [
    { start: 540, end: 720 },
    { start: 1320, end: 360 },
  ]);
  assert.deepEqual(parseQuietHours(''), []);
  assert.match(quietHoursProblem('09:00') ?? '', /"09:00" is not a window/);
  assert.match(quietHoursProblem('09:00-25:00') ?? '', /"25:00" is not a time/);
  assert.match(quietHoursProblem('09:00-09:00') ?? '', /empty/);
  assert.equal(quietHoursProblem('18:00-24:00'), undefined);
});

test('quiet inside a window, open outside; next opening is the window end', () => {
  const w = parseQuietHours('09:00-18:00');
  assert.equal(isQuiet(w, new Date(2025, 5, 10, 8, 59)), false);
  assert.equal(isQuiet(w, new Date(2025, 5, 10, 9, 0)), true);
  assert.equal(isQuiet(w, new Date(2025, 5, 10, 18, 0)), false);
  assert.equal(opensAt(w, new Date(2025, 5, 10, 12, 0)).getTime(), new Date(2025, 5, 10, 18, 0).getTime());
  const open = new Date(2025, 5, 10, 20, 0);
  assert.equal(opensAt(w, open), open, 'outside a window it is open now');
});

test('overnight and touching windows are crossed together', () => {
  const w = parseQuietHours('22:00-06:00 06:00-07:30');
  assert.equal(isQuiet(w, new Date(2025, 5, 10, 23, 0)), true);
  assert.equal(isQuiet(w, new Date(2025, 5, 10, 3, 0)), true);
  assert.equal(opensAt(w, new Date(2025, 5, 10, 23, 0)).getTime(), new Date(2025, 5, 11, 7, 30).getTime());
  assert.equal(opensAt(w, new Date(2025, 5, 11, 1, 0)).getTime(), new Date(2025, 5, 11, 7, 30).getTime());
});

test('the opening is right across a daylight-saving change', () => {
  const w = parseQuietHours('00:00-06:00');
  // 2025-03-30 01:00 CET = 00:00 UTC; 06:00 CEST = 04:00 UTC (the night is an hour short).
  assert.equal(opensAt(w, new Date('2025-03-30T00:00:00Z')).toISOString(), '2025-03-30T04:00:00.000Z');
});
