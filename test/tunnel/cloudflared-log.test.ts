import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLine, recognise } from '../../src/tunnel/cloudflared-log.ts';

test('parseLine splits time, level, message and key=value fields (quoted values unescaped)', () => {
  assert.deepEqual(
    parseLine('2025-08-20T12:00:01Z INF Registered tunnel connection connIndex=0 connection=5f4c-11 event=0 ip=198.41.192.7 location=ams08 protocol=quic'),
    {
      time: '2025-08-20T12:00:01Z',
      level: 'INF',
      message: 'Registered tunnel connection',
      fields: { connIndex: '0', connection: '5f4c-11', event: '0', ip: '198.41.192.7', location: 'ams08', protocol: 'quic' },
    },
  );
  assert.deepEqual(parseLine('2025-08-20T12:00:02Z ERR Serve tunnel error error="timeout: no recent \\"network\\" activity" connIndex=3'), {
    time: '2025-08-20T12:00:02Z',
    level: 'ERR',
    message: 'Serve tunnel error',
    fields: { error: 'timeout: no recent "network" activity', connIndex: '3' },
  });
  // A message with colons and brackets but no trailing fields stays whole.
  assert.equal(parseLine('2025-08-20T12:00:00Z INF Settings: map[ha-connections:4 protocol:quic]\n').message, 'Settings: map[ha-connections:4 protocol:quic]');
  // Old logrus-format releases.
  assert.deepEqual(parseLine('ERROR[2020-11-17T19:43:42Z] failed to request quick Tunnel'), {
    time: '2020-11-17T19:43:42Z', level: 'ERR', message: 'failed to request quick Tunnel', fields: {},
  });
  assert.deepEqual(parseLine('some panic text'), { time: null, level: null, message: 'some panic text', fields: {} });
});

const cases: Array<[string, ReturnType<typeof recognise>]> = [
  ['2025-08-20T12:00:00Z INF |  https://meter-analysts-wiki-graduated.trycloudflare.com                                    |',
    { kind: 'quick-url', url: 'https://meter-analysts-wiki-graduated.trycloudflare.com' }],
  ['2025-08-20T12:00:00Z INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |', { kind: 'other' }],
  ['2025-08-20T12:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...', { kind: 'other' }],
  ['2025-08-20T12:00:01Z INF Registered tunnel connection connIndex=2 connection=ab event=0 ip=198.41.200.13 location=fra10 protocol=http2',
    { kind: 'registered', connIndex: 2, location: 'fra10', protocol: 'http2' }],
  ['2025-08-20T12:00:01Z INF Unregistered tunnel connection connIndex=1 event=0 ip=198.41.200.13', { kind: 'unregistered', connIndex: 1 }],
  ['2025-08-20T12:00:00Z ERR failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: i/o timeout',
    { kind: 'quick-failed', reason: 'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: i/o timeout' }],
  ['2025-08-20T12:00:00Z ERR Error requesting quick Tunnel error="failed to request quick Tunnel: 429 Too Many Requests"',
    { kind: 'quick-failed', reason: 'Error requesting quick Tunnel: failed to request quick Tunnel: 429 Too Many Requests' }],
  ['2025-08-20T12:00:00Z INF Starting metrics server on 127.0.0.1:20241/metrics', { kind: 'metrics', address: '127.0.0.1:20241' }],
  ['2025-08-20T12:00:00Z INF Starting metrics server on [::1]:43117/metrics', { kind: 'metrics', address: '[::1]:43117' }],
  ['2025-08-20T12:00:05Z ERR Serve tunnel error error="timeout: no recent network activity" connIndex=0 event=0 ip=198.41.192.7',
    { kind: 'connection-error', connIndex: 0, error: 'timeout: no recent network activity' }],
  ['2025-08-20T12:00:05Z ERR Unable to establish connection with Cloudflare edge error="DialContext error" connIndex=1',
    { kind: 'connection-error', connIndex: 1, error: 'DialContext error' }],
  ['2025-08-20T12:00:05Z WRN Retrying connection in up to 2s connIndex=0 event=0 ip=198.41.192.7',
    { kind: 'retrying', connIndex: 0, message: 'Retrying connection in up to 2s' }],
  ['2025-08-20T12:00:05Z INF Retrying connection in up to 4s connIndex=3 event=0', { kind: 'retrying', connIndex: 3, message: 'Retrying connection in up to 4s' }],
  ['2025-08-20T12:00:05Z INF Starting tunnel tunnelID=0c7c1c5e-9d86-4a59-8a8f-f0b4c0f0c1d1', { kind: 'other' }],
  ['2025-08-20T12:00:05Z WRN Your version 2023.1.0 is outdated', { kind: 'other' }],
];

for (const [line, expected] of cases) {
  test(`recognise: ${line.slice(21, 90)}`, () => {
    assert.deepEqual(recognise(parseLine(line)), expected);
  });
}
