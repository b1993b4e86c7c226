/**
 * The studio controls of issue 9, held in one place for the composition root: the bandwidth shaper, the
 * queue rules the claimer reads (priorities, quiet hours, small-file share), the batches of folder drops
 * and their notices, and the reload that swaps the live settings of a changed config file. Every reader
 * goes through `settings`, so a reload reaches them all at once; nothing here needs a restart.
 */
import type { Logger } from 'pino';
import { formatRate } from '../config/bandwidth.ts';
import { liveSettings, reloadDiff, type LiveSettings } from '../config/live.ts';
import { isQuiet, opensAt } from '../config/quiet-hours.ts';
import type { Config } from '../config/schema.ts';
import type { QueueRules } from '../jobs/claimer.ts';
import type { Job } from '../jobs/store.ts';
import { Batches, type FileEnd } from '../notify/batches.ts';
import type { BatchEvent } from '../notify/message.ts';
import { createShaper, type Shaper } from '../shaping/shaper.ts';
import { formatBytes, formatDuration } from '../upload/progress.ts';

export interface StudioControlsOptions {
  config: Config;
  logger: Logger;
  /** Where a batch notice goes besides the log (the folder's webhook/Slack). */
  onBatch?: (folderIndex: number, ev: BatchEvent) => void;
  now?: () => number;
}

export interface StudioControls {
  readonly shaper: Shaper;
  /** For the claimer, read at every claim round. */
  rules(): QueueRules;
  /** Per watch folder: when new imports may start again (ms), or null when it is not in quiet hours now. */
  quietUntil(): (number | null)[];
  /** A job was queued (joins its folder drop's batch). */
  queued(job: Pick<Job, 'id' | 'folderIndex' | 'relPath' | 'name' | 'size'>): void;
  /** A job ended; true when its own per-file notice should go out as well. */
  ended(job: Pick<Job, 'id' | 'folderIndex'>, end: FileEnd): boolean;
  /** The Frame.io link of a watch folder's destination, for batch notices. */
  setDestinationUrl(folderIndex: number, url: string | null): void;
  /**
   * Applies what a changed config allows without a restart; logs one line (applied, or restart needed for
   * other keys). The caller has validated `fresh` with loadConfig (a bad file never gets here).
   */
  reload(fresh: Config): { applied: string[]; restartNeeded: string[] };
  start(): void;
  stop(): void;
}

export function createStudioControls(opts: StudioControlsOptions): StudioControls {
  const now = opts.now ?? Date.now;
  const log = opts.logger;
  let config = opts.config;
  let settings: LiveSettings = liveSettings(config);
  const urls: (string | null)[] = config.watch.folders.map(() => null);
  const shaper = createShaper({
    global: settings.bandwidth,
    folders: settings.folders.map((f) => f.bandwidth),
    logger: log,
    now,
  });
  const batches = new Batches((i) => (settings.folders[i]?.batchGapSeconds ?? 0) * 1000);
  let timer: NodeJS.Timeout | undefined;

  function flushBatches(): void {
    for (const b of batches.due(now())) {
      const folder = config.watch.folders[b.folderIndex]?.path ?? String(b.folderIndex);
      const ev: BatchEvent = {
        event: 'batch',
        folder,
        subFolder: b.subFolder,
        files: b.files,
        done: b.done,
        failed: b.failed,
        totalBytes: b.totalBytes,
        durationSeconds: b.durationSeconds,
        failures: b.failures,
        frameio: { url: urls[b.folderIndex] ?? b.sampleViewUrl },
        at: new Date(b.endedAt).toISOString(),
      };
      const where = b.subFolder ? `${folder}/${b.subFolder}` : folder;
      log.info(
        { event: 'batch', folder, subFolder: b.subFolder, files: b.files, done: b.done, failed: b.failed, totalBytes: b.totalBytes, durationSeconds: b.durationSeconds, failures: b.failures, frameioUrl: ev.frameio.url },
        `batch ${where}: ${b.done} of ${b.files} file(s) done (${formatBytes(b.totalBytes)} in ${formatDuration(b.durationSeconds)})${b.failed ? `, ${b.failed} failed` : ''}`,
      );
      opts.onBatch?.(b.folderIndex, ev);
    }
  }

  return {
    shaper,
    rules() {
      const quiet = this.quietUntil();
      return {
        priorities: settings.folders.map((f) => f.priority),
        quietFolders: quiet.flatMap((q, i) => (q === null ? [] : [i])),
        workers: config.workers,
        smallFileBytes: settings.smallFileBytes,
        smallFileWorkers: settings.smallFileWorkers,
      };
    },
    quietUntil() {
      const at = new Date(now());
      return settings.folders.map((f) => (f.quiet.length > 0 && isQuiet(f.quiet, at) ? opensAt(f.quiet, at).getTime() : null));
    },
    queued(job) {
      batches.add(job, now());
    },
    ended(job, end) {
      const batched = batches.end(job.id, end);
      flushBatches();
      return !batched || (settings.folders[job.folderIndex]?.eachFile ?? true);
    },
    setDestinationUrl(i, url) {
      urls[i] = url;
    },
    reload(fresh) {
      const diff = reloadDiff(config, fresh);
      if (diff.restartNeeded.length > 0) {
        log.warn({ event: 'reload-partial', keys: diff.restartNeeded }, `config changed in keys that need a restart (kept as they were until then): ${diff.restartNeeded.join(', ')}`);
      }
      // Only the live keys of the new file are taken; the rest of the running config stays what it was.
      config = {
        ...config,
        bandwidth: fresh.bandwidth,
        queue: fresh.queue,
        watch: {
          ...config.watch,
          folders: config.watch.folders.map((f, i) => {
            const g = fresh.watch.folders[i];
            if (!g || diff.restartNeeded.includes('watch.folders')) return f;
            return { ...f, bandwidth: g.bandwidth, quietHours: g.quietHours, priority: g.priority, batchGapSeconds: g.batchGapSeconds, notify: { ...f.notify, eachFile: g.notify.eachFile } } as typeof f;
          }),
        },
      } as Config;
      settings = liveSettings(config);
      shaper.setSchedules({ global: settings.bandwidth, folders: settings.folders.map((f) => f.bandwidth) });
      const rates = shaper.rates();
      log.info(
        { event: 'config-reloaded', applied: diff.applied, bandwidth: rates.global, priorities: settings.folders.map((f) => f.priority), quietHours: settings.folders.map((f) => f.quietHours) },
        diff.applied.length > 0 ? `config reloaded: ${diff.applied.join(', ')} (bandwidth now ${formatRate(rates.global)})` : 'config reloaded: nothing a running daemon takes changed',
      );
      return diff;
    },
    start() {
      shaper.start();
      timer = setInterval(flushBatches, 1000);
      timer.unref();
    },
    stop() {
      shaper.stop();
      clearInterval(timer);
    },
  };
}
