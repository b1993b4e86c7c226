/**
 * One file made public under one token: what the server checks on each request (the file's identity at
 * registration), what it counts (coverage, bytes sent), and the events a job follows. The job holds it
 * and calls `revoke()` when it is done; the server holds it in its token registry.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { BigIntStats } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { contentDisposition, contentTypeFor } from './content-type.ts';
import { Coverage } from './coverage.ts';

export interface RequestEvent {
  method: string;
  /** The Range header as received, if any. */
  range: string | undefined;
  status: number;
}

export interface ProgressEvent {
  /** Distinct bytes of the file that have left the machine. */
  covered: number;
  size: number;
  /** All bytes handed to sockets, repeats included. */
  bytesSent: number;
}

export interface ChangedEvent {
  /** What differs from the registered file (e.g. `size 10 → 12`, `ELOOP`). */
  reason: string;
}

export type RevokeReason = 'revoked' | 'expired' | 'closed';

export interface ExposureEvents {
  request: [RequestEvent];
  progress: [ProgressEvent];
  complete: [];
  changed: [ChangedEvent];
  revoked: [{ reason: RevokeReason }];
}

export interface Exposure extends EventEmitter<ExposureEvents> {
  readonly jobId: string;
  readonly name: string;
  readonly token: string;
  /** `/${token}/${encodeURIComponent(name)}`: append to the tunnel's public origin. Never log it. */
  readonly urlPath: string;
  readonly size: number;
  readonly coverage: Coverage;
  readonly expiresAt: number;
  readonly active: boolean;
  bytesSent: number;
  lastServedAt: number | undefined;
  /** The URL stops working at once; responses in flight are destroyed. Idempotent. */
  revoke(): void;
}

/** What must still hold for the path to be served: the file as it was when exposed. */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
}

export function identityOf(st: BigIntStats): FileIdentity {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs };
}

/** Undefined when `st` is the registered file, else a short reason. */
export function identityDiff(expected: FileIdentity, st: BigIntStats): string | undefined {
  if (!st.isFile()) return 'not a regular file';
  if (st.dev !== expected.dev || st.ino !== expected.ino) return 'replaced by another file';
  if (st.size !== expected.size) return `size ${expected.size} → ${st.size}`;
  if (st.mtimeNs !== expected.mtimeNs) return 'modified';
  return undefined;
}

export interface ExposureInit {
  jobId: string;
  path: string;
  name: string;
  /** The watch folder the file belongs to (its bandwidth cap); undefined outside the daemon. */
  folderIndex?: number | undefined;
  identity: FileIdentity;
  mtimeMs: number;
  now: () => number;
  /** Removes the token from the registry; called once by revoke. */
  unregister: () => void;
}

export class FileExposure extends EventEmitter<ExposureEvents> implements Exposure {
  readonly jobId: string;
  readonly path: string;
  readonly name: string;
  readonly folderIndex: number | undefined;
  readonly size: number;
  readonly coverage: Coverage;
  readonly identity: FileIdentity;
  readonly etag: string;
  readonly lastModifiedMs: number;
  readonly lastModified: string;
  readonly contentType: string;
  readonly contentDisposition: string;
  bytesSent = 0;
  lastServedAt: number | undefined = undefined;
  #token = '';
  #expiresAt = 0;
  #active = true;
  #completeEmitted = false;
  #changedEmitted = false;
  readonly #inFlight = new Set<ServerResponse>();
  readonly #now: () => number;
  readonly #unregister: () => void;

  constructor(init: ExposureInit) {
    super();
    this.jobId = init.jobId;
    this.path = init.path;
    this.name = init.name;
    this.folderIndex = init.folderIndex;
    this.identity = init.identity;
    this.size = Number(init.identity.size);
    this.coverage = new Coverage(this.size);
    this.lastModifiedMs = init.mtimeMs;
    this.lastModified = new Date(init.mtimeMs).toUTCString();
    // Opaque: an inode number is nobody's business outside this machine.
    const id = `${init.identity.dev}:${init.identity.ino}:${init.identity.size}:${init.identity.mtimeNs}`;
    this.etag = `"${createHash('sha256').update(id).digest('base64url').slice(0, 27)}"`;
    this.contentType = contentTypeFor(init.name);
    this.contentDisposition = contentDisposition(init.name);
    this.#now = init.now;
    this.#unregister = init.unregister;
  }

  /** Set once by the server right after the registry issued the token. */
  bind(token: string, expiresAt: number): void {
    this.#token = token;
    this.#expiresAt = expiresAt;
  }

  get token(): string {
    return this.#token;
  }

  get urlPath(): string {
    return `/${this.#token}/${encodeURIComponent(this.name)}`;
  }

  get expiresAt(): number {
    return this.#expiresAt;
  }

  get active(): boolean {
    return this.#active;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  track(res: ServerResponse): void {
    this.#inFlight.add(res);
    res.once('close', () => this.#inFlight.delete(res));
  }

  /** Bytes [start, start+length) were handed to a socket. */
  sent(start: number, length: number): void {
    this.bytesSent += length;
    this.lastServedAt = this.#now();
    this.coverage.add(start, start + length);
    this.emit('progress', { covered: this.coverage.covered, size: this.size, bytesSent: this.bytesSent });
    this.checkComplete();
  }

  /** Emits 'complete' the first time coverage is whole (an empty file is whole once served). */
  checkComplete(): void {
    if (this.#completeEmitted || !this.coverage.complete) return;
    this.#completeEmitted = true;
    this.emit('complete');
  }

  markChanged(reason: string): void {
    if (this.#changedEmitted) return;
    this.#changedEmitted = true;
    this.emit('changed', { reason });
  }

  revoke(): void {
    this.end('revoked');
  }

  end(reason: RevokeReason): void {
    if (!this.#active) return;
    this.#active = false;
    this.#unregister();
    for (const res of this.#inFlight) res.destroy();
    this.#inFlight.clear();
    this.emit('revoked', { reason });
  }
}
