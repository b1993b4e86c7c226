/** The status view and its text: every figure the page and `postflow status` show, from plain data. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Job } from '../../src/jobs/store.ts';
import { JOB_STATES, type JobState } from '../../src/jobs/states.ts';
import { buildStatus, type StatusInput } from '../../src/admin/view.ts';
import { renderJobs, renderStatus, table } from '../../src/admin/text.ts';

const NOW = 1_800_000_000_000;

function job(over: Partial<Job> & { id: string; state: JobState }): Job {
  return {
    folderIndex: 0,
    root: '/w',
    path: `/w/${over.id}.mov`,
    relPath: `${over.id}.mov`,
    name: `${over.id}.mov`,
    size: 1000,
    mtimeMs: 1,
    ino: 1,
    destination: 'dest',
    attempts: 1,
    nextAttemptAt: null,
    lastError: null,
    frameioFileId: null,
    viewUrl: null,
    sourceUrl: null,
    importRequestedAt: null,
    sha256: null,
    frameioFolderId: null,
    frameioFolderPath: null,
    versionStackId: null,
    landing: null,
    sentAt: null,
    confirmedAt: null,
    afterUploadPath: null,
    createdAt: NOW - 60_000,
    updatedAt: NOW - 1000,
    startedAt: null,
    finishedAt: null,
    ...over,
  };
}

function input(over: Partial<StatusInput> = {}): StatusInput {
  const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
  return {
    now: NOW,
    running: true,
    pid: 42,
    startedAt: NOW - 125_000,
    paused: false,
    logLevel: 'info',
    counts,
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

test('active imports carry percent, rate and ETA from the last progress sample; oldest first', () => {
  const a = job({ id: 'aaaa', state: 'importing', size: 4000, startedAt: NOW - 5000 });
  const b = job({ id: 'bbbb', state: 'exposing', size: 10, startedAt: NOW - 9000 });
  const v = buildStatus(
    input({
      inFlight: [a, b],
      progress: new Map([['aaaa', { covered: 1234, size: 4000, rate: 99.6, etaSeconds: 27.6, at: NOW - 1500 }]]),
    }),
  );
  assert.deepEqual(v.active.map((x) => x.id), ['bbbb', 'aaaa']);
  const x = v.active[1]!;
  assert.equal(x.percent, 30.8);
  assert.equal(x.covered, 1234);
  assert.equal(x.rate, 100);
  assert.equal(x.etaSeconds, 28);
  assert.equal(x.sampleAgeSeconds, 1.5);
  assert.equal(v.active[0]!.percent, 0, 'no sample yet: 0 %');
  assert.equal(v.active[0]!.etaSeconds, null);
});

test('a progress sample for another size (an earlier version of the file) is not shown', () => {
  const a = job({ id: 'aaaa', state: 'importing', size: 4000 });
  const v = buildStatus(input({ inFlight: [a], progress: new Map([['aaaa', { covered: 9000, size: 9000, rate: 5, etaSeconds: 0, at: NOW }]]) }));
  assert.equal(v.active[0]!.covered, 0);
  assert.equal(v.active[0]!.percent, 0);
});

test('queue length, retries waiting, counts for every state, uptime and tunnel URL age', () => {
  const counts = { ...input().counts, queued: 3, done: 7 };
  const v = buildStatus(
    input({
      counts,
      queued: [job({ id: 'q1', state: 'queued' }), job({ id: 'q2', state: 'queued', nextAttemptAt: NOW + 30_000 }), job({ id: 'q3', state: 'queued', nextAttemptAt: NOW - 1 })],
      tunnel: { status: 'ready', publicUrl: 'https://a-b-c-d.trycloudflare.com', urlSince: NOW - 90_000, restarts: 2, lastError: null },
    }),
  );
  assert.equal(v.queue.length, 3);
  assert.equal(v.queue.waitingRetry, 1);
  assert.equal(v.queue.counts.done, 7);
  assert.equal(v.queue.counts.cancelled, 0);
  assert.equal(v.daemon.uptimeSeconds, 125);
  assert.equal(v.tunnel?.urlAgeSeconds, 90);
  assert.equal(v.tunnel?.restarts, 2);
});

test('recent done carry duration and view URL; recent failures their reason; lists are capped', () => {
  const done = Array.from({ length: 15 }, (_, i) =>
    job({ id: `d${i}`, state: 'done', startedAt: NOW - 20_000, finishedAt: NOW - 5_000, viewUrl: `https://next.frame.io/project/p/view/${i}` }),
  );
  const failed = [job({ id: 'f1', state: 'failed', attempts: 5, lastError: 'PF_ERR_UPLOAD_STALLED: no bytes for 60 s', finishedAt: NOW - 1000 }), job({ id: 'f2', state: 'failed' })];
  const v = buildStatus(input({ done, failed }));
  assert.equal(v.recentDone.length, 10);
  assert.equal(v.recentDone[0]!.durationSeconds, 15);
  assert.equal(v.recentDone[3]!.viewUrl, 'https://next.frame.io/project/p/view/3');
  assert.equal(v.recentFailed[0]!.reason, 'PF_ERR_UPLOAD_STALLED: no bytes for 60 s');
  assert.equal(v.recentFailed[0]!.attempts, 5);
  assert.equal(v.recentFailed[1]!.reason, 'no reason recorded');
});

test('the text status shows the figures a person looks for', () => {
  const a = job({ id: '0123456789ab', state: 'importing', size: 10 * 1024 * 1024, startedAt: NOW - 5000, name: 'master.mov' });
  const v = buildStatus(
    input({
      inFlight: [a],
      progress: new Map([[a.id, { covered: 5 * 1024 * 1024, size: 10 * 1024 * 1024, rate: 1024 * 1024, etaSeconds: 5, at: NOW }]]),
      failed: [job({ id: 'ffff0000', state: 'failed', lastError: 'boom', name: 'bad.mov', finishedAt: NOW - 61_000 })],
      tunnel: { status: 'ready', publicUrl: 'https://x.trycloudflare.com', urlSince: NOW - 60_000, restarts: 0, lastError: null },
      folders: [{ path: '/Volumes/studio/exports', destination: 'dest-1', lastSweep: { at: NOW - 2000, files: 12, durationMs: 3 } }],
    }),
  );
  const text = renderStatus(v);
  assert.match(text, /^postflow: running \(pid 42, up 2m05s, log level info\)/);
  assert.match(text, /tunnel: ready https:\/\/x\.trycloudflare\.com \(URL age 1m00s\)/);
  assert.match(text, /01234567 +\[##########----------\]  50\.0% +5\.0 MiB \/ 10\.0 MiB +1\.0 MiB\/s +5s +master\.mov/);
  assert.match(text, /ffff0000 +1m01s ago +1 +bad\.mov +boom/);
  assert.match(text, /\/Volumes\/studio\/exports +dest-1 +12 +2s ago/);
  const stopped = renderStatus(buildStatus(input({ running: false, pid: null, startedAt: null })));
  assert.match(stopped, /^postflow: not running/);
  assert.match(stopped, /Active imports:\n  none/);
});

test('tables align columns and leave the last one free', () => {
  assert.equal(table(['A', 'LONGER', 'Z'], [['xxxx', 'y', 'free text here']]), '  A     LONGER  Z\n  xxxx  y       free text here');
  const rows = renderJobs([{ ...job({ id: 'abcdef123456', state: 'failed', lastError: 'why' }), lastError: 'why' }], NOW);
  assert.match(rows, /abcdef12 +failed +1000 B +1 +1s ago +\/w\/abcdef123456\.mov +why/);
  assert.equal(renderJobs([], NOW), '  no jobs');
});
