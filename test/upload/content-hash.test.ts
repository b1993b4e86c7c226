/** The sha256 computed while serving, on the one low-priority hashing thread: follows the sent prefix, whatever order the ranges go in. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Coverage } from '../../src/server/coverage.ts';
import { defaultHashLag, hashableEnd, hashFile, hashWhileServing, hashWithin, prefixEnd } from '../../src/upload/content-hash.ts';
import { HashThread, type HashThreadOptions } from '../../src/upload/hash-thread.ts';

/** A temp dir and a hashing thread, both gone after the test. */
async function scratch(t: TestContext, opts?: HashThreadOptions): Promise<{ dir: string; hasher: HashThread }> {
  const dir = await mkdtemp(join(tmpdir(), 'postflow-hash-'));
  const hasher = new HashThread(opts);
  t.after(async () => {
    await hasher.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, hasher };
}

test('prefix end: only a covered run from byte 0 counts', () => {
  assert.equal(prefixEnd([]), 0);
  assert.equal(prefixEnd([[0, 10], [20, 30]]), 10);
  assert.equal(prefixEnd([[5, 10]]), 0);
});

test('hash while serving: ranges sent out of order (as Frame.io pulls) give the file sha256; a revoke before the end rejects', async (t) => {
  const { dir, hasher } = await scratch(t);
  const data = randomBytes(3 * 1024 * 1024 + 5);
  const path = join(dir, 'f.bin');
  await writeFile(path, data);
  const expected = createHash('sha256').update(data).digest('hex');
  assert.equal(await hashFile(hasher, path, data.length), expected);

  const source = Object.assign(new EventEmitter(), { size: data.length, coverage: new Coverage(data.length) });
  const { result, task } = hashWhileServing(path, source, hasher);
  const chunk = 1024 * 1024;
  // Chunks 3, 1, 2, 0 — nothing can be hashed until chunk 0 is out, then everything.
  for (const i of [3, 1, 2]) {
    source.coverage.add(i * chunk, Math.min(data.length, (i + 1) * chunk));
    source.emit('progress');
  }
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(task.hashed, 0, 'no byte hashed before byte 0 was sent');
  source.coverage.add(0, chunk);
  source.emit('progress');
  source.emit('complete');
  assert.equal(await result, expected);

  const half = Object.assign(new EventEmitter(), { size: data.length, coverage: new Coverage(data.length) });
  const second = hashWhileServing(path, half, hasher);
  half.coverage.add(0, chunk);
  half.emit('progress');
  half.emit('revoked');
  await assert.rejects(second.result, /revoked before the whole file was sent/);
});

test('the hash trails the sent prefix by the lag (an eighth of RAM, 256 MiB to 8 GiB) and catches up once all was sent', () => {
  const MiB = 1024 * 1024;
  assert.equal(defaultHashLag(24 * 1024 * MiB), 3 * 1024 * MiB);
  assert.equal(defaultHashLag(1024 * MiB), 256 * MiB);
  assert.equal(defaultHashLag(512 * 1024 * MiB), 8192 * MiB);
  assert.equal(hashableEnd(0, 100, 10), 0);
  assert.equal(hashableEnd(5, 100, 10), 0);
  assert.equal(hashableEnd(60, 100, 10), 50);
  assert.equal(hashableEnd(99, 100, 10), 89);
  assert.equal(hashableEnd(100, 100, 10), 100);
});

test('hash while serving with a lag: reads only up to the prefix less the lag until the whole file was sent', async (t) => {
  const { dir, hasher } = await scratch(t, { chunkBytes: 4096 });
  const MiB = 1024 * 1024;
  const data = randomBytes(3 * MiB + 5);
  const path = join(dir, 'f.bin');
  await writeFile(path, data);
  const source = Object.assign(new EventEmitter(), { size: data.length, coverage: new Coverage(data.length) });
  const { result, task } = hashWhileServing(path, source, hasher, { lagBytes: MiB });
  source.coverage.add(0, 2 * MiB);
  source.emit('progress');
  for (let i = 0; task.hashed < MiB && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(task.hashed, MiB, 'hashed up to the sent prefix less the lag, no further');
  source.coverage.add(2 * MiB, data.length);
  source.emit('progress');
  source.emit('complete');
  assert.equal(await result, createHash('sha256').update(data).digest('hex'));
});

test('hash thread: never reads past what may be read (bytes changed beyond it afterwards are hashed as changed)', async (t) => {
  const { dir, hasher } = await scratch(t, { chunkBytes: 4096 });
  const first = randomBytes(64 * 4096 * 2);
  const path = join(dir, 'f.bin');
  await writeFile(path, first);
  const task = hasher.start(path, first.length);
  const halfway = first.length / 2;
  task.advance(halfway);
  // The thread reports every 64 chunks: at `halfway` it has read all it may.
  for (let i = 0; task.hashed < halfway && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(task.hashed, halfway);
  await new Promise((r) => setTimeout(r, 50));
  // Had it read ahead, these new bytes would not be in the hash.
  const tail = randomBytes(halfway);
  const fh = await open(path, 'r+');
  await fh.write(tail, 0, tail.length, halfway);
  await fh.close();
  task.advance(first.length);
  const expected = createHash('sha256').update(first.subarray(0, halfway)).update(tail).digest('hex');
  assert.equal(await task.result, expected);
});

test('hash thread: one thread for many files at once, each right; a missing or short file fails alone; it ends when idle and starts again', async (t) => {
  let starts = 0;
  const { dir, hasher } = await scratch(t, { idleMs: 100, onStart: () => starts++ });
  const files = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const data = randomBytes((i * 97_531) % (3 * 1024 * 1024));
      const path = join(dir, `f${i}.bin`);
      await writeFile(path, data);
      return { path, size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    }),
  );
  const tasks = files.map((f) => hasher.start(f.path, f.size));
  const missing = hasher.start(join(dir, 'gone.bin'), 10);
  const short = hasher.start(files[1]!.path, files[1]!.size + 100);
  for (const task of [...tasks, missing, short]) task.advance(task.size);
  const outcomes = await Promise.allSettled([...tasks, missing, short].map((x) => x.result));
  assert.deepEqual(
    outcomes.slice(0, files.length).map((o) => (o.status === 'fulfilled' ? o.value : String(o.reason))),
    files.map((f) => f.sha256),
  );
  const [gone, cut] = outcomes.slice(files.length);
  assert.equal(gone?.status, 'rejected');
  assert.equal((gone as PromiseRejectedResult).reason.code, 'ENOENT');
  assert.match(String((cut as PromiseRejectedResult).reason), /file ended at byte/);
  assert.equal(starts, 1, 'all of them on one thread');
  assert.ok(hasher.running);
  for (let i = 0; hasher.running && i < 100; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(hasher.running, false, 'the thread ends after idleMs without work');
  assert.equal(await hashFile(hasher, files[3]!.path, files[3]!.size), files[3]!.sha256);
  assert.equal(starts, 2);
});

test('hash thread: stop and abort reject that task only; close rejects what is left', async (t) => {
  const { dir, hasher } = await scratch(t);
  const data = randomBytes(2 * 1024 * 1024);
  const path = join(dir, 'f.bin');
  await writeFile(path, data);
  const stopped = hasher.start(path, data.length);
  stopped.stop(new Error('no longer wanted'));
  await assert.rejects(stopped.result, /no longer wanted/);
  const ac = new AbortController();
  ac.abort(new Error('job aborted'));
  await assert.rejects(hashFile(hasher, path, data.length, ac.signal), /job aborted/);
  const waiting = hasher.start(path, data.length); // never advanced
  const fine = hasher.start(path, data.length);
  fine.advance(data.length);
  assert.equal(await fine.result, createHash('sha256').update(data).digest('hex'));
  await hasher.close();
  await assert.rejects(waiting.result, /hashing thread was stopped/);
  assert.equal(await hasher.start(path, 0).result, createHash('sha256').digest('hex'), 'an empty file needs no thread');
});

test('hash thread: never keeps a process alive, even with a task waiting for bytes', async () => {
  const script = `
    import { HashThread } from ${JSON.stringify(new URL('../../src/upload/hash-thread.ts', import.meta.url).href)};
    const h = new HashThread();
    h.start(${JSON.stringify(fileURLToPath(import.meta.url))}, 1000); // never advanced
    await new Promise((r) => setTimeout(r, 100));
    console.log(h.running ? 'running' : 'not running');
  `;
  const started = Date.now();
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
  assert.equal(stdout.trim(), 'running');
  assert.ok(Date.now() - started < 10_000, 'the process ended on its own');
});

test('hash thread: runs at nice 19 on Linux, the event loop thread keeps its priority', { skip: process.platform !== 'linux' }, async (t) => {
  let niced: boolean | undefined;
  const { dir, hasher } = await scratch(t, { onStart: (info) => (niced = info.niced) });
  const path = join(dir, 'f.bin');
  await writeFile(path, randomBytes(1024));
  const before = await threadNices();
  await hashFile(hasher, path, 1024);
  assert.equal(niced, true);
  const after = await threadNices();
  const added = [...after].filter(([tid]) => !before.has(tid));
  assert.deepEqual(
    added.filter(([, nice]) => nice === 19).length,
    1,
    `one new thread at nice 19 (new threads: ${JSON.stringify(added)})`,
  );
  assert.equal(after.get(process.pid), before.get(process.pid), 'the main thread is untouched');
});

/** tid → nice of this process's threads (field 19 of /proc/self/task/TID/stat). */
async function threadNices(): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const tid of await readdir('/proc/self/task')) {
    const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields.length > 17) out.set(Number(tid), Number(fields[16]));
  }
  return out;
}

test('hash within a wait: done, failed, or pending when the hash thread lags (the job goes on without it)', async () => {
  assert.deepEqual(await hashWithin(Promise.resolve('ab'), 1000), { state: 'done', sha256: 'ab' });
  const err = new Error('gone');
  assert.deepEqual(await hashWithin(Promise.reject(err), 1000), { state: 'failed', err });
  const started = Date.now();
  assert.deepEqual(await hashWithin(new Promise<string>(() => undefined), 30), { state: 'pending' });
  assert.ok(Date.now() - started < 1000);
});
