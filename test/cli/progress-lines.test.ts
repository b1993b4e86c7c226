import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderLine } from '../../src/cli/progress-lines.ts';

test('a live progress line shows bar, percent, bytes, rate and ETA, cut to the terminal width', () => {
  const line = renderLine({ name: 'cut_v3.mov', covered: 512 * 1024 * 1024, size: 1024 * 1024 * 1024, rate: 50 * 1024 * 1024, etaSeconds: 11, state: 'importing' }, 120);
  assert.equal(line, '[##########----------]  50% 512 MiB/1.0 GiB 50.0 MiB/s ETA 11s  cut_v3.mov');
  const narrow = renderLine({ name: 'a-very-long-export-name_v12.mov', covered: 0, size: 10, rate: 0, etaSeconds: null, state: 'importing' }, 30);
  assert.equal(narrow.length, 30);
  assert.ok(narrow.endsWith('…'));
  assert.equal(renderLine({ name: 'x.mov', covered: 0, size: 10, rate: 0, etaSeconds: null, state: 'queued' }, 80), '[--------------------] queued  x.mov');
});
