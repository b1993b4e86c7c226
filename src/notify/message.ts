/**
 * What a notification says, as pure data: one event per job that ended done or failed, rendered as the
 * generic webhook's JSON or as a Slack incoming-webhook message. Reasons come from error messages, which
 * may quote a URL whose path is the file's credential: every URL in them is redacted.
 */
import { redactUrlsIn } from '../log/redact.ts';

export interface NotifyEvent {
  event: 'done' | 'failed';
  file: { name: string; path: string; relPath: string; size: number };
  /** The watch folder the file came from. */
  folder: string;
  durationSeconds: number | null;
  attempts: number;
  frameio: { fileId: string | null; url: string | null };
  reason: string | null;
  /** ISO time the job ended. */
  at: string;
}

export interface EndedJob {
  name: string;
  path: string;
  relPath: string;
  root: string;
  size: number;
}

export type Outcome =
  | { state: 'done'; frameioFileId: string; viewUrl: string | null; durationMs: number; attempts: number }
  | { state: 'failed'; reason: string; durationMs: number | null; attempts: number };

export function buildEvent(job: EndedJob, outcome: Outcome, at: number): NotifyEvent {
  const done = outcome.state === 'done';
  return {
    event: outcome.state,
    file: { name: job.name, path: job.path, relPath: job.relPath, size: job.size },
    folder: job.root,
    durationSeconds: outcome.durationMs === null ? null : Math.round(outcome.durationMs / 100) / 10,
    attempts: outcome.attempts,
    frameio: { fileId: done ? outcome.frameioFileId : null, url: done ? outcome.viewUrl : null },
    reason: done ? null : redactUrlsIn(outcome.reason),
    at: new Date(at).toISOString(),
  };
}

/** The generic webhook body: the event itself, stable field names for scripts. */
export function webhookBody(ev: NotifyEvent): Record<string, unknown> {
  return { source: 'postflow', ...ev };
}

/** Slack's mrkdwn: &, < and > are control characters and must be escaped in text. */
function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function humanBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function humanDuration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** One notice for a whole folder drop (see batches.ts), as the webhook gets it. */
export interface BatchEvent {
  event: 'batch';
  /** The watch folder, and the sub-folder the files arrived in ('' = the watch folder itself). */
  folder: string;
  subFolder: string;
  files: number;
  done: number;
  failed: number;
  totalBytes: number;
  durationSeconds: number;
  failures: Array<{ name: string; relPath: string; reason: string }>;
  /** Where the delivery landed in Frame.io (the destination folder's link, else a done file's). */
  frameio: { url: string | null };
  at: string;
}

export function batchWebhookBody(ev: BatchEvent): Record<string, unknown> {
  return { source: 'postflow', ...ev, failures: ev.failures.map((f) => ({ ...f, reason: redactUrlsIn(f.reason) })) };
}

export function batchSlackBody(ev: BatchEvent): { text: string } {
  const where = slackEscape(ev.subFolder || ev.folder);
  const head = ev.failed === 0 ? ':white_check_mark:' : ':warning:';
  const link = ev.frameio.url ? ` — <${ev.frameio.url}|open in Frame.io>` : '';
  const fails = ev.failures.slice(0, 5).map((f) => `\n• ${slackEscape(f.relPath || f.name)}: ${slackEscape(redactUrlsIn(f.reason))}`).join('');
  const more = ev.failures.length > 5 ? `\n… and ${ev.failures.length - 5} more` : '';
  return {
    text: `${head} *${where}*: ${ev.done} of ${ev.files} file(s) in Frame.io (${humanBytes(ev.totalBytes)}, ${humanDuration(ev.durationSeconds)})${ev.failed ? `, ${ev.failed} failed` : ''}${link}${fails}${more}`,
  };
}

/** An incoming-webhook message: `text` is what notifications and old clients show. */
export function slackBody(ev: NotifyEvent): { text: string } {
  const name = slackEscape(ev.file.relPath || ev.file.name);
  if (ev.event === 'done') {
    const took = ev.durationSeconds === null ? '' : ` in ${humanDuration(ev.durationSeconds)}`;
    const link = ev.frameio.url ? ` — <${ev.frameio.url}|open in Frame.io>` : '';
    return { text: `:white_check_mark: *${name}* (${humanBytes(ev.file.size)}) is in Frame.io${took}${link}` };
  }
  return { text: `:x: *${name}* (${humanBytes(ev.file.size)}) could not be imported after ${ev.attempts} attempt(s): ${slackEscape(ev.reason ?? 'unknown reason')}` };
}
