import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { createNotifier } from '../../src/notify/notifier.ts';
import { Outbox } from '../../src/notify/outbox.ts';
import { startReceiver, type Receiver } from './receiver.ts';

function capture(): { logger: pino.Logger; lines: Record<string, any>[]; text: () => string } {
  const lines: Record<string, any>[] = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      raw.push(chunk.toString());
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines, text: () => raw.join('') };
}

async function receiver(t: TestContext): Promise<Receiver> {
  const r = await startReceiver();
  t.after(() => r.close());
  return r;
}

const job = (over: Partial<{ id: string; folderIndex: number; name: string; relPath: string; path: string; root: string; size: number }> = {}) => ({
  id: 'job-1',
  folderIndex: 0,
  name: 'cut_v3.mov',
  relPath: 'ep101/cut_v3.mov',
  path: '/w/ep101/cut_v3.mov',
  root: '/w',
  size: 2_100_000_000,
  ...over,
});

const FAST = { backoff: { baseMs: 20, maxMs: 100 } };

test('a done and a failed job: the webhook gets the event as JSON, Slack a message with the Frame.io link; URL tokens in reasons are redacted', async (t) => {
  const hook = await receiver(t);
  const slack = await receiver(t);
  const log = capture();
  const n = createNotifier({ folders: [{ notify: { webhook: `${hook.url}/hooks/abc`, slack: `${slack.url}/services/T0/B0/secretpart` } }, {}], logger: log.logger, now: () => Date.parse('2026-01-02T03:04:05Z'), ...FAST });
  t.after(() => n.close(0));

  n.onJobEnd(job(), { state: 'done', frameioFileId: 'f-1', viewUrl: 'https://next.frame.io/project/p/view/f-1', durationMs: 192_400, attempts: 1 });
  n.onJobEnd(job({ id: 'job-2', name: 'b.mov', relPath: 'b.mov', size: 10 }), {
    state: 'failed',
    reason: 'PF_ERR_UPLOAD_STALLED: no bytes pulled from https://harbor-maple.trycloudflare.com/Zm9vYmFyYmF6cXV4cXV1eA/b.mov',
    durationMs: 5_000,
    attempts: 5,
  });
  n.onJobEnd(job({ id: 'job-3', folderIndex: 1 }), { state: 'done', frameioFileId: 'f-3', viewUrl: null, durationMs: 1, attempts: 1 }); // folder without notify

  const hooks = await hook.waitFor(2);
  const slacks = await slack.waitFor(2);
  assert.equal(hooks[0]!.path, '/hooks/abc');
  assert.equal(hooks[0]!.headers['content-type'], 'application/json');
  assert.deepEqual(hooks[0]!.body, {
    source: 'postflow',
    event: 'done',
    file: { name: 'cut_v3.mov', path: '/w/ep101/cut_v3.mov', relPath: 'ep101/cut_v3.mov', size: 2_100_000_000 },
    folder: '/w',
    durationSeconds: 192.4,
    attempts: 1,
    frameio: { fileId: 'f-1', url: 'https://next.frame.io/project/p/view/f-1' },
    reason: null,
    at: '2026-01-02T03:04:05.000Z',
  });
  assert.equal(hooks[1]!.body.event, 'failed');
  assert.equal(hooks[1]!.body.reason, 'PF_ERR_UPLOAD_STALLED: no bytes pulled from https://harbor-maple.trycloudflare.com/<redacted>/b.mov');
  const texts = slacks.map((s) => s.body.text as string).sort();
  assert.equal(texts[0], ':white_check_mark: *ep101/cut_v3.mov* (2.10 GB) is in Frame.io in 3 min 12 s — <https://next.frame.io/project/p/view/f-1|open in Frame.io>');
  assert.match(texts[1]!, /^:x: \*b\.mov\* \(10 B\) could not be imported after 5 attempt\(s\): PF_ERR_UPLOAD_STALLED: .*\/&lt;redacted&gt;\/b\.mov$/);
  assert.doesNotMatch(texts[1]!, /Zm9vYmFy/);
  // Three jobs, one without targets: exactly two messages per receiver.
  await n.close(1000);
  assert.equal(hook.received.length, 2);
  assert.equal(n.outbox.stats().delivered, 4);
});

test('5xx and 429 are retried with backoff (Retry-After honoured) until delivered; 4xx is dropped at once; the URL never reaches the log', async (t) => {
  const r = await receiver(t);
  const log = capture();
  r.answer = (req, n) => {
    if (req.path.startsWith('/gone')) return { status: 404 };
    return n === 1 ? { status: 503 } : n === 2 ? { status: 429, headers: { 'retry-after': '0' } } : { status: 200 };
  };
  const box = new Outbox({ logger: log.logger, ...FAST });
  t.after(() => box.close(0));
  box.push({ url: `${r.url}/ok/sekrit-path-123`, body: { n: 1 }, receiver: 'webhook 127.0.0.1', job: 'j1' });
  await r.waitFor(3);
  await until(() => box.stats().delivered === 1);
  assert.deepEqual(box.stats(), { pending: 0, delivered: 1, dropped: 0 });
  assert.deepEqual(log.lines.filter((l) => l.event === 'notify-retry').map((l) => l.err), ['HTTP 503', 'HTTP 429']);

  box.push({ url: `${r.url}/gone/sekrit-path-123`, body: { n: 2 }, receiver: 'webhook 127.0.0.1', job: 'j2' });
  await until(() => box.stats().dropped === 1);
  assert.equal(r.received.filter((x) => x.path.startsWith('/gone')).length, 1, 'a 404 is not retried');
  assert.match(log.lines.find((l) => l.event === 'notify-failed')!.msg, /PF_ERR|refused the notification with HTTP 404/);
  assert.doesNotMatch(log.text(), /sekrit/);
});

test('a receiver that never answers blocks nothing: push returns at once, the outbox stays bounded (oldest dropped), close() returns within its grace', async (t) => {
  const r = await receiver(t);
  r.answer = () => 'hang';
  const log = capture();
  const box = new Outbox({ logger: log.logger, capacity: 3, concurrency: 1, timeoutMs: 60_000, ...FAST });
  const returned = Array.from({ length: 6 }, (_, i) => box.push({ url: `${r.url}/x`, body: { i }, receiver: 'webhook 127.0.0.1', job: `j${i}` }) as unknown);
  assert.deepEqual(returned, Array(6).fill(undefined), 'push is synchronous: nothing to wait for, whatever the network does');
  await r.waitFor(1);
  // One in flight (j0) + 2 waiting = capacity 3: j1, j2 and j3 were dropped, newest kept.
  assert.deepEqual(box.stats(), { pending: 3, delivered: 0, dropped: 3 });
  assert.deepEqual(log.lines.filter((l) => l.event === 'notify-dropped').map((l) => l.job), ['j1', 'j2', 'j3']);
  const closing = performance.now();
  await box.close(200);
  assert.ok(performance.now() - closing < 2_000);
  assert.equal(r.received.length, 1, 'the hung message never let the others through (concurrency 1)');
  box.push({ url: `${r.url}/x`, body: {}, receiver: 'webhook', job: 'late' });
  assert.equal(box.stats().pending, 0, 'closed: nothing more is taken');
});

test('after max attempts the message is given up with one warning', async (t) => {
  const r = await receiver(t);
  r.answer = () => ({ status: 500 });
  const log = capture();
  const box = new Outbox({ logger: log.logger, maxAttempts: 3, ...FAST });
  t.after(() => box.close(0));
  box.push({ url: `${r.url}/x`, body: {}, receiver: 'slack 127.0.0.1', job: 'j' });
  await until(() => box.stats().dropped === 1);
  assert.equal(r.received.length, 3);
  const failed = log.lines.filter((l) => l.event === 'notify-failed');
  assert.equal(failed.length, 1);
  assert.match(failed[0]!.msg, /slack 127\.0\.0\.1 did not accept the notification after 3 attempts \(last: HTTP 500\)/);
});

async function until(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
