/**
 * Range handling for one file of a known size (RFC 9110 §14), kept pure so every form is tested without a
 * socket. Frame.io pulls with parallel single ranges; anything we cannot honour exactly is answered with
 * the whole file, which RFC 9110 allows for multi-range and malformed headers and which every client
 * understands, rather than with an error that might make the importer give up.
 */

export type RangeDecision =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; /** inclusive */ end: number }
  | { kind: 'unsatisfiable' };

const FULL: RangeDecision = { kind: 'full' };
const UNSATISFIABLE: RangeDecision = { kind: 'unsatisfiable' };

// One range-spec, optional whitespace around the parts. Digits only: "+1", "1e3" or "0x10" are malformed.
const SINGLE = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i;

/**
 * Decides what to send for `Range: <header>` on a file of `size` bytes. Numbers are plain JS numbers, exact
 * up to 2^53, so files far past 4 GiB work; digit strings too long for that are only ever compared, never
 * used as offsets, because they lie past the end of any real file.
 */
export function parseRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined || header.length === 0 || header.length > 200) return FULL;
  if (header.includes(',')) return FULL; // multi-range: the whole file is a valid answer and simpler for all
  const m = SINGLE.exec(header);
  if (!m) return FULL;
  const a = m[1] ?? '';
  const b = m[2] ?? '';
  // An empty file has no byte to point at; sending it whole (0 bytes) is the only useful answer.
  if (size === 0) return FULL;
  if (a === '' && b === '') return FULL;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return UNSATISFIABLE;
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  if (b === '') {
    if (start >= size) return UNSATISFIABLE;
    return { kind: 'partial', start, end: size - 1 };
  }
  const last = Number(b);
  if (last < start) return FULL; // invalid range-spec: ignore the header (RFC 9110 §14.1.1)
  if (start >= size) return UNSATISFIABLE;
  return { kind: 'partial', start, end: Math.min(last, size - 1) };
}

/**
 * Whether a Range may be honoured given `If-Range` (RFC 9110 §13.1.5): only when the validator still
 * matches; otherwise the client's pieces would come from two different files, so it gets the full file.
 * A date only counts when it equals Last-Modified and that time is at least a second old (a strong
 * validator); weak ETags never match.
 */
export function ifRangeAllows(
  ifRange: string | undefined,
  current: { etag: string; lastModifiedMs: number; nowMs: number },
): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"')) return value === current.etag;
  if (value.startsWith('W/')) return false;
  const date = Date.parse(value);
  if (Number.isNaN(date)) return false;
  const lastModifiedSeconds = Math.floor(current.lastModifiedMs / 1000) * 1000;
  return date === lastModifiedSeconds && current.nowMs - current.lastModifiedMs >= 1000;
}

/** `Content-Range` value for a 206 (`bytes a-b/size`) or a 416 (`bytes *\/size`). */
export function contentRange(decision: RangeDecision, size: number): string | undefined {
  if (decision.kind === 'partial') return `bytes ${decision.start}-${decision.end}/${size}`;
  if (decision.kind === 'unsatisfiable') return `bytes */${size}`;
  return undefined;
}
