/**
 * The typed Frame.io V4 client: one method per call postflow makes, on fetch. Every call takes its
 * operation's slot from the rate limiter first, carries `Authorization: Bearer` and `x-api-key`, and goes
 * through one retry policy:
 *
 * - 401 → the access token is invalidated and the call made once more with a fresh one;
 * - 429 → Retry-After (else 1 s doubling) blocks that operation for every caller, then the call is retried
 *   (a 429 means the request was refused, so even a create is safe to repeat);
 * - 5xx, timeouts, network errors → backoff with jitter, up to `maxRetries`, but only for calls that are
 *   safe to repeat. A create that got no clear answer may have happened (there are no idempotency keys),
 *   so it surfaces as PF_ERR_FRAMEIO_CREATE_UNCERTAIN and the caller looks before creating again.
 */
import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.ts';
import { isPostflowError } from '../errors.ts';
import {
  ERR_ACCOUNT_AMBIGUOUS,
  ERR_BAD_RESPONSE,
  ERR_DESTINATION_NOT_FOUND,
  ERR_NOT_FOUND,
  apiError,
  createUncertainError,
  networkError,
  rateLimitedError,
  unauthorizedError,
} from './errors.ts';
import type { Parsed } from './parse.ts';
import {
  errorDetail,
  isProblem,
  nextPageUrl,
  parseAccount,
  parseAsset,
  parseFile,
  parseFileWithUploadUrls,
  parseFolder,
  parseMe,
  parsePage,
  parseProject,
  parseUploadStatus,
  parseVersionStack,
  unwrapData,
} from './parse.ts';
import { abortableSleep, parseRateLimitHeaders, parseRetryAfter } from './rate-limit.ts';
import type {
  Account,
  Asset,
  AssetType,
  File,
  FileUploadStatus,
  FileWithUploadUrls,
  Folder,
  Me,
  Project,
  VersionStack,
} from './types.ts';

/** What the client needs from the token provider (ims.ts satisfies it). */
export interface AccessTokens {
  getAccessToken(signal?: AbortSignal): Promise<string>;
  invalidate(token: string): void;
}

/** What the client needs from the rate limiter (rate-limit.ts satisfies it). */
export interface CallLimiter {
  acquire(operation: string, signal?: AbortSignal): Promise<void>;
  observe(operation: string, headers: { limit?: number; remaining?: number; windowMs?: number }): void;
  penalize(operation: string, ms: number): void;
}

/** One HTTP exchange, for metrics. `status` 0 = no answer (network error or timeout). */
export interface CallRecord {
  operation: string;
  method: string;
  status: number;
  /** 0 for the first try of a call, then 1, 2… */
  attempt: number;
  durationMs: number;
}

export interface FrameioClientOptions {
  /** `https://api.frame.io/v4` (the emulator's in tests). */
  apiUrl: string;
  /** Empty: the only account the login can see (looked up once). */
  accountId?: string;
  /** Sent as `x-api-key`; Adobe's gateway answers 401 without it. */
  clientId: string;
  tokens: AccessTokens;
  limiter: CallLimiter;
  fetch?: typeof fetch;
  logger: Logger;
  /** Retries for 5xx/network faults, and separately for 429s. Default 5. */
  maxRetries?: number;
  /** First backoff step for 5xx/network faults; doubles up to 30 s. Default 1000 ms. */
  retryBaseMs?: number;
  /** First backoff step for a 429 without Retry-After; doubles up to 60 s. Default 1000 ms. */
  rateLimitBaseMs?: number;
  /** Per HTTP exchange. Default 60 s. */
  requestTimeoutMs?: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  onCall?: (call: CallRecord) => void;
}

export interface RemoteUploadResult {
  file: File;
  /** `/v4/accounts/{account_id}/files/{file_id}/status`. */
  statusPath: string;
}

export interface LocalUploadResult {
  file: FileWithUploadUrls;
  uploadUrls: FileWithUploadUrls['upload_urls'];
}

export interface ListChildrenOptions {
  /** `file`, `folder`, `version_stack` or a comma-separated mix. */
  type?: AssetType | string;
  /** Up to 500. Default 100. */
  pageSize?: number;
  signal?: AbortSignal;
}

export interface FrameioClient {
  me(signal?: AbortSignal): Promise<Me>;
  listAccounts(signal?: AbortSignal): Promise<Account[]>;
  getProject(projectId: string, signal?: AbortSignal): Promise<Project>;
  getFolder(folderId: string, signal?: AbortSignal): Promise<Folder>;
  /** A folder id → that folder; a project id → its root folder; else PF_ERR_FRAMEIO_DESTINATION_NOT_FOUND. */
  resolveDestination(id: string, signal?: AbortSignal): Promise<Folder>;
  /** Every child of a folder, following every `links.next`. */
  listChildren(folderId: string, opts?: ListChildrenOptions): AsyncIterable<Asset>;
  createFolder(parentId: string, name: string, signal?: AbortSignal): Promise<Folder>;
  /** Deletes a folder and what is in it (404 = already gone = fine). */
  deleteFolder(folderId: string, signal?: AbortSignal): Promise<void>;
  remoteUpload(folderId: string, name: string, sourceUrl: string, signal?: AbortSignal): Promise<RemoteUploadResult>;
  localUpload(folderId: string, name: string, size: number, signal?: AbortSignal): Promise<LocalUploadResult>;
  getFile(fileId: string, signal?: AbortSignal): Promise<File>;
  fileStatus(fileId: string, signal?: AbortSignal): Promise<FileUploadStatus>;
  /** 404 counts as done: the file is gone either way. */
  deleteFile(fileId: string, signal?: AbortSignal): Promise<void>;
  /** Stacks `fileIds` (oldest first, 2–10, all in `folderId`). */
  createVersionStack(folderId: string, fileIds: readonly string[], signal?: AbortSignal): Promise<VersionStack>;
  /** Moves a file into a folder or onto an existing version stack (as its new head). */
  moveFile(fileId: string, parentId: string, signal?: AbortSignal): Promise<File>;
  /** The account id in use (looked up when not configured). */
  accountId(signal?: AbortSignal): Promise<string>;
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

interface Call<T> {
  operation: string;
  method: Method;
  url: string;
  body?: unknown;
  signal?: AbortSignal | undefined;
  /** Safe to send again after an unclear outcome (timeout, 5xx, dropped connection). */
  idempotent: boolean;
  parse: (body: unknown) => Parsed<T>;
  /** Answer `undefined` instead of throwing on 404. */
  allow404?: boolean;
}

/** Connection never made: nothing reached the server, so even a create may be sent again. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function networkCode(err: unknown): string | undefined {
  const cause = (err as { cause?: NodeJS.ErrnoException } | undefined)?.cause;
  return cause?.code ?? (err as NodeJS.ErrnoException | undefined)?.code;
}

function describeNetwork(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'timed out';
  return networkCode(err) ?? (err instanceof Error ? err.message : String(err));
}

const enc = encodeURIComponent;

/**
 * The signal of one request: aborted by the caller's signal or after `ms`, and released by `done()`.
 * Deliberately not `AbortSignal.any([signal, AbortSignal.timeout(ms)])`: fetch listens on that composite,
 * and Node (24.21) keeps an observed composite and its timeout signal alive for as long as their sources
 * live — the 60 s timer at least — so a burst of 10,000 jobs held tens of thousands of them (40k such calls
 * kept 28 MB live after a full GC, 0 this way), and they were promoted to the old generation.
 */
function requestSignal(parent: AbortSignal | undefined, ms: number): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  // Same reason AbortSignal.timeout gives, so a timeout reads as one (describeNetwork).
  const timer = setTimeout(() => ac.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
  timer.unref();
  const onAbort = (): void => ac.abort(parent!.reason);
  if (parent !== undefined) {
    if (parent.aborted) onAbort();
    else parent.addEventListener('abort', onAbort, { once: true });
  }
  return {
    signal: ac.signal,
    done: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onAbort);
    },
  };
}

class V4Client implements FrameioClient {
  readonly #o: FrameioClientOptions;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #random: () => number;
  readonly #base: string;
  readonly #maxRetries: number;
  #account: Promise<string> | undefined;

  constructor(opts: FrameioClientOptions) {
    this.#o = opts;
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#now = opts.now ?? Date.now;
    this.#sleep = opts.sleep ?? abortableSleep;
    this.#random = opts.random ?? Math.random;
    this.#base = opts.apiUrl.replace(/\/+$/, '');
    this.#maxRetries = opts.maxRetries ?? 5;
    if (opts.accountId) this.#account = Promise.resolve(opts.accountId);
  }

  accountId(signal?: AbortSignal): Promise<string> {
    this.#account ??= this.listAccounts(signal).then(
      (accounts) => {
        const only = accounts.length === 1 ? accounts[0] : undefined;
        if (only === undefined) throw ERR_ACCOUNT_AMBIGUOUS(accounts.length);
        this.#o.logger.info({ event: 'frameio-account', accountId: only.id }, 'using the only Frame.io account of this login');
        return only.id;
      },
      (err: unknown) => {
        this.#account = undefined; // a passing fault must not stick
        throw err;
      },
    );
    return this.#account;
  }

  async #acct(path: string, signal: AbortSignal | undefined): Promise<string> {
    return `${this.#base}/accounts/${enc(await this.accountId(signal))}${path}`;
  }

  me(signal?: AbortSignal): Promise<Me> {
    return this.#call({ operation: 'users.show', method: 'GET', url: `${this.#base}/me`, signal, idempotent: true, parse: data(parseMe) });
  }

  async listAccounts(signal?: AbortSignal): Promise<Account[]> {
    const out: Account[] = [];
    for await (const a of this.#pages('accounts.index', `${this.#base}/accounts`, { page_size: '100' }, parseAccount, signal)) out.push(a);
    return out;
  }

  async getProject(projectId: string, signal?: AbortSignal): Promise<Project> {
    const url = await this.#acct(`/projects/${enc(projectId)}`, signal);
    return this.#call({ operation: 'projects.show', method: 'GET', url, signal, idempotent: true, parse: data(parseProject) });
  }

  async getFolder(folderId: string, signal?: AbortSignal): Promise<Folder> {
    const url = await this.#acct(`/folders/${enc(folderId)}`, signal);
    return this.#call({ operation: 'folders.show', method: 'GET', url, signal, idempotent: true, parse: data(parseFolder) });
  }

  async resolveDestination(id: string, signal?: AbortSignal): Promise<Folder> {
    // 404, or 400/422 for an id that is not even well formed: either way, not this kind of thing.
    const notThere = (err: unknown) =>
      isPostflowError(err, ERR_NOT_FOUND) || (isPostflowError(err) && (err.status === 400 || err.status === 422));
    try {
      return await this.getFolder(id, signal);
    } catch (err) {
      if (!notThere(err)) throw err;
    }
    let project: Project;
    try {
      project = await this.getProject(id, signal);
    } catch (err) {
      if (notThere(err)) throw ERR_DESTINATION_NOT_FOUND(id);
      throw err;
    }
    return this.getFolder(project.root_folder_id, signal);
  }

  async *listChildren(folderId: string, opts: ListChildrenOptions = {}): AsyncIterable<Asset> {
    const url = await this.#acct(`/folders/${enc(folderId)}/children`, opts.signal);
    const query: Record<string, string | undefined> = { page_size: String(opts.pageSize ?? 100), type: opts.type };
    yield* this.#pages('folders.index', url, query, parseAsset, opts.signal);
  }

  async createFolder(parentId: string, name: string, signal?: AbortSignal): Promise<Folder> {
    const url = await this.#acct(`/folders/${enc(parentId)}/folders`, signal);
    return this.#call({ operation: 'folders.create', method: 'POST', url, body: { data: { name } }, signal, idempotent: false, parse: data(parseFolder) });
  }

  async deleteFolder(folderId: string, signal?: AbortSignal): Promise<void> {
    const url = await this.#acct(`/folders/${enc(folderId)}`, signal);
    await this.#call({ operation: 'folders.delete', method: 'DELETE', url, signal, idempotent: true, allow404: true, parse: () => undefined });
  }

  async remoteUpload(folderId: string, name: string, sourceUrl: string, signal?: AbortSignal): Promise<RemoteUploadResult> {
    const url = await this.#acct(`/folders/${enc(folderId)}/files/remote_upload`, signal);
    return this.#call({
      operation: 'files.create_remote_upload',
      method: 'POST',
      url,
      body: { data: { name, source_url: sourceUrl } },
      signal,
      idempotent: false,
      parse: (body) => {
        const file = parseFile(unwrapData(body));
        if (isProblem(file)) return file;
        const status = (body as { links?: { status?: unknown } }).links?.status;
        if (typeof status !== 'string' || status === '') return { problem: 'links.status is not a string' };
        return { file, statusPath: status };
      },
    });
  }

  async localUpload(folderId: string, name: string, size: number, signal?: AbortSignal): Promise<LocalUploadResult> {
    const url = await this.#acct(`/folders/${enc(folderId)}/files/local_upload`, signal);
    return this.#call({
      operation: 'files.create_local_upload',
      method: 'POST',
      url,
      body: { data: { name, file_size: size } },
      signal,
      idempotent: false,
      parse: (body) => {
        const file = parseFileWithUploadUrls(unwrapData(body));
        return isProblem(file) ? file : { file, uploadUrls: file.upload_urls };
      },
    });
  }

  async getFile(fileId: string, signal?: AbortSignal): Promise<File> {
    const url = await this.#acct(`/files/${enc(fileId)}`, signal);
    return this.#call({ operation: 'files.show', method: 'GET', url, signal, idempotent: true, parse: data(parseFile) });
  }

  async fileStatus(fileId: string, signal?: AbortSignal): Promise<FileUploadStatus> {
    const url = await this.#acct(`/files/${enc(fileId)}/status`, signal);
    return this.#call({ operation: 'files.show_file_upload_status', method: 'GET', url, signal, idempotent: true, parse: data(parseUploadStatus) });
  }

  async deleteFile(fileId: string, signal?: AbortSignal): Promise<void> {
    const url = await this.#acct(`/files/${enc(fileId)}`, signal);
    await this.#call({ operation: 'files.delete', method: 'DELETE', url, signal, idempotent: true, allow404: true, parse: () => undefined });
  }

  async createVersionStack(folderId: string, fileIds: readonly string[], signal?: AbortSignal): Promise<VersionStack> {
    const url = await this.#acct(`/folders/${enc(folderId)}/version_stacks`, signal);
    return this.#call({
      operation: 'version_stacks.create',
      method: 'POST',
      url,
      body: { data: { file_ids: [...fileIds] } },
      signal,
      idempotent: false,
      parse: data(parseVersionStack),
    });
  }

  async moveFile(fileId: string, parentId: string, signal?: AbortSignal): Promise<File> {
    const url = await this.#acct(`/files/${enc(fileId)}/move`, signal);
    // Moving to the same place twice lands in the same place: safe to repeat.
    return this.#call({ operation: 'files.move', method: 'PATCH', url, body: { data: { parent_id: parentId } }, signal, idempotent: true, parse: data(parseFile) });
  }

  async *#pages<T>(
    operation: string,
    firstUrl: string,
    query: Record<string, string | undefined>,
    item: (x: unknown) => Parsed<T>,
    signal: AbortSignal | undefined,
  ): AsyncIterable<T> {
    const first = new URL(firstUrl);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) first.searchParams.set(k, v);
    let url: string | null = first.toString();
    const seen = new Set<string>();
    while (url !== null) {
      // A server handing back a cursor it already gave would loop us forever.
      if (seen.has(url)) throw ERR_BAD_RESPONSE(operation, 'links.next repeats an earlier page');
      seen.add(url);
      const page: { data: T[]; next: string | null } = await this.#call({
        operation,
        method: 'GET',
        url,
        signal,
        idempotent: true,
        parse: (body) => parsePage(body, item),
      });
      yield* page.data;
      url = page.next === null ? null : nextPageUrl(this.#base, page.next, query);
    }
  }

  async #call<T>(call: Call<T>): Promise<T> {
    const { operation, method, signal } = call;
    const log = this.#o.logger;
    let faults = 0;
    let limited = 0;
    let authRetried = false;
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      await this.#o.limiter.acquire(operation, signal);
      const token = await this.#o.tokens.getAccessToken(signal);
      const headers: Record<string, string> = {
        authorization: `Bearer ${token}`,
        'x-api-key': this.#o.clientId,
        accept: 'application/json',
      };
      if (call.body !== undefined) headers['content-type'] = 'application/json';
      const request = requestSignal(signal, this.#o.requestTimeoutMs ?? 60_000);
      const started = this.#now();
      let res: Response;
      let text: string;
      try {
        try {
          res = await this.#fetch(call.url, {
            method,
            headers,
            body: call.body === undefined ? null : JSON.stringify(call.body),
            signal: request.signal,
          });
          text = await res.text();
        } finally {
          request.done();
        }
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        this.#record(operation, method, 0, attempt, started);
        const why = describeNetwork(err);
        const notSent = NOT_SENT.has(networkCode(err) ?? '');
        if (!call.idempotent && !notSent) throw createUncertainError(operation, why, undefined, err);
        if (faults >= this.#maxRetries) throw networkError(operation, err, faults + 1);
        const wait = backoffDelay(faults++, { baseMs: this.#o.retryBaseMs ?? 1000, maxMs: 30_000 }, this.#random);
        log.warn({ event: 'frameio-retry', operation, reason: why, attempt, waitMs: wait }, `Frame.io ${operation}: ${why}, retrying`);
        await this.#sleep(wait, signal);
        continue;
      }
      const status = res.status;
      this.#o.limiter.observe(operation, parseRateLimitHeaders(res.headers));
      this.#record(operation, method, status, attempt, started);
      let body: unknown;
      if (text !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
          if (status >= 200 && status < 300) throw ERR_BAD_RESPONSE(operation, `HTTP ${status} with a body that is not JSON`);
        }
      }

      if (status >= 200 && status < 300) {
        const parsed = call.parse(body);
        if (isProblem(parsed)) throw ERR_BAD_RESPONSE(operation, parsed.problem);
        return parsed;
      }
      const detail = errorDetail(body);
      if (status === 401) {
        this.#o.tokens.invalidate(token);
        if (!authRetried) {
          authRetried = true;
          log.debug({ event: 'frameio-401', operation }, 'access token refused; refreshing once');
          continue;
        }
        throw unauthorizedError(operation, detail);
      }
      if (status === 429) {
        if (limited >= this.#maxRetries) throw rateLimitedError(operation, limited + 1);
        const wait =
          parseRetryAfter(res.headers.get('retry-after'), this.#now()) ??
          backoffDelay(limited, { baseMs: this.#o.rateLimitBaseMs ?? 1000, maxMs: 60_000 }, this.#random);
        limited++;
        // Blocks the operation for every caller, not just this one: the budget is the user's.
        this.#o.limiter.penalize(operation, wait);
        log.info({ event: 'frameio-rate-limited', operation, waitMs: wait, attempt }, `Frame.io ${operation}: 429, waiting ${wait} ms`);
        continue;
      }
      if (status === 404 && call.allow404) return undefined as T;
      if (status >= 500 || status === 408) {
        if (!call.idempotent) throw createUncertainError(operation, `HTTP ${status}: ${detail ?? 'no detail'}`, status);
        if (faults >= this.#maxRetries) throw apiError(operation, status, detail);
        const retryAfter = parseRetryAfter(res.headers.get('retry-after'), this.#now()) ?? 0;
        const wait = Math.max(retryAfter, backoffDelay(faults++, { baseMs: this.#o.retryBaseMs ?? 1000, maxMs: 30_000 }, this.#random));
        log.warn({ event: 'frameio-retry', operation, status, attempt, waitMs: wait }, `Frame.io ${operation}: HTTP ${status}, retrying`);
        await this.#sleep(wait, signal);
        continue;
      }
      throw apiError(operation, status, detail);
    }
  }

  #record(operation: string, method: string, status: number, attempt: number, started: number): void {
    const call = { operation, method, status, attempt, durationMs: this.#now() - started };
    // Every call at debug: when a 429 or a retry puzzles an operator, this is the timeline (sent = time - durationMs).
    this.#o.logger.debug({ event: 'frameio-call', ...call }, `Frame.io ${operation}: HTTP ${status || 'network error'} in ${call.durationMs} ms`);
    this.#o.onCall?.(call);
  }
}

/** `{"data": X}` checked by `parse`. */
function data<T>(parse: (x: unknown) => Parsed<T>): (body: unknown) => Parsed<T> {
  return (body) => {
    const inner = unwrapData(body);
    return isProblem(inner as Parsed<T>) ? (inner as { problem: string }) : parse(inner);
  };
}

export function createFrameioClient(opts: FrameioClientOptions): FrameioClient {
  return new V4Client(opts);
}
