/**
 * A bounded in-memory outbox for notifications. `push` never waits and never throws, so a slow or dead
 * receiver cannot hold up an upload: messages are POSTed by a couple of senders in the background, retried
 * with backoff (Retry-After honoured) on 408/429/5xx and network errors, dropped with a warning when a
 * receiver refuses them for good, and — when the outbox is full — the oldest message waiting is dropped.
 * Nothing here survives a restart: a notification is a courtesy, the job store is the record.
 */
import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.ts';
import { describeError } from '../errors.ts';
import { ERR_NOTIFY_GAVE_UP, ERR_NOTIFY_REJECTED } from './errors.ts';

export interface Delivery {
  /** Where to POST: a secret (a Slack webhook URL is its own credential) — never logged. */
  url: string;
  body: unknown;
  /** For logs: what and where, without the secret (`slack hooks.slack.com`). */
  receiver: string;
  /** For logs: the job the message is about. */
  job?: string;
}

export interface OutboxOptions {
  logger: Logger;
  fetch?: typeof fetch;
  /** Messages held at most (waiting, retrying or in flight). Default 200. */
  capacity?: number;
  /** Messages sent at the same time. Default 2. */
  concurrency?: number;
  /** Tries per message. Default 8 (with the default backoff, about 15 minutes of trying). */
  maxAttempts?: number;
  backoff?: { baseMs: number; maxMs: number };
  /** Per POST. Default 10 s. */
  timeoutMs?: number;
  random?: () => number;
}

export interface OutboxStats {
  pending: number;
  delivered: number;
  dropped: number;
}

interface Item extends Delivery {
  attempts: number;
  seq: number;
}

/** Statuses a later try may turn into a 2xx. */
const TRANSIENT = (status: number): boolean => status === 408 || status === 429 || status >= 500;

function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const s = Number(value);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export class Outbox {
  readonly #o: Required<Omit<OutboxOptions, 'fetch' | 'random'>> & { fetch: typeof fetch; random: () => number };
  readonly #ready: Item[] = [];
  readonly #retrying = new Map<Item, NodeJS.Timeout>();
  readonly #inFlight = new Set<AbortController>();
  readonly #idle = new Set<() => void>();
  #active = 0;
  #seq = 0;
  #closed = false;
  #delivered = 0;
  #dropped = 0;

  constructor(opts: OutboxOptions) {
    this.#o = {
      logger: opts.logger,
      fetch: opts.fetch ?? fetch,
      capacity: opts.capacity ?? 200,
      concurrency: opts.concurrency ?? 2,
      maxAttempts: opts.maxAttempts ?? 8,
      backoff: opts.backoff ?? { baseMs: 2_000, maxMs: 300_000 },
      timeoutMs: opts.timeoutMs ?? 10_000,
      random: opts.random ?? Math.random,
    };
  }

  stats(): OutboxStats {
    return { pending: this.#pending(), delivered: this.#delivered, dropped: this.#dropped };
  }

  push(d: Delivery): void {
    if (this.#closed) return;
    if (this.#pending() >= this.#o.capacity) this.#dropOldest();
    this.#ready.push({ ...d, attempts: 0, seq: this.#seq++ });
    this.#pump();
  }

  /**
   * Stops taking messages, gives those waiting for a retry one last try now, and waits up to `graceMs` for
   * the outbox to empty; whatever is still in flight then is aborted.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    for (const [item, timer] of this.#retrying) {
      clearTimeout(timer);
      this.#ready.push(item);
    }
    this.#retrying.clear();
    this.#pump();
    if (this.#pending() > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, graceMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#idle.add(done);
      });
    }
    // In flight: aborted, counted as dropped by #send. Not started: dropped here.
    for (const ac of this.#inFlight) ac.abort();
    const left = this.#ready.length + this.#active;
    if (left > 0) {
      this.#dropped += this.#ready.length;
      this.#ready.length = 0;
      this.#o.logger.warn({ event: 'notify-dropped', messages: left }, `${left} notification(s) not delivered before shutdown`);
    }
    // An aborted fetch settles on a later tick; close() is done when nothing is left in flight.
    if (this.#active > 0) await new Promise<void>((resolve) => this.#idle.add(resolve));
  }

  #pending(): number {
    return this.#ready.length + this.#retrying.size + this.#active;
  }

  #dropOldest(): void {
    let oldest: Item | undefined = this.#ready[0];
    for (const item of this.#retrying.keys()) if (oldest === undefined || item.seq < oldest.seq) oldest = item;
    if (oldest === undefined) return; // everything is in flight; the new one still gets its place
    const timer = this.#retrying.get(oldest);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.#retrying.delete(oldest);
    } else this.#ready.shift();
    this.#dropped++;
    this.#o.logger.warn(
      { event: 'notify-dropped', receiver: oldest.receiver, job: oldest.job, capacity: this.#o.capacity },
      `notification outbox full (${this.#o.capacity}): the oldest message, to ${oldest.receiver}, is dropped`,
    );
  }

  #pump(): void {
    while (this.#active < this.#o.concurrency && this.#ready.length > 0) {
      const item = this.#ready.shift()!;
      this.#active++;
      void this.#send(item).finally(() => {
        this.#active--;
        this.#pump();
        if (this.#pending() === 0) for (const w of [...this.#idle]) (this.#idle.delete(w), w());
      });
    }
  }

  async #send(item: Item): Promise<void> {
    item.attempts++;
    const log = this.#o.logger;
    const ac = new AbortController();
    this.#inFlight.add(ac);
    let failure: string;
    let wait: number | undefined;
    try {
      const res = await this.#o.fetch(item.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'postflow' },
        body: JSON.stringify(item.body),
        signal: AbortSignal.any([ac.signal, AbortSignal.timeout(this.#o.timeoutMs)]),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        this.#delivered++;
        log.debug({ event: 'notified', receiver: item.receiver, job: item.job, attempts: item.attempts }, `notified ${item.receiver}`);
        return;
      }
      if (!TRANSIENT(res.status)) {
        this.#dropped++;
        const err = ERR_NOTIFY_REJECTED(item.receiver, res.status);
        log.warn({ event: 'notify-failed', receiver: item.receiver, job: item.job, status: res.status, code: err.code }, err.message);
        return;
      }
      failure = `HTTP ${res.status}`;
      wait = retryAfterMs(res.headers.get('retry-after'), Date.now());
    } catch (err) {
      // The message of a fetch failure can quote the URL: name only the cause.
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      failure = cause ?? (err instanceof Error && err.name === 'TimeoutError' ? 'timed out' : describeError(err).split(' ')[0]!);
    } finally {
      this.#inFlight.delete(ac);
    }
    // Shutting down: that was the last try.
    if (item.attempts >= this.#o.maxAttempts || this.#closed) {
      this.#dropped++;
      const err = ERR_NOTIFY_GAVE_UP(item.receiver, item.attempts, failure);
      log.warn({ event: 'notify-failed', receiver: item.receiver, job: item.job, attempts: item.attempts, code: err.code }, err.message);
      return;
    }
    const delay = Math.min(this.#o.backoff.maxMs, wait ?? backoffDelay(item.attempts - 1, this.#o.backoff, this.#o.random));
    log.info({ event: 'notify-retry', receiver: item.receiver, job: item.job, attempts: item.attempts, delayMs: delay, err: failure }, `notification to ${item.receiver} failed (${failure}), retrying in ${Math.round(delay / 1000)} s`);
    const timer = setTimeout(() => {
      this.#retrying.delete(item);
      this.#ready.push(item);
      this.#pump();
    }, delay);
    timer.unref();
    this.#retrying.set(item, timer);
  }
}
