/**
 * postflow's public file server alone in a child process, so that its RSS and event-loop delay are its
 * own and the bench's bookkeeping does not share its event loop. Spawned with an IPC channel by
 * `startServerChild()`; it exposes the given files (token checks and coverage counting as in the daemon)
 * and answers `stats` messages with its peak RSS and event-loop delay since the last `reset`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { createFileServer } from '../../src/server/public-server.ts';
import type { Exposure } from '../../src/server/public-server.ts';
import { loadSendfile } from '../../src/server/zero-copy.ts';

export interface ServerStats {
  rssMb: number;
  rssPeakMb: number;
  heapUsedMb: number;
  externalMb: number;
  eldP50Ms: number;
  eldP99Ms: number;
  eldMaxMs: number;
  /** Coverage of each exposure: bytes counted as sent. */
  covered: number[];
  cpuMs: number;
}

export interface ServerChild {
  origin: string;
  /** How the server sends file bytes: "sendfile" or "read+write (why)". */
  sending: string;
  /** Full URL of each exposed file, in the order given. */
  urls: string[];
  pid: number;
  stats(): Promise<ServerStats>;
  /** Starts a new measuring window (peak RSS, delay histogram). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

type Msg = { type: 'ready'; origin: string; urls: string[]; sending: string } | ({ type: 'stats' } & ServerStats) | { type: 'reset-done' };

export interface ServerChildOptions {
  /** Node flags for the child, e.g. `--cpu-prof`. */
  execArgv?: string[];
  /** The server's read size; its default when absent. */
  readChunkBytes?: number;
  /** Extra environment, e.g. POSTFLOW_SENDFILE=0 for the read+write path. */
  env?: Record<string, string>;
}

export async function startServerChild(files: Array<{ path: string; name: string }>, opts: ServerChildOptions = {}): Promise<ServerChild> {
  const args = ['--child', JSON.stringify(files), String(opts.readChunkBytes ?? '')];
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: opts.execArgv ?? [],
    env: { ...process.env, ...opts.env },
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const next = <T extends Msg['type']>(type: T): Promise<Extract<Msg, { type: T }>> =>
    new Promise((resolve, reject) => {
      const onMsg = (m: Msg) => {
        if (m.type !== type) return;
        child.off('message', onMsg);
        child.off('exit', onExit);
        resolve(m as Extract<Msg, { type: T }>);
      };
      const onExit = (code: number | null) => {
        child.off('message', onMsg);
        reject(new Error(`server child exited (${code}) before '${type}'`));
      };
      child.on('message', onMsg);
      child.once('exit', onExit);
    });
  const ready = await next('ready');
  return {
    origin: ready.origin,
    urls: ready.urls,
    sending: ready.sending,
    pid: child.pid ?? 0,
    async stats() {
      const p = next('stats');
      child.send({ type: 'stats' });
      const { type: _t, ...s } = await p;
      return s;
    },
    async reset() {
      const p = next('reset-done');
      child.send({ type: 'reset' });
      await p;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.send({ type: 'stop' });
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function runChild(files: Array<{ path: string; name: string }>, readChunkBytes: number | undefined): Promise<void> {
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const zeroCopy = loadSendfile();
  const server = createFileServer({ host: '127.0.0.1', port: 0, logger, maxConnectionsPerToken: 64, zeroCopy, ...(readChunkBytes ? { readChunkBytes } : {}) });
  const { origin } = await server.listen();
  const exposures: Exposure[] = [];
  for (const [i, f] of files.entries()) exposures.push(await server.expose({ jobId: `bench-${i}`, path: f.path, name: f.name }));

  const eld = monitorEventLoopDelay({ resolution: 5 });
  eld.enable();
  let peak = 0;
  let cpu0 = process.cpuUsage();
  const sample = () => {
    const rss = process.memoryUsage.rss();
    if (rss > peak) peak = rss;
  };
  const sampler = setInterval(sample, 20);
  const send = (m: Msg) => process.send?.(m);

  process.on('message', (m: { type: string }) => {
    if (m.type === 'stats') {
      sample();
      const mem = process.memoryUsage();
      const cpu = process.cpuUsage(cpu0);
      send({
        type: 'stats',
        rssMb: mem.rss / 1e6,
        rssPeakMb: peak / 1e6,
        heapUsedMb: mem.heapUsed / 1e6,
        externalMb: (mem.external + mem.arrayBuffers) / 1e6,
        eldP50Ms: eld.percentile(50) / 1e6,
        eldP99Ms: eld.percentile(99) / 1e6,
        eldMaxMs: eld.max / 1e6,
        covered: exposures.map((e) => e.coverage.covered),
        cpuMs: (cpu.user + cpu.system) / 1000,
      });
    } else if (m.type === 'reset') {
      eld.reset();
      peak = 0;
      cpu0 = process.cpuUsage();
      send({ type: 'reset-done' });
    } else if (m.type === 'stop') {
      clearInterval(sampler);
      eld.disable();
      for (const e of exposures) e.revoke();
      void server.close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  const sending = zeroCopy.addon ? 'sendfile' : `read+write (${zeroCopy.reason})`;
  send({ type: 'ready', origin, urls: exposures.map((e) => origin + e.urlPath), sending });
}

if (process.argv[2] === '--child') {
  await runChild(JSON.parse(process.argv[3] ?? '[]') as Array<{ path: string; name: string }>, Number(process.argv[4]) || undefined);
}
