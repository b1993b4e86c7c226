/**
 * End-to-end harness: the real daemon (through its bin, as a service manager starts it) against the Frame.io
 * emulator and the cloudflared stand-in, on real temp folders. Tests read the daemon's JSON log lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startEmulator, type Emulator, type EmulatorOptions } from '../doubles/frameio/emulator.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'postflow.js');
export const CLOUDFLARED = join(ROOT, 'test', 'doubles', 'cloudflared', 'cloudflared');

export type LogLine = Record<string, unknown> & { msg?: string; event?: string; level?: number | string };

export interface Stack {
  dir: string;
  watchDir: string;
  stateDir: string;
  registry: string;
  configFile: string;
  emulator: Emulator;
  config: Record<string, unknown>;
  startDaemon(opts?: { args?: string[]; env?: Record<string, string> }): DaemonProcess;
  close(): Promise<void>;
}

export interface DaemonProcess {
  child: ChildProcess;
  lines: LogLine[];
  stderr: string[];
  waitFor(pred: (l: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startStack(opts: {
  emulator?: EmulatorOptions;
  config?: (c: Record<string, any>) => void;
} = {}): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), 'postflow-e2e-'));
  const watchDir = join(dir, 'watch');
  const stateDir = join(dir, 'state');
  const registry = join(dir, 'registry');
  await import('node:fs/promises').then((fs) => Promise.all([fs.mkdir(watchDir), fs.mkdir(stateDir, { mode: 0o700 })]));
  const emulator = await startEmulator({ registryDir: registry, ...opts.emulator });
  const refreshTokenFile = join(stateDir, 'refresh-token');
  await writeFile(refreshTokenFile, emulator.issueRefreshToken(), { mode: 0o600 });
  const config: Record<string, any> = {
    watch: { folders: [{ path: watchDir, destination: emulator.projectId }], stabilitySeconds: 2, pollIntervalSeconds: 0.5 },
    frameio: {
      apiUrl: emulator.apiUrl,
      accountId: emulator.accountId,
      imsTokenUrl: emulator.imsTokenUrl,
      clientId: 'postflow-test-client',
      clientSecret: 'test-secret',
      refreshTokenFile,
    },
    tunnel: { mode: 'quick', cloudflaredPath: CLOUDFLARED },
    server: { host: '127.0.0.1', port: 0 },
    workers: 4,
    stateDir,
    log: { level: 'debug' },
  };
  opts.config?.(config);
  const configFile = join(dir, 'postflow.json');
  await writeFile(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });
  const daemons: DaemonProcess[] = [];

  return {
    dir,
    watchDir,
    stateDir,
    registry,
    configFile,
    emulator,
    config,
    startDaemon(o = {}) {
      const d = spawnDaemon(['run', '--config', configFile, ...(o.args ?? [])], { CLOUDFLARED_STANDIN_REGISTRY: registry, ...o.env });
      daemons.push(d);
      return d;
    },
    async close() {
      for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
      await Promise.all(daemons.map((d) => d.exited));
      // cloudflared does not watch its parent: after a SIGKILLed daemon its tunnel lives on (the next daemon
      // start would kill it through the pid file; a test that ends here must do it itself).
      await killRecordedCloudflared(stateDir);
      await emulator.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function spawnDaemon(args: string[], env: Record<string, string>): DaemonProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      lines.push({ msg: line, raw: true });
    }
    for (const w of waiters) w();
  });
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
    for (const w of waiters) w();
  });

  return {
    child,
    lines,
    stderr,
    exited,
    waitFor(pred, timeoutMs = 60_000, what = 'a log line') {
      return new Promise((res, rej) => {
        const check = () => {
          const hit = lines.find(pred);
          if (hit) {
            done();
            res(hit);
          } else if (hasExited) {
            done();
            rej(new Error(`daemon exited while waiting for ${what}; stderr: ${stderr.slice(-5).join(' | ')}; last lines: ${lines.slice(-5).map((l) => l.msg).join(' | ')}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          rej(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last lines: ${lines.slice(-8).map((l) => `${String(l.event ?? '')} ${String(l.msg ?? '')}`).join(' | ')}; stderr: ${stderr.slice(-5).join(' | ')}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (!hasExited) child.kill(signal);
      return exited;
    },
  };
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Descendant pids of `pid` (Linux /proc), to prove no child outlives the daemon. */
export async function descendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  const walk = async (p: number) => {
    let text = '';
    try {
      const { readdir } = await import('node:fs/promises');
      for (const task of await readdir(`/proc/${p}/task`)) {
        text += ` ${await readFile(`/proc/${p}/task/${task}/children`, 'utf8').catch(() => '')}`;
      }
    } catch {
      return;
    }
    for (const c of text.split(/\s+/).filter(Boolean).map(Number)) {
      out.push(c);
      await walk(c);
    }
  };
  await walk(pid);
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string, stepMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Kills the cloudflared recorded in a state dir's pid file, if it still runs. */
export async function killRecordedCloudflared(stateDir: string): Promise<void> {
  const pid = Number((await readFile(join(stateDir, 'cloudflared.pid'), 'utf8').catch(() => '')).trim().split(/\s+/)[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes(stateDir)) return;
  process.kill(pid, 'SIGKILL');
  await until(() => !isAlive(pid), 5000, `cloudflared ${pid} to exit`);
}

export interface Fleet {
  /** Node 1: its emulator, watch folder and config; the other nodes copy that config. */
  stack: Stack;
  /** The PostgreSQL database the nodes share (`store.url`). */
  url: string;
  /** Each node's config file, node 1 first. */
  configs: string[];
  /** Every node's daemon, started (its `started` line seen), node 1 first. */
  daemons: DaemonProcess[];
  /** When the daemons were spawned (Date.now()). */
  startedAt: number;
}

/**
 * `size` real daemons on one watch folder sharing one PostgreSQL database (a throwaway cluster): node 1 is a
 * startStack, the others run its config with a state dir of their own. `login: "own"` gives every node its
 * own refresh token; `"copied"` gives them a copy of node 1's token file (one login for the fleet). All of
 * it is stopped after the test — `t.after` hooks run in order, so a test's own hook registered before this
 * call runs first.
 */
export async function startFleet(
  t: { after(fn: () => unknown): void },
  opts: { database: string; login: 'own' | 'copied'; size?: number; store?: Record<string, unknown>; emulator?: EmulatorOptions },
): Promise<Fleet> {
  const { startPgCluster } = await import('../jobs/pg-cluster.ts');
  const cluster = await startPgCluster();
  const extra: { stateDir: string; d?: DaemonProcess }[] = [];
  let stack: Stack | undefined;
  t.after(async () => {
    for (const e of extra) {
      if (e.d && e.d.child.exitCode === null && e.d.child.signalCode === null) e.d.child.kill('SIGKILL');
      await e.d?.exited;
      await killRecordedCloudflared(e.stateDir);
    }
    await stack?.close();
    await cluster.stop();
  });
  const url = await cluster.createDatabase(opts.database);
  stack = await startStack({
    ...(opts.emulator ? { emulator: opts.emulator } : {}),
    config: (c) => {
      c.store = { url, ...opts.store };
      c.watch.stabilitySeconds = 1;
      c.watch.pollIntervalSeconds = 0.5;
      c.upload = { statusPollSeconds: 0.5 };
      c.frameio.maxRequestsPerSecond = 50;
      c.log = { level: 'info' };
    },
  });
  const configs = [stack.configFile];
  const firstTokenFile = String((stack.config.frameio as Record<string, unknown>).refreshTokenFile);
  for (let n = 2; n <= (opts.size ?? 3); n++) {
    const stateDir = join(stack.dir, `state-${n}`);
    await mkdir(stateDir, { mode: 0o700 });
    const refreshTokenFile = join(stateDir, 'refresh-token');
    if (opts.login === 'copied') await copyFile(firstTokenFile, refreshTokenFile);
    else await writeFile(refreshTokenFile, stack.emulator.issueRefreshToken(), { mode: 0o600 });
    const cfg = structuredClone(stack.config);
    cfg.stateDir = stateDir;
    (cfg.frameio as Record<string, unknown>).refreshTokenFile = refreshTokenFile;
    const file = join(stack.dir, `postflow-${n}.json`);
    await writeFile(file, JSON.stringify(cfg, null, 2), { mode: 0o600 });
    configs.push(file);
    extra.push({ stateDir });
  }
  const startedAt = Date.now();
  const registry = stack.registry;
  const daemons = [stack.startDaemon(), ...extra.map((e, i) => (e.d = spawnDaemon(['run', '--config', configs[i + 1]!], { CLOUDFLARED_STANDIN_REGISTRY: registry })))];
  await Promise.all(daemons.map((d, i) => d.waitFor((l) => l.event === 'started', 60_000, `daemon ${i + 1} to start`)));
  return { stack, url, configs, daemons, startedAt };
}
