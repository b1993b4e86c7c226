/**
 * The direct-upload path's storage side: presigned S3-style PUT URLs for each part of a local_upload,
 * checked like S3 checks them (signature over the path, expiry and Content-Type → 403 with an XML error).
 * Two ways to keep what arrives: 'disk' spools parts to a temp folder and hashes them in part order once the
 * last one lands; 'hash' keeps nothing — a part is read only once every part before it is in, straight into
 * one running sha256 (a part that breaks off is rolled back), so a 50+ GB sparse test writes no disk. In
 * 'hash' mode a later part's PUT waits unread (TCP backpressure) until the parts before it are in, and a
 * part PUT again after it was received is taken as the same bytes (not re-hashed).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

/** Part sizes the service hands out: one part under 10 MB, else three near-equal parts (observed), more when a part would pass S3's 5 GB limit. */
export function partSizes(fileSize: number, maxPartBytes = 5_000_000_000): number[] {
  const count = fileSize < 10_000_000 ? 1 : Math.max(3, Math.ceil(fileSize / maxPartBytes));
  const base = Math.ceil(fileSize / count);
  const sizes: number[] = [];
  for (let left = fileSize; left > 0; left -= base) sizes.push(Math.min(base, left));
  return sizes;
}

export interface PartPlan {
  size: number;
  offset: number;
  received: boolean;
}

export interface UploadPlan {
  fileId: string;
  mediaType: string;
  expiresAt: number;
  parts: PartPlan[];
  /** 'hash' mode: sha256 of every part received so far, in order. */
  hash?: Hash;
  /** 'hash' mode: PUTs waiting for the parts before theirs. */
  waiters?: Set<() => void>;
}

export type LocalUploadStore = 'disk' | 'hash';

export type PutAnswer = { status: number; xml?: string; done?: { sha256: string; size: number } };

function s3Error(status: number, code: string, message: string): PutAnswer {
  return { status, xml: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>` };
}

export class LocalUploads {
  readonly #key = randomBytes(32);
  readonly #plans = new Map<string, UploadPlan>();
  readonly #mode: LocalUploadStore;
  #dir: Promise<string> | undefined;

  constructor(mode: LocalUploadStore = 'disk') {
    this.#mode = mode;
  }

  #sign(fileId: string, part: number, expiresAt: number, mediaType: string): string {
    return createHmac('sha256', this.#key).update(`${fileId}/${part}/${expiresAt}/${mediaType}`).digest('hex');
  }

  /** Creates the part plan for a new file and returns its `upload_urls`. */
  plan(baseUrl: string, fileId: string, fileSize: number, mediaType: string, ttlSeconds: number, now: number): { size: number; url: string }[] {
    const expiresAt = now + ttlSeconds * 1000;
    let offset = 0;
    const parts = partSizes(fileSize).map((size) => {
      const p = { size, offset, received: false };
      offset += size;
      return p;
    });
    this.#plans.set(fileId, { fileId, mediaType, expiresAt, parts, ...(this.#mode === 'hash' ? { hash: createHash('sha256'), waiters: new Set<() => void>() } : {}) });
    return parts.map((p, i) => ({
      size: p.size,
      url: `${baseUrl}/_s3/frameio-uploads/${fileId}/part-${i + 1}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=${ttlSeconds}&X-Amz-Date=${expiresAt}&X-Amz-Signature=${this.#sign(fileId, i + 1, expiresAt, mediaType)}`,
    }));
  }

  forget(fileId: string): void {
    const plan = this.#plans.get(fileId);
    this.#plans.delete(fileId);
    for (const w of plan?.waiters ?? []) w();
  }

  planFor(fileId: string): UploadPlan | undefined {
    return this.#plans.get(fileId);
  }

  async #spool(): Promise<string> {
    this.#dir ??= mkdtemp(join(tmpdir(), 'frameio-emulator-parts-'));
    return this.#dir;
  }

  #partPath(dir: string, fileId: string, part: number): string {
    return join(dir, `${fileId}.${part}`);
  }

  /** Handles `PUT /_s3/frameio-uploads/<fileId>/part-<n>?...` and consumes the request body. */
  async put(req: IncomingMessage, fileId: string, part: number, query: URLSearchParams, now: number): Promise<PutAnswer> {
    const plan = this.#plans.get(fileId);
    const p = plan?.parts[part - 1];
    const expiresAt = Number(query.get('X-Amz-Date'));
    const given = Buffer.from(query.get('X-Amz-Signature') ?? '');
    const contentType = String(req.headers['content-type'] ?? '');
    if (!plan || !p) return s3Error(404, 'NoSuchUpload', 'The specified upload does not exist.');
    const expected = Buffer.from(this.#sign(fileId, part, expiresAt, contentType));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return s3Error(403, 'SignatureDoesNotMatch', `The request signature we calculated does not match the signature you provided (signed Content-Type is ${plan.mediaType}).`);
    }
    if (now > expiresAt) return s3Error(403, 'AccessDenied', 'Request has expired');
    const length = Number(req.headers['content-length']);
    if (!Number.isSafeInteger(length)) return s3Error(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.');
    if (length !== p.size) return s3Error(400, 'InvalidRequest', `Part ${part} must be ${p.size} bytes, got Content-Length ${length}.`);
    if (plan.hash) return this.#putHashed(req, plan, part);
    const dir = await this.#spool();
    let got = 0;
    const counter = async function* (src: AsyncIterable<Buffer>) {
      for await (const b of src) {
        got += b.length;
        yield b;
      }
    };
    await pipeline(req, counter, createWriteStream(this.#partPath(dir, fileId, part)));
    if (got !== p.size) return s3Error(400, 'IncompleteBody', `You did not provide the number of bytes specified by the Content-Length HTTP header.`);
    p.received = true;
    if (!plan.parts.every((x) => x.received)) return { status: 200 };
    // Last part in: assemble (hash in part order) and drop the spool.
    const hash = createHash('sha256');
    for (let i = 1; i <= plan.parts.length; i++) {
      const path = this.#partPath(dir, fileId, i);
      for await (const b of createReadStream(path)) hash.update(b as Buffer);
      await rm(path, { force: true });
    }
    this.#plans.delete(fileId);
    return { status: 200, done: { sha256: hash.digest('hex'), size: plan.parts.reduce((n, x) => n + x.size, 0) } };
  }

  async #putHashed(req: IncomingMessage, plan: UploadPlan, part: number): Promise<PutAnswer> {
    const p = plan.parts[part - 1]!;
    if (p.received) {
      for await (const _ of req);
      return { status: 200 };
    }
    while (!plan.parts.slice(0, part - 1).every((x) => x.received)) {
      if (this.#plans.get(plan.fileId) !== plan || req.destroyed) return s3Error(404, 'NoSuchUpload', 'The specified upload does not exist.');
      await new Promise<void>((resolve) => {
        const wake = () => {
          plan.waiters!.delete(wake);
          req.off('close', wake);
          resolve();
        };
        plan.waiters!.add(wake);
        req.once('close', wake);
      });
    }
    if (this.#plans.get(plan.fileId) !== plan) return s3Error(404, 'NoSuchUpload', 'The specified upload does not exist.');
    const before = plan.hash!.copy();
    let got = 0;
    try {
      for await (const b of req) {
        plan.hash!.update(b as Buffer);
        got += (b as Buffer).length;
      }
    } catch {
      got = -1;
    }
    if (got !== p.size) {
      plan.hash = before;
      return s3Error(400, 'IncompleteBody', `You did not provide the number of bytes specified by the Content-Length HTTP header.`);
    }
    p.received = true;
    for (const w of [...plan.waiters!]) w();
    if (!plan.parts.every((x) => x.received)) return { status: 200 };
    this.#plans.delete(plan.fileId);
    return { status: 200, done: { sha256: plan.hash!.digest('hex'), size: plan.parts.reduce((n, x) => n + x.size, 0) } };
  }

  async close(): Promise<void> {
    if (this.#dir) await rm(await this.#dir, { recursive: true, force: true });
  }
}
