/**
 * The pid file of the cloudflared this daemon runs. A daemon killed with SIGKILL cannot stop its child, and
 * a second cloudflared for the same origin would keep an old quick-tunnel hostname alive and hold ports, so
 * at start the supervisor ends whatever the previous run left — but only after checking, from the process's
 * own command line, that it is a cloudflared started with this state dir's config file (pids are reused).
 */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

/** The argv of a live process, or null when it is gone or unreadable. */
export async function processArgv(pid: number): Promise<string[] | null> {
  if (process.platform === 'linux') {
    try {
      const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      return raw.split('\0').filter((s) => s !== '');
    } catch {
      return null;
    }
  }
  try {
    const { stdout } = await promisify(execFile)('ps', ['-o', 'command=', '-p', String(pid)]);
    const line = stdout.trim();
    return line === '' ? null : line.split(/\s+/);
  } catch {
    return null;
  }
}

/** Pure: is this argv a cloudflared started by us (our config file path in its flags)? */
export function isOurCloudflared(argv: string[], configPath: string): boolean {
  const i = argv.indexOf('--config');
  return argv.includes('tunnel') && i !== -1 && argv[i + 1] === configPath;
}

export async function writePidFile(path: string, pid: number): Promise<void> {
  await writeFile(path, `${pid}\n`, { mode: 0o644 });
}

export async function removePidFile(path: string): Promise<void> {
  await rm(path, { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Ends the cloudflared a previous run recorded, if it is still ours: SIGTERM, then SIGKILL after
 * `killAfterMs`. Returns the pid it ended, or null when there was nothing to do.
 */
export async function killStale(pidPath: string, configPath: string, killAfterMs = 3000): Promise<number | null> {
  let pid: number;
  try {
    pid = Number.parseInt(await readFile(pidPath, 'utf8'), 10);
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return null;
  const argv = await processArgv(pid);
  if (!argv || !isOurCloudflared(argv, configPath)) {
    await removePidFile(pidPath);
    return null;
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return null;
  }
  const deadline = Date.now() + killAfterMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    while (alive(pid) && Date.now() < deadline + 2000) await sleep(20);
  }
  await removePidFile(pidPath);
  return pid;
}
