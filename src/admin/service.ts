/**
 * The admin room as the composition root uses it: metrics, the live progress of running imports, the
 * loopback listener and the admin.json that lets the CLI find it. The daemon feeds it events through the
 * hooks below and lends it the pool and tunnel once they exist; the room never reaches into other rooms.
 */
import type { Logger } from 'pino';
import type { Job, JobStore } from '../jobs/store.ts';
import { ProgressTracker } from '../upload/progress.ts';
import { listJobs, readStatus, retryAllFailed, retryJob } from './actions.ts';
import { removeAdminFile, writeAdminFile } from './discovery.ts';
import { setLogLevel } from './log-level.ts';
import { createMetrics, type DaemonMetrics } from './metrics.ts';
import { createAdminServer, type AdminServer } from './server.ts';
import type { FolderInfo, LiveProgress, TunnelInfo } from './view.ts';

export interface AdminServiceOptions {
  host: string;
  port: number;
  stateDir: string;
  /** The process's root logger: its level is the one the API and SIGHUP change. */
  logger: Logger;
  store: JobStore;
  folders: ReadonlyArray<{ path: string; destination: string }>;
  now?: () => number;
  eventIntervalMs?: number;
  /** store.leaseTimeoutSeconds in ms: a fleet node silent longer than this shows as SILENT. */
  leaseTimeoutMs?: number;
}

/** What the daemon lends once its pool and tunnel are built. */
export interface AdminLive {
  tunnel?: () => TunnelInfo | undefined;
  paused?: () => boolean;
  /** Per watch folder: when its quiet hours end (ms), null when not quiet now. */
  quietUntil?: () => readonly (number | null)[];
  /** Per watch folder: its queue priority now (config reloads change it). */
  priorities?: () => readonly number[];
  /** Offers a re-queued job to the worker pool. */
  enqueue?: (job: Pick<Job, 'id' | 'nextAttemptAt'>) => void;
}

/** A file on the public server as the admin sees it: its byte coverage, read live at status time. */
export interface ExposureView {
  readonly jobId: string;
  readonly size: number;
  readonly coverage: { readonly covered: number };
  on(event: 'progress', fn: (p: { bytesSent: number }) => void): unknown;
  on(event: 'revoked', fn: () => void): unknown;
}

export interface AdminService {
  readonly metrics: DaemonMetrics;
  /**
   * A file was exposed for a job: its served bytes feed the metrics, and its coverage is the status page's
   * progress — read at every status, so the bar moves as bytes leave, not at the runner's /status polls.
   */
  exposed(exposure: ExposureView): void;
  /** The runner's onProgress hook (its samples stand in while no exposure is tracked). */
  progress(job: Job, p: { covered: number; size: number; rate: number; etaSeconds: number | null }): void;
  /** A worker finished with the job (whatever the outcome); `after` is the job as stored now. */
  attemptEnded(after: Job | undefined): void;
  sweep(ev: { folderIndex: number; files: number; durationMs: number }): void;
  folderMissing(folderIndex: number, missing: boolean): void;
  attach(live: AdminLive): void;
  /** Listens and writes admin.json. */
  start(): Promise<{ url: string }>;
  /** Removes admin.json and closes the listener. */
  stop(): Promise<void>;
}

export function createAdminService(opts: AdminServiceOptions): AdminService {
  const now = opts.now ?? Date.now;
  const { store } = opts;
  const log = opts.logger.child({ room: 'admin' });
  const progress = new Map<string, LiveProgress>();
  const exposures = new Map<string, { exposure: ExposureView; tracker: ProgressTracker }>();
  const folders: FolderInfo[] = opts.folders.map((f) => ({ path: f.path, destination: f.destination }));
  let live: AdminLive = {};
  let startedAt: number | null = null;
  let server: AdminServer | undefined;
  let url: string | undefined;

  const metrics = createMetrics({
    jobCounts: () => store.counts(),
    tunnel: () => live.tunnel?.(),
    now,
  });

  /** The runner's last samples, overridden by live coverage (and a rate over it) where a file is exposed. */
  function liveProgress(t: number): Map<string, LiveProgress> {
    const out = new Map(progress);
    for (const [jobId, { exposure, tracker }] of exposures) {
      tracker.update(exposure.coverage.covered, t);
      const s = tracker.sample(t);
      out.set(jobId, { covered: s.bytes, size: exposure.size, rate: s.rate, etaSeconds: s.etaSeconds, at: t });
    }
    return out;
  }

  const status = () => {
    const t = now();
    return readStatus(
      store,
      {
        running: true,
        pid: process.pid,
        startedAt,
        paused: live.paused?.() ?? false,
        logLevel: opts.logger.level,
        progress: liveProgress(t),
        tunnel: live.tunnel?.() ?? null,
        folders: folders.map((f, i) => ({ ...f, quietUntil: live.quietUntil?.()[i] ?? null, priority: live.priorities?.()[i] })),
        leaseTimeoutMs: opts.leaseTimeoutMs,
      },
      t,
    );
  };

  return {
    metrics,
    exposed(exposure) {
      metrics.trackExposure(exposure);
      const entry = { exposure, tracker: new ProgressTracker({ size: exposure.size, startedAt: now(), rateWindowMs: 5_000 }) };
      exposures.set(exposure.jobId, entry);
      exposure.on('revoked', () => {
        if (exposures.get(exposure.jobId) === entry) exposures.delete(exposure.jobId);
      });
    },
    progress(job, p) {
      progress.set(job.id, { ...p, at: now() });
    },
    attemptEnded(after) {
      if (!after) return;
      progress.delete(after.id);
      exposures.delete(after.id);
      if (after.state === 'done' || after.state === 'failed' || after.state === 'cancelled') metrics.importEnded(after.state);
      if (after.state === 'done' && after.startedAt !== null && after.finishedAt !== null) metrics.importDone((after.finishedAt - after.startedAt) / 1000);
    },
    sweep(ev) {
      metrics.sweep(ev);
      const f = folders[ev.folderIndex];
      if (f) {
        f.lastSweep = { at: now(), files: ev.files, durationMs: ev.durationMs };
        f.missing = false;
      }
    },
    folderMissing(folderIndex, missing) {
      const f = folders[folderIndex];
      if (f) f.missing = missing;
    },
    attach(l) {
      live = { ...live, ...l };
    },
    async start() {
      startedAt = now();
      server = createAdminServer({
        host: opts.host,
        port: opts.port,
        logger: log,
        ...(opts.eventIntervalMs === undefined ? {} : { eventIntervalMs: opts.eventIntervalMs }),
        handlers: {
          status,
          jobs: async (q) => {
            const rows = await listJobs(store, q);
            const p = live.priorities?.();
            if (!p) return rows;
            const ranked = rows.map((r) => ({ ...r, priority: p[r.folderIndex] ?? 0 }));
            // The queue as the claims take it: higher priority first, then oldest first.
            if (q.state === 'queued') ranked.sort((a, b) => b.priority - a.priority || a.createdAt - b.createdAt);
            return ranked;
          },
          async retry(id) {
            const job = await retryJob(store, id);
            live.enqueue?.(job);
            return job;
          },
          async retryFailed() {
            const out = await retryAllFailed(store);
            for (const job of out.retried) live.enqueue?.(job);
            return out;
          },
          logLevel: () => opts.logger.level,
          setLogLevel: (level) => setLogLevel(opts.logger, level, 'admin API'),
          metrics: () => metrics.scrape(),
        },
      });
      ({ url } = await server.listen());
      await writeAdminFile(opts.stateDir, { url, pid: process.pid, startedAt });
      log.info({ event: 'admin', url }, `status page and admin API on ${url} (loopback only)`);
      return { url };
    },
    async stop() {
      await removeAdminFile(opts.stateDir, process.pid).catch(() => undefined);
      await server?.close();
      server = undefined;
    },
  };
}
