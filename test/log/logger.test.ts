import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, REDACT_PATHS } from '../../src/log/logger.ts';
import { SecretSet } from '../../src/log/redact.ts';

const TOKEN = 'Zx8Qw2Er4Ty6Ui8Op0As2D';

function collect(opts: { pretty?: boolean; secrets?: SecretSet; level?: string } = {}) {
  const lines: string[] = [];
  const logger = createLogger({
    level: opts.level ?? 'info',
    pretty: opts.pretty ?? false,
    destination: { write: (s: string) => void lines.push(s) },
    ...(opts.secrets ? { secrets: opts.secrets } : {}),
  });
  return { logger, lines, text: () => lines.join('') };
}

test('JSON lines carry ISO time, pid, hostname, level and the child bindings', () => {
  const { logger, lines } = collect();
  logger.child({ job: 7, file: '/w/a.mov' }).info({ percent: 10 }, 'progress');
  assert.equal(lines.length, 1);
  const rec = JSON.parse(lines[0]!);
  assert.equal(rec.msg, 'progress');
  assert.equal(rec.job, 7);
  assert.equal(rec.file, '/w/a.mov');
  assert.equal(rec.pid, process.pid);
  assert.equal(typeof rec.hostname, 'string');
  assert.match(rec.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(rec.level, 30);
});

test('secret fields are censored in the emitted line', () => {
  const { logger, text } = collect();
  logger.info(
    {
      accessToken: 'at-value-1',
      refreshToken: 'rt-value-2',
      ims: { access_token: 'at-value-3', refresh_token: 'rt-value-4' },
      headers: { authorization: 'Bearer at-value-5' },
      clientSecret: 'cs-value-6',
      token: 'tok-value-7',
      tunnelToken: 'tt-value-8',
      config: { frameio: { clientSecret: 'cs-value-9' }, tunnel: { token: 'tt-value-10' } },
      frameio: { clientSecret: 'cs-value-11' },
    },
    'auth',
  );
  const out = text();
  for (let i = 1; i <= 11; i++) assert.ok(!out.includes(`value-${i}"`), `value-${i} leaked: ${out}`);
  assert.equal(JSON.parse(out).ims.access_token, '[redacted]');
  assert.ok(REDACT_PATHS.includes('frameio.clientSecret') && REDACT_PATHS.includes('tunnel.token'));
});

test('public file URLs are logged with the token cut out, in fields, messages and errors', () => {
  const { logger, lines } = collect();
  const url = `https://calm-words.trycloudflare.com/${TOKEN}/cut.mov`;
  logger.info({ url, sourceUrl: url, publicUrl: url }, `exposed ${url}`);
  logger.error({ err: new Error(`fetch failed: ${url}`) }, 'import failed');
  const text = lines.join('');
  assert.ok(!text.includes(TOKEN), text);
  const first = JSON.parse(lines[0]!);
  assert.equal(first.publicUrl, 'https://calm-words.trycloudflare.com/<redacted>/cut.mov');
  assert.equal(first.msg, 'exposed https://calm-words.trycloudflare.com/<redacted>/cut.mov');
  assert.match(JSON.parse(lines[1]!).err.message, /<redacted>\/cut\.mov$/);
});

test('secret values known at run time are scrubbed from anywhere in the line', () => {
  const secrets = new SecretSet();
  const { logger, text } = collect({ secrets });
  secrets.add('eyJhbGciOiJSUzI1NiJ9.access');
  logger.warn({ detail: 'IMS said: token eyJhbGciOiJSUzI1NiJ9.access expired' }, 'refresh');
  logger.error(new Error('bad body client_secret=eyJhbGciOiJSUzI1NiJ9.access'));
  assert.ok(!text().includes('eyJhbGciOiJSUzI1NiJ9.access'));
  assert.equal(text().split('[redacted]').length - 1, 4, 'detail, then msg, err.message and err.stack');
});

test('pretty mode writes readable lines, redacted as well', () => {
  const { logger, text } = collect({ pretty: true });
  logger.info({ publicUrl: `https://h.example/${TOKEN}/a.mov`, accessToken: 'at-pretty-1' }, 'hello');
  const out = text();
  assert.match(out, /INFO.*hello/);
  assert.ok(!out.includes(TOKEN) && !out.includes('at-pretty-1'));
  assert.throws(() => JSON.parse(out));
});

test('the level filters lines', () => {
  const { logger, lines } = collect({ level: 'warn' });
  logger.info('quiet');
  logger.warn('loud');
  assert.equal(lines.length, 1);
});

test('a file descriptor destination writes real lines (stderr for one-shot commands)', async () => {
  const { spawnSync } = await import('node:child_process');
  const script = `const { createLogger } = await import(${JSON.stringify(new URL('../../src/log/logger.ts', import.meta.url).href)});
createLogger({ level: 'info', pretty: false, destination: 2 }).info({ publicUrl: 'https://h.example/${TOKEN}/a.mov' }, 'to stderr');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.stdout, '');
  const rec = JSON.parse(r.stderr.trim());
  assert.equal(rec.msg, 'to stderr');
  assert.equal(rec.publicUrl, 'https://h.example/<redacted>/a.mov');
});
