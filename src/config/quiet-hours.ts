/**
 * Quiet hours of a watch folder: `"09:00-18:00"`, several separated by spaces (`"09:00-12:00 13:00-18:00"`),
 * a window may run past midnight (`"22:00-06:00"`). During a window no new import of the folder starts;
 * files are still watched and queued, and imports already running finish. Local wall-clock time, as the
 * bandwidth timetable. Pure.
 */

export interface QuietWindow {
  /** Minutes after local midnight; start inclusive, end exclusive. */
  start: number;
  end: number;
}

export const QUIET_HOURS_EXPECTED = 'windows "HH:MM-HH:MM" separated by spaces, such as "09:00-18:00" or "09:00-12:00 22:00-06:00", or "" for none';

const HHMM = /^(\d{1,2}):(\d{2})$/;

function minuteOf(text: string, whole: string): number {
  const m = HHMM.exec(text);
  const h = m ? Number(m[1]) : NaN;
  const mi = m ? Number(m[2]) : NaN;
  // 24:00 is allowed as an end ("18:00-24:00").
  if (!(h >= 0 && mi >= 0 && mi <= 59 && (h <= 23 || (h === 24 && mi === 0)))) throw new Error(`"${whole}": "${text}" is not a time HH:MM`);
  return h * 60 + mi;
}

/** Parses a `quietHours` value ("" = none), or throws an Error naming the window that is wrong. */
export function parseQuietHours(text: string): QuietWindow[] {
  const t = text.trim();
  if (t === '') return [];
  return t.split(/\s+/).map((w) => {
    const parts = w.split('-');
    if (parts.length !== 2) throw new Error(`"${w}" is not a window HH:MM-HH:MM`);
    const start = minuteOf(parts[0]!, w);
    const end = minuteOf(parts[1]!, w);
    if (start === end) throw new Error(`"${w}" is empty (start equals end)`);
    return { start, end };
  });
}

export function quietHoursProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'not a string';
  try {
    parseQuietHours(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const minuteOfDay = (d: Date): number => d.getHours() * 60 + d.getMinutes() + d.getSeconds() / 60;

function inside(w: QuietWindow, m: number): boolean {
  return w.start < w.end ? m >= w.start && m < w.end : m >= w.start || m < w.end;
}

export function isQuiet(windows: readonly QuietWindow[], at: Date): boolean {
  const m = minuteOfDay(at);
  return windows.some((w) => inside(w, m));
}

/**
 * When new imports may start again: `at` itself when no window holds now, else the first instant after
 * `at` outside every window (windows that touch or overlap are crossed together). Built from local dates,
 * so it is right across a daylight-saving change.
 */
export function opensAt(windows: readonly QuietWindow[], at: Date): Date {
  let t = at;
  // Each step leaves at least one window, so a handful of steps suffices; the bound guards "00:00-24:00".
  for (let i = 0; i < windows.length * 2 + 2 && isQuiet(windows, t); i++) {
    const m = minuteOfDay(t);
    let latest: Date | undefined;
    for (const w of windows) {
      if (!inside(w, m)) continue;
      const dayOffset = w.start < w.end || m < w.end ? 0 : 1;
      const end = new Date(t.getFullYear(), t.getMonth(), t.getDate() + dayOffset, Math.floor(w.end / 60), w.end % 60);
      if (latest === undefined || end > latest) latest = end;
    }
    if (latest === undefined) break;
    t = latest;
  }
  return t;
}
