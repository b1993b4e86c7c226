/**
 * The job store contract. Methods are async even though SQLite answers synchronously, so a PostgreSQL store
 * (issue 10) fits behind the same interface; every implementation must pass test/jobs/store-contract.ts.
 */
import type { JobState } from './states.ts';

export interface Job {
  id: string; // uuid
  folderIndex: number; // index of the watch folder in the config
  root: string; // the watch folder's root path
  path: string; // absolute path of the file
  relPath: string; // path relative to root, used to mirror sub folders in Frame.io
  name: string;
  size: number;
  mtimeMs: number;
  ino: number;
  destination: string; // Frame.io folder id
  state: JobState;
  /** Number of times the job entered `exposing` since it was (re)queued by hand; the store counts it. */
  attempts: number;
  /** Earliest time (ms) a worker may start the next attempt; null = at once. */
  nextAttemptAt: number | null;
  lastError: string | null;
  // The current attempt. Kept (not cleared) across a retry, so recovery can find and delete what the previous
  // attempt created in Frame.io.
  frameioFileId: string | null;
  viewUrl: string | null;
  sourceUrl: string | null;
  /**
   * When remote_upload was (about to be) sent and its answer not yet stored: after a crash in that window the
   * next attempt looks in Frame.io for a file it may have created. Null otherwise.
   */
  importRequestedAt: number | null;
  /** sha256 (hex) of the file's contents: computed while serving, or read before a `skip` decision. */
  sha256: string | null;
  /** The Frame.io folder the file lands in (DEST, or DEST + the mirrored sub folders), once resolved. */
  frameioFolderId: string | null;
  /** That folder relative to the destination, '/'-separated ('' for the destination itself). */
  frameioFolderPath: string | null;
  /** The version stack the file was added to (onExisting "version" with a namesake already there). */
  versionStackId: string | null;
  /** How the file landed: a separate file, a new version of a namesake, or skipped as identical content. */
  landing: JobLanding | null;
  /** When the last byte of the file left the machine (ms). */
  sentAt: number | null;
  /** When Frame.io confirmed the import complete and the size was checked (ms). */
  confirmedAt: number | null;
  /** Where the after-upload action put things: the moved source, or the sidecar written beside it. */
  afterUploadPath: string | null;
  createdAt: number;
  updatedAt: number;
  /** Set the first time the job enters `exposing`. */
  startedAt: number | null;
  /** Set when the job enters a terminal state, cleared when it leaves one (manual retry). */
  finishedAt: number | null;
}

export type JobLanding = 'new' | 'version' | 'skipped';

/** What the watcher knows about a file when it reports it. */
export interface DiscoveredFile {
  folderIndex: number;
  root: string;
  path: string;
  relPath: string;
  name: string;
  size: number;
  mtimeMs: number;
  ino: number;
  destination: string;
}

/** Fields a caller may set; identity, state and bookkeeping times belong to the store. */
export type JobPatch = Partial<Omit<Job, 'id' | 'state' | 'createdAt' | 'updatedAt'>>;

export interface JobQuery {
  states?: readonly JobState[];
  /** Only jobs whose nextAttemptAt is null or ≤ this time (ms): what a worker may start now. */
  dueBy?: number;
  limit?: number;
  /** By creation time (oldest first for 'asc', the default). */
  order?: 'asc' | 'desc';
  /**
   * Only jobs whose recorded Frame.io file is one of these ids: which files in a destination folder belong to
   * some job (crash recovery must not delete another job's import of the same name).
   */
  frameioFileIds?: readonly string[];
  /** Only jobs for this absolute file path (the history of one file: "was this content imported before?"). */
  path?: string;
}

export interface JobEvent {
  at: number;
  from: JobState | null; // null for the creating event
  to: JobState;
  detail: string | null;
}

export interface BaselineFile {
  path: string;
  size: number;
  mtimeMs: number;
}

/** What a claim gives a node: the job it now holds, and who held it before (a node whose lease expired). */
export interface ClaimedJob {
  job: Job;
  /** The node whose lease expired (takeover), or null for a job nobody held. */
  previousNode: string | null;
}

export interface ClaimOptions {
  /** At most this many jobs (the node's free worker slots). */
  limit: number;
  /** How long the lease lasts without a heartbeat. */
  leaseMs: number;
  /** Per watch folder (index), its priority: higher claimed first, equal ones oldest first. Missing = 0. */
  priorities?: readonly number[];
  /** Watch folders in quiet hours: their queued jobs are not claimed (jobs in flight still are). */
  skipFolders?: readonly number[];
  /** Only queued jobs of at most this many bytes (a worker kept for small files asks). */
  maxSize?: number;
}

/** One daemon of the fleet as the store knows it (from its heartbeats). */
export interface FleetNode {
  nodeId: string;
  host: string;
  pid: number;
  startedAt: number;
  heartbeatAt: number;
  /** Set when the node left cleanly (released its leases); null while it runs or after it died. */
  stoppedAt: number | null;
  /** Ids of the active jobs whose lease it holds. */
  jobs: string[];
}

export interface NodeInfo {
  host: string;
  pid: number;
  startedAt: number;
}

export interface JobStore {
  /**
   * The daemon this handle acts for. Leases carry it; a job another node holds under a live lease cannot be
   * moved or patched through this handle from queued/exposing/importing (transition/update answer false).
   */
  readonly nodeId: string;
  /**
   * Takes up to `limit` jobs to run, each under a lease for this node, skipping jobs other nodes hold (FOR
   * UPDATE SKIP LOCKED in PostgreSQL): due `queued` jobs nobody holds, and jobs whose holder stopped
   * heartbeating (lease expired) in any active state — in flight ones are returned as they are, for the
   * caller's crash recovery (look in Frame.io before importing again). Also unheld `stable`/in-flight jobs
   * older than one lease (a node died between two of its writes).
   */
  claim(opts: ClaimOptions): Promise<ClaimedJob[]>;
  /**
   * This node is alive: renews its leases on `held` (the jobs its pool has), gives up the others it holds,
   * records the heartbeat. Returns the ids in `held` it no longer holds (another node took them over).
   */
  heartbeat(held: readonly string[], leaseMs: number, info: NodeInfo): Promise<string[]>;
  /** Clean leave: every lease of this node given up (others claim at once), the node marked stopped. */
  release(): Promise<void>;
  /** The fleet: nodes seen heartbeating, newest first, with the jobs each holds. */
  nodes(): Promise<FleetNode[]>;
  /**
   * A new or changed file was seen: create a `discovered` job, or update size/mtime/ino of the open
   * (discovered/stable/queued) job for the same path — sending a stable/queued job back to `discovered` when
   * the file differs. Never creates a second open job for one path. When the path's job is in flight
   * (exposing/importing): the same file (size, mtime, ino) returns that job; a different one gets a new
   * `discovered` job (re-exported: a new version). Callers check isKnown() first: a done file is not deduped.
   */
  discover(file: DiscoveredFile): Promise<Job>;
  /**
   * Compare-and-set, atomic: moves the job to `to` only if it is in one of `from`, applies `patch` and writes
   * an event row (detail: `detail`, else patch.lastError). Returns false when the job was not in `from` (or
   * does not exist). Throws PF_ERR_JOBS_ILLEGAL_TRANSITION when some `from` → `to` is not in the state table,
   * PF_ERR_JOBS_PATH_TAKEN when reopening (→ queued/discovered) while a newer open job holds the path.
   * Entering `exposing` increments `attempts`; failed → queued resets it to 0.
   */
  transition(id: string, from: JobState | readonly JobState[], to: JobState, patch?: JobPatch, detail?: string): Promise<boolean>;
  /** Sets fields without changing the state. Returns false when no such job exists. */
  update(id: string, patch: JobPatch): Promise<boolean>;
  get(id: string): Promise<Job | undefined>;
  list(q?: JobQuery): Promise<Job[]>;
  /** Number of jobs in every state (0 for empty states). */
  counts(): Promise<Record<JobState, number>>;
  /** Was this exact file (path+size+mtime) already handled: imported (done) or present at first start? */
  isKnown(path: string, size: number, mtimeMs: number): Promise<boolean>;
  /**
   * Same answer without a promise, for the watcher's hot path (thousands of files per sweep). A remote store
   * answers it from a local cache; a stale "no" is harmless since discover() dedupes.
   */
  isKnownSync(path: string, size: number, mtimeMs: number): boolean;
  /** First start: the files present now are not uploaded. Later calls add/overwrite entries by path. */
  recordBaseline(files: readonly BaselineFile[]): Promise<void>;
  /** The job's transitions, oldest first. */
  events(id: string): Promise<JobEvent[]>;
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}
