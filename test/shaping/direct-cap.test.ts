/** The direct path's part PUTs obey the same shaper as the file server (issue 9 item 1). */
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseBandwidth } from '../../src/config/bandwidth.ts';
import { createShaper } from '../../src/shaping/shaper.ts';
import { planParts, putParts } from '../../src/upload/direct.ts';

const MiB = 1024 * 1024;

test('direct-upload parts under a 2M cap take the capped time and arrive intact', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pf-direct-cap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const data = randomBytes(6 * MiB);
  const path = join(dir, 'master.mov');
  writeFileSync(path, data);
  const received = new Map<string, Buffer>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.set(req.url ?? '', Buffer.concat(chunks));
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const { port } = server.address() as { port: number };
  const parts = planParts([1, 2, 3].map((n) => ({ url: `http://127.0.0.1:${port}/part${n}`, size: 2 * MiB })), data.length);
  const shaper = createShaper({ global: parseBandwidth('2M'), folders: [] });
  const t0 = performance.now();
  await putParts({
    path,
    parts,
    contentType: 'video/quicktime',
    idleTimeoutMs: 5_000,
    signal: AbortSignal.timeout(25_000),
    shape: { take: (n, s) => shaper.take(n, 0, s), sliceBytes: () => shaper.sliceBytes(0) },
  });
  const seconds = (performance.now() - t0) / 1000;
  t.diagnostic(`6 MiB in 3 parallel parts at a 2 MiB/s cap: ${seconds.toFixed(2)} s`);
  // 6 MiB at 2 MiB/s less the quarter-second burst: 2.75 s.
  assert.ok(seconds > 2.5 && seconds < 3.6, `took ${seconds.toFixed(2)} s`);
  const joined = Buffer.concat([1, 2, 3].map((n) => received.get(`/part${n}`) ?? Buffer.alloc(0)));
  assert.equal(createHash('sha256').update(joined).digest('hex'), createHash('sha256').update(data).digest('hex'));
});
