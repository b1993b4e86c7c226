/**
 * The bandwidth shaper: one token bucket for the daemon's global cap and one per watch folder with its own
 * cap, fed by the timetables of the config and re-evaluated at each switch time (and at least once a
 * minute, so a clock jump or a daylight-saving change is caught), without a restart. Everything postflow
 * sends asks it first: `take(bytes, folderIndex)` answers `undefined` at once when no cap applies — the
 * full-speed path costs one branch — or a promise that resolves when the bytes may go.
 *
 * Senders ask for small slices (`sliceBytes`), ~1/20 s of the rate each: parallel streams then take turns
 * slice by slice, so every pull moves every few hundred ms even under a tight cap, and none sits idle long
 * enough to trip a stall or socket timeout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { formatRate, nextChange, rateAt, type Rate, type Timetable } from '../config/bandwidth.ts';
import { TokenBucket } from './token-bucket.ts';

/** What a sender needs (the file server's responses, the direct upload's part PUTs). */
export interface SendShaper {
  /** `undefined` when the bytes may go now without waiting; else resolves when they may (or on abort). */
  take(bytes: number, folderIndex: number | undefined, signal?: AbortSignal): Promise<void> | undefined;
  /** Largest slice worth asking for at once; Infinity while nothing caps this folder. */
  sliceBytes(folderIndex: number | undefined): number;
}

export interface ShaperSchedules {
  global: Timetable | undefined;
  /** Per watch folder in config order; undefined = no folder cap. */
  folders: readonly (Timetable | undefined)[];
}

export interface ShaperOptions extends ShaperSchedules {
  logger?: Logger;
  now?: () => number;
  /** Longest wait between two re-evaluations of the timetables. Default 60 s. */
  recheckMs?: number;
}

export interface Shaper extends SendShaper {
  /** The rates in force now (null = no cap). */
  rates(): { global: Rate; folders: Rate[] };
  /** New timetables (config reload); applied at once. */
  setSchedules(s: ShaperSchedules): void;
  /** Re-reads the timetables at the clock's now; returns true when some rate changed. */
  refresh(): boolean;
  /** Arms the switch timer. */
  start(): void;
  stop(): void;
}

const wait = (ms: number, signal?: AbortSignal): Promise<void> =>
  sleep(ms, undefined, signal ? { signal } : undefined).catch(() => undefined);

export function createShaper(opts: ShaperOptions): Shaper {
  const now = opts.now ?? Date.now;
  const recheckMs = opts.recheckMs ?? 60_000;
  let schedules: ShaperSchedules = { global: opts.global, folders: [...opts.folders] };
  let global: TokenBucket | undefined;
  let folders: (TokenBucket | undefined)[] = [];
  let current: { global: Rate; folders: Rate[] } = { global: null, folders: [] };
  let timer: NodeJS.Timeout | undefined;
  let running = false;

  const bucketFor = (bucket: TokenBucket | undefined, rate: Rate): TokenBucket | undefined => {
    if (rate === null) return undefined;
    if (bucket) {
      bucket.setRate(rate);
      return bucket;
    }
    return new TokenBucket(rate);
  };

  function refresh(): boolean {
    const at = new Date(now());
    const next = {
      global: schedules.global ? rateAt(schedules.global, at) : null,
      folders: schedules.folders.map((tt) => (tt ? rateAt(tt, at) : null)),
    };
    const changed =
      next.global !== current.global ||
      next.folders.length !== current.folders.length ||
      next.folders.some((r, i) => r !== current.folders[i]);
    global = bucketFor(global, next.global);
    folders = next.folders.map((r, i) => bucketFor(folders[i], r));
    if (changed) {
      opts.logger?.info(
        { event: 'bandwidth', global: next.global, folders: next.folders },
        `bandwidth cap now ${formatRate(next.global)}${next.folders.some((r) => r !== null) ? ` (folders: ${next.folders.map(formatRate).join(', ')})` : ''}`,
      );
    }
    current = next;
    return changed;
  }

  function arm(): void {
    clearTimeout(timer);
    if (!running) return;
    const at = new Date(now());
    const changes = [schedules.global, ...schedules.folders].flatMap((tt) => {
      const c = tt ? nextChange(tt, at) : undefined;
      return c ? [c.getTime()] : [];
    });
    const delay = Math.min(recheckMs, ...changes.map((t) => t - at.getTime()));
    timer = setTimeout(() => {
      refresh();
      arm();
    }, Math.max(50, delay));
    timer.unref();
  }

  refresh();

  return {
    take(bytes, folderIndex, signal) {
      const f = folderIndex === undefined ? undefined : folders[folderIndex];
      if (global === undefined && f === undefined) return undefined;
      const t = now();
      const ms = Math.max(global?.debit(bytes, t) ?? 0, f?.debit(bytes, t) ?? 0);
      return ms < 1 ? undefined : wait(ms, signal);
    },
    sliceBytes(folderIndex) {
      const f = folderIndex === undefined ? undefined : folders[folderIndex];
      return Math.min(global?.sliceBytes() ?? Infinity, f?.sliceBytes() ?? Infinity);
    },
    rates: () => ({ global: current.global, folders: [...current.folders] }),
    setSchedules(s) {
      schedules = { global: s.global, folders: [...s.folders] };
      refresh();
      arm();
    },
    refresh,
    start() {
      running = true;
      arm();
    },
    stop() {
      running = false;
      clearTimeout(timer);
    },
  };
}
