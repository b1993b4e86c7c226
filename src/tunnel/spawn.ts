/**
 * Starting the cloudflared process. The supervisor talks to a `Spawner` so tests can hand it any program;
 * the default runs it with execa, stdin closed, output streamed (never buffered: cloudflared runs for months).
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import { ERR_TUNNEL_CLOUDFLARED_MISSING } from './errors.ts';

export interface ChildExit {
  code: number | null;
  signal: string | null;
  /** Set when the process could not be started at all. */
  error: string | null;
}

export interface ChildHandle {
  pid: number | undefined;
  stdout: Readable | null;
  stderr: Readable | null;
  exited: Promise<ChildExit>;
  kill(signal: NodeJS.Signals): boolean;
}

export type Spawner = (file: string, args: string[], opts: { env: Record<string, string>; cwd: string }) => ChildHandle;

export const execaSpawner: Spawner = (file, args, opts) => {
  const sub = execa(file, args, {
    env: opts.env,
    extendEnv: false,
    cwd: opts.cwd,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    // execa kills the child if this process exits normally without stop(); SIGKILL is the pid file's job.
    cleanup: true,
    forceKillAfterDelay: false,
    windowsHide: true,
  });
  const exited = sub.then(
    (r) => ({
      code: r.exitCode ?? null,
      signal: r.signal ?? null,
      error: r.failed && r.exitCode === undefined && r.signal === undefined ? (r.originalMessage ?? r.shortMessage ?? "spawn failed") : null,
    }),
    (err: unknown) => ({ code: null, signal: null, error: err instanceof Error ? err.message : String(err) }),
  );
  return {
    pid: sub.pid,
    stdout: sub.stdout,
    stderr: sub.stderr,
    exited,
    kill: (signal) => sub.kill(signal),
  };
};

/**
 * The absolute path of the cloudflared to run: a path is checked as is (relative to `cwd`), a bare name is
 * looked up on PATH. Throws PF_ERR_TUNNEL_CLOUDFLARED_MISSING otherwise.
 */
export async function resolveCloudflared(pathOrName: string, envPath: string | undefined, cwd = process.cwd()): Promise<string> {
  const candidates = pathOrName.includes('/') || isAbsolute(pathOrName)
    ? [resolve(cwd, pathOrName)]
    : (envPath ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, pathOrName));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  throw ERR_TUNNEL_CLOUDFLARED_MISSING(
    pathOrName,
    candidates.length === 1 ? 'no executable file there' : `not on PATH (${candidates.length} folders searched)`,
  );
}
