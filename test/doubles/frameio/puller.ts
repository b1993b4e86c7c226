/**
 * Downloads a source the way Frame.io's importer does: a HEAD for the size, then parallel `Range` GETs of
 * fixed-size chunks, each retried from where it broke off, hashed in order through a bounded reorder
 * window. Nothing is kept beyond that window, so a 200 GB source costs the emulator no disk and little RAM.
 */
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LedgerRequest } from './model.ts';
import { OrderedHasher } from './ordered-hash.ts';
import type { SourceTarget } from './source.ts';

export class PullError extends Error {
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean) {
    super(message);
    this.name = 'PullError';
    this.retryable = retryable;
  }
}

export interface PullContext {
  target: SourceTarget;
  signal: AbortSignal;
  /** Stores a request in the ledger and returns the stored object, to be completed when the answer comes. */
  record(req: LedgerRequest): LedgerRequest;
  /** Called for every block of body bytes received (progress, fault triggers). */
  onBytes(n: number): void;
  /** Current pull rate cap in bytes/s (read live so a test can change it mid-pull); 0 = none. */
  bytesPerSecond(): number;
}

export interface PullTuning {
  concurrency: number;
  chunkBytes: number;
  chunkRetries: number;
  retryBaseMs: number;
}

/** Spaces body reads so one import's chunks together stay under a byte rate. */
class Pacer {
  #due = 0;
  async take(n: number, rate: number, signal: AbortSignal): Promise<void> {
    if (rate <= 0) return;
    const now = Date.now();
    this.#due = Math.max(this.#due, now) + (n * 1000) / rate;
    const wait = this.#due - now;
    if (wait > 2) await sleep(wait, undefined, { signal });
  }
}

function retryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

function send(ctx: PullContext, agent: Agent, method: string, headers: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const url = new URL(ctx.target.path, ctx.target.origin);
    // Not http.request's own `signal` option: it stays armed after the answer and, on a later abort,
    // destroys a keep-alive socket already back in the pool, which then has no error listener.
    const req = httpRequest(url, { method, agent, headers: { host: ctx.target.host, 'user-agent': 'Frame.io-Importer/emulator', ...headers } });
    // Destroyed without an error object, so the socket emits none; callers read the reason off the signal.
    const onAbort = (): void => {
      req.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('close', () => signal.removeEventListener('abort', onAbort));
    req.on('response', resolve);
    req.on('error', reject);
    req.end();
  });
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** HEAD the source for its size. Connection errors and 5xx are retried a few times. */
export async function headSource(ctx: PullContext, tuning: Pick<PullTuning, 'chunkRetries' | 'retryBaseMs'>): Promise<number> {
  const agent = new Agent({ keepAlive: false });
  try {
    for (let attempt = 0; ; attempt++) {
      const rec = ctx.record({ method: 'HEAD', range: null, status: 0, at: Date.now() });
      let err: PullError;
      try {
        const res = await send(ctx, agent, 'HEAD', {}, ctx.signal);
        res.resume();
        rec.status = res.statusCode ?? 0;
        const length = Number(res.headers['content-length']);
        if (rec.status === 200 && Number.isSafeInteger(length) && length >= 0) return length;
        err = new PullError(
          rec.status === 200 ? 'HEAD answered without a Content-Length' : `HEAD answered ${rec.status}`,
          retryableStatus(rec.status),
        );
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        err = new PullError(`HEAD failed: ${describe(e)}`, true);
      }
      rec.error = err.message;
      if (!err.retryable || attempt >= tuning.chunkRetries) throw err;
      await sleep(tuning.retryBaseMs * 2 ** attempt, undefined, { signal: ctx.signal });
    }
  } finally {
    agent.destroy();
  }
}

/** Pulls `size` bytes with parallel Range requests; resolves with the sha256 (hex) of the bytes in order. */
export async function pullSource(ctx: PullContext, size: number, tuning: PullTuning): Promise<string> {
  const hasher = new OrderedHasher();
  const chunks = Math.ceil(size / tuning.chunkBytes);
  const ahead = tuning.concurrency + 2;
  const inner = new AbortController();
  const signal = AbortSignal.any([ctx.signal, inner.signal]);
  const agent = new Agent({ keepAlive: true, maxSockets: tuning.concurrency });
  const pacer = new Pacer();
  let claimed = 0;

  const fetchChunk = async (i: number): Promise<void> => {
    const start = i * tuning.chunkBytes;
    const end = Math.min(size, start + tuning.chunkBytes) - 1;
    const want = end - start + 1;
    let accepted = 0;
    for (let attempt = 0; ; attempt++) {
      const from = start + accepted;
      const range = `bytes=${from}-${end}`;
      const rec = ctx.record({ method: 'GET', range, status: 0, at: Date.now() });
      try {
        const res = await send(ctx, agent, 'GET', { range }, signal);
        rec.status = res.statusCode ?? 0;
        const contentRange = String(res.headers['content-range'] ?? '');
        const whole = rec.status === 200 && from === 0 && end === size - 1;
        if (!(rec.status === 206 && contentRange.startsWith(`bytes ${from}-${end}/`)) && !whole) {
          res.resume();
          throw new PullError(
            rec.status === 206 ? `GET ${range} answered Content-Range ${contentRange}` : `GET ${range} answered ${rec.status}`,
            retryableStatus(rec.status),
          );
        }
        for await (const buf of res as AsyncIterable<Buffer>) {
          if (accepted + buf.length > want) throw new PullError(`GET ${range} sent more bytes than asked for`, false);
          hasher.write(i, buf);
          accepted += buf.length;
          ctx.onBytes(buf.length);
          await pacer.take(buf.length, ctx.bytesPerSecond(), signal);
        }
        if (accepted !== want) throw new PullError(`GET ${range} ended after ${accepted} of ${want} bytes`, true);
        hasher.finish(i);
        return;
      } catch (e) {
        if (signal.aborted) throw signal.reason ?? e;
        const err = e instanceof PullError ? e : new PullError(`GET ${range} failed: ${describe(e)}`, true);
        rec.error = err.message;
        if (!err.retryable || attempt >= tuning.chunkRetries) throw err;
        await sleep(tuning.retryBaseMs * 2 ** attempt, undefined, { signal });
      }
    }
  };

  const worker = async (): Promise<void> => {
    while (claimed < chunks) {
      const i = claimed++;
      await hasher.waitForWindow(i, ahead, signal);
      await fetchChunk(i);
    }
  };

  const results = await Promise.allSettled(
    Array.from({ length: Math.min(tuning.concurrency, Math.max(chunks, 1)) }, () =>
      worker().catch((e: unknown) => {
        inner.abort(e);
        throw e;
      }),
    ),
  );
  agent.destroy();
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw ctx.signal.aborted ? (ctx.signal.reason ?? failed.reason) : (inner.signal.reason ?? failed.reason);
  if (hasher.hashedBytes !== size) throw new PullError(`received ${hasher.hashedBytes} of ${size} bytes`, false);
  return hasher.digest();
}
