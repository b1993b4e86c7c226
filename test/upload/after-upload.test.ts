/** After-upload actions on real files: move keeps the tree and never overwrites; sidecar is whole JSON; the watcher ignores both. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import type { Job } from '../../src/jobs/store.ts';
import { movedPath, numbered, runAfterUpload, sidecarPath } from '../../src/upload/after-upload.ts';
import { createFilter } from '../../src/watch/filters.ts';

test('paths: moved keeps the tree under _uploaded; numbered siblings; sidecar suffix', () => {
  assert.equal(movedPath('/w', 'ep101/reel2/cut.mov'), '/w/_uploaded/ep101/reel2/cut.mov');
  assert.equal(movedPath('/w', '../x/cut.mov'), '/w/_uploaded/x/cut.mov', 'never outside the folder');
  assert.equal(numbered('/w/_uploaded/cut.mov', 2), '/w/_uploaded/cut (2).mov');
  assert.equal(sidecarPath('/w/a/cut.mov'), '/w/a/cut.mov.postflow.json');
});

test('move and sidecar on real files; the watcher filter drops what they produce', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'postflow-after-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const keep = createFilter();
  const job = (relPath: string): Job =>
    ({
      id: 'job-1', root, relPath, path: join(root, relPath), name: relPath.split('/').at(-1)!, size: 3, sha256: 'ab'.repeat(32),
      frameioFileId: 'file-1', versionStackId: 'stack-1', frameioFolderId: 'folder-1', frameioFolderPath: 'ep101',
      viewUrl: 'https://next.frame.io/project/p/view/file-1', landing: 'version', confirmedAt: 1_700_000_000_000,
    }) as Job;

  await mkdir(join(root, 'ep101'));
  await writeFile(join(root, 'ep101/cut.mov'), 'v1!');
  const first = await runAfterUpload(job('ep101/cut.mov'), 'move');
  assert.equal(first, join(root, '_uploaded/ep101/cut.mov'));
  assert.equal(await readFile(first!, 'utf8'), 'v1!');
  await assert.rejects(stat(join(root, 'ep101/cut.mov')), { code: 'ENOENT' });
  // A re-export moved later does not overwrite the first one.
  await writeFile(join(root, 'ep101/cut.mov'), 'v2!');
  const second = await runAfterUpload(job('ep101/cut.mov'), 'move');
  assert.equal(second, join(root, '_uploaded/ep101/cut (2).mov'));
  assert.equal(await readFile(first!, 'utf8'), 'v1!');
  assert.equal(await readFile(second!, 'utf8'), 'v2!');
  assert.equal(keep(relative(root, second!), false), false, 'moved files are never imported again');

  await writeFile(join(root, 'ep101/b.mov'), 'bbb');
  const side = await runAfterUpload(job('ep101/b.mov'), 'sidecar');
  assert.equal(side, join(root, 'ep101/b.mov.postflow.json'));
  const body = JSON.parse(await readFile(side!, 'utf8')) as Record<string, any>;
  assert.equal(body.frameio.fileId, 'file-1');
  assert.equal(body.frameio.versionStackId, 'stack-1');
  assert.equal(body.frameio.viewUrl, 'https://next.frame.io/project/p/view/file-1');
  assert.equal(body.sha256, 'ab'.repeat(32));
  assert.equal(body.uploadedAt, '2023-11-14T22:13:20.000Z');
  assert.equal(await readFile(join(root, 'ep101/b.mov'), 'utf8'), 'bbb', 'the source stays');
  assert.deepEqual((await readdir(join(root, 'ep101'))).sort(), ['b.mov', 'b.mov.postflow.json'], 'no temp file left');
  assert.equal(keep(relative(root, side!), false), false, 'sidecars are never imported');
  assert.equal(await runAfterUpload(job('ep101/b.mov'), 'leave'), null);
});
