/** docs/operations.md quotes log lines so people can grep for them: each quote must still be what the code logs. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../e2e/harness.ts';

const doc = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
const source = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts'))
  .map((f) => readFileSync(join(ROOT, 'src', f), 'utf8'))
  .join('\n');

const QUOTED = [
  'start-up failed: ',
  'PF_ERR_TUNNEL_CLOUDFLARED_MISSING',
  'cloudflared was not found at ',
  'PF_ERR_SERVER_LISTEN',
  'expected a free port: set server.port to another one or stop the process using it',
  'tunnel ready at ',
  'Frame.io reported the import of file ',
  'cloudflared restart #',
  'tunnel lost its edge connections; waiting for cloudflared to reconnect',
  'tunnel URL changed: re-issuing the import on the new URL',
  'uploads paused until a new Frame.io login is stored',
  'Frame.io login restored: uploads resume',
  'the login was revoked or expired',
  'watch folder is gone; keeping its files and retrying every poll interval',
  'no bytes were pulled for ',
  'already present recorded as baseline',
  'PF_ERR_NOTIFY_REJECTED',
  'PF_ERR_NOTIFY_GAVE_UP',
];

test('every log line docs/operations.md quotes is one the code writes', () => {
  for (const q of QUOTED) {
    assert.ok(doc.includes(q), `docs/operations.md no longer quotes ${JSON.stringify(q)}`);
    assert.ok(source.includes(q), `src/ no longer writes ${JSON.stringify(q)} (update docs/operations.md)`);
  }
});

test('the doc covers service install on both systems, upgrade, backup, logs and each troubleshooting case', () => {
  for (const heading of ['### Linux (systemd)', '### macOS (launchd)', '## Upgrade', '## Back up the state directory', '## Logs', '### cloudflared missing', '### Port busy', '### Tunnel slow to resolve at first', '### Tunnel restarting', '### Frame.io login expired or revoked', '### A file is stuck']) {
    assert.ok(doc.includes(`\n${heading}\n`), heading);
  }
  assert.match(doc, /journalctl -u postflow .*\| jq/);
  assert.match(doc, /pino-pretty/);
});
