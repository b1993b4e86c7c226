/**
 * Writes log lines the way cloudflared's zerolog console writer does on stderr:
 * `2025-08-20T12:00:00Z INF message key=value key="quoted value"`, so the supervisor's parser is tested
 * against the real shape.
 */
import { appendFileSync } from 'node:fs';

export type Level = 'DBG' | 'INF' | 'WRN' | 'ERR';
const rank: Record<Level, number> = { DBG: 0, INF: 1, WRN: 2, ERR: 3 };
const levelOfFlag: Record<string, Level> = { debug: 'DBG', info: 'INF', warn: 'WRN', error: 'ERR', fatal: 'ERR' };

export type Fields = Record<string, string | number>;

export function formatValue(value: string | number): string {
  const text = String(value);
  return /^[^\s"=]*$/.test(text) && text !== '' ? text : JSON.stringify(text);
}

export function formatLine(time: Date, level: Level, message: string, fields: Fields = {}): string {
  const stamp = time.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const tail = Object.entries(fields).map(([k, v]) => ` ${k}=${formatValue(v)}`).join('');
  return `${stamp} ${level} ${message}${tail}`;
}

export interface StandinLog {
  (level: Level, message: string, fields?: Fields): void;
}

export function createLog(opts: { loglevel?: string; logfile?: string }): StandinLog {
  const min = rank[levelOfFlag[opts.loglevel ?? 'info'] ?? 'INF'];
  return (level, message, fields) => {
    if (rank[level] < min) return;
    const line = `${formatLine(new Date(), level, message, fields)}\n`;
    process.stderr.write(line);
    if (opts.logfile) appendFileSync(opts.logfile, line);
  };
}

/** cloudflared's AsciiBox: the quick-tunnel banner, padded to the longest line. */
export function asciiBox(lines: string[], padding = 2): string[] {
  const width = Math.max(...lines.map((l) => l.length));
  const border = `+${'-'.repeat(width + padding * 2)}+`;
  const pad = ' '.repeat(padding);
  return [border, ...lines.map((l) => `|${pad}${l.padEnd(width)}${pad}|`), border];
}
