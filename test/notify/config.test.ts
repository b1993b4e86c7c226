import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { watchFolders } from '../../src/config/checks.ts';
import { configForDisplay } from '../../src/config/describe.ts';
import { loadConfig } from '../../src/config/load.ts';

test('notify: webhook and slack URLs load per folder and are redacted by `postflow config`', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'postflow-notify-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'postflow.json');
  const slack = 'https://hooks.slack.com/services/T000/B000/abcdefSECRET';
  await writeFile(file, JSON.stringify({ watch: { folders: [{ path: dir, destination: 'F', notify: { webhook: 'https://example.com/hook?token=xyz', slack } }] }, stateDir: join(dir, 'state') }), { mode: 0o600 });
  const config = loadConfig({ argvConfigPath: file, env: {}, cwd: dir, checkCredentials: false });
  assert.deepEqual(config.watch.folders[0]!.notify, { webhook: 'https://example.com/hook?token=xyz', slack });
  const shown = JSON.stringify(configForDisplay(config));
  assert.doesNotMatch(shown, /SECRET|token=xyz/);
  assert.match(shown, /"notify":\{"webhook":"\[redacted\]","slack":"\[redacted\]"\}/);
});

test('notify: unknown keys and non-URLs are one problem each, without echoing the value', () => {
  const issues = watchFolders([{ path: '/w', destination: 'F', notify: { slak: 'https://x', webhook: 'hooks.example.com/SECRET' } }]);
  assert.deepEqual(issues.map((i) => i.at), ['[0].notify.slak', '[0].notify.webhook']);
  assert.match(issues[0]!.expected, /did you mean "slack"/);
  assert.doesNotMatch(JSON.stringify(issues), /SECRET/);
  assert.deepEqual(watchFolders([{ path: '/w', destination: 'F', notify: 'https://x' }]).map((i) => i.at), ['[0].notify']);
  assert.deepEqual(watchFolders([{ path: '/w', destination: 'F', notify: {} }]), []);
});
