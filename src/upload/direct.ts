/**
 * The direct path (Frame.io `local_upload`), for files over the 50 GB remote-upload cap, for folders set to
 * `upload: "direct"`, and while the tunnel has been down too long: create the file, PUT each slice of the
 * local file to its presigned storage URL (in the order and sizes Frame.io returned, a few at a time),
 * retry a failed part 1 s / 2 s / 4 s, and when storage refuses the URLs (expired, or the upload is gone)
 * start over with a fresh file after deleting the old one. There is no "complete" call: Frame.io assembles
 * the parts itself, and `/status` says when it has. The caller (run-job) stores the Frame.io file id and
 * verifies the size, exactly as for the remote path.
 */
import { createReadStream } from 'node:fs';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import { ERR_UPLOAD_PART_FAILED, ERR_UPLOAD_PARTS_MISMATCH, ERR_UPLOAD_REMOTE_FAILED, ERR_UPLOAD_URLS_REFUSED } from './errors.ts';
import type { RemoteFile, UploadStatus } from './ports.ts';
import { formatBytes, progressMessage, ProgressTracker } from './progress.ts';

export interface UploadUrl {
  size: number;
  url: string;
}

export interface PartSlice {
  /** 1-based, as storage numbers them. */
  number: number;
  offset: number;
  size: number;
  url: string;
}

/** The file cut in order by each entry's size; the sizes must add up to the file. */
export function planParts(urls: readonly UploadUrl[], size: number): PartSlice[] {
  const parts: PartSlice[] = [];
  let offset = 0;
  for (const [i, u] of urls.entries()) {
    parts.push({ number: i + 1, offset, size: u.size, url: u.url });
    offset += u.size;
  }
  if (offset !== size || urls.length === 0 || urls.some((u) => !Number.isSafeInteger(u.size) || u.size <= 0)) {
    throw ERR_UPLOAD_PARTS_MISMATCH(offset, urls.length, size);
  }
  return parts;
}

/** Storage refused the URL itself (403 expired/signature, 404 no such upload): retrying the same URL is useless. */
export class UrlsRefused extends Error {
  readonly part: number;
  readonly status: number;
  constructor(part: number, status: number, detail: string) {
    super(detail);
    this.part = part;
    this.status = status;
  }
}

/** `<Code>AccessDenied</Code><Message>Request has expired</Message>` → "AccessDenied: Request has expired". */
export function s3ErrorText(xml: string): string {
  const code = /<Code>([^<]*)<\/Code>/.exec(xml)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(xml)?.[1];
  if (!code && !message) return xml.slice(0, 200).replace(/\s+/g, ' ').trim() || 'no details';
  return [code, message].filter(Boolean).join(': ');
}

export interface PutPartsOptions {
  path: string;
  parts: readonly PartSlice[];
  contentType: string;
  /** Parts in flight at once; default 4. */
  concurrency?: number;
  /** Waits before the 2nd, 3rd, … try of a part; default 1 s, 2 s, 4 s. */
  retryDelaysMs?: readonly number[];
  /** A PUT with no socket activity this long is abandoned (and retried). */
  idleTimeoutMs: number;
  signal: AbortSignal;
  /** Called with the bytes a part has handed to the socket (negative when a failed try is taken back). */
  onBytes?: (delta: number) => void;
  log?: Logger;
  /** Bandwidth cap (src/shaping/): each read of the file goes out only once the shaper lets it. */
  shape?: PartShaper;
}

/** The bandwidth shaper as the direct path uses it, bound to the job's watch folder. */
export interface PartShaper {
  take(bytes: number, signal: AbortSignal): Promise<void> | undefined;
  sliceBytes(): number;
}

/**
 * PUTs every part; resolves when all are stored. Throws UrlsRefused as soon as storage refuses a URL,
 * ERR_UPLOAD_PART_FAILED when a part still fails after its retries, or the signal's reason.
 */
export async function putParts(o: PutPartsOptions): Promise<void> {
  const delays = o.retryDelaysMs ?? [1000, 2000, 4000];
  const stop = new AbortController();
  const signal = AbortSignal.any([o.signal, stop.signal]);
  let next = 0;
  let failure: unknown;

  const putWithRetries = async (part: PartSlice): Promise<void> => {
    for (let tryNo = 1; ; tryNo++) {
      let sent = 0;
      try {
        await putPart(o.path, part, o.contentType, o.idleTimeoutMs, signal, (n) => {
          sent += n;
          o.onBytes?.(n);
        }, o.shape);
        return;
      } catch (err) {
        o.onBytes?.(-sent);
        if (err instanceof UrlsRefused || signal.aborted) throw err;
        const delay = delays[tryNo - 1];
        if (delay === undefined) throw ERR_UPLOAD_PART_FAILED(part.number, o.parts.length, tryNo, describeError(err));
        o.log?.warn({ event: 'part-retry', part: part.number, try: tryNo, delayMs: delay, err: describeError(err) }, `part ${part.number} of ${o.parts.length} failed (${describeError(err)}); retrying in ${delay / 1000}s`);
        await sleep(delay, undefined, { signal });
      }
    }
  };

  const worker = async (): Promise<void> => {
    while (failure === undefined && next < o.parts.length) {
      const part = o.parts[next++]!;
      try {
        await putWithRetries(part);
      } catch (err) {
        // The first failure wins; the other parts in flight are cut so the attempt ends promptly.
        failure ??= err;
        stop.abort(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 4, o.parts.length) }, worker));
  if (failure !== undefined) throw o.signal.aborted ? o.signal.reason : failure;
}

/** One PUT of one slice, the body streamed from the file; resolves on 2xx. */
function putPart(path: string, part: PartSlice, contentType: string, idleTimeoutMs: number, signal: AbortSignal, onBytes: (n: number) => void, shape?: PartShaper): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    signal.throwIfAborted();
    const url = new URL(part.url);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    let settled = false;
    const finish = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else {
        source.destroy();
        req.destroy();
        reject(err);
      }
    };
    const onAbort = (): void => finish(signal.reason);
    const req: ClientRequest = request(url, {
      method: 'PUT',
      headers: { 'content-type': contentType, 'content-length': String(part.size), 'x-amz-acl': 'private' },
    });
    // Under a cap, reads are the shaper's slice size, so parallel parts take turns and none sits idle long.
    const highWaterMark = Math.max(16 * 1024, Math.min(1024 * 1024, shape?.sliceBytes() ?? Infinity));
    const source = createReadStream(path, { start: part.offset, end: part.offset + part.size - 1, highWaterMark });
    signal.addEventListener('abort', onAbort, { once: true });
    // Socket idle (nothing written or read) this long: a stalled upload, not a slow one.
    req.setTimeout(idleTimeoutMs, () => finish(new Error(`no progress for ${idleTimeoutMs / 1000}s`)));
    req.on('error', (err) => finish(err));
    source.on('error', (err) => finish(err));
    const send = (chunk: Buffer | string): void => {
      if (settled) return;
      onBytes(chunk.length);
      if (!req.write(chunk)) {
        source.pause();
        req.once('drain', () => source.resume());
      } else source.resume();
    };
    source.on('data', (chunk) => {
      const wait = shape?.take(chunk.length, signal);
      if (wait === undefined) {
        onBytes(chunk.length);
        if (!req.write(chunk)) {
          source.pause();
          req.once('drain', () => source.resume());
        }
        return;
      }
      source.pause();
      shaped = wait.then(() => send(chunk));
    });
    // The last chunk may still be waiting for the shaper when the file ends: the request ends after it.
    let shaped: Promise<void> | undefined;
    source.on('end', () => {
      if (shaped) void shaped.then(() => req.end());
      else req.end();
    });
    req.on('response', (res: IncomingMessage) => {
      const body: Buffer[] = [];
      res.on('data', (b: Buffer) => {
        if (body.length < 16) body.push(b);
      });
      res.on('error', (err) => finish(err));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return finish();
        const detail = s3ErrorText(Buffer.concat(body).toString('utf8'));
        if (status === 403 || status === 404) return finish(new UrlsRefused(part.number, status, detail));
        finish(new Error(`storage answered ${status} (${detail})`));
      });
    });
  });
}

/** What the direct path needs from Frame.io (the real client satisfies it). */
export interface DirectFrameio {
  localUpload(folderId: string, name: string, size: number, signal?: AbortSignal): Promise<{ file: RemoteFile & { media_type?: string }; uploadUrls: UploadUrl[] }>;
  fileStatus(fileId: string, signal?: AbortSignal): Promise<UploadStatus>;
}

export interface DirectJob {
  path: string;
  name: string;
  size: number;
  /** Frame.io folder id the file goes to. */
  destination: string;
}

/** The runner's side of the exactly-once rule: it writes each step down before the step happens. */
export interface DirectHooks {
  /** Before local_upload is sent (the runner stores importRequestedAt). */
  beforeCreate(): Promise<void>;
  /** Once local_upload answered (the runner stores the file id). */
  created(fileId: string): Promise<void>;
  /** A file whose URLs storage refused: the runner deletes it and forgets its id before a fresh one is made. */
  abandon(fileId: string): Promise<void>;
  /** Wraps a Frame.io call (waits out a lost login). */
  call<T>(fn: () => Promise<T>): Promise<T>;
}

export interface DirectOptions {
  frameio: DirectFrameio;
  log: Logger;
  now: () => number;
  stallTimeoutMs: number;
  statusPollMs: number;
  concurrency?: number;
  retryDelaysMs?: readonly number[];
  /** Fresh files after refused URLs within one attempt, before the attempt fails; default 3. */
  maxFreshFiles?: number;
  /** How often progress is sampled while parts go out; default 1 s. */
  sampleMs?: number;
  onProgress?: (p: { covered: number; size: number; rate: number; etaSeconds: number | null }) => void;
  /** Bandwidth cap for the part PUTs. */
  shape?: PartShaper;
}

/**
 * One attempt of the direct path; resolves with the Frame.io file id once `/status` says upload_complete.
 * A file left behind by a failure is the runner's to delete (it knows the id through `created`).
 */
export async function uploadDirect(job: DirectJob, hooks: DirectHooks, o: DirectOptions, signal: AbortSignal): Promise<string> {
  const maxFresh = o.maxFreshFiles ?? 3;
  for (let fresh = 0; ; fresh++) {
    await hooks.beforeCreate();
    const created = await hooks.call(() => o.frameio.localUpload(job.destination, job.name, job.size, signal));
    const fileId = created.file.id;
    await hooks.created(fileId);
    const parts = planParts(created.uploadUrls, job.size);
    o.log.info(
      { event: 'importing', path: 'direct', frameioFileId: fileId, parts: parts.length },
      `Frame.io file created for a direct upload: ${parts.length} part(s) of up to ${formatBytes(Math.max(...parts.map((p) => p.size)))}`,
    );
    try {
      await sendParts(job, parts, created.file.media_type ?? 'application/octet-stream', o, signal);
    } catch (err) {
      if (!(err instanceof UrlsRefused)) throw err;
      if (fresh >= maxFresh) throw ERR_UPLOAD_URLS_REFUSED(err.part, err.status, err.message, fresh);
      o.log.warn(
        { event: 'fresh-file', frameioFileId: fileId, part: err.part, status: err.status, reason: err.message },
        `storage refused part ${err.part} (${err.status} ${err.message}): starting over with a fresh Frame.io file`,
      );
      await hooks.abandon(fileId);
      continue;
    }
    o.log.info({ event: 'sent', bytes: job.size }, 'whole file has left the machine: waiting for Frame.io to confirm');
    await awaitComplete(fileId, hooks, o, signal);
    return fileId;
  }
}

async function sendParts(job: DirectJob, parts: PartSlice[], contentType: string, o: DirectOptions, signal: AbortSignal): Promise<void> {
  const startedAt = o.now();
  const progress = new ProgressTracker({ size: job.size, startedAt });
  let sent = 0;
  const report = (): void => {
    const t = o.now();
    const covered = Math.min(sent, job.size);
    const line = progress.update(covered, t);
    const sample = progress.sample(t);
    o.onProgress?.({ covered, size: job.size, rate: sample.rate, etaSeconds: sample.etaSeconds });
    if (line) {
      o.log.info({ event: 'progress', percent: line.percent, bytes: line.bytes, size: line.size, rate: line.rate, etaSeconds: line.etaSeconds }, progressMessage(line));
    }
  };
  const timer = setInterval(report, o.sampleMs ?? 1000);
  try {
    await putParts({
      path: job.path,
      parts,
      contentType,
      idleTimeoutMs: o.stallTimeoutMs,
      signal,
      log: o.log,
      onBytes: (n) => {
        sent += n;
      },
      ...(o.shape !== undefined ? { shape: o.shape } : {}),
      ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
      ...(o.retryDelaysMs !== undefined ? { retryDelaysMs: o.retryDelaysMs } : {}),
    });
    report();
  } finally {
    clearInterval(timer);
  }
}

/** Polls `/status` (quickly at first, then at the configured pace) until Frame.io has assembled the file. */
async function awaitComplete(fileId: string, hooks: DirectHooks, o: DirectOptions, signal: AbortSignal): Promise<void> {
  for (let poll = 0; ; poll++) {
    const status = await hooks.call(() => o.frameio.fileStatus(fileId, signal));
    if (status.upload_complete) return;
    if (status.upload_failed) throw ERR_UPLOAD_REMOTE_FAILED(fileId);
    await sleep(Math.min(o.statusPollMs, 250 * 2 ** poll), undefined, { signal });
  }
}
