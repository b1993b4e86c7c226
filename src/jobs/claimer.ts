/**
 * How a daemon takes work: it claims jobs from the store (leases under its node id) as its pool has free
 * slots, and heartbeats the leases of everything the pool holds. One loop does both, one round at a time, so
 * a heartbeat never gives up a job a claim just took but the pool has not received yet. Rounds run every
 * `intervalMs`, at once on `trigger()` (a job was queued here, a worker slot freed) — other nodes' work and
 * expired leases are found by the periodic round.
 */
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import type { ClaimedJob, ClaimOptions, JobStore, NodeInfo } from './store.ts';

export interface ClaimPool {
  readonly freeSlots: number;
  heldIds(): string[];
  cancel(id: string, reason: 'lease-lost'): boolean;
}

export interface ClaimerOptions {
  store: JobStore;
  pool: ClaimPool;
  leaseMs: number;
  /** Pause between rounds when nothing triggers one. */
  intervalMs: number;
  info: NodeInfo;
  logger: Logger;
  /** Hands a claimed job to the pool (after crash recovery for one found in flight). */
  adopt: (claimed: ClaimedJob) => Promise<void>;
  now?: () => number;
  /** The studio's queue rules, read at every round (they change on a config reload). */
  rules?: () => QueueRules;
}

/** Priority per watch folder, folders in quiet hours, and the workers kept for small files. */
export interface QueueRules {
  priorities: readonly number[];
  quietFolders: readonly number[];
  workers: number;
  smallFileBytes: number;
  smallFileWorkers: number;
}

export interface Claimer {
  start(): void;
  /** Run a round as soon as possible. */
  trigger(): void;
  /** Stop claiming; heartbeats go on (jobs finishing in the shutdown grace keep their leases). */
  drain(): void;
  /** Stop the loop; waits for a round in progress. */
  close(): Promise<void>;
}

export function createClaimer(opts: ClaimerOptions): Claimer {
  const { store, pool, logger } = opts;
  const now = opts.now ?? Date.now;
  const beatMs = Math.max(50, Math.floor(opts.leaseMs / 3));
  let lastBeat = Number.NEGATIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let again = false;
  let draining = false;
  let closed = false;
  let failing = false;

  async function round(): Promise<void> {
    if (now() - lastBeat >= beatMs) {
      const lost = await store.heartbeat(pool.heldIds(), opts.leaseMs, opts.info);
      lastBeat = now();
      for (const id of lost) {
        logger.warn({ job: id, event: 'lease-lost' }, 'another node took over a job this node held (missed heartbeats): stopping it here');
        pool.cancel(id, 'lease-lost');
      }
    }
    if (draining) return;
    for (let free = pool.freeSlots; free > 0 && !draining; free = pool.freeSlots) {
      const got = await claimRound(free);
      for (const c of got) {
        sizes.set(c.job.id, c.job.size);
        await opts.adopt(c);
      }
      if (got.length < free) break;
    }
  }

  /** Sizes of the jobs this node took, to know how many large ones hold workers now. */
  const sizes = new Map<string, number>();

  /**
   * Free slots beyond the large-file share are offered to small files only, so a short file never waits
   * behind a long run of large ones; within each, the store orders by priority, then age.
   */
  async function claimRound(free: number): Promise<ClaimedJob[]> {
    const r = opts.rules?.();
    if (!r) return store.claim({ limit: free, leaseMs: opts.leaseMs });
    const base: ClaimOptions = { limit: free, leaseMs: opts.leaseMs, priorities: r.priorities, skipFolders: r.quietFolders };
    if (r.smallFileWorkers <= 0) return store.claim(base);
    const held = new Set(pool.heldIds());
    for (const id of sizes.keys()) if (!held.has(id)) sizes.delete(id);
    const large = [...sizes.values()].filter((s) => s > r.smallFileBytes).length;
    const anySize = Math.min(free, Math.max(0, r.workers - r.smallFileWorkers - large));
    const got = anySize > 0 ? await store.claim({ ...base, limit: anySize }) : [];
    if (got.length < free) got.push(...(await store.claim({ ...base, limit: free - got.length, maxSize: r.smallFileBytes })));
    return got;
  }

  function schedule(ms: number): void {
    clearTimeout(timer);
    if (closed) return;
    timer = setTimeout(run, ms);
  }

  function run(): void {
    if (current) {
      again = true;
      return;
    }
    current = round()
      .then(
        () => {
          if (failing) logger.info({ event: 'store-back' }, 'job store reachable again: claiming and heartbeats resume');
          failing = false;
        },
        (err: unknown) => {
          // The store unreachable: say it once, keep trying each interval (leases of others cannot be taken
          // meanwhile either, since they need the same store).
          if (!failing) logger.error({ err: describeError(err), event: 'store-unreachable' }, `claiming work failed: ${describeError(err)}`);
          failing = true;
        },
      )
      .finally(() => {
        current = undefined;
        if (again) {
          again = false;
          schedule(0);
        } else schedule(opts.intervalMs);
      });
  }

  return {
    start: () => schedule(0),
    trigger() {
      if (closed || draining) return;
      if (current) again = true;
      else schedule(0);
    },
    drain() {
      draining = true;
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await current;
      clearTimeout(timer);
    },
  };
}
