/**
 * What the control surface may do to the job store: look a job up by id or unique prefix, re-queue failed
 * jobs, list jobs and read the status. The same functions serve the admin API of a running daemon and the
 * CLI working on the store of a stopped one, so both answer alike.
 */
import { isPostflowError } from '../errors.ts';
import { ERR_JOBS_PATH_TAKEN } from '../jobs/errors.ts';
import type { Job, JobStore } from '../jobs/store.ts';
import { isJobState, JOB_STATES, type JobState } from '../jobs/states.ts';
import { ERR_ADMIN_AMBIGUOUS_JOB, ERR_ADMIN_BAD_STATE, ERR_ADMIN_NOT_RETRYABLE, ERR_ADMIN_SUPERSEDED, ERR_ADMIN_UNKNOWN_JOB } from './errors.ts';
import { buildStatus, jobRow, type JobRow, type StatusInput, type StatusView, STATUS_LIST_LIMIT } from './view.ts';

/** Shortest prefix accepted: shorter ones match too much to be what someone meant. */
const MIN_PREFIX = 4;

export async function findJob(store: JobStore, idOrPrefix: string): Promise<Job> {
  const exact = await store.get(idOrPrefix);
  if (exact) return exact;
  const prefix = idOrPrefix.toLowerCase();
  if (prefix.length < MIN_PREFIX || !/^[0-9a-f-]+$/.test(prefix)) throw ERR_ADMIN_UNKNOWN_JOB(idOrPrefix);
  const hits = (await store.list()).filter((j) => j.id.startsWith(prefix));
  if (hits.length === 0) throw ERR_ADMIN_UNKNOWN_JOB(idOrPrefix);
  if (hits.length > 1) throw ERR_ADMIN_AMBIGUOUS_JOB(idOrPrefix, hits.length);
  return hits[0]!;
}

/** failed → queued (the store resets the attempt count); throws when the job is in another state. */
export async function retryJob(store: JobStore, idOrPrefix: string): Promise<Job> {
  const job = await findJob(store, idOrPrefix);
  if (job.state !== 'failed') throw ERR_ADMIN_NOT_RETRYABLE(job.id, job.state);
  let moved: boolean;
  try {
    moved = await store.transition(job.id, 'failed', 'queued', { nextAttemptAt: null, lastError: null }, 'retry requested by an operator');
  } catch (err) {
    // A newer version of the file has its own open job: that one imports the file.
    if (isPostflowError(err, ERR_JOBS_PATH_TAKEN)) throw ERR_ADMIN_SUPERSEDED(job.id, job.path);
    throw err;
  }
  if (!moved) {
    const now = await store.get(job.id);
    throw ERR_ADMIN_NOT_RETRYABLE(job.id, now?.state ?? 'gone');
  }
  return (await store.get(job.id)) ?? { ...job, state: 'queued' };
}

/** Every failed job back to the queue; a job whose path a newer job holds now is reported, not re-queued. */
export async function retryAllFailed(store: JobStore): Promise<{ retried: Job[]; skipped: Array<{ id: string; reason: string }> }> {
  const retried: Job[] = [];
  const skipped: Array<{ id: string; reason: string }> = [];
  for (const job of await store.list({ states: ['failed'] })) {
    try {
      retried.push(await retryJob(store, job.id));
    } catch (err) {
      skipped.push({ id: job.id, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  return { retried, skipped };
}

export function parseStateFilter(value: string | undefined): JobState | undefined {
  if (value === undefined || value === '' || value === 'all') return undefined;
  if (!isJobState(value)) throw ERR_ADMIN_BAD_STATE(value, JOB_STATES);
  return value;
}

export async function listJobs(store: JobStore, q: { state?: JobState | undefined; limit?: number | undefined }): Promise<JobRow[]> {
  const jobs = await store.list({ ...(q.state ? { states: [q.state] } : {}), order: 'desc', limit: q.limit ?? 100 });
  return jobs.map(jobRow);
}

/** The live parts only a running daemon knows; a stopped one passes `running: false` and nothing else. */
export type LiveParts = Omit<StatusInput, 'now' | 'counts' | 'inFlight' | 'queued' | 'done' | 'failed'>;

export async function readStatus(store: JobStore, live: LiveParts, now: number): Promise<StatusView> {
  const [counts, inFlight, queued, done, failed, nodes] = await Promise.all([
    store.counts(),
    store.list({ states: ['exposing', 'importing'] }),
    // Bounded: the page shows the head of the queue; a burst of 10k files must not cost a full scan a second.
    store.list({ states: ['queued'], order: 'asc', limit: 500 }),
    store.list({ states: ['done'], order: 'desc', limit: STATUS_LIST_LIMIT }),
    store.list({ states: ['failed'], order: 'desc', limit: STATUS_LIST_LIMIT }),
    store.nodes(),
  ]);
  // A fleet is more than this one daemon: a lone daemon's status stays as it was.
  const fleet = nodes.length > 1 || nodes.some((n) => n.nodeId !== store.nodeId) ? nodes : undefined;
  // The store orders by creation; "recent" means recently finished.
  const byFinish = (a: Job, b: Job) => (b.finishedAt ?? 0) - (a.finishedAt ?? 0);
  return buildStatus({ ...live, now, counts, inFlight, queued, done: done.sort(byFinish), failed: failed.sort(byFinish), fleet });
}
