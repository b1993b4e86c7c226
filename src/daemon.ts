/**
 * The composition root: the only module that knows every room. It builds them from the config, wires the
 * arrows of the flow (watch → jobs → upload → server/tunnel/frameio) and owns the start and stop order.
 * Rooms never import each other's internals; what crosses between them is passed in here.
 */
import type { EventEmitter } from 'node:events';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type pg from 'pg';
import type { Config } from './config/load.ts';
import type { SecretSet } from './log/redact.ts';
import { createAdminService } from './admin/service.ts';
import { describeError, isPostflowError } from './errors.ts';
import { createFrameioClient, type CallRecord } from './frameio/client.ts';
import { checkWritable } from './frameio/write-check.ts';
import { loginFromConfig, openFleetPool } from './frameio/login-from-config.ts';
import { createRateLimiter } from './frameio/rate-limit.ts';
import { createSharedLimiter } from './frameio/shared-limiter.ts';
import { WorkerPool } from './jobs/pool.ts';
import { openSqliteStore } from './jobs/sqlite-store.ts';
import { withSummaries } from './jobs/summary.ts';
import { createClaimer, type Claimer } from './jobs/claimer.ts';
import { openJobStore, resolveNodeId } from './jobs/open-store.ts';
import { redactStoreUrl } from './jobs/pg-store.ts';
import { ERR_JOBS_PATH_TAKEN } from './jobs/errors.ts';
import { ACTIVE_STATES, IN_FLIGHT_STATES } from './jobs/states.ts';
import type { ClaimedJob, Job, JobStore } from './jobs/store.ts';
import { createFileServer } from './server/public-server.ts';
import { createTunnel } from './tunnel/supervisor.ts';
import type { AuthGate } from './upload/ports.ts';
import { createNotifier, notifySecrets } from './notify/notifier.ts';
import { createJobRunner, waitsForFolder, type UploadSettings } from './upload/run-job.ts';
import { FolderMirror } from './upload/folders.ts';
import { destinationResolver } from './upload/landing.ts';
import { ERR_CONFIG_DESTINATION } from './config/errors.ts';
import { ERR_DESTINATION_NOT_FOUND } from './frameio/errors.ts';
import { createWatcher, type WatchedFile } from './watch/watcher.ts';
import { createStudioControls } from './controls/studio.ts';
import { liveSettings } from './config/live.ts';
import { createShaper, type SendShaper } from './shaping/shaper.ts';
import { HashThread } from './upload/hash-thread.ts';

export interface DaemonOptions {
  config: Config;
  logger: Logger;
  /** First start only: upload the files already present instead of recording them as a baseline. */
  uploadExisting?: boolean;
  /** Secret values the logger scrubs; the Frame.io login adds every token it sees. */
  secrets?: SecretSet;
}

export interface Daemon {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly store: JobStore;
  /** A changed, validated config: bandwidth, queue rules, quiet hours and batch gaps apply at once. */
  reload(fresh: Config): { applied: string[]; restartNeeded: string[] };
}

/** Frame.io's login as the queue sees it: lost → new imports wait; restored → they go on. */
function authGate(tokens: EventEmitter): AuthGate & { lost: boolean } {
  const gate = {
    lost: false,
    isLost: () => gate.lost,
    waitRestored: (signal?: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        if (!gate.lost) return resolve();
        const done = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          tokens.off('auth-restored', done);
          reject(signal?.reason);
        };
        tokens.once('auth-restored', done);
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
  };
  tokens.on('auth-lost', () => (gate.lost = true));
  tokens.on('auth-restored', () => (gate.lost = false));
  return gate;
}

/** What buildServices takes besides the config; `fleetPool` is the fleet's PostgreSQL (store.url), if any. */
interface ServiceOptions {
  secrets?: SecretSet | undefined;
  onCall?: ((call: CallRecord) => void) | undefined;
  shaper?: SendShaper | undefined;
  fleetPool?: pg.Pool | undefined;
}

/** The rooms every flow needs (daemon and one-shot upload alike), built from the config. */
function buildServices(config: Config, logger: Logger, { secrets, onCall, shaper, fleetPool }: ServiceOptions) {
  // A fleet shares one login through PostgreSQL (sealed with store.secretKey): IMS rotates the refresh token,
  // so nodes with copies of one token file would lock each other out. Server-to-Server logins need no sharing.
  const userLogin = config.frameio.auth !== 'client_credentials';
  const onSecret = (value: string) => secrets?.add(value);
  if (fleetPool && userLogin && !config.store.secretKey) logger.child({ room: 'frameio' }).info({ event: 'fleet-login-per-node' }, 'store.secretKey is empty: each daemon of the fleet needs its own Frame.io login (postflow auth login on each machine)');
  const tokens = loginFromConfig(config, { logger: logger.child({ room: 'frameio' }), fleetPool, onSecret });
  const auth = authGate(tokens);
  const frameio = createFrameioClient({
    apiUrl: config.frameio.apiUrl,
    accountId: config.frameio.accountId,
    clientId: config.frameio.clientId,
    tokens,
    // A fleet shares Frame.io's per-user budget per operation through PostgreSQL; the per-node cap stays first.
    limiter: fleetPool
      ? createSharedLimiter({ pool: fleetPool, local: createRateLimiter({ maxRequestsPerSecond: config.frameio.maxRequestsPerSecond }), logger: logger.child({ room: 'frameio' }) })
      : createRateLimiter({ maxRequestsPerSecond: config.frameio.maxRequestsPerSecond }),
    logger: logger.child({ room: 'frameio' }),
    ...(onCall ? { onCall } : {}),
  });
  const server = createFileServer({
    host: config.server.host,
    port: config.server.port,
    logger: logger.child({ room: 'server' }),
    maxTokenLifetimeMs: config.server.maxTokenLifetimeHours * 3_600_000,
    maxConnections: config.server.maxConnections,
    maxConnectionsPerToken: config.server.maxConnectionsPerToken,
    ...(shaper ? { shaper } : {}),
  });
  const makeTunnel = (origin: string, stateDir: string) =>
    createTunnel({
      mode: config.tunnel.mode,
      cloudflaredPath: config.tunnel.cloudflaredPath,
      originUrl: origin,
      namedToken: config.tunnel.token || undefined,
      namedHostname: config.tunnel.hostname || undefined,
      stateDir,
      logger: logger.child({ room: 'tunnel' }),
      startTimeoutMs: config.tunnel.startTimeoutSeconds * 1000,
    });
  const settings: UploadSettings = {
    maxAttempts: config.upload.maxAttempts,
    stallTimeoutMs: config.upload.stallTimeoutSeconds * 1000,
    statusPollMs: config.upload.statusPollSeconds * 1000,
    directAfterTunnelDownMs: config.upload.directAfterTunnelDownSeconds * 1000,
    retryBaseMs: 2_000,
    retryMaxMs: 300_000,
  };
  // One low-priority thread hashes what every job serves (upload/hash-thread.ts).
  const hasher = new HashThread({
    onStart: ({ niced }) =>
      logger.child({ room: 'upload' }).debug({ event: 'hash-thread', niced }, niced ? 'sha256 thread started at the lowest CPU priority' : 'sha256 thread started (this system cannot lower one thread\'s priority)'),
  });
  return { tokens, auth, frameio, server, makeTunnel, settings, hasher };
}

export async function createDaemon(opts: DaemonOptions): Promise<Daemon> {
  const { config, logger } = opts;
  const log = logger.child({ room: 'daemon' });
  // SQLite in the state dir, or the fleet's PostgreSQL (store.url): several daemons, one queue.
  const nodeId = resolveNodeId(config.stateDir, config.store.nodeId);
  const store = withSummaries(
    await openJobStore({ url: config.store.url, stateDir: config.stateDir, nodeId, logger: logger.child({ room: 'jobs' }) }),
    logger,
  );
  if (config.store.url) log.info({ event: 'store', store: redactStoreUrl(config.store.url), node: nodeId }, `job store: PostgreSQL, shared by the fleet; this daemon is node ${nodeId}`);
  const leaseMs = config.store.leaseTimeoutSeconds * 1000;
  const nodeInfo = { host: hostname(), pid: process.pid, startedAt: Date.now() };
  // Done/failed messages per watch folder; a webhook URL is a credential, so the log scrubber knows them.
  opts.secrets?.add(...notifySecrets(config.watch.folders));
  const notifier = createNotifier({ folders: config.watch.folders, logger: logger.child({ room: 'notify' }) });
  // Status page, JSON API and metrics on the loopback admin listener (never the public server).
  const admin = createAdminService({
    host: config.admin.host,
    port: config.admin.port,
    stateDir: config.stateDir,
    logger,
    store,
    folders: config.watch.folders.map((f) => ({ path: f.path, destination: f.destination })),
    leaseTimeoutMs: leaseMs,
  });
  // Bandwidth caps, queue rules, quiet hours and batch notices: the settings a reload changes live.
  const controls = createStudioControls({ config, logger: logger.child({ room: 'controls' }), onBatch: (i, ev) => notifier.onBatch(i, ev) });
  const { tokens, auth, frameio, server, makeTunnel, settings, hasher } = buildServices(config, logger, {
    secrets: opts.secrets,
    onCall: (call) => admin.metrics.frameioCall(call),
    shaper: controls.shaper,
    fleetPool: 'pool' in store ? (store.pool as pg.Pool) : undefined,
  });

  // Where each file lands: its watch folder's destination plus (layout "mirror") its sub folders, found or
  // created once per daemon — concurrent jobs needing the same new folder share one creation.
  const mirror = new FolderMirror({ listChildren: (id, o) => frameio.listChildren(id, o), createFolder: (p, n, s) => frameio.createFolder(p, n, s) });
  const roots = new Map<string, Promise<string>>();
  const destinationFor = destinationResolver({
    mirror,
    // A destination not resolved at start (Frame.io was unreachable) may still be a project id.
    root: (id, signal) => {
      let root = roots.get(id);
      if (!root) {
        root = frameio.resolveDestination(id, signal).then((f) => f.id);
        roots.set(id, root);
        root.catch(() => roots.delete(id));
      }
      return root;
    },
    layoutOf: (job) => config.watch.folders[job.folderIndex]?.layout ?? 'mirror',
  });

  let tunnel: ReturnType<typeof createTunnel> | undefined;
  let watcher: ReturnType<typeof createWatcher> | undefined;
  let pool: WorkerPool | undefined;
  let claimer: Claimer | undefined;
  /** Resolved destination folder per watch folder (a project id stands for its root folder). */
  const destinations: string[] = config.watch.folders.map((f) => f.destination);

  async function onSeen(file: WatchedFile): Promise<void> {
    // A file re-exported while its upload runs: that import is cancelled and the new contents get a job.
    // By path (indexed): every file of a burst is seen, and listing all in-flight jobs per file was O(n·workers).
    for (const job of await store.list({ path: file.path, states: IN_FLIGHT_STATES })) {
      // (A report older than the job's version is a late look at it, not a re-export: see the store's discover.)
      if (job.path === file.path && file.mtimeMs >= job.mtimeMs && (job.size !== file.size || job.mtimeMs !== file.mtimeMs)) pool?.cancel(job.id, 'file-changed');
    }
    await store.discover({ ...file, destination: destinations[file.folderIndex]! });
  }

  async function onStable(file: WatchedFile): Promise<void> {
    const job = await store.discover({ ...file, destination: destinations[file.folderIndex]! });
    if (job.state !== 'discovered' || job.size !== file.size || job.mtimeMs !== file.mtimeMs) return;
    if (!(await store.transition(job.id, 'discovered', 'stable'))) return;
    if (!(await store.transition(job.id, 'stable', 'queued', { nextAttemptAt: null }))) return;
    logger.info({ job: job.id, file: job.path, event: 'queued', size: file.size }, 'stable: queued for upload');
    controls.queued(job);
    // Taken through a claim like any queued job, so that in a fleet exactly one node runs it.
    claimer?.trigger();
  }

  async function onRemoved(ev: { path: string }): Promise<void> {
    // By path: removing a folder of n files must not read every active job n times.
    const open = await store.list({ path: ev.path, states: ACTIVE_STATES });
    for (const job of open) {
      if (job.path !== ev.path) continue;
      if (pool?.isRunning(job.id)) pool.cancel(job.id, 'file-removed');
      else if (await store.transition(job.id, job.state, 'cancelled', { finishedAt: Date.now(), lastError: 'file removed' })) {
        logger.warn({ job: job.id, file: job.path, event: 'cancelled' }, 'file removed before upload: job cancelled');
        controls.ended(job, { state: 'cancelled', at: Date.now() });
      }
    }
  }

  /** Jobs that found their watch folder gone wait for it; when it is back they go at once. */
  async function onFolderBack(ev: { folderIndex: number }): Promise<void> {
    for (const job of await store.list({ states: ['queued'] })) {
      // Only jobs this node holds: another node's waiting jobs are re-offered by that node's own watcher.
      if (job.folderIndex === ev.folderIndex && waitsForFolder(job) && pool?.holds(job.id)) pool.enqueue({ id: job.id, nextAttemptAt: null });
    }
  }

  /** Resolves every watch folder's destination (a project means its root folder) and checks it is writable. */
  async function checkDestinations(): Promise<void> {
    /** Destinations already checked for write access (several watch folders may share one). */
    const checked = new Set<string>();
    for (const [i, folder] of config.watch.folders.entries()) {
      try {
        const dest = await frameio.resolveDestination(folder.destination);
        destinations[i] = dest.id;
        if (!checked.has(dest.id)) {
          checked.add(dest.id);
          if ((await checkWritable(frameio, dest.id)) === 'read-only') {
            throw ERR_CONFIG_DESTINATION(folder.path, folder.destination, 'is read-only for this login (Frame.io answered 403 when postflow created a test folder there)');
          }
        }
        controls.setDestinationUrl(i, (dest as { view_url?: string | null }).view_url ?? null);
        log.info({ folder: folder.path, destination: folder.destination, folderId: dest.id, event: 'destination' }, `watch folder ${folder.path} → Frame.io folder ${dest.name ?? dest.id}`);
      } catch (err) {
        if ((err as { retryable?: boolean }).retryable) {
          log.warn({ folder: folder.path, err: describeError(err) }, 'could not check the destination now (Frame.io unreachable); going on');
        } else if (isPostflowError(err, ERR_DESTINATION_NOT_FOUND)) {
          throw ERR_CONFIG_DESTINATION(folder.path, folder.destination, 'is neither a folder nor a project this login can see');
        } else if (isPostflowError(err) && err.status === 403) {
          throw ERR_CONFIG_DESTINATION(folder.path, folder.destination, 'is not open to this login (403 Forbidden)');
        } else {
          throw err;
        }
      }
    }
  }

  /** Watcher callbacks are async; a failure there must be logged, never crash the daemon or go silent. */
  function guarded<A>(what: string, fn: (a: A) => Promise<void>): (a: A) => void {
    return (a) => {
      fn(a).catch((err: unknown) => log.error({ err: describeError(err), what }, `${what} failed: ${describeError(err)}`));
    };
  }

  return {
    store,
    reload: (fresh) => controls.reload(fresh),
    async start() {
      await admin.start();
      // The tunnel comes up (cloudflared's start, its edge connections) while the destinations are checked and
      // the first sweep runs: a restart is ready in the longest of the three, not their sum (100k files: 2.8 →
      // 2.3 s, bench/restart.ts). Whatever fails is thrown, and run.ts then stops whatever did start.
      const { origin } = await server.listen();
      tunnel = makeTunnel(origin, config.stateDir);
      tunnel.on('restart', () => admin.metrics.tunnelRestart());
      const tunnelUp = tunnel.start();
      const destinationsKnown = checkDestinations();
      // Files found before the destinations are known wait for them (a job records its destination's id).
      const afterDestinations =
        <A>(fn: (a: A) => Promise<void>) =>
        (a: A): Promise<void> =>
          destinationsKnown.then(() => fn(a), () => undefined);
      const firstStart = (await store.getMeta('baseline')) === undefined;
      const baselining = firstStart && !opts.uploadExisting;
      watcher = createWatcher({
        folders: config.watch.folders.map((f) => ({ path: f.path, include: [...f.include], exclude: [...f.exclude] })),
        pollIntervalMs: config.watch.pollIntervalSeconds * 1000,
        stabilityMs: config.watch.stabilitySeconds * 1000,
        native: config.watch.nativeEventsMaxFiles > 0,
        nativeMaxFiles: config.watch.nativeEventsMaxFiles,
        logger: logger.child({ room: 'watch' }),
        baseline: baselining,
        isKnown: (path, size, mtimeMs) => store.isKnownSync?.(path, size, mtimeMs) ?? false,
      });
      watcher.on('seen', guarded('recording a new file', afterDestinations(onSeen)));
      watcher.on('stable', guarded('queueing a stable file', afterDestinations(onStable)));
      watcher.on('changed', guarded('handling a changed file', afterDestinations(onSeen)));
      watcher.on('removed', guarded('handling a removed file', afterDestinations(onRemoved)));
      watcher.on('sweep', (ev) => admin.sweep(ev));
      watcher.on('folder-missing', (ev) => admin.folderMissing(ev.folderIndex, true));
      watcher.on('folder-back', (ev) => admin.folderMissing(ev.folderIndex, false));
      watcher.on('folder-back', guarded('resuming jobs of a folder that is back', onFolderBack));
      const swept = watcher.start();
      // Each is awaited below; until then a failure must not count as unhandled.
      for (const p of [tunnelUp, destinationsKnown, swept]) p.catch(() => undefined);
      await destinationsKnown;

      const runJob = createJobRunner({
        store,
        // Every exposure's served bytes feed the metrics and the status page's live progress.
        server: {
          expose: async (file) => {
            const exposure = await server.expose(file);
            admin.exposed(exposure);
            return exposure;
          },
        },
        tunnel,
        frameio,
        auth,
        logger,
        settings,
        onProgress: (job, p) => admin.progress(job, p),
        // A file of a batch is told about in its batch's notice; its own only with notify.eachFile.
        onJobEnd: (job, outcome) => {
          const end = outcome.state === 'done' ? { state: 'done' as const, at: Date.now(), viewUrl: outcome.viewUrl } : { state: 'failed' as const, at: Date.now(), reason: outcome.reason };
          if (controls.ended(job, end)) notifier.onJobEnd(job, outcome);
        },
        shaper: controls.shaper,
        uploadSetting: (job) => config.watch.folders[job.folderIndex]?.upload ?? 'auto',
        destinationFor,
        policyFor: (job) => ({
          onExisting: config.watch.folders[job.folderIndex]?.onExisting ?? 'version',
          afterUpload: config.watch.folders[job.folderIndex]?.afterUpload ?? 'leave',
        }),
        hasher,
      });
      const run = async (job: Job, signal: AbortSignal) => {
        try {
          await runJob(job, signal);
        } finally {
          const after = await store.get(job.id).catch(() => undefined);
          admin.attemptEnded(after);
          if (after?.state === 'cancelled') controls.ended(after, { state: 'cancelled', at: Date.now() });
        }
      };
      pool = new WorkerPool({ store, concurrency: config.workers, logger, run, onSlotFree: () => claimer?.trigger() });
      admin.attach({
        tunnel: () => {
          const t = tunnel?.state();
          return t && { status: t.status, publicUrl: t.publicUrl, urlSince: t.urlSince, restarts: t.restarts, lastError: t.lastError };
        },
        paused: () => pool?.paused ?? false,
        enqueue: () => claimer?.trigger(),
        quietUntil: () => controls.quietUntil(),
        priorities: () => controls.rules().priorities,
      });
      tokens.on('auth-lost', () => {
        pool?.pause();
        // The Frame.io room has already logged the one error line (what IMS said, which file, how to log in).
        log.warn({ event: 'uploads-paused' }, 'uploads paused until a new Frame.io login is stored');
      });
      tokens.on('auth-restored', () => {
        pool?.resume();
        log.info({ event: 'uploads-resumed' }, 'Frame.io login restored: uploads resume');
      });

      // Work comes by claim (a lease for this node): queued jobs, and jobs a stopped node left behind — a
      // previous run of this daemon, or in a fleet another node that stopped heartbeating. Those found past
      // `queued` go back to the queue first; the runner cleans up a half-done import before it starts again
      // (it looks in Frame.io when the crash came between "remote_upload sent" and "answer stored").
      const pool_ = pool;
      const adopt = async ({ job, previousNode }: ClaimedJob): Promise<void> => {
        const takeover = previousNode !== null && previousNode !== nodeId;
        if (job.state !== 'queued') {
          try {
            if (!(await store.transition(job.id, job.state, 'queued', { attempts: Math.max(0, job.attempts - 1) }))) return;
          } catch (err) {
            if (!isPostflowError(err, ERR_JOBS_PATH_TAKEN)) throw err;
            // The file changed during that upload and a newer job already holds the path: this one is superseded.
            if (job.frameioFileId) await frameio.deleteFile(job.frameioFileId).catch(() => undefined);
            await store.transition(job.id, job.state, 'cancelled', { lastError: 'superseded by a newer version of the file' });
            log.info({ job: job.id, file: job.path, event: 'cancelled' }, 'job from the previous run superseded by a newer version of the file');
            return;
          }
        }
        if (takeover) {
          log.warn({ job: job.id, file: job.path, event: 'takeover', was: job.state, from: previousNode }, `taking over a job from node ${previousNode}, which stopped heartbeating`);
        } else if (job.state !== 'queued' || job.createdAt < nodeInfo.startedAt) {
          log.info({ job: job.id, file: job.path, event: 'resume', was: job.state }, 'resuming a job from the previous run');
        }
        controls.queued(job);
        pool_.enqueue({ id: job.id, nextAttemptAt: job.nextAttemptAt });
      };
      // The leases of this node's previous run are its own: given up first, so the claims take them back now.
      await store.heartbeat([], leaseMs, nodeInfo);
      claimer = createClaimer({ store, pool, leaseMs, intervalMs: Math.min(1000, leaseMs / 3), info: nodeInfo, logger: log, adopt, rules: () => controls.rules() });
      controls.start();
      claimer.start();

      const [sweep, up] = await Promise.allSettled([swept, tunnelUp]);
      if (sweep.status === 'rejected') throw sweep.reason;
      if (up.status === 'rejected') throw up.reason;
      if (firstStart) {
        if (baselining) {
          const present = watcher.present();
          await store.recordBaseline([...present.values()].map((f) => ({ path: f.path, size: f.size, mtimeMs: f.mtimeMs })));
          log.info({ event: 'baseline', files: present.size }, `first start: ${present.size} file(s) already present recorded as baseline, not uploaded (use --upload-existing to upload them)`);
        }
        await store.setMeta('baseline', new Date().toISOString());
      }
      log.info(
        { event: 'started', folders: config.watch.folders.map((f) => f.path), publicUrl: tunnel.state().publicUrl, workers: config.workers },
        `postflow is watching ${config.watch.folders.length} folder(s)`,
      );
      // The start-up sweep's objects (every file, the baseline) sit in the old generation until a major GC that
      // an idle daemon may not run for hours: one once start() has let go of them (bin/postflow.js exposes gc).
      // 'last-resort' also hands the freed pages back to the OS (a plain major GC keeps them pooled).
      const gc = (globalThis as { gc?: (o: object) => void }).gc;
      if (gc) setImmediate(() => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })).unref();
    },

    async stop() {
      log.info({ event: 'stopping' }, 'stopping: no new uploads; imports in flight get the grace period');
      claimer?.drain();
      await watcher?.stop();
      await pool?.stop(config.shutdown.graceSeconds * 1000);
      // Whatever did not finish goes back to the fleet at once, not after a lease timeout.
      await claimer?.close();
      await store.release().catch((err: unknown) => log.warn({ err: describeError(err) }, `could not give up this node's leases: ${describeError(err)}`));
      // Messages about the last jobs get a short chance; a receiver that is down must not hold the stop.
      controls.stop();
      await notifier.close(5_000);
      await tunnel?.stop();
      await server.close();
      await admin.stop();
      await hasher.close();
      await store.close();
      log.info({ event: 'stopped' }, 'stopped');
    },
  };
}

export interface OneShotUpdate {
  id: string;
  name: string;
  covered: number;
  size: number;
  rate: number;
  etaSeconds: number | null;
  state: string;
}

export interface OneShotResult {
  path: string;
  name: string;
  state: string;
  frameioFileId: string | null;
  viewUrl: string | null;
  error: string | null;
}

/**
 * `postflow upload`: the daemon's flow once for the given files. Its own file server, tunnel and an
 * in-memory job store, so it runs beside a daemon (which owns the state directory's store) without
 * disturbing it; the login (refresh-token file) is shared under the token file's lock.
 */
export async function runOnce(opts: {
  config: Config;
  logger: Logger;
  folderId: string;
  files: string[];
  onUpdate?: (u: OneShotUpdate) => void;
  signal?: AbortSignal;
  secrets?: SecretSet;
}): Promise<OneShotResult[]> {
  const { config, logger } = opts;
  // The global cap holds for one-shot uploads too (no watch folders, so no folder caps).
  const shaper = createShaper({ global: liveSettings(config).bandwidth, folders: [] });
  // Beside a fleet's daemon, the upload shares its Frame.io login and rate budget through PostgreSQL too.
  const fleetPool = config.store.url ? openFleetPool(config, 'upload', logger) : undefined;
  const { tokens, auth, frameio, server, makeTunnel, settings, hasher } = buildServices(config, logger, { secrets: opts.secrets, shaper, fleetPool });
  // A private store in a scratch folder: the daemon's store stays locked by the daemon.
  const scratch = await mkdtemp(join(tmpdir(), 'postflow-upload-'));
  const store = withSummaries(await openSqliteStore({ path: join(scratch, 'jobs.db') }), logger);
  let tunnel: ReturnType<typeof createTunnel> | undefined;
  let pool: WorkerPool | undefined;
  const results: OneShotResult[] = [];
  try {
    const dest = await frameio.resolveDestination(opts.folderId);
    const { origin } = await server.listen();
    tunnel = makeTunnel(origin, scratch);
    await tunnel.start();
    const names = new Map<string, string>();
    const runJob = createJobRunner({
      store,
      server,
      tunnel,
      frameio,
      auth,
      logger,
      settings,
      onProgress: (job, p) => opts.onUpdate?.({ id: job.id, name: job.name, state: 'importing', covered: p.covered, size: p.size, rate: p.rate, etaSeconds: p.etaSeconds }),
      hasher,
    });
    pool = new WorkerPool({ store, concurrency: config.workers, logger, run: runJob });
    const ids: string[] = [];
    for (const path of opts.files) {
      const st = await stat(path).catch(() => undefined);
      if (!st?.isFile()) {
        results.push({ path, name: basename(path), state: 'failed', frameioFileId: null, viewUrl: null, error: 'not a readable file' });
        continue;
      }
      const job = await store.discover({
        folderIndex: 0,
        root: dirname(path),
        path,
        relPath: basename(path),
        name: basename(path),
        size: st.size,
        mtimeMs: st.mtimeMs,
        ino: st.ino,
        destination: dest.id,
      });
      await store.transition(job.id, 'discovered', 'stable');
      await store.transition(job.id, 'stable', 'queued');
      names.set(job.id, job.name);
      ids.push(job.id);
      opts.onUpdate?.({ id: job.id, name: job.name, state: 'queued', covered: 0, size: st.size, rate: 0, etaSeconds: null });
      pool.enqueue({ id: job.id, nextAttemptAt: null });
    }
    // Retries wait on timers outside p-queue, so "idle" alone does not mean finished: watch the states.
    for (;;) {
      const jobs = await Promise.all(ids.map((id) => store.get(id)));
      for (const job of jobs) {
        if (job) opts.onUpdate?.({ id: job.id, name: job.name, state: job.state, covered: job.state === 'done' ? job.size : 0, size: job.size, rate: 0, etaSeconds: null });
      }
      if (jobs.every((j) => j && ['done', 'failed', 'cancelled'].includes(j.state))) {
        for (const job of jobs) {
          if (!job) continue;
          results.push({ path: job.path, name: job.name, state: job.state, frameioFileId: job.frameioFileId, viewUrl: job.viewUrl, error: job.lastError });
        }
        break;
      }
      if (opts.signal?.aborted) break;
      await sleep(250);
    }
    return results;
  } finally {
    await pool?.stop(0);
    await tunnel?.stop();
    await server.close();
    await hasher.close();
    await store.close();
    tokens.close();
    await fleetPool?.end().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }
}
