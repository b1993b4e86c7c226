/** Small figures helpers for bench scripts: medians and readable units. */
import { availableParallelism, loadavg } from 'node:os';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

export function fmt(x: number, digits = 0): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

/** Load average and core count, printed with every run: figures on a shared machine need their context. */
export function machineLoad(): string {
  const [l1, l5] = loadavg();
  return `load ${fmt(l1 ?? 0, 2)} / ${fmt(l5 ?? 0, 2)} (1/5 min) on ${availableParallelism()} cores`;
}
