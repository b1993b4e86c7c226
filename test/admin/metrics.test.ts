/** The metrics as Prometheus reads them: each hook moves its series; two daemons' registries stay apart. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { JOB_STATES, type JobState } from '../../src/jobs/states.ts';
import { createMetrics } from '../../src/admin/metrics.ts';

const value = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

test('every hook moves its series; gauges read their sources at scrape time', async () => {
  const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
  let tunnel = { status: 'starting', urlSince: null as number | null };
  const m = createMetrics({ jobCounts: async () => counts, tunnel: () => tunnel, now: () => 10_000 });

  let text = (await m.scrape()).body;
  assert.equal(value(text, 'postflow_bytes_served_total'), 0);
  assert.equal(value(text, 'postflow_tunnel_ready'), 0);
  assert.equal(value(text, 'postflow_jobs{state="queued"}'), 0);

  counts.queued = 3;
  counts.done = 1;
  tunnel = { status: 'ready', urlSince: 4_000 };
  const exposure = new EventEmitter();
  m.trackExposure(exposure as never);
  exposure.emit('progress', { bytesSent: 1000 });
  exposure.emit('progress', { bytesSent: 2500 });
  const second = new EventEmitter();
  m.trackExposure(second as never);
  second.emit('progress', { bytesSent: 100 });
  m.frameioCall({ operation: 'files.create_remote_upload', method: 'POST', status: 429 });
  m.frameioCall({ operation: 'files.create_remote_upload', method: 'POST', status: 202 });
  m.sweep({ folderIndex: 1, durationMs: 30 });
  m.tunnelRestart();
  m.importDone(42);
  m.importEnded('done');

  text = (await m.scrape()).body;
  assert.equal(value(text, 'postflow_bytes_served_total'), 2600);
  assert.equal(value(text, 'postflow_jobs{state="queued"}'), 3);
  assert.equal(value(text, 'postflow_jobs{state="done"}'), 1);
  assert.equal(value(text, 'postflow_tunnel_ready'), 1);
  assert.equal(value(text, 'postflow_tunnel_url_age_seconds'), 6);
  assert.equal(value(text, 'postflow_tunnel_restarts_total'), 1);
  assert.equal(value(text, 'postflow_frameio_api_calls_total{operation="files.create_remote_upload",method="POST",status="429"}'), 1);
  assert.equal(value(text, 'postflow_watch_sweep_duration_seconds_count{folder="1"}'), 1);
  assert.equal(value(text, 'postflow_watch_sweep_duration_seconds_bucket{le="0.05",folder="1"}'), 1);
  assert.equal(value(text, 'postflow_watch_sweep_duration_seconds_bucket{le="0.01",folder="1"}'), 0);
  assert.equal(value(text, 'postflow_import_duration_seconds_bucket{le="60"}'), 1);
  assert.equal(value(text, 'postflow_import_duration_seconds_bucket{le="30"}'), 0);
  assert.equal(value(text, 'postflow_jobs_ended_total{outcome="done"}'), 1);
  assert.ok(value(text, 'postflow_process_resident_memory_bytes')! > 0, 'default process metrics');
});

test('two daemons in one process keep separate registries', async () => {
  const src = { jobCounts: async () => Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>, tunnel: () => undefined };
  const a = createMetrics(src);
  const b = createMetrics(src);
  a.tunnelRestart();
  assert.equal(value((await a.scrape()).body, 'postflow_tunnel_restarts_total'), 1);
  assert.equal(value((await b.scrape()).body, 'postflow_tunnel_restarts_total'), 0);
});
