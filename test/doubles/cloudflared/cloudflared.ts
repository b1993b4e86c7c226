/**
 * The cloudflared stand-in: the real binary's command line, stderr lines, metrics endpoints and signal
 * handling, with a loopback "edge" that forwards to the origin and a file registry in place of public DNS
 * (`../tunnel-registry.ts`). Fault switches come from the environment so one test run can make it fail to
 * start, crash, lose its edge connections or resolve late:
 *
 *   CLOUDFLARED_STANDIN_FAIL_START=1         log `failed to request quick Tunnel` and exit 1
 *   CLOUDFLARED_STANDIN_EXIT_AFTER_MS=N      crash (exit 1) N ms after start
 *   CLOUDFLARED_STANDIN_UNREADY_AFTER_MS=N   drop every edge connection after N ms (/ready 503, requests in
 *                                            flight broken, new ones answered 530)
 *   CLOUDFLARED_STANDIN_READY_DELAY_MS=N     register the edge connections N ms after start
 *   CLOUDFLARED_STANDIN_DNS_DELAY_MS=N       publish the hostname in the registry N ms after start
 *   CLOUDFLARED_STANDIN_HOSTNAME / _ORIGIN   a named tunnel's hostname and origin
 *   CLOUDFLARED_STANDIN_MAX_INFLIGHT=N       quick-tunnel cap on requests in flight (default 200)
 *   CLOUDFLARED_STANDIN_REGISTRY=DIR         where hostnames are published (see tunnel-registry.ts)
 * Signals: SIGUSR1 drops every edge connection now, SIGUSR2 reconnects them; SIGTERM/SIGINT shut down
 * gracefully, a second one at once. Like the real binary it does not watch its parent.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { registerHost, registryDir, unregisterHost } from '../tunnel-registry.ts';
import { flagString, parseArgs, parseGoDuration, UsageError, type StandinArgs } from './cli.ts';
import { startEdge, type Edge } from './edge.ts';
import { asciiBox, createLog, type StandinLog } from './log.ts';
import { createMetricsServer, listenMetrics } from './metrics.ts';

export const VERSION = '2025.8.1';
export const VERSION_LINE = `cloudflared version ${VERSION} (built 2025-08-20-1200 UTC)`;

const words = [
  'meter', 'analysts', 'wiki', 'graduated', 'harbor', 'velvet', 'quantum', 'maple', 'orbit', 'lantern', 'copper',
  'prairie', 'mosaic', 'summit', 'cedar', 'ripple', 'falcon', 'ember', 'glacier', 'tundra', 'saddle', 'beacon',
  'willow', 'canyon', 'pixel', 'ballot', 'shore', 'thicket', 'voyage', 'marble', 'alpine', 'cobalt', 'ferry',
  'gazette', 'jasmine', 'kernel', 'lobby', 'nectar', 'oyster', 'pepper', 'quartz', 'rodeo', 'sonnet', 'trophy',
  'umbrella', 'vendor', 'walnut', 'yields', 'zodiac', 'arcade', 'bishop', 'cradle', 'dialog', 'estates',
];
const colos = ['ams08', 'fra10', 'lhr01', 'cdg07', 'iad03', 'sjc08'];

function quickHostname(): string {
  const pick = () => words[randomInt(words.length)]!;
  return `${pick()}-${pick()}-${pick()}-${pick()}.trycloudflare.com`;
}

function envMs(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** A named-tunnel token is base64 JSON `{a, t, s}`; the stand-in also reads an optional `h` (hostname). */
function decodeToken(token: string): { tunnelId: string; hostname: string | undefined } | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as Record<string, unknown>;
    if (typeof parsed.t !== 'string' || typeof parsed.a !== 'string' || typeof parsed.s !== 'string') return undefined;
    return { tunnelId: parsed.t, hostname: typeof parsed.h === 'string' ? parsed.h : undefined };
  } catch {
    return undefined;
  }
}

/** Builds a token the stand-in accepts, for tests and the demo. */
export function standinToken(hostname: string, tunnelId: string = randomUUID()): string {
  return Buffer.from(JSON.stringify({ a: 'standin-account', t: tunnelId, s: 'c3RhbmRpbi1zZWNyZXQ=', h: hostname })).toString('base64');
}

interface Plan {
  named: boolean;
  hostname: string;
  origin: URL;
  tunnelId: string;
}

function fail(log: StandinLog, message: string, fields?: Record<string, string>): never {
  log('ERR', message, fields);
  process.exit(1);
}

function planTunnel(args: StandinArgs, env: NodeJS.ProcessEnv, log: StandinLog): Plan {
  const url = flagString(args, 'url');
  if (args.run) {
    const tokenFile = flagString(args, 'token-file');
    const token = flagString(args, 'token') ?? (tokenFile ? readFileSync(tokenFile, 'utf8').trim() : env.TUNNEL_TOKEN);
    if (!token) {
      fail(log, '"cloudflared tunnel run" requires the ID or name of the tunnel to run as the last command line argument or in the configuration file.');
    }
    const decoded = decodeToken(token);
    if (!decoded) fail(log, 'Provided Tunnel token is not valid.');
    const hostname = env.CLOUDFLARED_STANDIN_HOSTNAME ?? decoded.hostname;
    if (!hostname) fail(log, 'stand-in: no hostname for this named tunnel (set CLOUDFLARED_STANDIN_HOSTNAME or use standinToken())');
    const originText = url ?? env.CLOUDFLARED_STANDIN_ORIGIN;
    if (!originText) fail(log, 'stand-in: no ingress for this named tunnel (pass --url or set CLOUDFLARED_STANDIN_ORIGIN)');
    return { named: true, hostname, origin: parseOrigin(originText, log), tunnelId: decoded.tunnelId };
  }
  if (!url && !args.flags.has('hello-world')) {
    fail(log, 'Use `cloudflared tunnel run` to start tunnel <name>, or `cloudflared tunnel --url URL` for a quick Tunnel');
  }
  if (!flagString(args, 'config')) {
    const home = env.HOME ?? homedir();
    for (const name of ['config.yml', 'config.yaml']) {
      const path = join(home, '.cloudflared', name);
      if (existsSync(path)) {
        fail(log, `Quick Tunnels cannot be used while a configuration file is present: ${path}. Remove it, or pass --config with another file`);
      }
    }
  }
  return { named: false, hostname: quickHostname(), origin: parseOrigin(url ?? 'http://127.0.0.1:8080', log), tunnelId: randomUUID() };
}

function parseOrigin(text: string, log: StandinLog): URL {
  try {
    const u = new URL(text);
    if (u.protocol === 'http:') return u;
  } catch {
    // reported below
  }
  fail(log, `Unsupported origin URL ${text}: the stand-in forwards to http:// origins only`);
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  let args: StandinArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`Incorrect Usage: ${err.message}\n`);
    process.exit(1);
  }
  if (args.version) {
    process.stdout.write(`${VERSION_LINE}\n`);
    return;
  }
  if (args.command === 'help' || args.flags.has('help') || args.flags.has('h')) {
    process.stdout.write('NAME:\n   cloudflared - Cloudflare\'s command-line tool and agent (test stand-in)\n\nUSAGE:\n   cloudflared tunnel --url URL | cloudflared tunnel run --token TOKEN\n');
    return;
  }

  const log = createLog({ loglevel: flagString(args, 'loglevel'), logfile: flagString(args, 'logfile') });
  const protocolFlag = flagString(args, 'protocol') ?? 'auto';
  if (!['auto', 'quic', 'http2'].includes(protocolFlag)) fail(log, `Unknown protocol ${protocolFlag}, supported: auto, quic, http2`);
  const protocol = protocolFlag === 'auto' ? 'quic' : protocolFlag;
  let graceMs = 30_000;
  try {
    const grace = flagString(args, 'grace-period');
    if (grace !== undefined) graceMs = parseGoDuration(grace);
  } catch (err) {
    fail(log, (err as Error).message);
  }

  const plan = planTunnel(args, env, log);
  const colo = colos[randomInt(colos.length)]!;
  const connectorId = randomUUID();
  const registry = registryDir(env);

  if (!plan.named) {
    log('INF', 'Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee, are subject to the Cloudflare Online Services Terms of Use (https://www.cloudflare.com/website-terms/), and Cloudflare reserves the right to investigate your use of Tunnels for violations of such terms. If you intend to use Tunnels in production you should use a pre-created named tunnel by following: https://developers.cloudflare.com/cloudflare-one/connections/connect-apps');
    log('INF', 'Requesting new quick Tunnel on trycloudflare.com...');
    if (env.CLOUDFLARED_STANDIN_FAIL_START === '1') {
      fail(log, 'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: lookup api.trycloudflare.com: no such host');
    }
  } else if (env.CLOUDFLARED_STANDIN_FAIL_START === '1') {
    fail(log, 'Failed to get tunnel', { error: 'Unauthorized: Invalid tunnel secret' });
  }

  const edge: Edge = await startEdge({
    origin: plan.origin,
    hostname: plan.hostname,
    colo,
    maxInFlight: plan.named ? Infinity : (envMs(env, 'CLOUDFLARED_STANDIN_MAX_INFLIGHT') ?? 200),
  });
  edge.connected = false;

  if (plan.named) {
    log('INF', 'Starting tunnel', { tunnelID: plan.tunnelId });
  } else {
    for (const line of asciiBox([
      'Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):',
      `https://${plan.hostname}`,
    ])) log('INF', line);
  }
  log('INF', `Version ${VERSION} (Checksum standin)`);
  log('INF', `GOOS: ${process.platform}, GOVersion: go1.24.6, GoArch: ${process.arch === 'x64' ? 'amd64' : process.arch}`);
  log('INF', `Settings: map[ha-connections:4 protocol:${protocolFlag}${plan.named ? '' : ` url:${plan.origin.href.replace(/\/$/, '')}`}]`);
  log('INF', 'cloudflared will not automatically update if installed by a package manager.');
  log('INF', `Generated Connector ID: ${connectorId}`);
  log('INF', `Initial protocol ${protocol}`);

  const conns = [0, 1, 2, 3].map((i) => ({ index: i, id: randomUUID(), ip: `198.41.${i % 2 === 0 ? 192 : 200}.${randomInt(1, 255)}`, up: false }));
  const readyConnections = () => conns.filter((c) => c.up).length;
  const metrics = createMetricsServer({
    readyConnections,
    totalRequests: () => edge.totalRequests,
    inFlight: () => edge.inFlight(),
    connectorId,
    quickHostname: plan.named ? '' : plan.hostname,
  });
  let metricsAddress: string;
  try {
    metricsAddress = await listenMetrics(metrics, flagString(args, 'metrics'));
  } catch (err) {
    edge.close();
    fail(log, 'failed to start the metrics server', { error: (err as Error).message });
  }
  log('INF', `Starting metrics server on ${metricsAddress}/metrics`);
  if (plan.named) {
    log('INF', 'Updated to new configuration', {
      config: JSON.stringify({ ingress: [{ hostname: plan.hostname, service: plan.origin.origin }, { service: 'http_status:404' }] }),
      version: 1,
    });
  }

  const timers: NodeJS.Timeout[] = [];
  const later = (ms: number, fn: () => void) => timers.push(setTimeout(fn, ms));
  let retryTimer: NodeJS.Timeout | undefined;
  let published = false;
  let shuttingDown = false;

  const connectAll = () => {
    if (shuttingDown) return;
    clearInterval(retryTimer);
    for (const c of conns) {
      if (c.up) continue;
      c.up = true;
      log('INF', 'Registered tunnel connection', { connIndex: c.index, connection: c.id, event: 0, ip: c.ip, location: colo, protocol });
    }
    edge.connected = true;
  };
  const dropAll = () => {
    if (shuttingDown || !conns.some((c) => c.up)) return;
    edge.connected = false;
    edge.cutActive();
    for (const c of conns) {
      c.up = false;
      log('ERR', 'Serve tunnel error', { error: 'timeout: no recent network activity', connIndex: c.index, event: 0, ip: c.ip });
      log('WRN', 'Retrying connection in up to 1s', { connIndex: c.index, event: 0, ip: c.ip });
    }
    let wait = 1;
    retryTimer = setInterval(() => {
      wait = Math.min(wait * 2, 32);
      for (const c of conns) {
        log('ERR', 'Unable to establish connection with Cloudflare edge', { error: 'DialContext error: dial udp 198.41.192.7:7844: i/o timeout', connIndex: c.index, event: 0, ip: c.ip });
        log('WRN', `Retrying connection in up to ${wait}s`, { connIndex: c.index, event: 0, ip: c.ip });
      }
    }, 2000);
  };
  const publish = () => {
    if (shuttingDown) return;
    registerHost(registry, plan.hostname, edge.url);
    published = true;
  };
  const unpublish = () => {
    if (published) unregisterHost(registry, plan.hostname);
    published = false;
  };

  later(envMs(env, 'CLOUDFLARED_STANDIN_READY_DELAY_MS') ?? 0, connectAll);
  later(envMs(env, 'CLOUDFLARED_STANDIN_DNS_DELAY_MS') ?? 0, publish);
  const unreadyAfter = envMs(env, 'CLOUDFLARED_STANDIN_UNREADY_AFTER_MS');
  if (unreadyAfter !== undefined) later(unreadyAfter, dropAll);
  const exitAfter = envMs(env, 'CLOUDFLARED_STANDIN_EXIT_AFTER_MS');
  if (exitAfter !== undefined) {
    later(exitAfter, () => {
      log('ERR', 'stand-in: crashing as asked by CLOUDFLARED_STANDIN_EXIT_AFTER_MS');
      unpublish();
      process.exit(1);
    });
  }
  process.on('SIGUSR1', dropAll);
  process.on('SIGUSR2', connectAll);

  const shutdown = async (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      log('INF', 'Second signal received, exiting now', { signal });
      unpublish();
      process.exit(0);
    }
    shuttingDown = true;
    log('INF', `Initiating graceful shutdown due to signal ${signal === 'SIGINT' ? 'interrupt' : 'terminated'} ...`);
    for (const t of timers) clearTimeout(t);
    clearInterval(retryTimer);
    unpublish();
    await edge.drain(graceMs);
    for (const c of conns) {
      if (c.up) log('INF', 'Unregistered tunnel connection', { connIndex: c.index, event: 0, ip: c.ip });
      c.up = false;
    }
    edge.close();
    log('INF', 'Tunnel server stopped');
    metrics.close();
    metrics.closeAllConnections();
    log('INF', 'Metrics server stopped');
    process.exit(0);
  };
  process.on('SIGTERM', (s) => void shutdown(s));
  process.on('SIGINT', (s) => void shutdown(s));
  process.on('SIGHUP', () => log('INF', 'SIGHUP received, the stand-in has no configuration to reload'));
}
