import assert from 'node:assert/strict';
import { test } from 'node:test';
import { namedTunnelArgs, quickTunnelArgs } from '../../src/tunnel/args.ts';
import { isOurCloudflared } from '../../src/tunnel/pidfile.ts';

const base = { originUrl: 'http://127.0.0.1:8080', metricsAddress: '127.0.0.1:40001', configPath: '/state/cloudflared.yml' };

test('quick tunnel argv: tunnel flags with the origin, no run subcommand', () => {
  assert.deepEqual(quickTunnelArgs(base), [
    'tunnel', '--no-autoupdate', '--config', '/state/cloudflared.yml', '--metrics', '127.0.0.1:40001', '--loglevel', 'info',
    '--url', 'http://127.0.0.1:8080',
  ]);
  assert.deepEqual(quickTunnelArgs({ ...base, protocol: 'http2', gracePeriodMs: 30_000 }).slice(8, 12), ['--protocol', 'http2', '--grace-period', '30s']);
});

test('named tunnel argv: tunnel flags before `run`, and no token anywhere', () => {
  const argv = namedTunnelArgs({ ...base, protocol: 'quic' });
  assert.equal(argv[0], 'tunnel');
  assert.equal(argv.at(-1), 'run');
  assert.ok(argv.indexOf('--metrics') < argv.indexOf('run'));
  assert.ok(argv.indexOf('--url') < argv.indexOf('run'));
  assert.equal(argv.includes('--token'), false);
});

test('isOurCloudflared: only a tunnel started with this state dir’s config file', () => {
  const ours = ['/usr/bin/cloudflared', ...quickTunnelArgs(base)];
  assert.equal(isOurCloudflared(ours, '/state/cloudflared.yml'), true);
  assert.equal(isOurCloudflared(['node', '/x/cloudflared', ...namedTunnelArgs(base)], '/state/cloudflared.yml'), true);
  assert.equal(isOurCloudflared(ours, '/other/cloudflared.yml'), false);
  assert.equal(isOurCloudflared(['/usr/bin/cloudflared', 'tunnel', 'run', '--token', 'x'], '/state/cloudflared.yml'), false);
  assert.equal(isOurCloudflared(['vim', '--config', '/state/cloudflared.yml'], '/state/cloudflared.yml'), false);
});
