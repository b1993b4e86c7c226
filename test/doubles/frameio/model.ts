/**
 * The shapes the emulator keeps and hands out: the fault switches, the ledger of imports (what Frame.io
 * received, byte for byte) and the record of API calls. Tests assert on these, so they are plain JSON.
 */

/** Switches that make the emulator misbehave the way the real service and network sometimes do. */
export interface Faults {
  /** Answer 429 (with Retry-After) to every Nth authenticated /v4 call; 0 = off. */
  status429EveryN: number;
  /** Answer 503 (with Retry-After) to every Nth authenticated /v4 call; 0 = off. 429 wins on a tie. */
  status503EveryN: number;
  /** Retry-After seconds sent with injected 429/503 answers. */
  retryAfterSeconds: number;
  /** Apply the per-operation limits of frameio-v4-ratelimits.txt and answer 429 over them. */
  enforceRateLimits: boolean;
  /** Setting it true revokes every refresh token issued so far (tokens issued later work again). */
  revokeRefreshTokens: boolean;
  /** Setting it true revokes every access token issued so far (as if they all expired at once). */
  revokeAccessTokens: boolean;
  /** Per-import pull rate cap in bytes per second; 0 = unlimited. */
  pullBytesPerSecond: number;
  /** Break an import (upload_failed) once it has received this many bytes; 0 = off. */
  abortPullAfterBytes: number;
  /** Mark the next N remote imports upload_failed without pulling. */
  failImportsNext: number;
  /** Accept the next N remote imports (202) but never pull them: they stay importing until deleted. */
  stallPullsNext: number;
  /** A tunnel hostname resolves only once its registry entry is this old (DNS propagation); 0 = at once. */
  sourceDnsDelayMs: number;
  /** Delay every /v4 answer by this many milliseconds (a slow API, for timeout tests). */
  apiDelayMs: number;
  /** The next N local_upload files get part URLs that have already expired (S3 answers 403 AccessDenied). */
  expireUploadUrlsNext: number;
  /** The next N part PUTs to storage answer 500 InternalError (body discarded). */
  failUploadPartsNext: number;
  /** Folders (and everything below them) this user may read but not add to: creates answer 403. */
  readOnlyFolderIds: string[];
}

export const DEFAULT_FAULTS: Faults = {
  status429EveryN: 0,
  status503EveryN: 0,
  retryAfterSeconds: 1,
  enforceRateLimits: false,
  revokeRefreshTokens: false,
  revokeAccessTokens: false,
  pullBytesPerSecond: 0,
  abortPullAfterBytes: 0,
  failImportsNext: 0,
  stallPullsNext: 0,
  sourceDnsDelayMs: 0,
  apiDelayMs: 0,
  expireUploadUrlsNext: 0,
  failUploadPartsNext: 0,
  readOnlyFolderIds: [],
};

export interface LedgerRequest {
  method: string;
  /** The Range header sent (`bytes=a-b`), or null for a HEAD / whole-body request. */
  range: string | null;
  /** HTTP status received, or 0 when the request failed before an answer (DNS, refused, reset). */
  status: number;
  /** Epoch milliseconds when the request was sent. */
  at: number;
  error?: string;
}

export type LedgerStatus = 'importing' | 'complete' | 'failed' | 'deleted';

/** One file Frame.io was asked to ingest, and what it actually received. */
export interface LedgerEntry {
  fileId: string;
  kind: 'remote_upload' | 'local_upload';
  name: string;
  folderId: string;
  /** The source URL given to remote_upload; null for a local upload. */
  sourceUrl: string | null;
  /** Size in bytes as announced (HEAD Content-Length, or local_upload file_size); 0 while unknown. */
  size: number;
  /** Bytes received and hashed so far. */
  bytesReceived: number;
  /** sha256 (hex) of the bytes received in order; null until complete. */
  sha256: string | null;
  status: LedgerStatus;
  requests: LedgerRequest[];
  /** Epoch ms of the first request to the source (HEAD included); null before any. */
  firstRequestAt: number | null;
  /** Epoch ms when the import completed or failed. */
  completedAt: number | null;
  error?: string;
}

export interface CallRecord {
  /** Epoch milliseconds when the call arrived. */
  at: number;
  method: string;
  /** Path with query string, as requested. */
  path: string;
  /** The spec's operationId (e.g. `files.create_remote_upload`), `ims.token`, `ims.authorize`, or `unknown`. */
  operation: string;
  status: number;
}
