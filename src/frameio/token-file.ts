/**
 * The refresh-token file every postflow process on the machine shares (daemon, `upload`, `doctor`,
 * `auth status`). IMS rotates the refresh token at every use and the old one dies at once, so:
 *
 * - writes are atomic (temp file in the same folder, fsync, rename) and mode 0600, so a crash leaves the
 *   old or the new token, never half of one;
 * - a refresh runs under an inter-process lock, re-reading the file first, so two processes never present
 *   the same (already rotated) token and lock each other out.
 *
 * The lock is a `<file>.lock` created with O_EXCL holding `{pid, host, at, id}`; a lock whose process is
 * gone (same host) or that is older than `staleMs` is broken, because a crash while holding it must not
 * log the machine out forever.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ERR_TOKEN_FILE_INVALID, ERR_TOKEN_FILE_PERMISSIONS, ERR_TOKEN_LOCK_TIMEOUT } from './errors.ts';

/** On disk: JSON. Fields other than these (written by `auth login`) are kept across rotations. */
export interface TokenRecord {
  refresh_token: string;
  /** ISO time the token was written. */
  saved_at?: string;
  scope?: string;
  [extra: string]: unknown;
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Refuses a file other users can read: it is a long-lived credential to the studio's Frame.io. */
export async function checkTokenFileMode(path: string): Promise<void> {
  if (process.platform === 'win32') return;
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) throw ERR_TOKEN_FILE_PERMISSIONS(path, st.mode);
}

/**
 * The record in `path`, or undefined when there is no login (missing or empty file). A file holding only a
 * bare token (hand-made) is accepted too.
 */
export async function readTokenFile(path: string): Promise<TokenRecord | undefined> {
  let text: string;
  try {
    await checkTokenFileMode(path);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  return parseTokenFile(path, text);
}

/** Pure: the file's text → record. */
export function parseTokenFile(path: string, text: string): TokenRecord | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  if (!trimmed.startsWith('{')) {
    if (/\s/.test(trimmed)) throw ERR_TOKEN_FILE_INVALID(path, 'plain text with whitespace inside');
    return { refresh_token: trimmed };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    throw ERR_TOKEN_FILE_INVALID(path, 'not valid JSON');
  }
  const rt = (parsed as { refresh_token?: unknown } | null)?.refresh_token;
  if (typeof rt !== 'string' || rt === '') throw ERR_TOKEN_FILE_INVALID(path, 'no "refresh_token" string');
  return parsed as TokenRecord;
}

/** Atomically replaces `path` with `record` (mode 0600), durable once this resolves. */
export async function writeTokenFile(path: string, record: TokenRecord): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const body = `${JSON.stringify({ ...record, saved_at: record.saved_at ?? new Date().toISOString() }, null, 2)}\n`;
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await fh.writeFile(body, 'utf8');
    // The umask cannot widen 0600, but an inherited ACL or odd umask could narrow it oddly; be explicit.
    await fh.chmod(0o600);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  // The rename is only durable once the directory entry is; not every platform lets us fsync a directory.
  try {
    const dh = await open(dir, constants.O_RDONLY);
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* best effort */
  }
}

export interface LockOptions {
  /** Give up (retryable error) after this long. Default 30 s. */
  timeoutMs?: number;
  /** A lock older than this is presumed abandoned. Must exceed the longest refresh. Default 60 s. */
  staleMs?: number;
  now?: () => number;
}

interface LockContent {
  pid: number;
  host: string;
  at: number;
  id: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

async function readLock(lockPath: string): Promise<LockContent | undefined> {
  try {
    const parsed = JSON.parse(await readFile(lockPath, 'utf8')) as Partial<LockContent>;
    if (typeof parsed.pid === 'number' && typeof parsed.id === 'string' && typeof parsed.at === 'number') {
      return { pid: parsed.pid, host: String(parsed.host), at: parsed.at, id: parsed.id };
    }
  } catch {
    /* missing, or caught between create and write */
  }
  return undefined;
}

/** Pure: is this lock's holder gone? */
export function isStaleLock(lock: LockContent, now: number, staleMs: number, host: string, alive: (pid: number) => boolean): boolean {
  if (now - lock.at > staleMs) return true;
  return lock.host === host && !alive(lock.pid);
}

/**
 * Runs `fn` while holding `<path>.lock`, so at most one process on the machine refreshes at a time. The lock
 * is released even when `fn` throws.
 */
export async function withTokenFileLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lockPath = `${path}.lock`;
  const now = opts.now ?? Date.now;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const staleMs = opts.staleMs ?? 60_000;
  const host = hostname();
  const mine: LockContent = { pid: process.pid, host, at: now(), id: randomBytes(9).toString('base64url') };
  const deadline = now() + timeoutMs;
  let holder = 'nobody';
  for (;;) {
    mine.at = now();
    try {
      const fh = await open(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await fh.writeFile(JSON.stringify(mine));
      } finally {
        await fh.close();
      }
      break;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const current = await readLock(lockPath);
    if (current !== undefined) {
      holder = `pid ${current.pid} on ${current.host}`;
      if (isStaleLock(current, now(), staleMs, host, pidAlive)) await breakLock(lockPath, current);
    } else {
      // Unreadable: either being written this instant or left empty by a crash; judge by its age.
      const st = await stat(lockPath).catch(() => undefined);
      if (st !== undefined && now() - st.mtimeMs > staleMs) await breakLock(lockPath, undefined);
    }
    if (now() >= deadline) throw ERR_TOKEN_LOCK_TIMEOUT(lockPath, timeoutMs, holder);
    await delay(10 + Math.floor(Math.random() * 40));
  }
  try {
    return await fn();
  } finally {
    const current = await readLock(lockPath);
    if (current?.id === mine.id) await unlink(lockPath).catch(() => {});
  }
}

/**
 * Removes a stale lock without removing a fresh one someone else took in the meantime: rename is atomic,
 * so exactly one breaker moves the inode away; if what it moved is not the stale lock it judged, it puts
 * it back (link fails if yet another lock appeared, which then stands).
 */
async function breakLock(lockPath: string, judged: LockContent | undefined): Promise<void> {
  const aside = `${lockPath}.${process.pid}.${randomBytes(6).toString('hex')}.stale`;
  try {
    await rename(lockPath, aside);
  } catch {
    return; // someone else broke or released it
  }
  const moved = await readLock(aside);
  if (moved !== undefined && moved.id !== judged?.id) {
    await link(aside, lockPath).catch(() => {});
  }
  await unlink(aside).catch(() => {});
}
