/**
 * One job's life, from `queued` to `done` (or back to `queued` for a retry): expose the file on the shared
 * server, ask Frame.io to pull it from the tunnel's public URL, follow the bytes leaving and Frame.io's
 * `/status`, verify the result. Every state change is written to the store BEFORE the action it stands for,
 * so that a crash at any point leaves enough behind for the next start to clean up and go on: in particular
 * `importRequestedAt` is stored before `remote_upload` is sent, and a job found in that window after a
 * crash first looks in the destination folder for the file it may have created (see `cleanupPrevious`).
 */
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.ts';
import { describeError, isPostflowError, PostflowError } from '../errors.ts';
import { ERR_JOBS_PATH_TAKEN } from '../jobs/errors.ts';
import type { Job, JobLanding, JobStore } from '../jobs/store.ts';
import { runAfterUpload } from './after-upload.ts';
import { hashFile, hashWhileServing, hashWithin } from './content-hash.ts';
import { HashThread, type ServedHasher } from './hash-thread.ts';
import { uploadDirect, type DirectHooks } from './direct.ts';
import { ERR_UPLOAD_FOLDER_UNAVAILABLE, ERR_UPLOAD_REMOTE_FAILED, ERR_UPLOAD_SIZE_MISMATCH, ERR_UPLOAD_STALLED } from './errors.ts';
import { choosePath, msUntilDirect, TunnelOutage, type FolderUploadSetting, type PathInput } from './path-choice.ts';
import type { AuthGate, ShaperPort, ExposedFile, Exposer, FrameioPort, RemoteFile, TunnelView } from './ports.ts';
import { createLanding, historyOf, skipCandidate, type AfterUpload, type Destination, type FolderPolicy } from './landing.ts';
import { formatBytes, formatDuration, progressMessage, ProgressTracker } from './progress.ts';

/** Frame.io's documented remote-upload limit (50 GB, decimal). */
export const REMOTE_UPLOAD_LIMIT = 50_000_000_000;

export interface UploadSettings {
  maxAttempts: number;
  stallTimeoutMs: number;
  statusPollMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Frame.io's remote-upload cap; default REMOTE_UPLOAD_LIMIT (tests lower it instead of writing 50 GB). */
  remoteUploadLimit?: number;
  /** `auto` folders go direct once the tunnel has been down this long; default 120 s. */
  directAfterTunnelDownMs?: number;
  /** Direct path tuning (tests): parts in flight, waits between tries of a part. */
  directConcurrency?: number;
  directRetryDelaysMs?: readonly number[];
  /**
   * How long a confirmed import waits for the sha256 of what was served (read back behind the server; it
   * may lag on a slow mount or a busy machine) before it is marked done without it; it is stored when it
   * arrives. 60 s.
   */
  hashWaitMs?: number;
}

export interface JobRunnerDeps {
  store: JobStore;
  server: Exposer;
  tunnel: TunnelView;
  frameio: FrameioPort;
  auth: AuthGate;
  logger: Logger;
  settings: UploadSettings;
  now?: () => number;
  /** Called on every progress update (status page, TTY bars); cheap, synchronous. */
  onProgress?: (job: Job, p: { covered: number; size: number; rate: number; etaSeconds: number | null }) => void;
  /** Bandwidth caps for the direct path's PUTs (the file server applies them to the remote path). */
  shaper?: ShaperPort;
  /** Called once when a job ends done or failed (notifications); synchronous, must not block the worker. */
  onJobEnd?: (job: Job, outcome: JobOutcome) => void;
  /**
   * The Frame.io folder the job's file lands in: the destination plus the mirrored sub folders (created as
   * needed), or the destination itself for a flat folder. Default: the job's destination as it is.
   */
  destinationFor?: (job: Job, signal: AbortSignal) => Promise<Destination>;
  /** The watch folder's `onExisting` and `afterUpload`; default a separate file, the source left alone. */
  policyFor?: (job: Job) => Pick<FolderPolicy, 'onExisting' | 'afterUpload'>;
  /** The `upload` key of the job's watch folder; default "auto". */
  uploadSetting?: (job: Job) => FolderUploadSetting;
  /** Computes the sha256s (what was served; a `skip` check's local file). Default: a HashThread of its own. */
  hasher?: ServedHasher;
}

/** How a job ended, for whoever is told (webhooks, Slack). */
export type JobOutcome =
  | { state: 'done'; frameioFileId: string; viewUrl: string | null; durationMs: number; attempts: number }
  | { state: 'failed'; reason: string; durationMs: number | null; attempts: number };

/** Why the pool aborted a running job (AbortSignal reason). */
type AbortReason = 'shutdown' | 'file-changed' | 'file-removed' | 'cancelled' | 'lease-lost';

/** The tunnel came back under another hostname while Frame.io pulled from the old one. */
class UrlChanged extends Error {}

/** How often a job whose watch folder is gone looks again (when no folder-back event comes first). */
const FOLDER_RECHECK_MS = 10_000;

/** True for a queued job that waits for its watch folder to come back (see ERR_UPLOAD_FOLDER_UNAVAILABLE). */
export function waitsForFolder(job: Pick<Job, 'state' | 'lastError'>): boolean {
  return job.state === 'queued' && job.lastError?.startsWith(`${ERR_UPLOAD_FOLDER_UNAVAILABLE.code}:`) === true;
}
/** The pull stalled or failed while the tunnel was down: the tunnel's fault, not the file's. */
class TunnelLost extends Error {}

/**
 * What one job saw of the tunnel since it started: how often it went down and its latest URL. Subscribed for
 * the whole job, so an outage between `waitReady` and the start of `follow` is not missed.
 */
function watchTunnel(tunnel: TunnelView): { readonly downs: number; readonly url: string | undefined; dispose(): void } {
  const seen = {
    downs: 0,
    url: undefined as string | undefined,
    dispose() {
      tunnel.off('down', onDown);
      tunnel.off('url', onUrl);
    },
  };
  const onDown = () => {
    seen.downs++;
  };
  const onUrl = (url: string) => {
    seen.url = url;
  };
  tunnel.on('down', onDown);
  tunnel.on('url', onUrl);
  return seen;
}

export function createJobRunner(deps: JobRunnerDeps): (job: Job, signal: AbortSignal) => Promise<void> {
  const now = deps.now ?? Date.now;
  const { store, settings } = deps;
  const directAfterTunnelDownMs = settings.directAfterTunnelDownMs ?? 120_000;
  // One outage clock for every job: an outage that began before a job started counts in full. A tunnel that
  // is not ready yet when the runner is built counts as down from now.
  const outage = new TunnelOutage(deps.tunnel.state && deps.tunnel.state().status !== 'ready' ? now() : null);
  deps.tunnel.on('down', () => outage.down(now()));
  deps.tunnel.on('ready', () => outage.up());
  const landing = createLanding(deps.frameio);
  const hasher = deps.hasher ?? new HashThread();

  return async function runJob(job: Job, signal: AbortSignal): Promise<void> {
    const log = deps.logger.child({ job: job.id, file: job.path });
    const startedAt = job.startedAt ?? now();
    // Entering `exposing` counts an attempt (the store does the counting).
    if (!(await store.transition(job.id, 'queued', 'exposing', { startedAt, nextAttemptAt: null }))) return;
    let current: Job = (await store.get(job.id)) ?? { ...job, state: 'exposing', attempts: job.attempts + 1 };
    const attempt = current.attempts;
    // The attempt works on the row as the compare-and-set found it: between the pool's read and that write,
    // a watcher may have moved the queued job to newer contents and back to queued (state-only CAS: ABA; seen
    // with three nodes on one folder), and the caller's copy would then be taken for a changed file.
    job = current;
    let exposure: ExposedFile | undefined;
    let hashing: ReturnType<typeof hashWhileServing> | undefined;
    let sentAt: number | null = null;
    const tunnelSeen = watchTunnel(deps.tunnel);
    try {
      const st = await stat(job.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (!st) {
        // A vanished file inside a vanished watch folder is an unmounted filespace, not a deleted export.
        const rootGone = await stat(job.root).then(
          () => undefined,
          (err: NodeJS.ErrnoException) => err.code ?? 'unreadable',
        );
        if (rootGone) throw ERR_UPLOAD_FOLDER_UNAVAILABLE(job.root, rootGone);
        await store.transition(job.id, 'exposing', 'cancelled', { finishedAt: now(), lastError: 'file removed before upload' });
        log.warn({ event: 'cancelled' }, 'file removed before upload: job cancelled');
        return;
      }
      if (st.size !== job.size || st.mtimeMs !== job.mtimeMs) {
        // The watcher reports the new contents as a new job once they are stable again.
        await store.transition(job.id, 'exposing', 'cancelled', { finishedAt: now(), lastError: 'file changed after it was queued; the new contents get a job of their own' });
        log.info({ event: 'changed' }, 'file changed since it was queued: this job is superseded by one for the new contents');
        return;
      }
      const policy = deps.policyFor?.(job) ?? { onExisting: 'new', afterUpload: 'leave' };
      // Resolved before cleanupPrevious and the import: both look in (and write to) the folder the file lands
      // in. A crashed attempt's leftovers are looked for where that attempt recorded it went.
      const dest = deps.destinationFor ? await withAuth(() => deps.destinationFor!(job, signal), signal) : { folderId: job.destination, folderPath: '' };
      await cleanupPrevious(current, log, signal);
      if (current.frameioFolderId !== dest.folderId || current.frameioFolderPath !== dest.folderPath) {
        await store.update(job.id, { frameioFolderId: dest.folderId, frameioFolderPath: dest.folderPath });
        current = { ...current, frameioFolderId: dest.folderId, frameioFolderPath: dest.folderPath };
      }
      if (policy.onExisting === 'skip' && (await skipIdentical(current, dest, policy.afterUpload, log, signal))) return;
      const setting = deps.uploadSetting?.(job) ?? 'auto';
      const pathNow = (): PathInput => ({ size: job.size, setting, tunnelDownForMs: outage.downFor(now()), directAfterTunnelDownMs, remoteLimit: settings.remoteUploadLimit ?? REMOTE_UPLOAD_LIMIT });
      let choice = choosePath(pathNow());

      const exposed = choice.path === 'remote' ? await deps.server.expose({ jobId: job.id, path: job.path, name: job.name, folderIndex: job.folderIndex }) : undefined;
      exposure = exposed;
      // The sha256 of what is served, read back right behind the server (a later `skip` compares with it).
      hashing = exposed ? hashWhileServing(job.path, exposed, hasher) : undefined;
      exposed?.once('complete', () => (sentAt ??= now()));
      if (exposed) log.info({ event: 'exposing', attempt, size: job.size }, `attempt ${attempt}: ${formatBytes(job.size)} exposed, waiting for the tunnel`);

      while (exposed && choice.path === 'remote') {
        const base = await waitTunnelOrDirect(pathNow, signal);
        if (base === undefined) {
          choice = { path: 'direct', reason: 'tunnel-down' };
          break;
        }
        const downsBefore = tunnelSeen.downs;
        const sourceUrl = base + exposed.urlPath;
        const requestedAt = now();
        // Written before remote_upload is sent: after a crash in the window before its answer is stored,
        // the next start knows to look for a file it may have created (no idempotency keys at Frame.io).
        const mark = { importRequestedAt: requestedAt, frameioFileId: null, sourceUrl: redactSource(sourceUrl) };
        if (current.state === 'exposing') await store.transition(job.id, 'exposing', 'importing', mark);
        else await store.update(job.id, mark);
        current = { ...current, state: 'importing', ...mark };
        const remote = await withAuth(() => deps.frameio.remoteUpload(dest.folderId, job.name, sourceUrl, signal), signal);
        await store.update(job.id, { frameioFileId: remote.file.id });
        current = { ...current, frameioFileId: remote.file.id };
        log.info({ event: 'importing', frameioFileId: remote.file.id, sourceUrl: redactSource(sourceUrl) }, 'Frame.io asked to import the file');
        try {
          const tunnelTrouble = () => (tunnelSeen.url !== undefined && tunnelSeen.url !== base ? 'url' : tunnelSeen.downs !== downsBefore ? 'down' : null);
          await follow(current, exposed, requestedAt, tunnelTrouble, log, signal);
        } catch (err) {
          if (!(err instanceof UrlChanged) && !(err instanceof TunnelLost)) throw err;
          // Not an attempt of this file's: the tunnel failed under it. Same attempt, re-issued once the
          // tunnel is ready again (waitReady), the old Frame.io file deleted so it does not stay beside the new.
          log.warn(
            { event: 'reissue', frameioFileId: remote.file.id, reason: err instanceof UrlChanged ? 'tunnel-url-changed' : 'tunnel-lost' },
            err instanceof UrlChanged
              ? 'tunnel URL changed: re-issuing the import on the new URL'
              : `the pull broke while the tunnel was down (${err.message}): re-issuing the import once the tunnel is back`,
          );
          await deleteQuietly(remote.file.id, log);
          await store.update(job.id, { frameioFileId: null, importRequestedAt: null });
          current = { ...current, frameioFileId: null, importRequestedAt: null };
          continue;
        }
        await complete(remote.file.id);
        return;
      }

      // The direct path: nothing is served, so the exposure (if the tunnel gave out under it) goes now.
      exposure?.revoke();
      exposure = undefined;
      log.info(
        { event: 'path', path: 'direct', reason: choice.reason, attempt, size: job.size },
        `attempt ${attempt}: ${formatBytes(job.size)} goes as a direct upload (${DIRECT_REASONS[choice.reason]})`,
      );
      const hooks: DirectHooks = {
        beforeCreate: async () => {
          // As for remote_upload: written before local_upload is sent, so a crash before its answer is
          // stored leaves the next start enough to find and delete the file it may have created.
          const mark = { importRequestedAt: now(), frameioFileId: null, sourceUrl: null };
          if (current.state === 'exposing') await store.transition(job.id, 'exposing', 'importing', mark);
          else await store.update(job.id, mark);
          current = { ...current, state: 'importing', ...mark };
        },
        created: async (fileId) => {
          await store.update(job.id, { frameioFileId: fileId });
          current = { ...current, frameioFileId: fileId };
        },
        abandon: async (fileId) => {
          await deleteQuietly(fileId, log);
          await store.update(job.id, { frameioFileId: null, importRequestedAt: null });
          current = { ...current, frameioFileId: null, importRequestedAt: null };
        },
        call: (fn) => withAuth(fn, signal),
      };
      const fileId = await uploadDirect(
        { ...job, destination: dest.folderId },
        hooks,
        {
          frameio: deps.frameio,
          log,
          now,
          stallTimeoutMs: settings.stallTimeoutMs,
          statusPollMs: settings.statusPollMs,
          onProgress: (p) => deps.onProgress?.(current, p),
          ...(deps.shaper
            ? { shape: { take: (n: number, s: AbortSignal) => deps.shaper!.take(n, job.folderIndex, s), sliceBytes: () => deps.shaper!.sliceBytes(job.folderIndex) } }
            : {}),
          ...(settings.directConcurrency !== undefined ? { concurrency: settings.directConcurrency } : {}),
          ...(settings.directRetryDelaysMs !== undefined ? { retryDelaysMs: settings.directRetryDelaysMs } : {}),
        },
        signal,
      );
      await complete(fileId);

      /** Both paths end here: done only when Frame.io's file has the local size. */
      async function complete(fileId: string): Promise<void> {
        const file = await withAuth(() => deps.frameio.getFile(fileId, signal), signal);
        // A missing file_size proves nothing about the bytes Frame.io holds: a mismatch (retried), never a pass.
        if (file.file_size == null || file.file_size !== job.size) throw ERR_UPLOAD_SIZE_MISMATCH(file.id, file.file_size, job.size);
        const confirmedAt = now();
        const sha256 = hashing ? await servedHash(hashing, job.id, log) : current.sha256;
        if (hashing && sha256 === null) hashing = undefined; // handed over: servedHash stores it when it arrives
        let landed: JobLanding = 'new';
        let versionStackId: string | null = null;
        // "skip" with different content is a re-export like any other: it becomes a new version.
        if (policy.onExisting !== 'new') {
          try {
            versionStackId = await landing.stack(dest.folderId, job.name, file.id, signal);
            if (versionStackId !== null) landed = 'version';
          } catch (err) {
            if (signal.aborted) throw err;
            log.warn({ event: 'version-failed', frameioFileId: file.id, err: describeError(err) }, `could not stack ${job.name} on its namesake as a new version (${describeError(err)}); it stays a separate file`);
          }
        }
        const finishedAt = now();
        await store.transition(job.id, 'importing', 'done', {
          finishedAt,
          viewUrl: file.view_url ?? null,
          lastError: null,
          sha256,
          versionStackId,
          landing: landed,
          sentAt,
          confirmedAt,
        });
        const seconds = Math.max(0.001, (finishedAt - startedAt) / 1000);
        log.info(
          {
            event: 'done',
            frameioFileId: file.id,
            viewUrl: file.view_url ?? null,
            size: job.size,
            durationMs: finishedAt - startedAt,
            rate: Math.round(job.size / seconds),
            attempts: attempt,
            folderId: dest.folderId,
            folderPath: dest.folderPath,
            landing: landed,
            versionStackId,
            sha256,
          },
          `done: ${job.name} (${formatBytes(job.size)}) in ${formatDuration(seconds)} at ${formatBytes(job.size / seconds)}/s — ${file.view_url ?? file.id}`,
        );
        await afterUpload(job.id, policy.afterUpload, log);
        tell(job, { state: 'done', frameioFileId: file.id, viewUrl: file.view_url ?? null, durationMs: finishedAt - startedAt, attempts: attempt }, log);
      }
    } catch (err) {
      await settle(current, err, signal, log);
    } finally {
      hashing?.dispose();
      tunnelSeen.dispose();
      exposure?.revoke();
    }
  };

  /**
   * onExisting "skip": when the path's last import had this size and landed here, and Frame.io still lists
   * it, the local file is hashed once; identical content ends the job done without an upload. Returns
   * whether it did.
   */
  /**
   * The served file's sha256 once it is known, or null after settings.hashWaitMs (then it is stored on the
   * job when the hash thread finishes: a later `skip` compares with it) or when it cannot be known.
   */
  async function servedHash(hashing: ReturnType<typeof hashWhileServing>, jobId: string, log: Logger): Promise<string | null> {
    const failed = (err: unknown): null => {
      log.warn({ err: describeError(err) }, `sha256 of the served file not known: ${describeError(err)}`);
      return null;
    };
    const first = await hashWithin(hashing.result, settings.hashWaitMs ?? 60_000);
    if (first.state === 'failed') return failed(first.err);
    if (first.state === 'done') return first.sha256;
    log.info({ event: 'hash-pending', hashed: hashing.task.hashed }, 'sha256 of the served file still being computed; the job is done without it for now');
    hashing.result
      .then((sha256) => store.update(jobId, { sha256 }).then(() => log.info({ event: 'hashed', sha256 }, `sha256 recorded: ${sha256}`)), failed)
      .catch((err: unknown) => log.warn({ err: describeError(err) }, `sha256 computed but not recorded: ${describeError(err)}`));
    return null;
  }

  async function skipIdentical(job: Job, dest: Destination, action: AfterUpload, log: Logger, signal: AbortSignal): Promise<boolean> {
    const prev = skipCandidate(await historyOf(store, job), job, dest.folderId);
    if (!prev) return false;
    if (!(await withAuth(() => landing.stillThere(dest.folderId, job.name, prev), signal))) return false;
    const sha256 = await hashFile(hasher, job.path, job.size, signal);
    if (sha256 !== prev.sha256) {
      await store.update(job.id, { sha256 });
      log.info({ event: 'not-skipped', sha256, previous: prev.id }, `${job.name} differs from its last import (sha256): uploading it`);
      return false;
    }
    const finishedAt = now();
    const skipped = {
      finishedAt,
      lastError: null,
      sha256,
      frameioFileId: prev.frameioFileId,
      versionStackId: prev.versionStackId,
      viewUrl: prev.viewUrl,
      landing: 'skipped',
      confirmedAt: finishedAt,
    } as const;
    if (!(await store.transition(job.id, 'exposing', 'done', skipped, `skipped: identical to job ${prev.id}`))) return true;
    log.info(
      { event: 'skipped', frameioFileId: prev.frameioFileId, viewUrl: prev.viewUrl, sha256, previous: prev.id, folderPath: dest.folderPath },
      `skipped: ${job.name} is identical (size and sha256) to the copy already in Frame.io — ${prev.viewUrl ?? prev.frameioFileId}`,
    );
    await afterUpload(job.id, action, log);
    tell(job, { state: 'done', frameioFileId: prev.frameioFileId ?? '', viewUrl: prev.viewUrl, durationMs: finishedAt - (job.startedAt ?? finishedAt), attempts: job.attempts }, log);
    return true;
  }

  /** The after-upload action; its failure is logged, never undoes a done import. */
  async function afterUpload(id: string, action: AfterUpload, log: Logger): Promise<void> {
    if (action === 'leave') return;
    const done = await store.get(id);
    if (!done) return;
    try {
      const path = await runAfterUpload(done, action);
      await store.update(id, { afterUploadPath: path });
      log.info({ event: 'after-upload', action, path }, action === 'move' ? `source moved to ${path}` : `sidecar written: ${path}`);
    } catch (err) {
      log.warn({ event: 'after-upload-failed', action, err: describeError(err) }, `after-upload ${action} failed, the source stays where it is: ${describeError(err)}`);
    }
  }

  /**
   * The tunnel's public URL once it is ready, or undefined when an `auto` job has waited out
   * `directAfterTunnelDownMs` of outage and should go direct instead.
   */
  async function waitTunnelOrDirect(pathNow: () => PathInput, signal: AbortSignal): Promise<string | undefined> {
    for (;;) {
      const ms = msUntilDirect(pathNow());
      if (ms === null) return deps.tunnel.waitReady(signal);
      if (ms === 0) return undefined;
      const giveUp = new AbortController();
      const both = AbortSignal.any([signal, giveUp.signal]);
      const ready = deps.tunnel.waitReady(both).then(
        (url) => url,
        (err: unknown) => {
          if (signal.aborted) throw err;
          return undefined;
        },
      );
      const timer = setTimeout(() => giveUp.abort(), ms);
      try {
        const url = await ready;
        if (url !== undefined) return url;
      } finally {
        clearTimeout(timer);
        giveUp.abort();
      }
    }
  }

  /** Decides what an attempt's end means for the job: back to queued (retry/resume), discovered, cancelled or failed. */
  async function settle(job: Job, err: unknown, signal: AbortSignal, log: Logger): Promise<void> {
    const from = job.state;
    const reason = signal.aborted ? (signal.reason as AbortReason) : undefined;
    if (reason === 'lease-lost') {
      // Another node of the fleet owns the job now and cleans up this attempt (it looks in Frame.io before
      // importing again); anything written here would only undo its work, and the store refuses it anyway.
      log.warn({ event: 'lease-lost' }, 'another node took this job over (this node missed its heartbeats): attempt abandoned');
      return;
    }
    if (reason === 'shutdown') {
      // The import stays half-done at Frame.io; the next start deletes it and re-imports (cleanupPrevious).
      // Should a newer version hold the path by then, the start-up recovery drops this job.
      await store.transition(job.id, from, 'queued', { attempts: job.attempts - 1 }).catch((e: unknown) => {
        if (!isPostflowError(e, ERR_JOBS_PATH_TAKEN)) throw e;
      });
      log.info({ event: 'interrupted' }, 'stopped by shutdown: resumes on the next start');
      return;
    }
    if (reason === 'file-changed' || reason === 'file-removed' || reason === 'cancelled') {
      if (job.frameioFileId) await deleteQuietly(job.frameioFileId, log);
      if (reason === 'file-changed') {
        // The watcher has already opened a job for the new contents; it is imported once stable.
        await store.transition(job.id, from, 'cancelled', { finishedAt: now(), frameioFileId: null, lastError: 'file changed during upload; the new contents get a job of their own' });
        log.info({ event: 'changed' }, 'file changed during its upload: import cancelled, the new contents are imported once stable');
      } else {
        await store.transition(job.id, from, 'cancelled', { finishedAt: now(), lastError: reason === 'file-removed' ? 'file removed during upload' : 'cancelled' });
        log.warn({ event: 'cancelled', reason }, reason === 'file-removed' ? 'file removed during upload: job cancelled' : 'job cancelled');
      }
      return;
    }
    const message = describeError(err);
    const retryable = !isPostflowError(err) || err.retryable;
    // Waiting for a mount is not an attempt: it costs none, and is re-checked at a calm pace (the daemon
    // also re-offers such jobs the moment the watcher sees the folder back).
    const folderGone = isPostflowError(err, ERR_UPLOAD_FOLDER_UNAVAILABLE);
    if (folderGone || (retryable && job.attempts < settings.maxAttempts)) {
      const delay = folderGone ? Math.min(settings.retryMaxMs, FOLDER_RECHECK_MS) : backoffDelay(job.attempts - 1, { baseMs: settings.retryBaseMs, maxMs: settings.retryMaxMs });
      try {
        await store.transition(job.id, from, 'queued', { nextAttemptAt: now() + delay, lastError: message, ...(folderGone ? { attempts: job.attempts - 1 } : {}) });
      } catch (e) {
        if (!isPostflowError(e, ERR_JOBS_PATH_TAKEN)) throw e;
        if (job.frameioFileId) await deleteQuietly(job.frameioFileId, log);
        await store.transition(job.id, from, 'cancelled', { finishedAt: now(), lastError: 'superseded by a newer version of the file' });
        log.info({ event: 'cancelled' }, 'attempt failed and a newer version of the file has its own job: this one is dropped');
        return;
      }
      // The watcher already warned once that the folder is gone; one line per job per re-check would flood.
      if (folderGone) log.debug({ event: 'folder-wait', delayMs: delay }, message);
      else log.warn({ event: 'retry', attempt: job.attempts, delayMs: delay, err: message }, `attempt ${job.attempts} failed, retrying in ${formatDuration(delay / 1000)}: ${message}`);
      return;
    }
    if (job.frameioFileId) await deleteQuietly(job.frameioFileId, log);
    const failedAt = now();
    await store.transition(job.id, from, 'failed', { finishedAt: failedAt, lastError: message });
    log.error({ event: 'failed', attempts: job.attempts, err: message }, `failed after ${job.attempts} attempt(s): ${message}`);
    tell(job, { state: 'failed', reason: message, durationMs: job.startedAt == null ? null : failedAt - job.startedAt, attempts: job.attempts }, log);
  }

  /** A listener's bug must not turn a finished job into a failed one. */
  function tell(job: Job, outcome: JobOutcome, log: Logger): void {
    try {
      deps.onJobEnd?.(job, outcome);
    } catch (err) {
      log.warn({ err: describeError(err) }, 'job-end listener failed');
    }
  }

  /**
   * Before a new attempt, removes what an earlier one left at Frame.io so it does not stay beside the good
   * file. After a crash between "remote_upload sent" and "answer stored" there is no file id: the file is
   * found by name in the destination folder among those created since the request was written down, leaving
   * out files the store records as another job's.
   */
  async function cleanupPrevious(job: Job, log: Logger, signal: AbortSignal): Promise<void> {
    if (job.frameioFileId) {
      await deleteQuietly(job.frameioFileId, log);
      await store.update(job.id, { frameioFileId: null, importRequestedAt: null });
      return;
    }
    if (job.importRequestedAt == null) return;
    const since = job.importRequestedAt - 120_000; // clock skew between us and Frame.io
    const strays: RemoteFile[] = [];
    await withAuth(async () => {
      strays.length = 0;
      for await (const child of deps.frameio.listChildren(job.frameioFolderId ?? job.destination, { type: 'file' })) {
        if (child.name !== job.name) continue;
        const created = child.created_at ? Date.parse(child.created_at) : Number.NaN;
        if (Number.isNaN(created) || created >= since) strays.push(child);
      }
    }, signal);
    // A file of the same name that another job imported (an earlier version of this path, or a file of
    // that name from another sub folder) is someone's good import, not our stray.
    const owned = strays.length === 0 ? [] : await store.list({ frameioFileIds: strays.map((f) => f.id) });
    const ownedIds = new Set(owned.filter((j) => j.id !== job.id).map((j) => j.frameioFileId));
    for (const stray of strays) {
      if (ownedIds.has(stray.id)) continue;
      log.warn({ event: 'cleanup', frameioFileId: stray.id }, 'found a file left by an interrupted attempt: deleting it before importing again');
      await deleteQuietly(stray.id, log);
      landing.forget(job.frameioFolderId ?? job.destination, stray.id);
    }
    await store.update(job.id, { importRequestedAt: null });
  }

  /**
   * Follows one import until Frame.io says it is complete. `tunnelTrouble` says whether the tunnel changed
   * its URL ('url') or went down ('down') since the import was requested: a URL change re-issues at once; a
   * stall or an upload_failed during an outage is blamed on the tunnel (TunnelLost), not on the file.
   */
  async function follow(
    job: Job,
    exposure: ExposedFile,
    requestedAt: number,
    tunnelTrouble: () => 'url' | 'down' | null,
    log: Logger,
    signal: AbortSignal,
  ): Promise<void> {
    const fileId = job.frameioFileId!;
    const progress = new ProgressTracker({ size: job.size, startedAt: requestedAt });
    const orTunnelLost = (err: PostflowError): Error => (tunnelTrouble() === 'down' ? new TunnelLost(err.message) : err);
    let announcedAllSent = false;
    let poll = 0;
    // Once the last byte has left, Frame.io confirms within moments: the wait in progress (up to
    // statusPollSeconds) is cut short and polling starts quick again, so `done` is not logged seconds late.
    // One controller per follow, woken by either event, rather than an AbortSignal.any per poll: Node keeps
    // each observed composite alive as long as the job's signal (memory in a burst of thousands of jobs).
    const allSent = new AbortController();
    const onComplete = (): void => allSent.abort();
    exposure.once('complete', onComplete);
    if (signal.aborted) allSent.abort();
    else signal.addEventListener('abort', onComplete, { once: true });
    try {
      // A status asked before Frame.io has pulled anything only says "not yet": the first look waits for the
      // whole file to have left or the first poll interval, whichever comes first (one call less per small file).
      if (!exposure.coverage.complete) {
        await sleep(Math.min(settings.statusPollMs, 250), undefined, { signal: allSent.signal }).catch(() => undefined);
      }
      for (;;) {
        if (signal.aborted) throw signal.reason;
        if (tunnelTrouble() === 'url') throw new UrlChanged();
        const t = now();
        const covered = exposure.coverage.covered;
        const line = progress.update(covered, t);
        const sample = progress.sample(t);
        deps.onProgress?.(job, { covered, size: job.size, rate: sample.rate, etaSeconds: sample.etaSeconds });
        if (line) {
          log.info({ event: 'progress', percent: line.percent, bytes: line.bytes, size: line.size, rate: line.rate, etaSeconds: line.etaSeconds }, progressMessage(line));
        }
        if (exposure.coverage.complete && !announcedAllSent) {
          announcedAllSent = true;
          poll = 0;
          log.info({ event: 'sent', bytes: job.size }, 'whole file has left the machine: waiting for Frame.io to confirm');
        }
        if (!exposure.coverage.complete) {
          const lastActivity = exposure.lastServedAt ?? requestedAt;
          if (t - Math.max(lastActivity, requestedAt) > settings.stallTimeoutMs) {
            throw orTunnelLost(ERR_UPLOAD_STALLED(settings.stallTimeoutMs / 1000, covered, job.size));
          }
        }
        const status = await withAuth(() => deps.frameio.fileStatus(fileId, signal), signal);
        if (status.upload_complete) return;
        if (status.upload_failed) throw orTunnelLost(ERR_UPLOAD_REMOTE_FAILED(fileId));
        // Poll quickly at first (small files finish in a second), then settle at the configured pace.
        const wait = Math.min(settings.statusPollMs, 250 * 2 ** poll++);
        const wake = announcedAllSent ? signal : allSent.signal;
        await sleep(wait, undefined, { signal: wake }).catch(() => undefined);
      }
    } finally {
      exposure.off('complete', onComplete);
      signal.removeEventListener('abort', onComplete);
    }
  }

  /** Runs a Frame.io call; while the login is lost, waits for it to come back instead of failing the job. */
  async function withAuth<T>(call: () => Promise<T>, signal: AbortSignal): Promise<T> {
    for (;;) {
      try {
        return await call();
      } catch (err) {
        if (!(err instanceof PostflowError) || err.code !== 'PF_ERR_FRAMEIO_AUTH_REVOKED') throw err;
        await deps.auth.waitRestored(signal);
      }
    }
  }

  async function deleteQuietly(fileId: string, log: Logger): Promise<void> {
    try {
      await deps.frameio.deleteFile(fileId);
    } catch (err) {
      log.warn({ frameioFileId: fileId, err: describeError(err) }, 'could not delete the Frame.io file of an abandoned attempt');
    }
  }
}

const DIRECT_REASONS = {
  'over-remote-limit': "over Frame.io's remote-upload limit",
  'folder-direct': 'the watch folder is set to upload: "direct"',
  'tunnel-down': 'the tunnel has been down too long',
  remote: 'remote',
} as const;

/** The public URL as logs and the store may show it: the path segment that is the credential is hidden. */
export function redactSource(url: string): string {
  return url.replace(/^(https?:\/\/[^/]+\/)[^/]+\//, '$1<redacted>/');
}
