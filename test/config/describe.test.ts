import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configForDisplay, schemaDocs } from '../../src/config/describe.ts';
import { loadConfig } from '../../src/config/load.ts';
import { SENSITIVE_KEYS } from '../../src/config/schema.ts';

const dir = mkdtempSync(join(tmpdir(), 'postflow-describe-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('configForDisplay hides every secret that is set and leaves the config itself untouched', () => {
  mkdirSync(join(dir, 'w'));
  const config = loadConfig({
    checkCredentials: false,
    cwd: dir,
    env: {
      HOME: dir,
      POSTFLOW_STATE_DIR: join(dir, 'state'),
      POSTFLOW_WATCH_FOLDERS: JSON.stringify([{ path: join(dir, 'w'), destination: 'F' }]),
      POSTFLOW_FRAMEIO_CLIENT_SECRET: 'client-secret-value-1',
      POSTFLOW_TUNNEL_TOKEN: 'tunnel-token-value-2',
    },
  });
  const shown = configForDisplay(config);
  const text = JSON.stringify(shown);
  assert.ok(!text.includes('client-secret-value-1') && !text.includes('tunnel-token-value-2'));
  assert.deepEqual((shown.frameio as Record<string, unknown>).clientSecret, '[redacted]');
  assert.deepEqual((shown.tunnel as Record<string, unknown>).token, '[redacted]');
  assert.equal(config.frameio.clientSecret, 'client-secret-value-1');
  assert.equal((shown.watch as { folders: { destination: string }[] }).folders[0]?.destination, 'F');
});

test('schemaDocs marks exactly the sensitive keys and gives every key an env variable', () => {
  const rows = schemaDocs();
  assert.deepEqual(rows.filter((r) => r.sensitive).map((r) => r.key), [...SENSITIVE_KEYS]);
  assert.deepEqual([...SENSITIVE_KEYS].sort(), ['frameio.clientSecret', 'store.secretKey', 'store.url', 'tunnel.token']);
  for (const r of rows.filter((x) => !x.key.includes('[]'))) {
    assert.match(r.env, /^POSTFLOW_[A-Z0-9_]+$/, r.key);
    assert.ok(r.doc.length > 10, `${r.key} is documented`);
  }
  const envs = rows.map((r) => r.env).filter(Boolean);
  assert.equal(new Set(envs).size, envs.length, 'env variables are unique');
  for (const e of ['POSTFLOW_FRAMEIO_API_URL', 'POSTFLOW_IMS_TOKEN_URL', 'POSTFLOW_CLOUDFLARED_PATH', 'POSTFLOW_STATE_DIR', 'POSTFLOW_LOG_LEVEL', 'POSTFLOW_TUNNEL_TOKEN']) {
    assert.ok(envs.includes(e), e);
  }
});
