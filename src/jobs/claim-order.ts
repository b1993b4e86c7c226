/**
 * The studio's queue rules as SQL both job stores splice into their claim query: watch-folder priority
 * (higher first, then oldest first), folders in quiet hours left waiting (their queued jobs only — an import
 * already in flight that a restart or a takeover resumes is finished), and a size ceiling for the workers
 * kept for small files. Values are whole numbers checked here and written as literals, so the fragment is
 * the same text for SQLite and PostgreSQL placeholders alike. Pure.
 */
import type { ClaimOptions } from './store.ts';

const int = (n: number, what: string): string => {
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what} must be a whole number, got ${n}`);
  return String(n);
};

/** `AND …` conditions to add to the WHERE clause ('' when none apply). */
export function claimFilter(opts: Pick<ClaimOptions, 'skipFolders' | 'maxSize'>): string {
  let sql = '';
  if (opts.skipFolders && opts.skipFolders.length > 0) {
    sql += ` AND NOT (state = 'queued' AND folder_index IN (${opts.skipFolders.map((f) => int(f, 'folder index')).join(', ')}))`;
  }
  if (opts.maxSize !== undefined) sql += ` AND (state <> 'queued' OR size <= ${int(opts.maxSize, 'maxSize')})`;
  return sql;
}

/** The leading ORDER BY key ('' when every folder has priority 0), to be followed by the creation order. */
export function claimOrder(opts: Pick<ClaimOptions, 'priorities'>): string {
  const p = opts.priorities ?? [];
  if (p.every((x) => x === 0)) return '';
  return `CASE folder_index ${p.map((x, i) => `WHEN ${i} THEN ${int(x, 'priority')}`).join(' ')} ELSE 0 END DESC, `;
}
