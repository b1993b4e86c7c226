/**
 * The status as people and scripts see it, built from plain data: the same view feeds the JSON API, the
 * status page, `postflow status` from the running daemon and `postflow status` read from the store of a
 * stopped one. Pure, so every figure on the page is tested without sockets or timers.
 */
import type { FleetNode, Job } from '../jobs/store.ts';
import { JOB_STATES, type JobState } from '../jobs/states.ts';

/** The last progress sample of a running import, as the job runner reports it. */
export interface LiveProgress {
  covered: number;
  size: number;
  /** Bytes per second over the tracker's recent window. */
  rate: number;
  etaSeconds: number | null;
  /** When the sample was taken (ms). */
  at: number;
}

export interface TunnelInfo {
  status: 'stopped' | 'starting' | 'ready' | 'down';
  publicUrl: string | null;
  urlSince: number | null;
  restarts: number;
  lastError: string | null;
}

export interface FolderInfo {
  path: string;
  destination: string;
  /** The last poll sweep of this folder, if one finished. */
  lastSweep?: { at: number; files: number; durationMs: number } | undefined;
  /** The folder could not be read at the last sweep (a LucidLink mount gone, say). */
  missing?: boolean | undefined;
  /** In quiet hours: when new imports of this folder may start again (ms); null/absent = not quiet now. */
  quietUntil?: number | null | undefined;
  /** Its queue priority (higher first), when the daemon runs. */
  priority?: number | undefined;
}

export interface StatusInput {
  now: number;
  /** False when read from the store of a stopped daemon: no live parts then. */
  running: boolean;
  pid: number | null;
  startedAt: number | null;
  paused: boolean;
  logLevel: string | null;
  counts: Record<JobState, number>;
  /** Jobs in exposing/importing. */
  inFlight: readonly Job[];
  /** Oldest first. */
  queued: readonly Job[];
  /** Newest first. */
  done: readonly Job[];
  /** Newest first. */
  failed: readonly Job[];
  progress: ReadonlyMap<string, LiveProgress>;
  tunnel: TunnelInfo | null;
  folders: readonly FolderInfo[];
  /** The daemons sharing the store (issue 10), when there is more than this one. */
  fleet?: readonly FleetNode[] | undefined;
  /** A node silent longer than this has lost its jobs to the others (store.leaseTimeoutSeconds). */
  leaseTimeoutMs?: number | undefined;
}

/** One daemon of the fleet, as `postflow status` lists it. */
export interface FleetRow {
  nodeId: string;
  host: string;
  pid: number;
  /** running: heartbeating; silent: no heartbeat for longer than the lease (dead or cut off); stopped: left cleanly. */
  state: 'running' | 'silent' | 'stopped';
  heartbeatAgeSeconds: number;
  /** Ids of the active jobs it holds. */
  jobs: string[];
}

export interface ActiveImport {
  id: string;
  name: string;
  path: string;
  state: JobState;
  size: number;
  covered: number;
  /** 0–100, one decimal. */
  percent: number;
  rate: number;
  etaSeconds: number | null;
  attempt: number;
  startedAt: number | null;
  /** Seconds since the last progress sample; null when none came yet. */
  sampleAgeSeconds: number | null;
}

export interface JobRow {
  id: string;
  state: JobState;
  folderIndex: number;
  /** The watch folder's priority (higher first), when the running daemon knows it. */
  priority?: number;
  name: string;
  path: string;
  size: number;
  attempts: number;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  nextAttemptAt: number | null;
  lastError: string | null;
  frameioFileId: string | null;
  viewUrl: string | null;
  /** Where and how it landed in Frame.io (issue 8). */
  frameioFolderId: string | null;
  frameioFolderPath: string | null;
  versionStackId: string | null;
  landing: Job['landing'];
  sha256: string | null;
  sentAt: number | null;
  confirmedAt: number | null;
  afterUploadPath: string | null;
}

export interface DoneRow {
  id: string;
  name: string;
  size: number;
  finishedAt: number | null;
  durationSeconds: number | null;
  viewUrl: string | null;
}

export interface FailedRow {
  id: string;
  name: string;
  path: string;
  finishedAt: number | null;
  attempts: number;
  reason: string;
}

export interface StatusView {
  generatedAt: number;
  daemon: { running: boolean; pid: number | null; startedAt: number | null; uptimeSeconds: number | null; paused: boolean; logLevel: string | null };
  queue: { length: number; waitingRetry: number; counts: Record<JobState, number>; next: JobRow[] };
  active: ActiveImport[];
  recentDone: DoneRow[];
  recentFailed: FailedRow[];
  tunnel: (TunnelInfo & { urlAgeSeconds: number | null }) | null;
  watch: Array<FolderInfo & { lastSweepAgeSeconds: number | null }>;
  fleet?: FleetRow[];
}

/** How many rows of each list the status carries; `postflow jobs` has the rest. */
export const STATUS_LIST_LIMIT = 10;

const seconds = (ms: number): number => Math.max(0, Math.round(ms / 100) / 10);

export function jobRow(job: Job): JobRow {
  return {
    id: job.id,
    state: job.state,
    folderIndex: job.folderIndex,
    name: job.name,
    path: job.path,
    size: job.size,
    attempts: job.attempts,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    nextAttemptAt: job.nextAttemptAt,
    lastError: job.lastError,
    frameioFileId: job.frameioFileId,
    viewUrl: job.viewUrl,
    frameioFolderId: job.frameioFolderId,
    frameioFolderPath: job.frameioFolderPath,
    versionStackId: job.versionStackId,
    landing: job.landing,
    sha256: job.sha256,
    sentAt: job.sentAt,
    confirmedAt: job.confirmedAt,
    afterUploadPath: job.afterUploadPath,
  };
}

export function activeImport(job: Job, p: LiveProgress | undefined, now: number): ActiveImport {
  const size = job.size;
  // A sample from an earlier attempt of a smaller or larger file is never shown as this one's.
  const covered = p && p.size === size ? Math.min(p.covered, size) : 0;
  const percent = size === 0 ? (job.state === 'importing' ? 100 : 0) : Math.floor((covered / size) * 1000) / 10;
  return {
    id: job.id,
    name: job.name,
    path: job.path,
    state: job.state,
    size,
    covered,
    percent,
    rate: p ? Math.max(0, Math.round(p.rate)) : 0,
    etaSeconds: p && p.etaSeconds !== null ? Math.max(0, Math.round(p.etaSeconds)) : null,
    attempt: job.attempts,
    startedAt: job.startedAt,
    sampleAgeSeconds: p ? seconds(now - p.at) : null,
  };
}

export function buildStatus(input: StatusInput): StatusView {
  const { now } = input;
  const counts = Object.fromEntries(JOB_STATES.map((s) => [s, input.counts[s] ?? 0])) as Record<JobState, number>;
  const waitingRetry = input.queued.filter((j) => j.nextAttemptAt !== null && j.nextAttemptAt > now).length;
  return {
    generatedAt: now,
    daemon: {
      running: input.running,
      pid: input.pid,
      startedAt: input.startedAt,
      uptimeSeconds: input.startedAt === null ? null : seconds(now - input.startedAt),
      paused: input.paused,
      logLevel: input.logLevel,
    },
    queue: {
      length: counts.queued,
      waitingRetry,
      counts,
      next: input.queued.slice(0, STATUS_LIST_LIMIT).map(jobRow),
    },
    active: [...input.inFlight]
      .sort((a, b) => (a.startedAt ?? a.createdAt) - (b.startedAt ?? b.createdAt))
      .map((j) => activeImport(j, input.progress.get(j.id), now)),
    recentDone: input.done.slice(0, STATUS_LIST_LIMIT).map((j) => ({
      id: j.id,
      name: j.name,
      size: j.size,
      finishedAt: j.finishedAt,
      durationSeconds: j.finishedAt !== null && j.startedAt !== null ? seconds(j.finishedAt - j.startedAt) : null,
      viewUrl: j.viewUrl,
    })),
    recentFailed: input.failed.slice(0, STATUS_LIST_LIMIT).map((j) => ({
      id: j.id,
      name: j.name,
      path: j.path,
      finishedAt: j.finishedAt,
      attempts: j.attempts,
      reason: j.lastError ?? 'no reason recorded',
    })),
    tunnel: input.tunnel && {
      ...input.tunnel,
      urlAgeSeconds: input.tunnel.urlSince === null ? null : seconds(now - input.tunnel.urlSince),
    },
    watch: input.folders.map((f) => ({ ...f, lastSweepAgeSeconds: f.lastSweep ? seconds(now - f.lastSweep.at) : null })),
    ...(input.fleet
      ? {
          fleet: input.fleet.map((n) => ({
            nodeId: n.nodeId,
            host: n.host,
            pid: n.pid,
            state: n.stoppedAt !== null ? 'stopped' : now - n.heartbeatAt > (input.leaseTimeoutMs ?? 30_000) ? 'silent' : 'running',
            heartbeatAgeSeconds: seconds(now - n.heartbeatAt),
            jobs: [...n.jobs],
          })),
        }
      : {}),
  };
}
