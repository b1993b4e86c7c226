/**
 * The status and job lists as text for a terminal (`postflow status`, `postflow jobs`): aligned columns,
 * short ids, sizes and durations in human units. Pure: the CLI prints what these return.
 */
import { formatBytes, formatDuration } from '../upload/progress.ts';
import type { JobRow, StatusView } from './view.ts';

/** Ids are uuids; eight characters are unique in practice and `postflow retry` accepts a unique prefix. */
export const shortId = (id: string): string => id.slice(0, 8);

/** Columns padded to their widest cell; the last column is never padded (it holds free text). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].map((l) => `  ${l}`).join('\n');
}

export function progressBar(percent: number, width = 20): string {
  const filled = Math.max(0, Math.min(width, Math.round((percent / 100) * width)));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

function ago(seconds: number | null): string {
  return seconds === null ? '—' : `${formatDuration(seconds)} ago`;
}

function when(ms: number | null, now: number): string {
  return ms === null ? '—' : ago((now - ms) / 1000);
}

export function renderStatus(v: StatusView): string {
  const out: string[] = [];
  const d = v.daemon;
  const head = d.running
    ? `postflow: running (pid ${d.pid ?? '?'}, up ${formatDuration(d.uptimeSeconds ?? 0)}${d.paused ? ', uploads PAUSED' : ''}${d.logLevel ? `, log level ${d.logLevel}` : ''})`
    : 'postflow: not running (read from the job store)';
  out.push(head);
  if (v.tunnel) {
    const t = v.tunnel;
    out.push(
      `tunnel: ${t.status}${t.publicUrl ? ` ${t.publicUrl}` : ''}${t.urlAgeSeconds === null ? '' : ` (URL age ${formatDuration(t.urlAgeSeconds)})`}${t.restarts ? `, ${t.restarts} restart(s)` : ''}${t.lastError && t.status !== 'ready' ? ` — ${t.lastError}` : ''}`,
    );
  }
  const c = v.queue.counts;
  out.push(
    `queue: ${v.queue.length} queued${v.queue.waitingRetry ? ` (${v.queue.waitingRetry} waiting to retry)` : ''} · ${c.exposing + c.importing} importing · ${c.discovered + c.stable} settling · ${c.done} done · ${c.failed} failed · ${c.cancelled} cancelled`,
  );

  out.push('', 'Active imports:');
  if (v.active.length === 0) out.push('  none');
  else {
    out.push(
      table(
        ['ID', 'PROGRESS', 'BYTES', 'RATE', 'ETA', 'FILE'],
        v.active.map((a) => [
          shortId(a.id),
          `${progressBar(a.percent)} ${a.percent.toFixed(1).padStart(5)}%`,
          `${formatBytes(a.covered)} / ${formatBytes(a.size)}`,
          a.rate > 0 ? `${formatBytes(a.rate)}/s` : '—',
          a.etaSeconds === null ? '—' : formatDuration(a.etaSeconds),
          a.name,
        ]),
      ),
    );
  }

  if (v.recentFailed.length > 0) {
    out.push('', 'Recent failures:');
    out.push(table(['ID', 'WHEN', 'ATTEMPTS', 'FILE', 'REASON'], v.recentFailed.map((f) => [shortId(f.id), when(f.finishedAt, v.generatedAt), String(f.attempts), f.name, f.reason])));
  }
  if (v.recentDone.length > 0) {
    out.push('', 'Recently done:');
    out.push(
      table(
        ['ID', 'WHEN', 'SIZE', 'TOOK', 'FILE', 'FRAME.IO'],
        v.recentDone.map((r) => [shortId(r.id), when(r.finishedAt, v.generatedAt), formatBytes(r.size), r.durationSeconds === null ? '—' : formatDuration(r.durationSeconds), r.name, r.viewUrl ?? '—']),
      ),
    );
  }
  if (v.watch.length > 0) {
    out.push('', 'Watch folders:');
    out.push(
      table(
        ['FOLDER', 'DESTINATION', 'FILES', 'LAST SWEEP', 'IMPORTS'],
        v.watch.map((w) => [
          w.path,
          w.destination,
          w.lastSweep ? String(w.lastSweep.files) : '—',
          w.missing ? 'MISSING' : ago(w.lastSweepAgeSeconds),
          w.quietUntil ? `quiet hours: next window opens ${clock(w.quietUntil, v.generatedAt)}` : w.priority ? `priority ${w.priority}` : '',
        ]),
      ),
    );
  }
  if (v.fleet && v.fleet.length > 0) {
    out.push('', 'Fleet (daemons sharing the job store):');
    out.push(
      table(
        ['NODE', 'HOST', 'PID', 'STATE', 'HEARTBEAT', 'JOBS'],
        v.fleet.map((n) => [
          n.nodeId,
          n.host,
          String(n.pid),
          n.state === 'silent' ? 'SILENT' : n.state,
          ago(n.heartbeatAgeSeconds),
          n.jobs.length === 0 ? '—' : `${n.jobs.length}: ${n.jobs.slice(0, 4).map(shortId).join(' ')}${n.jobs.length > 4 ? ' …' : ''}`,
        ]),
      ),
    );
  }
  return out.join('\n');
}

/** `18:00 (in 2h 5m)`: a local clock time, with the day when it is not today. */
export function clock(ms: number, now: number): string {
  const d = new Date(ms);
  const hhmm = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  const day = new Date(now).toDateString() === d.toDateString() ? '' : `${d.toDateString().slice(0, 10)} `;
  return `${day}${hhmm} (in ${formatDuration(Math.max(0, (ms - now) / 1000))})`;
}

export function renderJobs(rows: readonly JobRow[], now: number): string {
  if (rows.length === 0) return '  no jobs';
  const ranked = rows.some((r) => r.priority !== undefined && r.priority !== 0);
  return table(
    ['ID', 'STATE', ...(ranked ? ['PRIO'] : []), 'SIZE', 'TRIES', 'UPDATED', 'FILE', 'DETAIL'],
    rows.map((r) => [
      shortId(r.id),
      r.state,
      ...(ranked ? [String(r.priority ?? 0)] : []),
      formatBytes(r.size),
      String(r.attempts),
      when(r.updatedAt, now),
      r.path,
      r.state === 'done' ? (r.viewUrl ?? '') : (r.lastError ?? ''),
    ]),
  );
}
