/**
 * How the CLI finds the running daemon: the daemon writes the admin listener's address to
 * `<stateDir>/admin.json` (mode 0600, atomic rename) once it listens, and removes it when it stops. A file
 * left by a killed daemon names a pid that is gone; readers check that before they trust it.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const ADMIN_FILE = 'admin.json';

export interface AdminAddress {
  /** `http://127.0.0.1:PORT` — loopback only. */
  url: string;
  pid: number;
  startedAt: number;
}

export function adminFilePath(stateDir: string): string {
  return join(stateDir, ADMIN_FILE);
}

export async function writeAdminFile(stateDir: string, addr: AdminAddress): Promise<void> {
  const target = adminFilePath(stateDir);
  const tmp = `${target}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(addr)}\n`, { mode: 0o600 });
  await rename(tmp, target);
}

/** Removes the file only if it still names this process (a newer daemon may have replaced it). */
export async function removeAdminFile(stateDir: string, pid: number): Promise<void> {
  const current = await readAdminFile(stateDir);
  if (current?.pid === pid) await rm(adminFilePath(stateDir), { force: true });
}

export async function readAdminFile(stateDir: string): Promise<AdminAddress | undefined> {
  let raw: string;
  try {
    raw = await readFile(adminFilePath(stateDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(raw) as Partial<AdminAddress>;
    if (typeof v.url !== 'string' || typeof v.pid !== 'number' || !/^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d+$/.test(v.url)) return undefined;
    return { url: v.url, pid: v.pid, startedAt: typeof v.startedAt === 'number' ? v.startedAt : 0 };
  } catch {
    return undefined;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive but another user's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
