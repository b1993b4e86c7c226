/**
 * Prometheus metrics on prom-client, one Registry per daemon (never the global one: tests run several
 * daemons, and a library's stray metrics must not leak into ours). Rooms do not know about metrics: the
 * composition root feeds these hooks from events the rooms already emit (exposure 'progress', watcher
 * 'sweep', tunnel 'restart', the Frame.io client's onCall), and gauges read their value at scrape time.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { JOB_STATES, type JobState } from '../jobs/states.ts';

export interface MetricsSources {
  /** Jobs per state, read at scrape time. */
  jobCounts(): Promise<Record<JobState, number>>;
  /** Tunnel status at scrape time; undefined before the tunnel exists. */
  tunnel(): { status: string; urlSince: number | null } | undefined;
  now?: () => number;
}

export interface ExposureLike {
  on(event: 'progress', fn: (p: { bytesSent: number }) => void): unknown;
}

export interface DaemonMetrics {
  readonly registry: Registry;
  /** Counts the bytes an exposure hands to sockets, from its cumulative `bytesSent`. */
  trackExposure(exposure: ExposureLike): void;
  frameioCall(call: { operation: string; method: string; status: number }): void;
  sweep(ev: { folderIndex: number; durationMs: number }): void;
  tunnelRestart(): void;
  /** A job reached done; its import took `seconds` from the first attempt's start. */
  importDone(seconds: number): void;
  importEnded(outcome: 'done' | 'failed' | 'cancelled'): void;
  /** Prometheus text exposition. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

export function createMetrics(src: MetricsSources): DaemonMetrics {
  const now = src.now ?? Date.now;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'postflow_' });

  new Gauge({
    name: 'postflow_jobs',
    help: 'Jobs in the store by state.',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const counts = await src.jobCounts();
      for (const s of JOB_STATES) this.set({ state: s }, counts[s] ?? 0);
    },
  });
  const bytesServed = new Counter({
    name: 'postflow_bytes_served_total',
    help: 'Bytes of exposed files handed to sockets by the public file server (repeated ranges included).',
    registers: [registry],
  });
  const importDuration = new Histogram({
    name: 'postflow_import_duration_seconds',
    help: 'Time from a job first starting to Frame.io confirming the file, for jobs that ended done.',
    // 1 s … ~2.3 h: small proxies to 200 GB masters.
    buckets: [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 8400],
    registers: [registry],
  });
  const jobsEnded = new Counter({
    name: 'postflow_jobs_ended_total',
    help: 'Jobs that reached a terminal state in this process, by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const apiCalls = new Counter({
    name: 'postflow_frameio_api_calls_total',
    help: 'Frame.io API calls (each attempt) by operation, method and HTTP status (0 = no answer).',
    labelNames: ['operation', 'method', 'status'],
    registers: [registry],
  });
  const restarts = new Counter({
    name: 'postflow_tunnel_restarts_total',
    help: 'cloudflared restarts by the tunnel supervisor.',
    registers: [registry],
  });
  new Gauge({
    name: 'postflow_tunnel_ready',
    help: '1 when the tunnel is ready (public URL answering), else 0.',
    registers: [registry],
    collect() {
      this.set(src.tunnel()?.status === 'ready' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'postflow_tunnel_url_age_seconds',
    help: 'Seconds since the current public URL became ready (0 when there is none).',
    registers: [registry],
    collect() {
      const since = src.tunnel()?.urlSince;
      this.set(since == null ? 0 : Math.max(0, (now() - since) / 1000));
    },
  });
  const sweepDuration = new Histogram({
    name: 'postflow_watch_sweep_duration_seconds',
    help: 'Duration of one poll sweep of a watch folder.',
    labelNames: ['folder'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });

  return {
    registry,
    trackExposure(exposure) {
      let last = 0;
      exposure.on('progress', (p) => {
        if (p.bytesSent > last) bytesServed.inc(p.bytesSent - last);
        last = p.bytesSent;
      });
    },
    frameioCall(call) {
      apiCalls.inc({ operation: call.operation, method: call.method, status: String(call.status) });
    },
    sweep(ev) {
      sweepDuration.observe({ folder: String(ev.folderIndex) }, ev.durationMs / 1000);
    },
    tunnelRestart() {
      restarts.inc();
    },
    importDone(seconds) {
      importDuration.observe(seconds);
    },
    importEnded(outcome) {
      jobsEnded.inc({ outcome });
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
