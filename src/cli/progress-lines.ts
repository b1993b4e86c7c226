/**
 * Live progress lines for `postflow upload` on a terminal: one line per file, redrawn in place. Off a
 * terminal nothing is drawn; the JSON log lines carry the same figures.
 */
import type { OneShotUpdate } from '../daemon.ts';
import { formatBytes, formatDuration } from '../upload/progress.ts';

/** What the one-shot upload reports per file (its id aside). */
export type FileLine = Omit<OneShotUpdate, 'id'>;

/** Pure: one line of text for one file, at most `width` columns. */
export function renderLine(f: FileLine, width: number): string {
  const percent = f.size === 0 ? 100 : Math.floor((f.covered / f.size) * 100);
  const barWidth = 20;
  const filled = Math.round((percent / 100) * barWidth);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`;
  const tail =
    f.state === 'importing' || f.state === 'exposing'
      ? `${String(percent).padStart(3)}% ${formatBytes(f.covered)}/${formatBytes(f.size)} ${formatBytes(f.rate)}/s${f.etaSeconds === null ? '' : ` ETA ${formatDuration(f.etaSeconds)}`}`
      : f.state;
  const line = `${bar} ${tail}  ${f.name}`;
  return line.length > width ? `${line.slice(0, Math.max(0, width - 1))}…` : line;
}

export class ProgressLines {
  readonly #out: NodeJS.WriteStream;
  readonly #lines = new Map<string, FileLine>();
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
  }

  set(id: string, line: FileLine): void {
    this.#lines.set(id, line);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.draw();
    }, 100);
  }

  draw(): void {
    const width = this.#out.columns || 100;
    let text = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : '';
    for (const line of this.#lines.values()) text += `\r\x1b[2K${renderLine(line, width)}\n`;
    this.#drawn = this.#lines.size;
    this.#out.write(text);
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.draw();
  }
}
