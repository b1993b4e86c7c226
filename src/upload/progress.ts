/**
 * Progress maths for one import, kept pure so it is tested without timers: the file server reports how many
 * distinct bytes of the file have left the machine (coverage), and this decides when a progress line is
 * worth logging and what it says. Operators read these lines in journald, so they come at most every
 * `percentStep` percent or `intervalMs`, whichever first, never per chunk.
 */
export interface ProgressSample {
  percent: number;
  bytes: number;
  size: number;
  /** Bytes per second over the recent window (not since the start, so a stall shows as a falling rate). */
  rate: number;
  /** Seconds left at the current rate, or null when the rate is zero. */
  etaSeconds: number | null;
}

export interface ProgressOptions {
  size: number;
  startedAt: number;
  percentStep?: number;
  intervalMs?: number;
  /** How far back the rate looks. */
  rateWindowMs?: number;
}

export class ProgressTracker {
  readonly #size: number;
  readonly #percentStep: number;
  readonly #intervalMs: number;
  readonly #rateWindowMs: number;
  #lastLoggedAt: number;
  #lastLoggedPercent = 0;
  #samples: { at: number; bytes: number }[];

  constructor(opts: ProgressOptions) {
    this.#size = opts.size;
    this.#percentStep = opts.percentStep ?? 10;
    this.#intervalMs = opts.intervalMs ?? 15_000;
    this.#rateWindowMs = opts.rateWindowMs ?? 10_000;
    this.#lastLoggedAt = opts.startedAt;
    this.#samples = [{ at: opts.startedAt, bytes: 0 }];
  }

  /** Records the covered byte count at `now`; returns a sample when a progress line is due. */
  update(bytes: number, now: number): ProgressSample | undefined {
    this.#record(bytes, now);
    const sample = this.sample(now);
    const stepReached = Math.floor(sample.percent / this.#percentStep) > Math.floor(this.#lastLoggedPercent / this.#percentStep);
    const intervalReached = now - this.#lastLoggedAt >= this.#intervalMs;
    if (!stepReached && !intervalReached) return undefined;
    if (sample.percent >= 100 && this.#lastLoggedPercent >= 100) return undefined;
    this.#lastLoggedAt = now;
    this.#lastLoggedPercent = sample.percent;
    return sample;
  }

  /** The current figures, whether or not a line is due (status pages, TTY progress bars). */
  sample(now: number): ProgressSample {
    const last = this.#samples[this.#samples.length - 1]!;
    const first = this.#samples[0]!;
    const span = (now - first.at) / 1000;
    const rate = span > 0 ? Math.max(0, (last.bytes - first.bytes) / span) : 0;
    const left = this.#size - last.bytes;
    return {
      percent: this.#size === 0 ? 100 : Math.min(100, Math.floor((last.bytes / this.#size) * 1000) / 10),
      bytes: last.bytes,
      size: this.#size,
      rate: Math.round(rate),
      etaSeconds: rate > 0 ? Math.ceil(left / rate) : null,
    };
  }

  #record(bytes: number, now: number): void {
    this.#samples.push({ at: now, bytes });
    // Keep one sample older than the window as the rate's anchor.
    while (this.#samples.length > 2 && now - this.#samples[1]!.at >= this.#rateWindowMs) this.#samples.shift();
  }
}

/** The human text of a progress line, the same for both upload paths (operators grep journald for it). */
export function progressMessage(line: ProgressSample): string {
  return `${line.percent}% ${formatBytes(line.bytes)} of ${formatBytes(line.size)} at ${formatBytes(line.rate)}/s${line.etaSeconds === null ? '' : `, ETA ${formatDuration(line.etaSeconds)}`}`;
}

/** "1.5 GiB", "830 MiB", "12 KiB" — for human lines (JSON logs keep raw numbers beside it). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** "1h02m", "4m05s", "12s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
