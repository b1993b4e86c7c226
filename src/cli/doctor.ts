/**
 * `postflow doctor`: checks everything a working daemon needs, one ✔/✖ line each with how to fix it, and
 * exits 0 only when all pass. The last check is the real thing end to end: a file server and a tunnel are
 * started briefly, a tiny probe file is exposed, and it is fetched back through the public URL (a fresh quick
 * tunnel's hostname may not resolve for a while, so DNS failures are retried as "not resolvable yet").
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { Logger } from 'pino';
import type { Config } from '../config/load.ts';
import { isConfigInvalid, loadConfig } from '../config/load.ts';
import { describeError } from '../errors.ts';
import { createFrameioClient } from '../frameio/client.ts';
import { loginFromConfig, openFleetPool, usesFleetLogin } from '../frameio/login-from-config.ts';
import { createRateLimiter } from '../frameio/rate-limit.ts';
import { createFileServer } from '../server/public-server.ts';
import { createTunnel } from '../tunnel/supervisor.ts';
import { resolveCloudflared } from '../tunnel/spawn.ts';
import { parseCommandArgs } from './args.ts';
import { commandLogger } from './logging.ts';

export interface CheckResult {
  ok: boolean;
  name: string;
  detail: string;
  /** How to fix it (failures only). */
  fix?: string;
}

export interface DoctorDeps {
  logger: Logger;
  /** Fetch for the end-to-end probe through the public URL (tests resolve the hostname their own way). */
  probeFetch?: typeof fetch;
  /** Extra environment for cloudflared. */
  tunnelEnv?: Record<string, string>;
  /** /proc/mounts text; read from the machine when not given. */
  mounts?: string;
  platform?: NodeJS.Platform;
  /** How long the public URL may take to answer the probe (DNS of a fresh quick tunnel). Default 90 s. */
  probeTimeoutMs?: number;
  probeRetryMs?: number;
}

export const MIN_NODE_MAJOR = 24;

export function checkNode(version: string): CheckResult {
  const major = Number(version.replace(/^v/, '').split('.')[0]);
  return major >= MIN_NODE_MAJOR
    ? { ok: true, name: 'Node.js', detail: `${version}` }
    : { ok: false, name: 'Node.js', detail: `${version}, expected ${MIN_NODE_MAJOR} or later`, fix: 'run postflow through bin/postflow.js (it uses the Node 24 that `npm ci` installs) or put Node 24 on PATH' };
}

/** Pure: the mount a path lives on, from /proc/mounts text (longest mount point that contains it). */
export function mountOf(path: string, mounts: string): { mountPoint: string; fsType: string } | undefined {
  let best: { mountPoint: string; fsType: string } | undefined;
  for (const line of mounts.split('\n')) {
    const [, rawPoint, fsType] = line.split(' ');
    if (!rawPoint || !fsType) continue;
    const mountPoint = rawPoint.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const inside = mountPoint === '/' || path === mountPoint || path.startsWith(mountPoint.endsWith(sep) ? mountPoint : `${mountPoint}${sep}`);
    if (inside && (!best || mountPoint.length > best.mountPoint.length)) best = { mountPoint, fsType };
  }
  return best;
}

/** Pure: "looks like a LucidLink mount" or "a local folder", and why. */
export function describeMount(path: string, platform: NodeJS.Platform, mounts: string): string {
  if (platform === 'darwin') {
    return path.startsWith('/Volumes/') ? 'looks like a LucidLink mount (under /Volumes)' : 'a local folder (not under /Volumes, where LucidLink mounts filespaces)';
  }
  const m = mountOf(path, mounts);
  if (m && /lucid/i.test(m.fsType)) return `looks like a LucidLink mount (${m.fsType} at ${m.mountPoint})`;
  return `a local folder${m ? ` (${m.fsType} at ${m.mountPoint}, not a LucidLink mount)` : ''}`;
}

async function checkCloudflared(config: Config): Promise<CheckResult> {
  const name = 'cloudflared';
  let path: string;
  try {
    path = await resolveCloudflared(config.tunnel.cloudflaredPath, process.env.PATH);
  } catch (err) {
    return {
      ok: false,
      name,
      detail: describeError(err),
      fix: 'install it (macOS: `brew install cloudflared`; Debian/Ubuntu: Cloudflare\'s apt repository pkg.cloudflare.com) or set tunnel.cloudflaredPath',
    };
  }
  const r = await execa(path, ['--version'], { reject: false, timeout: 15_000 });
  const m = /cloudflared version (\S+)/.exec(`${r.stdout}\n${r.stderr}`);
  if (r.exitCode !== 0 || !m) {
    return { ok: false, name, detail: `${path} --version did not print a version (exit ${r.exitCode ?? r.signal})`, fix: 'reinstall cloudflared or point tunnel.cloudflaredPath at a working binary' };
  }
  return { ok: true, name, detail: `${m[1]} (${path})` };
}

async function checkFolder(path: string, i: number, platform: NodeJS.Platform, mounts: string): Promise<CheckResult> {
  const name = `watch folder ${i + 1}`;
  try {
    await access(path, constants.R_OK | constants.X_OK);
    const entries = await readdir(path);
    return { ok: true, name, detail: `${path} is readable (${entries.length} entries) — ${describeMount(path, platform, mounts)}` };
  } catch (err) {
    return {
      ok: false,
      name,
      detail: `${path}: ${describeError(err)}`,
      fix: 'mount the LucidLink filespace (`lucid status`) and give the postflow user read access to the folder',
    };
  }
}

async function checkStateDir(dir: string): Promise<CheckResult> {
  const probe = join(dir, `.doctor-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(probe, 'ok', { mode: 0o600 });
    await rm(probe);
    return { ok: true, name: 'state dir', detail: `${dir} is writable` };
  } catch (err) {
    return { ok: false, name: 'state dir', detail: `${dir}: ${describeError(err)}`, fix: `give the postflow user write access (chown postflow ${dir}; chmod 700 ${dir}) or set stateDir` };
  }
}

function checkPort(host: string, port: number): Promise<CheckResult> {
  const name = 'file-server port';
  if (port === 0) return Promise.resolve({ ok: true, name, detail: 'server.port is 0: any free port is taken at start' });
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      resolve({
        ok: false,
        name,
        detail: `${host}:${port} is not free (${err.code ?? err.message})`,
        fix: `is postflow already running (\`postflow status\`)? Otherwise free the port (\`ss -ltnp 'sport = :${port}'\` shows who holds it) or set server.port to another port or 0`,
      }),
    );
    srv.listen(port, host, () => srv.close(() => resolve({ ok: true, name, detail: `${host}:${port} is free` })));
  });
}

/** The DNS failures of a hostname that does not resolve (yet). */
function notResolvable(err: unknown): boolean {
  const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
  return code === 'ENOTFOUND' || code === 'EAI_AGAIN';
}

async function checkTunnel(config: Config, deps: DoctorDeps): Promise<CheckResult[]> {
  const scratch = await mkdtemp(join(config.stateDir, '.doctor-'));
  // Its own state dir: the tunnel's pid file must never point at a running daemon's cloudflared.
  const server = createFileServer({ host: config.server.host, port: 0, logger: deps.logger.child({ room: 'server' }) });
  let tunnel: ReturnType<typeof createTunnel> | undefined;
  const started = Date.now();
  try {
    const content = `postflow doctor ${randomBytes(12).toString('hex')}\n`;
    const file = join(scratch, 'probe.txt');
    await writeFile(file, content);
    const { origin } = await server.listen();
    const exposure = await server.expose({ jobId: 'doctor', path: file, name: 'probe.txt' });
    tunnel = createTunnel({
      mode: config.tunnel.mode,
      cloudflaredPath: config.tunnel.cloudflaredPath,
      originUrl: origin,
      namedToken: config.tunnel.token || undefined,
      namedHostname: config.tunnel.hostname || undefined,
      stateDir: scratch,
      logger: deps.logger.child({ room: 'tunnel' }),
      startTimeoutMs: config.tunnel.startTimeoutSeconds * 1000,
      ...(deps.tunnelEnv ? { env: deps.tunnelEnv } : {}),
    });
    await tunnel.start();
    const base = await tunnel.waitReady(AbortSignal.timeout(config.tunnel.startTimeoutSeconds * 1000 + 5_000)).catch((err: unknown) => {
      throw new Error(`not ready within ${config.tunnel.startTimeoutSeconds} s (${tunnel?.state().lastError ?? describeError(err)})`);
    });
    const upAfter = (Date.now() - started) / 1000;
    const up: CheckResult = { ok: true, name: 'tunnel', detail: `cloudflared ready at ${base} after ${upAfter.toFixed(1)} s` };
    const url = base + exposure.urlPath;
    const doFetch = deps.probeFetch ?? fetch;
    const deadline = Date.now() + (deps.probeTimeoutMs ?? 90_000);
    let last = '';
    let dnsWaits = 0;
    while (Date.now() < deadline) {
      try {
        const res = await doFetch(url, { signal: AbortSignal.timeout(15_000) });
        const body = await res.text();
        if (res.status === 200 && body === content) {
          const waited = dnsWaits > 0 ? `, after ${dnsWaits} "not resolvable yet"` : '';
          return [up, { ok: true, name: 'public URL', detail: `a probe file fetched through ${base} came back intact (${((Date.now() - started) / 1000).toFixed(1)} s${waited})` }];
        }
        last = `HTTP ${res.status}${res.status === 200 ? ' with other content' : ''}`;
      } catch (err) {
        if (notResolvable(err)) {
          dnsWaits++;
          last = `${new URL(base).hostname} not resolvable yet`;
        } else last = describeError((err as { cause?: unknown }).cause ?? err);
      }
      await sleep(deps.probeRetryMs ?? 2_000);
    }
    return [
      up,
      {
        ok: false,
        name: 'public URL',
        detail: `the probe did not come back through ${base} within ${Math.round((deps.probeTimeoutMs ?? 90_000) / 1000)} s (last: ${last})`,
        fix: 'a fresh quick tunnel can take a minute to resolve: run doctor again; if it persists, check outbound access to Cloudflare (UDP 7844 / TCP 443) and the cloudflared log lines above',
      },
    ];
  } catch (err) {
    return [
      {
        ok: false,
        name: 'tunnel',
        detail: `cloudflared did not come up: ${err instanceof Error ? err.message : String(err)}`,
        fix: 'check that cloudflared runs (`cloudflared --version`) and that outbound connections to Cloudflare are allowed; for a named tunnel check tunnel.token and tunnel.hostname',
      },
    ];
  } finally {
    await tunnel?.stop().catch(() => undefined);
    await server.close().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }
}

async function checkFrameio(config: Config, logger: Logger): Promise<CheckResult[]> {
  const f = config.frameio;
  const s2s = f.auth === 'client_credentials';
  // A fleet node's login is the one in PostgreSQL: checking the node's token file would redeem a token the
  // fleet may still need (see login-from-config.ts).
  const fleetPool = usesFleetLogin(config) ? openFleetPool(config, 'doctor', logger) : undefined;
  const tokens = (() => {
    try {
      return loginFromConfig(config, { logger, fleetPool });
    } catch (err) {
      return err as Error;
    }
  })();
  const loginFix = s2s ? 'check frameio.clientId and frameio.clientSecret of the Server-to-Server credential' : 'run `postflow auth login` (a running daemon picks the new login up by itself)';
  if (tokens instanceof Error) {
    await fleetPool?.end().catch(() => undefined);
    return [{ ok: false, name: 'Frame.io login', detail: describeError(tokens), fix: loginFix }];
  }
  const client = createFrameioClient({ apiUrl: f.apiUrl, accountId: f.accountId, clientId: f.clientId, tokens, limiter: createRateLimiter({ maxRequestsPerSecond: f.maxRequestsPerSecond }), logger, maxRetries: 2 });
  const out: CheckResult[] = [];
  try {
    try {
      const me = await client.me();
      const shared = fleetPool ? ' (the fleet\'s login, shared through PostgreSQL)' : '';
      out.push({ ok: true, name: 'Frame.io login', detail: `GET /v4/me: ${me.name || me.id}${me.email ? ` <${me.email}>` : ''}${shared}` });
    } catch (err) {
      out.push({ ok: false, name: 'Frame.io login', detail: describeError(err), fix: loginFix });
      for (const [i, folder] of config.watch.folders.entries()) {
        out.push({ ok: false, name: `destination ${i + 1}`, detail: `${folder.destination}: not checked (no working login)`, fix: 'fix the login first' });
      }
      return out;
    }
    for (const [i, folder] of config.watch.folders.entries()) {
      try {
        const dest = await client.resolveDestination(folder.destination);
        out.push({ ok: true, name: `destination ${i + 1}`, detail: `${folder.destination} → folder "${dest.name ?? dest.id}"` });
      } catch (err) {
        out.push({
          ok: false,
          name: `destination ${i + 1}`,
          detail: `${folder.destination}: ${describeError(err)}`,
          fix: `set watch.folders[${i}].destination to a folder or project id this login can see (it is the last part of the folder's URL in Frame.io)`,
        });
      }
    }
    return out;
  } finally {
    tokens.close();
    await fleetPool?.end().catch(() => undefined);
  }
}

/** Every check, in the order a person fixes things. */
export async function runDoctor(config: Config, deps: DoctorDeps): Promise<CheckResult[]> {
  const platform = deps.platform ?? process.platform;
  const mounts = deps.mounts ?? (platform === 'linux' ? await readFile('/proc/mounts', 'utf8').catch(() => '') : '');
  const results: CheckResult[] = [checkNode(process.version), await checkCloudflared(config)];
  for (const [i, folder] of config.watch.folders.entries()) results.push(await checkFolder(folder.path, i, platform, mounts));
  results.push(await checkStateDir(config.stateDir));
  results.push(await checkPort(config.server.host, config.server.port));
  results.push(...(await checkFrameio(config, deps.logger)));
  if (results[1]!.ok) results.push(...(await checkTunnel(config, deps)));
  else results.push({ ok: false, name: 'tunnel', detail: 'not started (cloudflared missing)', fix: 'install cloudflared first' });
  return results;
}

export function renderResults(results: readonly CheckResult[]): string {
  const lines = results.map((r) => `${r.ok ? '✔' : '✖'} ${r.name}: ${r.detail}${r.ok || !r.fix ? '' : `\n    fix: ${r.fix}`}`);
  const failed = results.filter((r) => !r.ok).length;
  lines.push(failed === 0 ? 'all checks passed' : `${failed} of ${results.length} checks failed`);
  return `${lines.join('\n')}\n`;
}

export async function doctorCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, {}, false);
  let config: Config;
  try {
    config = loadConfig({ argvConfigPath: values.config, env: process.env, cwd: process.cwd(), checkCredentials: false });
  } catch (err) {
    if (!isConfigInvalid(err)) throw err;
    const problems = err.problems;
    const results: CheckResult[] = [checkNode(process.version), ...problems.map((p) => ({ ok: false, name: 'config', detail: p, fix: 'edit the config file (`postflow config` shows the effective values)' }))];
    process.stdout.write(renderResults(results));
    return 1;
  }
  const { logger } = commandLogger(config, values, { level: 'error', destination: 2 });
  const results = await runDoctor(config, { logger });
  process.stdout.write(renderResults(results));
  return results.every((r) => r.ok) ? 0 : 1;
}
