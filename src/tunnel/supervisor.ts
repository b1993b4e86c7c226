/**
 * Keeps one cloudflared running for the daemon's public file server and says what its public base URL is
 * and whether it is ready. Ready means cloudflared's own metrics server answers `/ready` with 200 (an edge
 * connection is registered) and the URL is known. When cloudflared exits, does not become ready in time, or
 * stays unready too long, it is restarted after an exponential backoff; a quick tunnel gets a new hostname
 * at each start, announced with a 'url' event so imports in flight can be re-issued on it.
 */
import { EventEmitter } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.ts';
import { describeError } from '../errors.ts';
import { CLOUDFLARED_CONFIG_TEXT, namedTunnelArgs, quickTunnelArgs } from './args.ts';
import { parseLine, recognise } from './cloudflared-log.ts';
import { ERR_TUNNEL_NAMED_INCOMPLETE, ERR_TUNNEL_STOPPED } from './errors.ts';
import { killStale, removePidFile, writePidFile } from './pidfile.ts';
import { execaSpawner, resolveCloudflared, type ChildHandle, type ChildExit, type Spawner } from './spawn.ts';

export interface TunnelOptions {
  mode: 'quick' | 'named';
  /** A command name looked up on PATH, or a path to the cloudflared executable. */
  cloudflaredPath: string;
  /** The local origin cloudflared forwards to, e.g. `http://127.0.0.1:8080`. */
  originUrl: string;
  /** Named mode: the tunnel token (passed to cloudflared in TUNNEL_TOKEN, never on its command line). */
  namedToken?: string | undefined;
  /** Named mode: the public hostname routed to this tunnel, e.g. `uploads.studio.com`. */
  namedHostname?: string | undefined;
  /** Holds the pid file, cloudflared's config file and its clean HOME. */
  stateDir: string;
  logger: Logger;
  /** How long one start may take to print its URL and become ready before it is restarted. Default 60 s. */
  startTimeoutMs?: number | undefined;
  /** Interval between `/ready` probes. Default 1 s. */
  readyPollMs?: number | undefined;
  /** How long a running tunnel may stay unready before cloudflared is restarted. Default 30 s. */
  unreadyTimeoutMs?: number | undefined;
  /** Restart delays. Default base 1 s, max 60 s. */
  backoff?: { baseMs: number; maxMs: number } | undefined;
  /** After this long ready, the next failure starts the backoff from the beginning again. Default 60 s. */
  stableMs?: number | undefined;
  /**
   * An extra readiness check of the public URL (e.g. a DNS lookup or a request through it): a fresh quick
   * hostname may not resolve for a while. Ready waits for it to answer true, but at most `probeGraceMs`
   * (default 60 s) after the edge is up — Frame.io often resolves a name before the local resolver does.
   */
  probe?: ((publicUrl: string, signal: AbortSignal) => Promise<boolean>) | undefined;
  probeGraceMs?: number | undefined;
  /** cloudflared `--protocol` (quic | http2 | auto); unset leaves cloudflared's default. */
  protocol?: string | undefined;
  /** cloudflared `--grace-period` and how long stop() waits before SIGKILL (plus 5 s). Default 30 s. */
  gracePeriodMs?: number | undefined;
  /** Extra environment for cloudflared (tests set the stand-in's switches here). */
  env?: Record<string, string> | undefined;
  spawn?: Spawner | undefined;
  fetch?: typeof fetch | undefined;
  now?: (() => number) | undefined;
  random?: (() => number) | undefined;
}

export interface TunnelState {
  status: 'stopped' | 'starting' | 'ready' | 'down';
  /** The current (or, while down, the last) public base URL, `https://host` without a trailing slash. */
  publicUrl: string | null;
  /** When publicUrl last became ready (ms since epoch, from `now`). */
  urlSince: number | null;
  /** Restarts since start(). */
  restarts: number;
  lastError: string | null;
  pid: number | null;
}

export interface TunnelEvents {
  url: [publicUrl: string, previous: string | null];
  ready: [publicUrl: string];
  down: [reason: string];
  restart: [info: { attempt: number; delayMs: number }];
}

export interface Tunnel extends EventEmitter<TunnelEvents> {
  start(): Promise<void>;
  stop(): Promise<void>;
  state(): TunnelState;
  /** Resolves with the public base URL once ready (at once if it is); rejects on abort or stop(). */
  waitReady(signal?: AbortSignal): Promise<string>;
}

/** A free TCP port on 127.0.0.1 for cloudflared's metrics server. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function describeExit(exit: ChildExit, lastError: string | null): string {
  const how = exit.error ?? (exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`);
  return lastError ? `cloudflared ${how} (last error: ${lastError})` : `cloudflared ${how}`;
}

class TunnelSupervisor extends EventEmitter<TunnelEvents> implements Tunnel {
  readonly #o: TunnelOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #fetch: typeof fetch;
  readonly #pidPath: string;
  readonly #configPath: string;
  readonly #home: string;
  #status: TunnelState['status'] = 'stopped';
  #publicUrl: string | null = null;
  #urlSince: number | null = null;
  #restarts = 0;
  #lastError: string | null = null;
  #child: ChildHandle | null = null;
  #stopper: AbortController | null = null;
  #loop: Promise<void> | null = null;
  #waiters = new Set<{ resolve: (url: string) => void; reject: (err: unknown) => void }>();

  constructor(opts: TunnelOptions) {
    super();
    this.#o = opts;
    this.#log = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#fetch = opts.fetch ?? fetch;
    this.#pidPath = join(opts.stateDir, 'cloudflared.pid');
    this.#configPath = join(opts.stateDir, 'cloudflared.yml');
    this.#home = join(opts.stateDir, 'cloudflared-home');
  }

  state(): TunnelState {
    return {
      status: this.#status,
      publicUrl: this.#publicUrl,
      urlSince: this.#urlSince,
      restarts: this.#restarts,
      lastError: this.#lastError,
      pid: this.#child?.pid ?? null,
    };
  }

  async start(): Promise<void> {
    if (this.#loop) return;
    const o = this.#o;
    if (o.mode === 'named') {
      if (!o.namedToken) throw ERR_TUNNEL_NAMED_INCOMPLETE('tunnel.token');
      if (!o.namedHostname) throw ERR_TUNNEL_NAMED_INCOMPLETE('tunnel.hostname');
    }
    const binary = await resolveCloudflared(o.cloudflaredPath, process.env.PATH);
    await mkdir(this.#home, { recursive: true });
    await writeFile(this.#configPath, CLOUDFLARED_CONFIG_TEXT);
    const stale = await killStale(this.#pidPath, this.#configPath);
    if (stale !== null) this.#log.warn({ event: 'tunnel-stale-killed', pid: stale }, `ended cloudflared pid ${stale} left by a previous run`);

    this.#restarts = 0;
    this.#lastError = null;
    this.#stopper = new AbortController();
    let firstSpawn!: (err?: unknown) => void;
    const spawned = new Promise<void>((resolve, reject) => {
      firstSpawn = (err) => (err === undefined ? resolve() : reject(err));
    });
    this.#loop = this.#superviseLoop(binary, this.#stopper.signal, firstSpawn);
    await spawned;
  }

  async stop(): Promise<void> {
    if (!this.#loop) return;
    this.#stopper?.abort();
    const child = this.#child;
    if (child) await this.#terminate(child, (this.#o.gracePeriodMs ?? 30_000) + 5_000);
    await this.#loop;
    this.#loop = null;
    await removePidFile(this.#pidPath);
    this.#status = 'stopped';
    for (const w of this.#waiters) w.reject(ERR_TUNNEL_STOPPED());
    this.#waiters.clear();
    this.#log.info({ event: 'tunnel-stopped' }, 'tunnel stopped');
  }

  waitReady(signal?: AbortSignal): Promise<string> {
    if (this.#status === 'ready' && this.#publicUrl) return Promise.resolve(this.#publicUrl);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (url: string) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(url);
        },
        reject: (err: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        this.#waiters.delete(waiter);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  async #superviseLoop(binary: string, stop: AbortSignal, firstSpawn: (err?: unknown) => void): Promise<void> {
    const backoff = this.#o.backoff ?? { baseMs: 1_000, maxMs: 60_000 };
    const stableMs = this.#o.stableMs ?? 60_000;
    let attempt = 0;
    let first: typeof firstSpawn | null = firstSpawn;
    while (!stop.aborted) {
      let outcome: { reason: string; readyFor: number };
      try {
        outcome = await this.#runOnce(binary, stop, () => {
          first?.();
          first = null;
        });
      } catch (err) {
        outcome = { reason: describeError(err), readyFor: 0 };
      }
      if (first) {
        // The very first spawn failed before a process existed: start() reports it instead of looping.
        first(new Error(outcome.reason));
        first = null;
        this.#status = 'stopped';
        return;
      }
      if (stop.aborted) break;
      this.#lastError = outcome.reason;
      this.#setDown(outcome.reason);
      if (outcome.readyFor >= stableMs) attempt = 0;
      const delayMs = backoffDelay(attempt, backoff, this.#o.random ?? Math.random);
      attempt++;
      this.#restarts++;
      this.#log.warn(
        { event: 'tunnel-restart', attempt, delayMs, reason: outcome.reason, restarts: this.#restarts },
        `cloudflared restart #${attempt} in ${delayMs} ms: ${outcome.reason}`,
      );
      this.emit('restart', { attempt, delayMs });
      try {
        await sleep(delayMs, undefined, { signal: stop });
      } catch {
        break;
      }
    }
  }

  #setDown(reason: string): void {
    if (this.#status === 'down') return;
    this.#status = 'down';
    this.emit('down', reason);
  }

  /** One cloudflared lifetime; resolves with why it ended and how long it was ready. */
  async #runOnce(binary: string, stop: AbortSignal, onSpawned: () => void): Promise<{ reason: string; readyFor: number }> {
    const o = this.#o;
    this.#status = 'starting';
    const metricsAddress = `127.0.0.1:${await freePort()}`;
    const argsOptions = {
      originUrl: o.originUrl,
      metricsAddress,
      configPath: this.#configPath,
      protocol: o.protocol,
      gracePeriodMs: o.gracePeriodMs,
    };
    const args = o.mode === 'quick' ? quickTunnelArgs(argsOptions) : namedTunnelArgs(argsOptions);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    delete env.TUNNEL_TOKEN;
    Object.assign(env, o.env ?? {}, {
      HOME: this.#home,
      // The test stand-in is a `#!/usr/bin/env node` script that needs this Node; harmless for the real binary.
      PATH: [dirname(process.execPath), env.PATH ?? ''].join(delimiter),
    });
    if (o.mode === 'named') env.TUNNEL_TOKEN = o.namedToken!;

    if (stop.aborted) return { reason: 'stopped', readyFor: 0 };
    const child = (o.spawn ?? execaSpawner)(binary, args, { env, cwd: o.stateDir });
    if (child.pid === undefined) {
      const exit = await child.exited;
      return { reason: describeExit(exit, null), readyFor: 0 };
    }
    this.#child = child;
    await writePidFile(this.#pidPath, child.pid);
    onSpawned();
    this.#log.info({ event: 'tunnel-starting', pid: child.pid, mode: o.mode, metrics: metricsAddress }, `cloudflared started (pid ${child.pid})`);

    let url: string | null = o.mode === 'named' ? `https://${o.namedHostname!.replace(/\/+$/, '')}` : null;
    let lastErr: string | null = null;
    const onLine = (raw: string) => {
      const line = parseLine(raw);
      const ev = recognise(line);
      if (ev.kind === 'quick-url' && o.mode === 'quick') url = ev.url;
      if (ev.kind === 'quick-failed') lastErr = ev.reason;
      if (line.level === 'ERR' || line.level === 'FTL' || line.level === 'PNC' || line.level === 'WRN') {
        if (line.level !== 'WRN') lastErr = line.fields.error ? `${line.message}: ${line.fields.error}` : line.message;
        this.#log.warn({ event: 'cloudflared-log', cloudflared: { level: line.level, message: line.message, ...line.fields } }, `cloudflared ${line.level}: ${line.message}`);
      } else {
        this.#log.debug({ event: 'cloudflared-log', cloudflared: { level: line.level, message: line.message, ...line.fields } }, line.message);
      }
    };
    const readers = [child.stderr, child.stdout].filter((s): s is Readable => s !== null).map((s) => {
      const rl = createInterface({ input: s, crlfDelay: Infinity });
      rl.on('line', onLine);
      return rl;
    });

    const watchDone = new AbortController();
    const exited = child.exited.then((exit) => {
      watchDone.abort();
      return exit;
    });
    let readyAt: number | null = null;
    const verdict = await this.#watchReadiness(metricsAddress, () => url, watchDone.signal, (at) => {
      readyAt = at;
    });
    for (const rl of readers) rl.close();
    let reason: string;
    if (verdict !== null) {
      // Readiness gave up on this process: end it (a second start would fight it for nothing).
      reason = verdict;
      this.#log.warn({ event: 'tunnel-unhealthy', pid: child.pid, reason }, `cloudflared ${reason}; restarting it`);
      await this.#terminate(child, 5_000);
      await exited;
    } else {
      const exit = await exited;
      reason = stop.aborted ? 'stopped' : describeExit(exit, lastErr);
    }
    this.#child = null;
    await removePidFile(this.#pidPath);
    const readyFor = readyAt === null ? 0 : this.#now() - readyAt;
    return { reason, readyFor };
  }

  /**
   * Polls `/ready` until the process ends (`done`) — returning null — or readiness gives up on it, returning
   * why: not ready within the start timeout, or unready for longer than allowed after having been ready.
   */
  async #watchReadiness(metricsAddress: string, currentUrl: () => string | null, done: AbortSignal, onReady: (at: number) => void): Promise<string | null> {
    const o = this.#o;
    const pollMs = o.readyPollMs ?? 1_000;
    const startTimeoutMs = o.startTimeoutMs ?? 60_000;
    const unreadyTimeoutMs = o.unreadyTimeoutMs ?? 30_000;
    const startedAt = this.#now();
    let everReady = false;
    let unreadySince: number | null = null;
    let edgeUpAt: number | null = null;
    while (!done.aborted) {
      const ok = await this.#probeReady(metricsAddress, done);
      if (done.aborted) return null;
      const url = currentUrl();
      let t = this.#now();
      let usable = ok && url !== null;
      if (usable && !everReady && o.probe) {
        edgeUpAt ??= t;
        usable = await this.#probePublic(url!, done);
        if (done.aborted) return null;
        t = this.#now();
        if (!usable && t - edgeUpAt >= (o.probeGraceMs ?? 60_000)) {
          this.#log.warn({ event: 'tunnel-probe-gave-up', publicUrl: url }, `${url} does not answer the probe yet; treating the tunnel as ready anyway`);
          usable = true;
        }
        // Until the grace runs out, a failing probe is the normal wait for DNS, not a start failure.
        if (!usable) {
          try {
            await sleep(pollMs, undefined, { signal: done });
          } catch {
            return null;
          }
          continue;
        }
      }
      if (usable && url) {
        unreadySince = null;
        if (this.#status !== 'ready') {
          if (!everReady) onReady(t);
          everReady = true;
          this.#becomeReady(url, t);
        }
      } else if (!everReady) {
        if (t - startedAt >= startTimeoutMs) {
          return `was not ready within ${startTimeoutMs} ms (${url ? 'URL known' : 'no URL printed'}, /ready ${ok ? '200' : 'not 200'})`;
        }
      } else {
        if (unreadySince === null) {
          unreadySince = t;
          this.#lastError = 'cloudflared /ready is not 200 (no edge connection)';
          this.#log.warn({ event: 'tunnel-unready' }, 'tunnel lost its edge connections; waiting for cloudflared to reconnect');
          this.#setDown('cloudflared lost its edge connections');
        } else if (t - unreadySince >= unreadyTimeoutMs) {
          return `stayed unready for ${t - unreadySince} ms`;
        }
      }
      try {
        await sleep(pollMs, undefined, { signal: done });
      } catch {
        return null;
      }
    }
    return null;
  }

  async #probePublic(url: string, done: AbortSignal): Promise<boolean> {
    try {
      return await this.#o.probe!(url, AbortSignal.any([done, AbortSignal.timeout(5_000)]));
    } catch {
      return false;
    }
  }

  async #probeReady(metricsAddress: string, done: AbortSignal): Promise<boolean> {
    try {
      const res = await this.#fetch(`http://${metricsAddress}/ready`, { signal: AbortSignal.any([done, AbortSignal.timeout(2_000)]) });
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  #becomeReady(url: string, at: number): void {
    const previous = this.#publicUrl;
    this.#status = 'ready';
    if (url !== previous) {
      this.#publicUrl = url;
      this.#urlSince = at;
      this.#log.info({ event: 'tunnel-url', publicUrl: url, previous }, `tunnel URL ${url}`);
      this.emit('url', url, previous);
    }
    this.#log.info({ event: 'tunnel-ready', publicUrl: url, restarts: this.#restarts }, `tunnel ready at ${url}`);
    this.emit('ready', url);
    for (const w of this.#waiters) w.resolve(url);
    this.#waiters.clear();
  }

  /** SIGTERM, then SIGKILL if it has not exited after `killAfterMs`. */
  async #terminate(child: ChildHandle, killAfterMs: number): Promise<void> {
    child.kill('SIGTERM');
    const timer = AbortSignal.timeout(killAfterMs);
    const killed = await Promise.race([
      child.exited.then(() => false),
      new Promise<boolean>((resolve) => timer.addEventListener('abort', () => resolve(true), { once: true })),
    ]);
    if (killed) {
      this.#log.warn({ event: 'tunnel-kill', pid: child.pid }, `cloudflared did not exit ${killAfterMs} ms after SIGTERM; sending SIGKILL`);
      child.kill('SIGKILL');
      await child.exited;
    }
  }
}

export function createTunnel(opts: TunnelOptions): Tunnel {
  return new TunnelSupervisor(opts);
}
