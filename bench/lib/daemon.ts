/**
 * The real daemon for the watch/jobs benches: started through its bin by the e2e harness, against the
 * Frame.io emulator and the cloudflared stand-in, with figures read from /proc (CPU of every thread,
 * RSS and its peak), so what is measured is the process a service manager would run.
 */
import { readFileSync } from 'node:fs';
import { startStack, type DaemonProcess, type Stack } from '../../test/e2e/harness.ts';

export { startStack, type DaemonProcess, type Stack };

const TICK_MS = 10; // USER_HZ is 100 on Linux

export interface ProcFigures {
  /** user + system CPU of every thread so far, ms. */
  cpuMs: number;
  rssMb: number;
  /** Peak RSS so far (VmHWM). */
  hwmMb: number;
}

export function procFigures(pid: number): ProcFigures {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), 1-based as in proc(5): utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuMs = (Number(rest[11]) + Number(rest[12])) * TICK_MS;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { cpuMs, rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
}

/** The daemon's own pid: the bin runs it in-process on Node 24 (no shim child). */
export function daemonPid(d: DaemonProcess): number {
  const pid = d.child.pid;
  if (pid === undefined) throw new Error('daemon has no pid');
  return pid;
}
