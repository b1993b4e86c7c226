import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { startEmulator } from '../doubles/frameio/emulator.ts';
import { createFrameioClient } from '../../src/frameio/client.ts';
import { createRateLimiter } from '../../src/frameio/rate-limit.ts';
import { FolderMirror, folderSegments } from '../../src/upload/folders.ts';

test('folder segments of a relative directory', () => {
  assert.deepEqual(folderSegments(''), []);
  assert.deepEqual(folderSegments('.'), []);
  assert.deepEqual(folderSegments('ep101/reel2'), ['ep101', 'reel2']);
  assert.equal(folderSegments('x'.repeat(300))[0]!.length, 255);
});

test('mirrored folders are found or created once, even by concurrent jobs, and found across pages', async (t) => {
  const emulator = await startEmulator();
  t.after(() => emulator.close());
  const logger = pino({ level: 'silent' });
  const token = emulator.issueAccessToken();
  const client = createFrameioClient({
    apiUrl: emulator.apiUrl,
    accountId: emulator.accountId,
    clientId: emulator.clientId,
    tokens: Object.assign(new (await import('node:events')).EventEmitter(), {
      getAccessToken: async () => token,
      invalidate: () => undefined,
      isLost: () => false,
      waitRestored: async () => undefined,
      close: () => undefined,
    }),
    limiter: createRateLimiter({ maxRequestsPerSecond: Infinity }),
    logger,
  });
  // An existing folder far down a long listing (more than one page of children).
  for (let i = 0; i < 12; i++) await client.createFolder(emulator.rootFolderId, `filler-${i}`);
  const existing = await client.createFolder(emulator.rootFolderId, 'ep101');

  const mirror = new FolderMirror({
    listChildren: (id, o) => client.listChildren(id, { ...o, pageSize: 5 }),
    createFolder: (p, n, s) => client.createFolder(p, n, s),
  });
  const creates = () => emulator.calls().filter((c) => c.operation === 'folders.create').length;
  const before = creates();
  const ids = await Promise.all(Array.from({ length: 8 }, () => mirror.resolve(emulator.rootFolderId, 'ep101/reel2')));
  assert.equal(new Set(ids).size, 1, 'every job got the same folder');
  assert.equal(creates() - before, 1, 'only reel2 was created, once');
  const reel2 = (await client.getFolder(ids[0]!)) as { name: string; parent_id: string };
  assert.equal(reel2.name, 'reel2');
  assert.equal(reel2.parent_id, existing.id, 'the existing ep101 was found, not duplicated');
  assert.equal(await mirror.resolve(emulator.rootFolderId, ''), emulator.rootFolderId);
});
