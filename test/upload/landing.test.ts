/** Where a file lands and what a namesake means: the pure rules, and stacking against the emulator. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import pino from 'pino';
import { createFrameioClient } from '../../src/frameio/client.ts';
import { createRateLimiter } from '../../src/frameio/rate-limit.ts';
import type { Job } from '../../src/jobs/store.ts';
import { FolderMirror } from '../../src/upload/folders.ts';
import { createLanding, destinationResolver, landingPath, pickNamesake, skipCandidate } from '../../src/upload/landing.ts';
import { startEmulator } from '../doubles/frameio/emulator.ts';

test('landing path: mirror keeps the sub folders, flat drops them', () => {
  assert.equal(landingPath('ep101/reel2/cut.mov', 'mirror'), 'ep101/reel2');
  assert.equal(landingPath('cut.mov', 'mirror'), '');
  assert.equal(landingPath('ep101/reel2/cut.mov', 'flat'), '');
  assert.equal(landingPath('ep101\\cut.mov', 'mirror'), 'ep101');
});

test('namesake: a version stack of that name wins, else the newest file; the new file itself never', () => {
  const at = (s: number) => new Date(1_700_000_000_000 + s * 1000).toISOString();
  const kids = [
    { id: 'f1', name: 'cut.mov', type: 'file', created_at: at(1) },
    { id: 'f2', name: 'cut.mov', type: 'file', created_at: at(3) },
    { id: 'd1', name: 'cut.mov', type: 'folder', created_at: at(4) },
    { id: 'o1', name: 'other.mov', type: 'file', created_at: at(5) },
  ];
  assert.equal(pickNamesake(kids, 'cut.mov')?.id, 'f2');
  assert.equal(pickNamesake(kids, 'cut.mov', 'f2')?.id, 'f1');
  assert.equal(pickNamesake([...kids, { id: 's1', name: 'cut.mov', type: 'version_stack', created_at: at(0) }], 'cut.mov')?.id, 's1');
  assert.equal(pickNamesake(kids, 'none.mov'), undefined);
});

test('skip candidate: only the newest done job of the path, same folder, same size, hash known', () => {
  const j = (over: Partial<Job>): Job => ({ id: 'x', state: 'done', size: 10, sha256: 'aa', frameioFolderId: 'F', finishedAt: 1, ...over }) as Job;
  const me = { id: 'me', size: 10 };
  assert.equal(skipCandidate([j({ id: 'a' })], me, 'F')?.id, 'a');
  assert.equal(skipCandidate([j({ id: 'a', finishedAt: 1 }), j({ id: 'b', finishedAt: 2, sha256: 'bb' })], me, 'F')?.id, 'b', 'the newest, not any');
  assert.equal(skipCandidate([j({ id: 'a', size: 11 })], me, 'F'), undefined, 'size differs');
  assert.equal(skipCandidate([j({ id: 'a', sha256: null })], me, 'F'), undefined, 'hash unknown');
  assert.equal(skipCandidate([j({ id: 'a', frameioFolderId: 'G' })], me, 'F'), undefined, 'landed elsewhere');
  assert.equal(skipCandidate([j({ id: 'me' })], me, 'F'), undefined, 'not itself');
});

async function client(t: { after: (fn: () => unknown) => void }) {
  const emulator = await startEmulator();
  t.after(() => emulator.close());
  const token = emulator.issueAccessToken();
  const frameio = createFrameioClient({
    apiUrl: emulator.apiUrl,
    accountId: emulator.accountId,
    clientId: emulator.clientId,
    tokens: Object.assign(new EventEmitter(), { getAccessToken: async () => token, invalidate: () => undefined }),
    limiter: createRateLimiter({ maxRequestsPerSecond: Infinity }),
    logger: pino({ level: 'silent' }),
  });
  // A finished file of `name` in `folder`, made the way Frame.io makes one (local_upload; contents do not matter here).
  const file = async (folder: string, name: string) => (await frameio.localUpload(folder, name, 10)).file.id;
  return { emulator, frameio, file };
}

test('stacking: file + file → a new stack; a third version goes onto that stack; concurrent versions all land', async (t) => {
  const { emulator, frameio, file } = await client(t);
  const landing = createLanding(frameio);
  const root = emulator.rootFolderId;
  const v1 = await file(root, 'cut.mov');
  const v2 = await file(root, 'cut.mov');
  const stack = await landing.stack(root, 'cut.mov', v2);
  assert.ok(stack);
  const children = async (id: string) => {
    const out: { id: string; type: string }[] = [];
    for await (const c of frameio.listChildren(id)) out.push(c as { id: string; type: string });
    return out;
  };
  assert.deepEqual((await children(root)).map((c) => [c.id, c.type]), [[stack, 'version_stack']]);
  const v3 = await file(root, 'cut.mov');
  const v4 = await file(root, 'cut.mov');
  const [s3, s4] = await Promise.all([landing.stack(root, 'cut.mov', v3), landing.stack(root, 'cut.mov', v4)]);
  assert.equal(s3, stack);
  assert.equal(s4, stack);
  const token = emulator.issueAccessToken();
  const res = await fetch(`${emulator.apiUrl}/accounts/${emulator.accountId}/version_stacks/${stack}/children`, { headers: { authorization: `Bearer ${token}`, 'x-api-key': emulator.clientId } });
  const versions = ((await res.json()) as { data: { id: string }[] }).data.map((f) => f.id);
  assert.deepEqual(versions, [v1, v2, v3, v4], 'oldest first, the newest on top');
  assert.equal(await landing.stack(root, 'alone.mov', await file(root, 'alone.mov')), null, 'no namesake: nothing to stack on');
});

test('stillThere: the namesake must be the earlier import itself (file or its stack)', async (t) => {
  const { emulator, frameio, file } = await client(t);
  const landing = createLanding(frameio);
  const root = emulator.rootFolderId;
  const v1 = await file(root, 'a.mov');
  assert.equal((await landing.stillThere(root, 'a.mov', { frameioFileId: v1, versionStackId: null }))?.id, v1);
  assert.equal(await landing.stillThere(root, 'a.mov', { frameioFileId: 'someone-else', versionStackId: null }), undefined);
  await frameio.deleteFile(v1);
  assert.equal(await landing.stillThere(root, 'a.mov', { frameioFileId: v1, versionStackId: null }), undefined, 'deleted in Frame.io: not there');
});

test('destination resolver: project id → root folder once; mirrored tree created once for concurrent jobs; flat stays at the root', async (t) => {
  const { emulator, frameio } = await client(t);
  const mirror = new FolderMirror({ listChildren: (id, o) => frameio.listChildren(id, o), createFolder: (p, n, s) => frameio.createFolder(p, n, s) });
  let rootLookups = 0;
  const roots = new Map<string, Promise<string>>();
  const resolve = destinationResolver({
    mirror,
    root: (id) => {
      let p = roots.get(id);
      if (!p) {
        rootLookups++;
        p = frameio.resolveDestination(id).then((f) => f.id);
        roots.set(id, p);
      }
      return p;
    },
    layoutOf: (job) => (job.folderIndex === 1 ? 'flat' : 'mirror'),
  });
  const job = (relPath: string, folderIndex = 0) => ({ relPath, folderIndex, destination: emulator.projectId }) as Job;
  const creates = () => emulator.calls().filter((c) => c.operation === 'folders.create').length;
  const [a, b] = await Promise.all([resolve(job('ep101/reel2/sc1/a.mov')), resolve(job('ep101/reel2/sc1/b.mov'))]);
  assert.equal(a.folderId, b.folderId);
  assert.equal(a.folderPath, 'ep101/reel2/sc1');
  assert.equal(creates(), 3, 'ep101, reel2, sc1: each created once');
  assert.equal(rootLookups, 1);
  const flat = await resolve(job('ep101/reel2/sc1/a.mov', 1));
  assert.deepEqual(flat, { folderId: emulator.rootFolderId, folderPath: '' });
});
