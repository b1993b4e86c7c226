/**
 * The settings a running daemon takes from a changed config file without a restart (issue 9): the global and
 * per-folder bandwidth, quiet hours, priorities, batch gaps, the small-file share and the log level. Anything
 * else changed is named as needing a restart and left as it was. Pure: parsing and comparison only.
 */
import { parseBandwidth, type Timetable } from './bandwidth.ts';
import { parseQuietHours, type QuietWindow } from './quiet-hours.ts';
import type { Config } from './schema.ts';

export interface LiveFolder {
  bandwidth: Timetable | undefined;
  quiet: QuietWindow[];
  quietHours: string;
  priority: number;
  batchGapSeconds: number;
  eachFile: boolean;
}

export interface LiveSettings {
  bandwidth: Timetable | undefined;
  folders: LiveFolder[];
  smallFileBytes: number;
  smallFileWorkers: number;
}

/** From a validated config (the checks already parsed every value once, so these cannot throw). */
export function liveSettings(config: Config): LiveSettings {
  const tt = (text: string): Timetable | undefined => {
    const t = parseBandwidth(text);
    return t.slots.every((s) => s.rate === null) ? undefined : t;
  };
  return {
    bandwidth: tt(config.bandwidth),
    folders: config.watch.folders.map((f) => ({
      bandwidth: tt(f.bandwidth),
      quiet: parseQuietHours(f.quietHours),
      quietHours: f.quietHours,
      priority: f.priority,
      batchGapSeconds: f.batchGapSeconds,
      eachFile: f.notify.eachFile ?? f.batchGapSeconds === 0,
    })),
    smallFileBytes: config.queue.smallFileBytes,
    smallFileWorkers: config.queue.smallFileWorkers,
  };
}

const LIVE_FOLDER_KEYS = new Set(['bandwidth', 'quietHours', 'priority', 'batchGapSeconds']);
const LIVE_TOP = new Set(['bandwidth', 'queue', 'log']);

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Dotted keys that differ, split into those a reload applies and those that need a restart. */
export function reloadDiff(old: Config, next: Config): { applied: string[]; restartNeeded: string[] } {
  const applied: string[] = [];
  const restartNeeded: string[] = [];
  const o = old as unknown as Record<string, Record<string, unknown>>;
  const n = next as unknown as Record<string, Record<string, unknown>>;
  for (const top of new Set([...Object.keys(o), ...Object.keys(n)])) {
    if (top === 'watch') continue;
    const a = o[top];
    const b = n[top];
    if (same(a, b)) continue;
    if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (same(a[k], b[k])) continue;
        (LIVE_TOP.has(top) && (top !== 'log' || k === 'level') ? applied : restartNeeded).push(`${top}.${k}`);
      }
    } else (LIVE_TOP.has(top) ? applied : restartNeeded).push(top);
  }
  for (const k of ['stabilitySeconds', 'pollIntervalSeconds', 'nativeEventsMaxFiles']) {
    if (!same((old.watch as Record<string, unknown>)[k], (next.watch as Record<string, unknown>)[k])) restartNeeded.push(`watch.${k}`);
  }
  if (old.watch.folders.length !== next.watch.folders.length) {
    restartNeeded.push('watch.folders');
    return { applied, restartNeeded };
  }
  old.watch.folders.forEach((f, i) => {
    const g = next.watch.folders[i]! as unknown as Record<string, unknown>;
    for (const k of Object.keys({ ...f, ...g })) {
      if (same((f as unknown as Record<string, unknown>)[k], g[k])) continue;
      if (k === 'notify') {
        // eachFile is read live; the receivers' URLs are built into the notifier at start.
        const { eachFile: a, ...ra } = f.notify;
        const { eachFile: b, ...rb } = next.watch.folders[i]!.notify;
        if (a !== b) applied.push(`watch.folders[${i}].notify.eachFile`);
        if (!same(ra, rb)) restartNeeded.push(`watch.folders[${i}].notify`);
        continue;
      }
      (LIVE_FOLDER_KEYS.has(k) ? applied : restartNeeded).push(`watch.folders[${i}].${k}`);
    }
  });
  return { applied, restartNeeded };
}
