/** Issue 10, item 7: `postflow status` shows the fleet — nodes, their heartbeats, the jobs each holds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JOB_STATES, type JobState } from '../../src/jobs/states.ts';
import { buildStatus, type StatusInput } from '../../src/admin/view.ts';
import { renderStatus } from '../../src/admin/text.ts';

const NOW = 1_800_000_000_000;

function input(over: Partial<StatusInput> = {}): StatusInput {
  return {
    now: NOW,
    running: true,
    pid: 10,
    startedAt: NOW - 60_000,
    paused: false,
    logLevel: 'info',
    counts: Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>,
    inFlight: [],
    queued: [],
    done: [],
    failed: [],
    progress: new Map(),
    tunnel: null,
    folders: [],
    ...over,
  };
}

const node = (nodeId: string, heartbeatAgoMs: number, jobs: string[], stoppedAt: number | null = null) => ({
  nodeId,
  host: `${nodeId}.studio.lan`,
  pid: 100,
  startedAt: NOW - 3_600_000,
  heartbeatAt: NOW - heartbeatAgoMs,
  stoppedAt,
  jobs,
});

test('fleet rows: running within the lease, SILENT past it, stopped when it left; jobs per node', () => {
  const ids = Array.from({ length: 6 }, (_, i) => `${i}aaaaaaa-0000-4000-8000-000000000000`);
  const v = buildStatus(
    input({
      leaseTimeoutMs: 10_000,
      fleet: [node('edit-1', 2_000, ids.slice(0, 5)), node('edit-2', 45_000, [ids[5]!]), node('edit-3', 120_000, [], NOW - 120_000)],
    }),
  );
  assert.deepEqual(
    v.fleet?.map((n) => [n.nodeId, n.state, n.heartbeatAgeSeconds, n.jobs.length]),
    [
      ['edit-1', 'running', 2, 5],
      ['edit-2', 'silent', 45, 1],
      ['edit-3', 'stopped', 120, 0],
    ],
  );
  const text = renderStatus(v);
  assert.match(text, /Fleet \(daemons sharing the job store\):/);
  assert.match(text, /edit-1 +edit-1\.studio\.lan +100 +running +2s ago +5: 0aaaaaaa 1aaaaaaa 2aaaaaaa 3aaaaaaa …/);
  assert.match(text, /edit-2 .* SILENT .* 1: 5aaaaaaa/);
});

test('a lone daemon shows no fleet section', () => {
  const v = buildStatus(input());
  assert.equal(v.fleet, undefined);
  assert.doesNotMatch(renderStatus(v), /Fleet/);
});
