/**
 * The job life cycle as data: one table of legal transitions, checked by the store before it writes, so a
 * bug in a worker shows up as an error instead of a job in an impossible state.
 */

export const JOB_STATES = [
  'discovered', // seen by the watcher, not yet stable
  'stable', // size/mtime unchanged long enough: ready to queue
  'queued', // waiting for a worker (or for nextAttemptAt after a retry)
  'exposing', // a worker registers the file on the public server
  'importing', // Frame.io was asked to pull it; following progress and /status
  'done',
  'failed',
  'cancelled',
] as const;

export type JobState = (typeof JOB_STATES)[number];

export const TERMINAL_STATES: readonly JobState[] = ['done', 'failed', 'cancelled'];

/** Non-terminal states: a job here still has work ahead (or in flight). */
export const ACTIVE_STATES: readonly JobState[] = ['discovered', 'stable', 'queued', 'exposing', 'importing'];

/** States in which no worker touches the job yet, so a changed file can simply update it. */
export const OPEN_STATES: readonly JobState[] = ['discovered', 'stable', 'queued'];

/** Jobs a worker holds: after a crash these are the ones to recover. */
export const IN_FLIGHT_STATES: readonly JobState[] = ['exposing', 'importing'];

export const TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  // any non-terminal → cancelled: the file is gone (or an operator cancelled it)
  discovered: ['stable', 'cancelled'],
  // → discovered: the file changed again, stability starts over
  stable: ['queued', 'discovered', 'cancelled'],
  queued: ['exposing', 'discovered', 'cancelled'],
  // → queued: a retry (tunnel lost, stalled pull, Frame.io fault); failed once the retry limit is reached
  // → done straight from exposing only for a skip (onExisting "skip"): the same content, by size and sha256,
  // is already in Frame.io as the path's last import, which Frame.io confirmed then and still lists now
  exposing: ['importing', 'queued', 'failed', 'cancelled', 'done'],
  // → done otherwise only after Frame.io confirmed the file
  importing: ['done', 'queued', 'failed', 'cancelled'],
  done: [],
  // → queued: manual retry (`postflow retry`)
  failed: ['queued'],
  cancelled: [],
};

export function isJobState(value: unknown): value is JobState {
  return typeof value === 'string' && (JOB_STATES as readonly string[]).includes(value);
}

export function canTransition(from: JobState, to: JobState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}
