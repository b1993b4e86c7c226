/**
 * Issue 5.5: after a full flow with rotating tokens and a named tunnel, no secret value appears in any log
 * line or in the state directory's files (the refresh-token file itself excepted: it is where the secret lives).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startStack, until } from './harness.ts';

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

test('no secret reaches the logs or the state directory', { timeout: 180_000 }, async (t) => {
  const hostname = `uploads-${randomBytes(3).toString('hex')}.studio.test`;
  // A named-tunnel token in cloudflared's format (base64 JSON), carrying the hostname for the stand-in.
  const tunnelToken = Buffer.from(JSON.stringify({ a: 'acct-secret-a', t: randomUUID(), s: randomBytes(32).toString('base64'), h: hostname })).toString('base64');
  const clientSecret = `cs-${randomBytes(18).toString('hex')}`;
  const stack = await startStack({
    emulator: { accessTokenTtlSeconds: 2, clientSecret },
    config: (c) => {
      c.frameio.clientSecret = clientSecret;
      c.tunnel = { ...c.tunnel, mode: 'named', token: tunnelToken, hostname };
      c.log = { level: 'trace' };
    },
  });
  t.after(() => stack.close());
  const daemon = stack.startDaemon();
  await daemon.waitFor((l) => l.event === 'started', 60_000, 'start');
  const names = ['a.mov', 'b.mp4', 'c.wav'];
  for (const n of names) await writeFile(join(stack.watchDir, n), randomBytes(1024 * 1024 + n.length));
  await until(() => stack.emulator.ledger().filter((e) => e.status === 'complete').length === names.length, 90_000, 'imports');
  // Let a token or two rotate while idle, then stop.
  await new Promise((r) => setTimeout(r, 2500));
  const exit = await daemon.stop('SIGTERM');
  assert.equal(exit.code, 0);

  const fileTokens = stack.emulator
    .ledger()
    .map((e) => (e.sourceUrl ? new URL(e.sourceUrl).pathname.split('/')[1] : undefined))
    .filter((s): s is string => typeof s === 'string' && s.length >= 20);
  assert.equal(fileTokens.length, names.length, 'one public URL token per import');
  assert.ok(stack.emulator.ledger().every((e) => e.sourceUrl?.startsWith(`https://${hostname}/`)), 'imports went through the named hostname');
  const imsTokens = stack.emulator.issuedTokens();
  assert.ok(imsTokens.length >= 3, 'tokens rotated during the run');
  const secrets = [clientSecret, tunnelToken, ...imsTokens, ...fileTokens];

  const logText = [...daemon.lines.map((l) => JSON.stringify(l)), ...daemon.stderr].join('\n');
  assert.ok(daemon.lines.length > 20, 'the daemon logged');
  assert.ok(logText.includes('/<redacted>/a.mov') || logText.includes('<redacted>'), 'public URLs are logged with the token cut out');
  const tokenFile = join(stack.stateDir, 'refresh-token');
  const stateFiles = (await filesUnder(stack.stateDir)).filter((f) => !f.startsWith(tokenFile));
  assert.ok(stateFiles.some((f) => f.endsWith('postflow.db')), 'the job store is among the files searched');
  const found: string[] = [];
  for (const s of secrets) {
    if (logText.includes(s)) found.push(`log: ${s.slice(0, 6)}…`);
    for (const f of stateFiles) {
      const text = (await readFile(f)).toString('latin1');
      if (text.includes(s)) found.push(`${f}: ${s.slice(0, 6)}…`);
    }
  }
  assert.deepEqual(found, [], 'secrets found');
});
