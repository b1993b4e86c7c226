/**
 * The life of one remote import after remote_upload answered 202: resolve the source (retrying a name
 * that does not resolve yet, as a fresh quick tunnel's does not), HEAD it, pull it in parallel ranges,
 * and record the outcome on the File (status endpoint) and in the ledger. Injected faults act here.
 */
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Faults, LedgerEntry, LedgerRequest } from './model.ts';
import { headSource, pullSource, PullError, type PullContext, type PullTuning } from './puller.ts';
import type { Resolution, SourceTarget } from './source.ts';
import { isoMicros, type FileAsset } from './store.ts';

export interface ImportDeps {
  file: FileAsset;
  entry: LedgerEntry;
  faults: () => Faults;
  resolve: () => Resolution;
  tuning: PullTuning;
  /** How many times a name that does not resolve is looked up again, and how far apart. */
  dnsRetries: number;
  dnsRetryDelayMs: number;
  signal: AbortSignal;
  logger: Logger | undefined;
  /** Sources larger than this fail, like the service's 50 GB remote upload limit. */
  maxBytes: number;
  /** Set when remote_upload already resolved and HEADed the source. */
  probed?: { target: SourceTarget; size: number };
}

class ImportFailure extends Error {}

function pullContext(
  entry: LedgerEntry,
  signal: AbortSignal,
  target: SourceTarget,
  progress: (n: number) => void,
  bytesPerSecond: () => number,
): PullContext {
  return {
    target,
    signal,
    record(req: LedgerRequest): LedgerRequest {
      entry.requests.push(req);
      entry.firstRequestAt ??= req.at;
      // Return the stored object so the answer's status lands in the ledger.
      return entry.requests[entry.requests.length - 1] ?? req;
    },
    onBytes: progress,
    bytesPerSecond,
  };
}

async function resolveWithRetries(deps: ImportDeps, signal: AbortSignal): Promise<SourceTarget> {
  for (let attempt = 0; ; attempt++) {
    const r = deps.resolve();
    if (r.ok) return r.target;
    deps.entry.requests.push({ method: 'DNS', range: null, status: 0, at: Date.now(), error: r.detail });
    if (!r.retryable || attempt >= deps.dnsRetries) throw new ImportFailure(r.detail);
    await sleep(deps.dnsRetryDelayMs, undefined, { signal });
  }
}

/** Tries to learn the size before remote_upload answers, as the real service does; never throws. */
export async function probeSource(
  resolution: Resolution,
  entry: LedgerEntry,
  signal: AbortSignal,
): Promise<{ target: SourceTarget; size: number } | undefined> {
  if (!resolution.ok) return undefined;
  const ctx = pullContext(entry, signal, resolution.target, () => {}, () => 0);
  try {
    const size = await headSource(ctx, { chunkRetries: 0, retryBaseMs: 0 });
    return { target: resolution.target, size };
  } catch {
    return undefined;
  }
}

export async function runRemoteImport(deps: ImportDeps): Promise<void> {
  const { file, entry, logger } = deps;
  const log = logger?.child({ fileId: file.id, name: file.name });
  const fail = (reason: string): void => {
    if (entry.status !== 'importing') return;
    entry.status = 'failed';
    entry.error = reason;
    entry.completedAt = Date.now();
    file.uploadFailed = true;
    file.updatedAt = isoMicros(Date.now());
    log?.warn({ reason }, 'import failed');
  };
  // Our own abort, for faults that break the pull from inside the byte stream.
  const broken = new AbortController();
  const signal = AbortSignal.any([deps.signal, broken.signal]);
  const bytesPerSecond = (): number => deps.faults().pullBytesPerSecond;
  try {
    let target: SourceTarget;
    let size: number;
    if (deps.probed) {
      ({ target, size } = deps.probed);
    } else {
      target = await resolveWithRetries(deps, signal);
      size = await headSource(pullContext(entry, signal, target, () => {}, bytesPerSecond), deps.tuning);
    }
    entry.size = size;
    file.fileSize = size;
    if (size > deps.maxBytes) throw new ImportFailure(`source is ${size} bytes, over the remote upload limit of ${deps.maxBytes}`);
    file.uploadedAt = isoMicros(Date.now());
    log?.info({ size, source: entry.sourceUrl }, 'import started');

    let lastLogAt = Date.now();
    let lastPct = 0;
    const progress = (n: number): void => {
      entry.bytesReceived += n;
      const abortAfter = deps.faults().abortPullAfterBytes;
      if (abortAfter > 0 && entry.bytesReceived >= abortAfter && !broken.signal.aborted) {
        broken.abort(new ImportFailure(`pull broken after ${entry.bytesReceived} bytes (abortPullAfterBytes fault)`));
      }
      const pct = size > 0 ? Math.floor((entry.bytesReceived / size) * 100) : 100;
      if (pct >= lastPct + 10 || Date.now() - lastLogAt >= 2000) {
        lastPct = pct;
        lastLogAt = Date.now();
        log?.info({ bytes: entry.bytesReceived, size, pct }, 'import progress');
      }
    };
    const sha256 = await pullSource(pullContext(entry, signal, target, progress, bytesPerSecond), size, deps.tuning);
    if (entry.status !== 'importing') return;
    entry.sha256 = sha256;
    entry.status = 'complete';
    entry.completedAt = Date.now();
    file.status = 'uploaded';
    file.uploadComplete = true;
    file.uploadCompletedAt = isoMicros(entry.completedAt);
    file.updatedAt = file.uploadCompletedAt;
    log?.info({ size, sha256, ms: entry.completedAt - (entry.firstRequestAt ?? entry.completedAt) }, 'import complete');
  } catch (e) {
    if (deps.signal.aborted) return; // deleted or emulator closing: the caller already set the status
    const cause: unknown = broken.signal.aborted ? broken.signal.reason : e;
    fail(cause instanceof ImportFailure || cause instanceof PullError ? cause.message : String(cause));
  }
}
