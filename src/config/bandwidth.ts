/**
 * Bandwidth settings in rclone's `--bwlimit` language, so operators can reuse what they know: a rate
 * (`"50M"`, `"1.5G"`, `"off"`) or a timetable of `[Day-]HH:MM,RATE` slots separated by spaces or
 * semicolons (`"08:00,20M 19:00,off"`, `"Mon-08:00,10M Sat-00:00,off"`). Units follow rclone: bytes per
 * second, a bare number is KiB/s, `B` bytes, `K`/`M`/`G`/`T` are powers of 1024 (`10M` = 10 MiB/s). An
 * `UP:DOWN` pair is accepted and its first half used (postflow only sends).
 *
 * Times are wall-clock times in the daemon's local time zone, read through `Date`'s local getters, so a
 * daylight-saving change moves the instant a slot starts, not its wall time. Pure: no timers, no I/O.
 */

/** Bytes per second; `null` means no cap. */
export type Rate = number | null;

export interface Slot {
  /** 0 = Sunday … 6 = Saturday (Date#getDay); undefined = every day. */
  day: number | undefined;
  /** Minutes after local midnight. */
  minute: number;
  rate: Rate;
}

/** A parsed `bandwidth` value: one slot at 00:00 every day for a plain rate. */
export interface Timetable {
  readonly slots: readonly Slot[];
  /** The text it was parsed from, for logs and `postflow status`. */
  readonly source: string;
}

export const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const UNITS: Record<string, number> = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 };
const RATE = /^(\d+(?:\.\d+)?|\.\d+)([bkmgtp])?(?:i?b)?$/i;

export const RATE_EXPECTED = 'a rate in bytes per second such as "50M", "1.5G", "800K" or "off" (K/M/G are 1024-based, as in rclone)';
export const BANDWIDTH_EXPECTED =
  `${RATE_EXPECTED}, or an rclone --bwlimit timetable such as "08:00,20M 19:00,off" or "Mon-08:00,10M Sat-00:00,off"`;

/** A rate, or throws a one-line reason. `0` and `off` mean no cap, as in rclone. */
export function parseRate(text: string): Rate {
  const t = text.trim();
  if (/^(off|unlimited)$/i.test(t)) return null;
  const upload = t.includes(':') ? t.slice(0, t.indexOf(':')) : t;
  const m = RATE.exec(upload);
  if (!m) throw new Error(`"${text}" is not a rate`);
  const unit = m[2] === undefined ? UNITS.K! : UNITS[m[2].toUpperCase()]!;
  const bytes = Math.round(Number(m[1]) * unit);
  return bytes === 0 ? null : bytes;
}

function parseSlot(text: string): Slot {
  const comma = text.indexOf(',');
  if (comma === -1) throw new Error(`slot "${text}" has no ",RATE"`);
  let when = text.slice(0, comma);
  const rateText = text.slice(comma + 1);
  let day: number | undefined;
  const dash = when.indexOf('-');
  if (dash !== -1) {
    const name = when.slice(0, dash);
    const d = DAYS.findIndex((x) => x.toLowerCase() === name.toLowerCase());
    if (d === -1) throw new Error(`slot "${text}": "${name}" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)`);
    day = d;
    when = when.slice(dash + 1);
  }
  const hm = /^(\d{1,2}):?(\d{2})$/.exec(when);
  const h = hm ? Number(hm[1]) : NaN;
  const mi = hm ? Number(hm[2]) : NaN;
  if (!(h >= 0 && h <= 23 && mi >= 0 && mi <= 59)) throw new Error(`slot "${text}": "${when}" is not a time HH:MM`);
  let rate: Rate;
  try {
    rate = parseRate(rateText);
  } catch {
    throw new Error(`slot "${text}": "${rateText}" is not a rate`);
  }
  return { day, minute: h * 60 + mi, rate };
}

/** Parses a `bandwidth` value, or throws an Error whose message names the part that is wrong. */
export function parseBandwidth(text: string): Timetable {
  const source = text.trim();
  if (source === '') throw new Error('empty');
  const parts = source.split(/[\s;]+/);
  if (parts.length === 1 && !parts[0]!.includes(',')) return { slots: [{ day: undefined, minute: 0, rate: parseRate(parts[0]!) }], source };
  return { slots: parts.map(parseSlot), source };
}

/** For the config checks: undefined when valid, else why not. */
export function bandwidthProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'not a string';
  try {
    parseBandwidth(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const WEEK = 7 * 24 * 60;
/** Minutes since Sunday 00:00 of this local week. */
const weekMinute = (d: Date): number => d.getDay() * 24 * 60 + d.getHours() * 60 + d.getMinutes();

/**
 * The rate in force at `at`: the latest slot at or before this local weekday and time, wrapping to last
 * week's latest slot. A slot without a day stands for one on each of the seven days.
 */
export function rateAt(tt: Timetable, at: Date): Rate {
  const now = weekMinute(at);
  let best: { ago: number; rate: Rate } | undefined;
  for (const s of tt.slots) {
    for (const day of s.day === undefined ? [0, 1, 2, 3, 4, 5, 6] : [s.day]) {
      const ago = (now - (day * 24 * 60 + s.minute) + WEEK) % WEEK;
      // Ties: the later slot in the text wins, as when an operator overrides an every-day slot.
      if (best === undefined || ago <= best.ago) best = { ago, rate: s.rate };
    }
  }
  return best?.rate ?? null;
}

/**
 * The first instant after `at` at which the rate changes, or undefined when it never does. Candidates are
 * built as local dates (`new Date(y, m, d, h, mi)`), which lands a slot inside a skipped DST hour on the
 * first valid instant after it.
 */
export function nextChange(tt: Timetable, at: Date): Date | undefined {
  const current = rateAt(tt, at);
  const candidates: Date[] = [];
  for (let offset = 0; offset <= 8; offset++) {
    const day = new Date(at.getFullYear(), at.getMonth(), at.getDate() + offset);
    for (const s of tt.slots) {
      if (s.day !== undefined && s.day !== day.getDay()) continue;
      const c = new Date(day.getFullYear(), day.getMonth(), day.getDate(), Math.floor(s.minute / 60), s.minute % 60);
      if (c.getTime() > at.getTime()) candidates.push(c);
    }
  }
  candidates.sort((a, b) => a.getTime() - b.getTime());
  return candidates.find((c) => rateAt(tt, c) !== current);
}

/** `20 MiB/s`, `off`: how a rate is written in logs and the status. */
export function formatRate(rate: Rate): string {
  if (rate === null) return 'off';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = rate;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(2).replace(/0+$/, '')} ${units[i]}/s`;
}
