import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, type TestContext } from 'node:test';
import pino from 'pino';
import { createWatcher, type Watcher, type WatcherOptions } from '../../src/watch/watcher.ts';

interface Recorded {
  event: string;
  at: number;
  payload: Record<string, unknown>;
}

function setup(t: TestContext, opts: Partial<WatcherOptions> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pf-watch-'));
  const lines: Array<{ level: number; msg: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  const events: Recorded[] = [];
  const watcher: Watcher = createWatcher({
    folders: [{ path: dir }],
    pollIntervalMs: 100,
    stabilityMs: 300,
    native: false,
    logger: pino({ level: 'debug' }, sink),
    ...opts,
  });
  for (const e of ['seen', 'stable', 'changed', 'removed', 'folder-missing', 'folder-back'] as const) {
    watcher.on(e, (payload: object) => events.push({ event: e, at: Date.now(), payload: payload as Record<string, unknown> }));
  }
  t.after(async () => {
    await watcher.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const of = (event: string, rel?: string) =>
    events.filter((e) => e.event === event && (rel === undefined || e.payload.relPath === rel));
  const waitFor = async (event: string, rel?: string, timeoutMs = 4000) => {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const hit = of(event, rel)[0];
      if (hit) return hit;
      await sleep(20);
    }
    assert.fail(`no '${event}' for ${rel ?? 'any file'} within ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => [e.event, e.payload.relPath]))}`);
  };
  const write = (rel: string, data: string | Buffer) => {
    const abs = path.join(dir, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, data);
  };
  return { dir, watcher, events, lines, of, waitFor, write };
}

describe('watcher', () => {
  it('reports a slowly written file stable only after its last write; skips temp files; sees subfolders', async (t) => {
    const w = setup(t);
    await w.watcher.start();
    const slow = path.join(w.dir, 'master.mov');
    const fd = fs.openSync(slow, 'w');
    w.write('.DS_Store', 'x');
    w.write('render.part', 'x');
    w.write('ep101/reel2/a.mov', 'aaa');
    // Chunks every 150 ms for 1.2 s: four stability windows long, never a quiet window.
    let lastWrite = 0;
    for (let i = 0; i < 8; i++) {
      if (i > 0) await sleep(150);
      fs.writeSync(fd, Buffer.alloc(64 * 1024, i));
      lastWrite = Date.now();
    }
    fs.closeSync(fd);
    assert.equal(w.of('stable', 'master.mov').length, 0, 'not stable while being written');
    const stable = await w.waitFor('stable', 'master.mov');
    assert.ok(stable.at - lastWrite >= 300, `stable ${stable.at - lastWrite} ms after the last write`);
    assert.equal(stable.payload.size, 8 * 64 * 1024);
    assert.equal(stable.payload.path, slow);
    assert.equal(w.of('seen', 'master.mov').length, 1, 'seen once, not once per growth');
    const sub = await w.waitFor('stable', 'ep101/reel2/a.mov');
    assert.equal(sub.payload.name, 'a.mov');
    await w.watcher.sweepNow();
    assert.deepEqual(
      w.events.filter((e) => /DS_Store|\.part/.test(String(e.payload.relPath))),
      [],
      'temp and system files never reported',
    );
  });

  it('start() returns what is present; isKnown files are neither seen nor stable', async (t) => {
    const w = setup(t, {
      isKnown: (abs, size) => abs.endsWith('done.mov') && size === 4,
    });
    w.write('done.mov', 'done');
    w.write('todo.mov', 'todo');
    await w.watcher.start();
    const present = w.watcher.present();
    assert.deepEqual([...present.values()].map((f) => f.relPath).sort(), ['done.mov', 'todo.mov']);
    assert.equal(present.get(path.join(w.dir, 'done.mov'))?.size, 4);
    await w.waitFor('stable', 'todo.mov');
    assert.equal(w.of('seen', 'done.mov').length, 0);
    assert.equal(w.of('stable', 'done.mov').length, 0);
    // A new version of the known file is no longer known: reported as changed, then stable.
    w.write('done.mov', 'done, re-exported');
    await w.waitFor('stable', 'done.mov');
    assert.equal(w.of('changed', 'done.mov').length, 1);
  });

  it('baseline mode records present files silently and reports later changes and removals', async (t) => {
    const w = setup(t, { baseline: true });
    w.write('old.mov', 'old');
    w.write('gone.mov', 'gone');
    await w.watcher.start();
    assert.equal(w.watcher.present().size, 2);
    fs.rmSync(path.join(w.dir, 'gone.mov'));
    fs.appendFileSync(path.join(w.dir, 'old.mov'), ' grown');
    const removed = await w.waitFor('removed', 'gone.mov');
    assert.equal(removed.payload.path, path.join(w.dir, 'gone.mov'));
    await w.waitFor('stable', 'old.mov');
    assert.equal(w.of('changed', 'old.mov').length, 1);
    assert.equal(w.of('seen').length, 0);
  });

  it('survives its folder disappearing: one warning, no removals, new files reported when it is back', async (t) => {
    const w = setup(t);
    w.write('before.mov', 'x');
    await w.watcher.start();
    await w.waitFor('stable', 'before.mov');
    fs.rmSync(w.dir, { recursive: true });
    await w.waitFor('folder-missing');
    await sleep(400); // several more sweeps while it is gone
    fs.mkdirSync(w.dir);
    fs.writeFileSync(path.join(w.dir, 'before.mov'), 'x'); // same name, new inode: a new version
    w.write('during/new.mov', 'new');
    await w.waitFor('folder-back');
    await w.waitFor('stable', 'during/new.mov');
    assert.equal(w.of('folder-missing').length, 1);
    assert.equal(w.of('removed').length, 0, 'a missing folder is not "every file removed"');
    const warnings = w.lines.filter((l) => l.level === 40);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0]?.msg ?? '', /gone/);
    const missing = w.of('folder-missing')[0];
    assert.match(String((missing?.payload.error as Error).message), /ENOENT/);
  });

  it('reports removal of a file while the folder exists', async (t) => {
    const w = setup(t);
    w.write('a.mov', 'a');
    await w.watcher.start();
    fs.rmSync(path.join(w.dir, 'a.mov'));
    await w.watcher.sweepNow();
    assert.equal(w.of('removed', 'a.mov').length, 1);
    assert.equal(w.of('stable', 'a.mov').length, 0, 'a removed file never turns stable');
  });

  it('notices a new file through native events long before the next poll', async (t) => {
    const w = setup(t, { native: true, pollIntervalMs: 60_000, stabilityMs: 200 });
    w.write('ep1/reel1/old.mov', 'o');
    await w.watcher.start(); // the first sweep arms one watch per folder it found
    w.write('quick.mov', 'q');
    w.write('ep1/reel1/deep.mov', 'd');
    w.write('ep1/reel1/.hidden.mov', 'h');
    const seen = await w.waitFor('seen', 'quick.mov', 3000);
    await w.waitFor('seen', 'ep1/reel1/deep.mov', 3000);
    const stable = await w.waitFor('stable', 'quick.mov', 3000);
    assert.ok(stable.at - seen.at >= 200);
    assert.equal(w.of('seen', 'ep1/reel1/.hidden.mov').length, 0, 'native events obey the ignore rules');
  });
});
