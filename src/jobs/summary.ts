/**
 * One `summary` line per job when it ends (done, failed or cancelled), whatever path ended it — the runner,
 * a removed file, a superseded job at start-up — so operators can grep one event for the outcome of every
 * file. It hooks the store's terminal transitions instead of every call site, so a new way of ending a job
 * cannot forget it.
 */
import type { Logger } from 'pino';
import { isTerminal } from './states.ts';
import type { Job, JobStore } from './store.ts';

/** Pure: the fields of a job's summary line. */
export function summaryFields(job: Job): Record<string, unknown> {
  const began = job.startedAt ?? job.createdAt;
  return {
    event: 'summary',
    job: job.id,
    file: job.path,
    state: job.state,
    size: job.size,
    attempts: job.attempts,
    durationMs: job.finishedAt === null ? null : Math.max(0, job.finishedAt - began),
    frameioFileId: job.frameioFileId,
    viewUrl: job.viewUrl,
    landing: job.landing,
    sha256: job.sha256,
    reason: job.state === 'done' ? null : job.lastError,
  };
}

/** Pure: its human message. */
export function summaryMessage(job: Job): string {
  const tail = job.state === 'done' ? (job.viewUrl ?? job.frameioFileId ?? '') : (job.lastError ?? '');
  return `summary: ${job.name} ${job.state} after ${job.attempts} attempt(s)${tail ? ` — ${tail}` : ''}`;
}

/** The same store, logging a summary line after every successful transition into a terminal state. */
export function withSummaries<S extends JobStore>(store: S, logger: Logger): S {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'transition') {
        const transition: JobStore['transition'] = async (id, from, to, patch, detail) => {
          const moved = await target.transition(id, from, to, patch, detail);
          if (moved && isTerminal(to)) {
            const job = await target.get(id);
            if (job) logger.info(summaryFields(job), summaryMessage(job));
          }
          return moved;
        };
        return transition;
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
