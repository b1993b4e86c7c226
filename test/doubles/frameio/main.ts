#!/usr/bin/env node
/**
 * Runs the Frame.io emulator by hand (and for `npm run demo`): prints where it listens, writes a state file
 * other processes read to find it, and logs each import's progress on stdout until SIGINT/SIGTERM.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import pretty from 'pino-pretty';
import { registryDir } from '../tunnel-registry.ts';
import { startEmulator } from './emulator.ts';

const HELP = `Usage: node test/doubles/frameio/main.ts [options]

A local stand-in for Frame.io V4 and Adobe IMS, for tests and demos.

Options:
  --host HOST                 interface to listen on (default 127.0.0.1)
  --port PORT                 port (default 0: a free one)
  --registry DIR              tunnel hostname registry used as DNS for source URLs
                              (default $CLOUDFLARED_STANDIN_REGISTRY or <tmp>/cloudflared-standin-registry)
  --allow-loopback-sources    accept http://127.0.0.1 source URLs (the real service does not)
  --state-file PATH           write {url, apiUrl, imsTokenUrl, accountId, projectId, rootFolderId,
                              refreshToken, clientId, clientSecret, ...} as JSON once listening
  --client-id ID, --client-secret SECRET
  --access-token-ttl SECONDS  access token lifetime (default 3600)
  --json                      log JSON lines instead of pretty lines
  -h, --help                  show this help

Control API on the same port: GET /_emulator/ledger, /_emulator/calls, /_emulator/state;
POST /_emulator/faults (JSON), /_emulator/refresh-token.`;

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    registry: { type: 'string' },
    'allow-loopback-sources': { type: 'boolean' },
    'state-file': { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'access-token-ttl': { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const logger = values.json
  ? pino({ name: 'frameio-emulator' })
  : pino({ name: 'frameio-emulator' }, pretty({ colorize: process.stdout.isTTY, sync: true, ignore: 'pid,hostname' }));

const port = values.port === undefined ? 0 : Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be an integer from 0 to 65535, got ${values.port}`);
  process.exit(2);
}

const emulator = await startEmulator({
  host: values.host ?? '127.0.0.1',
  port,
  registryDir: values.registry ?? registryDir(),
  allowLoopbackSources: values['allow-loopback-sources'] ?? false,
  ...(values['client-id'] ? { clientId: values['client-id'] } : {}),
  ...(values['client-secret'] ? { clientSecret: values['client-secret'] } : {}),
  ...(values['access-token-ttl'] ? { accessTokenTtlSeconds: Number(values['access-token-ttl']) } : {}),
  logger,
});

const state = {
  url: emulator.url,
  apiUrl: emulator.apiUrl,
  imsTokenUrl: emulator.imsTokenUrl,
  imsAuthorizeUrl: emulator.imsAuthorizeUrl,
  accountId: emulator.accountId,
  workspaceId: emulator.workspaceId,
  projectId: emulator.projectId,
  rootFolderId: emulator.rootFolderId,
  refreshToken: emulator.issueRefreshToken(),
  clientId: emulator.clientId,
  clientSecret: emulator.clientSecret,
};
if (values['state-file']) {
  const tmp = `${values['state-file']}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, values['state-file']);
}
logger.info({ url: emulator.url, projectId: emulator.projectId, rootFolderId: emulator.rootFolderId }, 'Frame.io emulator listening');

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) process.exit(1);
  stopping = true;
  logger.info({ signal }, 'stopping');
  emulator.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
