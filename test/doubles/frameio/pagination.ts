/**
 * V4 list pages: an opaque `after` cursor, `page_size` bounded per endpoint, and a `links.next` that is the
 * bare path plus `after` — the original query (page_size, type, include) is deliberately NOT carried, as on
 * the real service, so a client that forgets to re-append it gets what the real one would.
 */

export interface PageQuery {
  after: string | null;
  pageSize: string | null;
  includeTotalCount: string | null;
}

export type PageResult<T> =
  | { ok: true; body: { data: T[]; links: { next: string | null }; total_count?: number } }
  | { ok: false; detail: string; parameter: string };

export function encodeCursor(seq: number): string {
  return Buffer.from(JSON.stringify({ s: seq })).toString('base64url');
}

export function decodeCursor(cursor: string): number | undefined {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { s?: unknown };
    return typeof v.s === 'number' && Number.isInteger(v.s) ? v.s : undefined;
  } catch {
    return undefined;
  }
}

/** `items` must be in listing order with increasing `seq`; the cursor names the last seq handed out. */
export function paginate<T>(
  items: readonly { seq: number; value: T }[],
  q: PageQuery,
  path: string,
  maxPageSize: number,
): PageResult<T> {
  let size = 50;
  if (q.pageSize !== null) {
    size = Number(q.pageSize);
    if (!Number.isInteger(size) || size < 1 || size > maxPageSize) {
      return { ok: false, parameter: 'page_size', detail: `page_size must be an integer from 1 to ${maxPageSize}, got ${q.pageSize}` };
    }
  }
  let after = -Infinity;
  if (q.after !== null) {
    const seq = decodeCursor(q.after);
    if (seq === undefined) return { ok: false, parameter: 'after', detail: 'after is not a valid cursor' };
    after = seq;
  }
  const rest = items.filter((i) => i.seq > after);
  const page = rest.slice(0, size);
  const last = page.at(-1);
  const next = rest.length > size && last ? `${path}?after=${encodeCursor(last.seq)}` : null;
  const body: { data: T[]; links: { next: string | null }; total_count?: number } = {
    data: page.map((i) => i.value),
    links: { next },
  };
  if (q.includeTotalCount === 'true') body.total_count = items.length;
  return { ok: true, body };
}
