/**
 * Reading cloudflared's stderr. Every line is `<RFC 3339 time> <LVL> <message> key=value ...` (zerolog's
 * console writer); releases before 2021 used logrus (`INFO[<time>] message`), still seen on old installs.
 * The supervisor learns everything it needs from a handful of lines, recognised here without any I/O.
 */

export type CloudflaredLevel = 'TRC' | 'DBG' | 'INF' | 'WRN' | 'ERR' | 'FTL' | 'PNC';

export interface CloudflaredLine {
  time: string | null;
  level: CloudflaredLevel | null;
  message: string;
  fields: Record<string, string>;
}

export type CloudflaredEvent =
  | { kind: 'quick-url'; url: string }
  | { kind: 'registered'; connIndex: number | null; location: string | null; protocol: string | null }
  | { kind: 'unregistered'; connIndex: number | null }
  | { kind: 'quick-failed'; reason: string }
  | { kind: 'connection-error'; connIndex: number | null; error: string }
  | { kind: 'retrying'; connIndex: number | null; message: string }
  | { kind: 'metrics'; address: string }
  | { kind: 'other' };

const zerolog = /^(\d{4}-\d{2}-\d{2}T\S+)\s+(TRC|DBG|INF|WRN|ERR|FTL|PNC)\s+(.*)$/;
const logrus = /^(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL|PANIC)\[([^\]]*)\]\s*(.*)$/;
const logrusLevel: Record<string, CloudflaredLevel> = {
  TRACE: 'TRC', DEBUG: 'DBG', INFO: 'INF', WARN: 'WRN', WARNING: 'WRN', ERROR: 'ERR', FATAL: 'FTL', PANIC: 'PNC',
};
// The shortest message after which the rest of the line is only `key=value` / `key="quoted"` pairs.
const messageAndFields = /^(.*?)((?:\s+[A-Za-z_][\w.-]*=(?:"(?:[^"\\]|\\.)*"|[^\s"]*))*)\s*$/s;
const field = /([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)/g;
// Lines can be huge (a config dump); past this only the message is kept, which is all the rules need.
const MAX_FIELD_SCAN = 4096;

function unquote(value: string): string {
  if (!value.startsWith('"')) return value;
  try {
    return JSON.parse(value) as string;
  } catch {
    return value.slice(1, -1);
  }
}

function splitFields(rest: string): { message: string; fields: Record<string, string> } {
  if (rest.length > MAX_FIELD_SCAN) return { message: rest, fields: {} };
  const m = messageAndFields.exec(rest);
  if (!m) return { message: rest, fields: {} };
  const fields: Record<string, string> = {};
  for (const f of m[2]!.matchAll(field)) fields[f[1]!] = unquote(f[2]!);
  return { message: m[1]!.trim(), fields };
}

/** One stderr line → its parts; a line in no known shape comes back whole as the message. */
export function parseLine(raw: string): CloudflaredLine {
  const line = raw.replace(/\r?\n$/, '');
  const z = zerolog.exec(line);
  if (z) return { time: z[1]!, level: z[2] as CloudflaredLevel, ...splitFields(z[3]!) };
  const l = logrus.exec(line);
  if (l) return { time: l[2]! || null, level: logrusLevel[l[1]!] ?? null, ...splitFields(l[3]!) };
  return { time: null, level: null, message: line.trim(), fields: {} };
}

const quickUrl = /https:\/\/([a-z0-9-]+\.trycloudflare\.com)\b/i;
const metricsLine = /Starting metrics server on (\S+?)\/metrics/;

function connIndex(fields: Record<string, string>): number | null {
  const n = Number(fields.connIndex);
  return fields.connIndex !== undefined && Number.isInteger(n) ? n : null;
}

/** What a parsed line means to a supervisor. */
export function recognise(line: CloudflaredLine): CloudflaredEvent {
  const { message, fields } = line;
  const errorText = fields.error ?? fields.err ?? '';
  if (/failed to request quick Tunnel/i.test(message) || /failed to request quick Tunnel/i.test(errorText)) {
    return { kind: 'quick-failed', reason: errorText ? `${message}: ${errorText}` : message };
  }
  const url = quickUrl.exec(message);
  if (url && !/api\.trycloudflare\.com/i.test(url[1]!)) return { kind: 'quick-url', url: `https://${url[1]!.toLowerCase()}` };
  if (message.startsWith('Registered tunnel connection')) {
    return { kind: 'registered', connIndex: connIndex(fields), location: fields.location ?? null, protocol: fields.protocol ?? null };
  }
  if (message.startsWith('Unregistered tunnel connection')) return { kind: 'unregistered', connIndex: connIndex(fields) };
  const metrics = metricsLine.exec(message);
  if (metrics) return { kind: 'metrics', address: metrics[1]! };
  if (/^Retrying connection/i.test(message)) return { kind: 'retrying', connIndex: connIndex(fields), message };
  if ((line.level === 'ERR' || line.level === 'WRN') && (fields.connIndex !== undefined || /tunnel error|establish connection|Connection terminated/i.test(message))) {
    return { kind: 'connection-error', connIndex: connIndex(fields), error: errorText || message };
  }
  return { kind: 'other' };
}
