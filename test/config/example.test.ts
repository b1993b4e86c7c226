import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isConfigInvalid, loadConfig } from '../../src/config/load.ts';

const example = fileURLToPath(new URL('../../config/postflow.example.json', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'postflow-example-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the example config passes the schema; only the machine-specific paths need changing', () => {
  const watch = join(dir, 'exports');
  mkdirSync(watch);
  const c = loadConfig({
    argvConfigPath: example,
    checkCredentials: false,
    env: { HOME: dir, POSTFLOW_STATE_DIR: join(dir, 'state'), POSTFLOW_WATCH_FOLDERS: JSON.stringify([{ path: watch, destination: 'FOLDER-ID' }]) },
  });
  assert.equal(c.watch.folders[0]?.path, watch);
  assert.equal(c.frameio.clientId, 'CLIENT-ID');
  assert.equal(c.frameio.refreshTokenFile, '/var/lib/postflow/refresh-token');

  // Unchanged, it fails only on what the operator must adapt: the mount (and the state dir when not root).
  try {
    loadConfig({ argvConfigPath: example, checkCredentials: false, env: { HOME: dir, POSTFLOW_STATE_DIR: join(dir, 'state') } });
    assert.fail('the example watch folder does not exist here');
  } catch (err) {
    assert.ok(isConfigInvalid(err));
    assert.deepEqual(err.problems, ['watch.folders[0].path: "/Volumes/studio/exports" does not exist — expected a readable folder (is the LucidLink filespace mounted?)']);
  }
  // The per-folder keys are all spelled out in the example, so an operator sees every choice.
  const raw = JSON.parse(readFileSync(example, 'utf8')) as { watch: { folders: Record<string, unknown>[] } };
  assert.deepEqual(Object.keys(raw.watch.folders[0]!).sort(), ['afterUpload', 'destination', 'exclude', 'include', 'layout', 'onExisting', 'path', 'upload']);
});
