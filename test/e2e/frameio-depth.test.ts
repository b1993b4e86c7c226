/**
 * Issue 8 end to end, through the real daemon: mirrored folder trees (a new folder needed by two files at
 * once is created once), three watch folders into two projects with their own policies, re-exports stacked
 * as versions / kept as separate files / skipped as identical content, sidecar and move actions, the
 * metadata in `postflow jobs --json`, and a destination that does not exist stopping the start.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { BIN, sha256File, startStack, type DaemonProcess, type LogLine } from './harness.ts';

const run = promisify(execFile);

interface Asset {
  id: string;
  name: string;
  type: 'file' | 'folder' | 'version_stack';
  parent_id: string;
  file_size?: number;
}

test('mirror, several destinations, versions, new, skip, sidecar, move, metadata', { timeout: 240_000 }, async (t) => {
  let project2 = { projectId: '', rootFolderId: '' };
  let deliveries = '';
  const stack = await startStack({
    config: (c) => {
      c.watch = { ...c.watch, stabilitySeconds: 1, pollIntervalSeconds: 0.3 };
    },
  });
  t.after(() => stack.close());
  const { emulator } = stack;
  const token = emulator.issueAccessToken();
  const api = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
    const res = await fetch(`${emulator.apiUrl}/accounts/${emulator.accountId}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, 'x-api-key': emulator.clientId, 'content-type': 'application/json' },
    });
    assert.ok(res.ok, `${path}: ${res.status}`);
    return ((await res.json()) as { data: T }).data;
  };
  const children = (id: string) => api<Asset[]>(`/folders/${id}/children?page_size=500`);
  const stackChildren = (id: string) => api<Asset[]>(`/version_stacks/${id}/children?page_size=500`);

  // Watch folder 2 → another project (flat, skip identical, move); 3 → a folder (not a project) in project 1 (new).
  project2 = emulator.createProject('Second Show');
  deliveries = (await api<Asset>(`/folders/${emulator.rootFolderId}/folders`, { method: 'POST', body: JSON.stringify({ data: { name: 'Deliveries' } }) })).id;
  const w1 = stack.watchDir;
  const w2 = join(stack.dir, 'watch2');
  const w3 = join(stack.dir, 'watch3');
  await Promise.all([mkdir(w2), mkdir(w3)]);
  const config = JSON.parse(await readFile(stack.configFile, 'utf8')) as Record<string, any>;
  config.watch.folders = [
    { path: w1, destination: emulator.projectId, afterUpload: 'sidecar' }, // defaults: mirror, version
    { path: w2, destination: project2.projectId, layout: 'flat', onExisting: 'skip', afterUpload: 'move' },
    { path: w3, destination: deliveries, onExisting: 'new' },
  ];
  await writeFile(stack.configFile, JSON.stringify(config, null, 2));

  const d: DaemonProcess = stack.startDaemon({ args: ['--upload-existing'] });
  t.after(() => d.stop());
  await d.waitFor((l) => l.event === 'started', 60_000, 'the daemon to start');
  const destLines = d.lines.filter((l) => l.event === 'destination');
  assert.equal(destLines.length, 3, 'every destination checked at start');

  const doneFor = (path: string, n = 1) =>
    d.waitFor((l) => d.lines.filter((x) => (x.event === 'done' || x.event === 'skipped') && x.file === path).length >= n, 60_000, `${n} done for ${path}`).then(
      () => d.lines.filter((x) => (x.event === 'done' || x.event === 'skipped') && x.file === path)[n - 1]!,
    );
  const write = async (path: string, bytes: Buffer) => {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, bytes);
  };

  // 1. Mirror: two files in a three-level tree that does not exist yet in Frame.io, written together.
  const a = join(w1, 'ep101/reel2/sc1/a.mov');
  const b = join(w1, 'ep101/reel2/sc1/b.mov');
  await Promise.all([write(a, randomBytes(300_000)), write(b, randomBytes(200_000))]);
  const [doneA, doneB] = await Promise.all([doneFor(a), doneFor(b)]);
  assert.equal(doneA.folderPath, 'ep101/reel2/sc1');
  assert.equal(doneA.folderId, doneB.folderId, 'both in the same mirrored folder');
  // Each destination's start-up write check creates a test folder and deletes it at once.
  const created = emulator.calls().filter((c) => c.operation === 'folders.create' && c.status === 201).length;
  const deleted = emulator.calls().filter((c) => c.operation === 'folders.delete' && c.status === 204).length;
  assert.equal(created - deleted, 1 + 3, 'Deliveries (by the test) + ep101, reel2, sc1 once each');
  const ep101 = (await children(emulator.rootFolderId)).filter((x) => x.name === 'ep101');
  assert.equal(ep101.length, 1);
  const reel2 = (await children(ep101[0]!.id)).filter((x) => x.name === 'reel2');
  const sc1 = (await children(reel2[0]!.id)).filter((x) => x.name === 'sc1');
  assert.equal(sc1[0]!.id, doneA.folderId);
  assert.deepEqual((await children(sc1[0]!.id)).map((x) => [x.name, x.type]).sort(), [['a.mov', 'file'], ['b.mov', 'file']]);
  // Sidecar beside the source, with the ids and link; the watcher does not pick it up.
  const side = JSON.parse(await readFile(`${a}.postflow.json`, 'utf8')) as Record<string, any>;
  assert.equal(side.frameio.fileId, doneA.frameioFileId);
  assert.equal(side.frameio.viewUrl, doneA.viewUrl);
  assert.equal(side.sha256, await sha256File(a));

  // 3a. Re-export of a.mov (default onExisting "version"): a version stack with both versions, newest on top.
  await write(a, randomBytes(310_000));
  const doneA2 = await doneFor(a, 2);
  assert.equal(doneA2.landing, 'version');
  const inSc1 = await children(sc1[0]!.id);
  const stackAsset = inSc1.find((x) => x.type === 'version_stack');
  assert.ok(stackAsset, 'a.mov is now a version stack');
  assert.equal(stackAsset.id, doneA2.versionStackId);
  assert.deepEqual((await stackChildren(stackAsset.id)).map((f) => f.id), [doneA.frameioFileId, doneA2.frameioFileId]);
  assert.equal(inSc1.filter((x) => x.name === 'a.mov').length, 1, 'no loose second a.mov');

  // 2 + 6. Second watch folder, flat into the second project; the source is moved under _uploaded/.
  const c = join(w2, 'x/c.mov');
  const cBytes = randomBytes(250_000);
  await write(c, cBytes);
  const doneC = await doneFor(c);
  assert.equal(doneC.folderId, project2.rootFolderId, 'flat: straight into the project root, no x/ folder');
  assert.deepEqual((await children(project2.rootFolderId)).map((x) => [x.name, x.type]), [['c.mov', 'file']]);
  await d.waitFor((l) => l.event === 'after-upload' && l.file === c, 30_000, 'c.mov moved');
  assert.equal(await sha256File(join(w2, '_uploaded/x/c.mov')), createHash('sha256').update(cBytes).digest('hex'), 'moved whole, tree kept');
  await assert.rejects(stat(c), { code: 'ENOENT' });

  // 3c. The same content exported again: skipped (no upload), and moved beside the first under a new name.
  await write(c, cBytes);
  const skipped = await doneFor(c, 2);
  assert.equal(skipped.event, 'skipped');
  assert.equal(skipped.frameioFileId, doneC.frameioFileId);
  assert.equal(emulator.ledger().filter((e) => e.name === 'c.mov').length, 1, 'Frame.io was not asked to import it again');
  await d.waitFor((l) => l.event === 'after-upload' && l.file === c && l.path === join(w2, '_uploaded/x/c (2).mov'), 30_000, 'the skipped copy moved too');

  // 3b. Third watch folder, onExisting "new": a re-export is a second, separate file of the same name.
  const e = join(w3, 'e.mov');
  await write(e, randomBytes(120_000));
  await doneFor(e);
  await write(e, randomBytes(130_000));
  const doneE2 = await doneFor(e, 2);
  assert.equal(doneE2.landing, 'new');
  assert.deepEqual((await children(deliveries)).map((x) => [x.name, x.type, x.file_size]), [['e.mov', 'file', 120_000], ['e.mov', 'file', 130_000]]);

  // 7. Metadata through `postflow jobs --json` (read from the running daemon).
  const { stdout } = await run(process.execPath, [BIN, 'jobs', '--json', '--config', stack.configFile], { timeout: 60_000 });
  const rows = JSON.parse(stdout) as Array<Record<string, any>>;
  const byPath = (p: string) => rows.filter((r) => r.path === p && r.state === 'done').sort((x, y) => x.createdAt - y.createdAt);
  const [ja1, ja2] = byPath(a);
  assert.equal(ja1!.landing, 'new');
  assert.equal(ja2!.landing, 'version');
  assert.equal(ja2!.versionStackId, stackAsset.id);
  assert.equal(ja2!.frameioFolderPath, 'ep101/reel2/sc1');
  assert.equal(ja2!.frameioFolderId, sc1[0]!.id);
  assert.equal(ja2!.sha256, await sha256File(a));
  assert.equal(ja2!.sha256, emulator.ledger().find((x) => x.fileId === ja2!.frameioFileId)?.sha256, 'the hash of what was served is what Frame.io received');
  assert.match(ja2!.viewUrl, /^https:\/\/next\.frame\.io\/project\//);
  assert.ok(ja2!.sentAt >= ja2!.startedAt && ja2!.confirmedAt >= ja2!.sentAt && ja2!.finishedAt >= ja2!.confirmedAt, 'timings in order');
  assert.equal(ja1!.afterUploadPath, `${a}.postflow.json`);
  const [jc1, jc2] = byPath(c);
  assert.equal(jc1!.landing, 'new');
  assert.equal(jc2!.landing, 'skipped');
  assert.equal(jc2!.sha256, jc1!.sha256);
  assert.equal(jc2!.afterUploadPath, join(w2, '_uploaded/x/c (2).mov'));
  // Nothing postflow wrote (sidecars, _uploaded/) became a job of its own.
  assert.equal(rows.filter((r) => /postflow\.json$|_uploaded/.test(r.path)).length, 0);
  const noLeaks = d.lines.filter((l: LogLine) => l.level === 50 || l.level === 'error');
  assert.deepEqual(noLeaks.map((l) => l.msg), []);
});

test('a destination that does not exist stops the start with one line naming the watch folder and the id', { timeout: 60_000 }, async (t) => {
  const stack = await startStack({
    config: (c) => {
      c.watch.folders[0].destination = '00000000-0000-4000-8000-000000000000';
    },
  });
  t.after(() => stack.close());
  const d = stack.startDaemon();
  const { code } = await d.exited;
  assert.equal(code, 78, 'EX_CONFIG: fix the configuration, do not restart in a loop');
  const line = d.stderr.find((l) => l.includes('PF_ERR_CONFIG_DESTINATION')) ?? d.stderr.join('\n');
  assert.match(line, new RegExp(`watch folder ${stack.watchDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: Frame.io destination "00000000-0000-4000-8000-000000000000" is neither a folder nor a project`));
});

test('a destination this login may not write to stops the start with one line; a writable one leaves no trace', { timeout: 60_000 }, async (t) => {
  const stack = await startStack();
  t.after(() => stack.close());
  // First a writable destination: the daemon starts, and its write check leaves nothing behind in Frame.io.
  const ok = stack.startDaemon();
  await ok.waitFor((l) => l.event === 'started', 60_000, 'start');
  assert.equal((await ok.stop()).code, 0);
  const creates = stack.emulator.calls().filter((c) => c.operation === 'folders.create' && c.status === 201).length;
  const deletes = stack.emulator.calls().filter((c) => c.operation === 'folders.delete' && c.status === 204).length;
  assert.equal(creates, 1, 'one write-check folder');
  assert.equal(deletes, 1, 'deleted at once');

  stack.emulator.setFaults({ readOnlyFolderIds: [stack.emulator.rootFolderId] });
  const d = stack.startDaemon();
  const { code } = await d.exited;
  assert.equal(code, 78);
  const line = d.stderr.find((l) => l.includes('PF_ERR_CONFIG_DESTINATION')) ?? d.stderr.join('\n');
  assert.match(line, /is read-only for this login \(Frame\.io answered 403/);
  assert.ok(line.includes(stack.watchDir), 'names the watch folder');
  assert.equal(d.stderr.filter((l) => l.trim() !== '').length, 1, 'one line');
});
