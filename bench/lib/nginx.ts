/**
 * nginx as the baseline file server: Debian's package, started by the bench on a loopback port with a
 * config written under bench/.work (sendfile on, no daemon, pid and logs kept in .work), stopped after.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { workPath } from './work.ts';

export interface Nginx {
  /** `http://127.0.0.1:PORT` serving `root` at `/`. */
  origin: string;
  pid: number;
  stop(): Promise<void>;
}

const CANDIDATES = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/bin/nginx', '/opt/homebrew/bin/nginx'];

/** The nginx binary, or exits 2 with how to install it (a bench without its baseline means nothing). */
export function requireNginx(): string {
  const found = CANDIDATES.find((p) => existsSync(p)) ?? (spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim() || undefined);
  if (found) return found;
  console.error('nginx is not installed; it is the baseline of this benchmark. Install it with');
  console.error('  sudo apt-get install nginx-light   (Debian/Ubuntu; or nginx)');
  console.error('  brew install nginx                 (macOS)');
  process.exit(2);
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  return typeof addr === 'object' && addr !== null ? addr.port : 0;
}

async function answers(origin: string): Promise<boolean> {
  try {
    const res = await fetch(`${origin}/`, { method: 'HEAD', signal: AbortSignal.timeout(500) });
    return res.status > 0;
  } catch {
    return false;
  }
}

export async function startNginx(root: string): Promise<Nginx> {
  const bin = requireNginx();
  const dir = workPath('nginx');
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  // One worker, like postflow's one event loop; sendfile as a production nginx serves files.
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${join(dir, 'tmp')};
  proxy_temp_path ${join(dir, 'tmp')};
  fastcgi_temp_path ${join(dir, 'tmp')};
  uwsgi_temp_path ${join(dir, 'tmp')};
  scgi_temp_path ${join(dir, 'tmp')};
  types { application/octet-stream mov; }
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { }
  }
}
`,
  );
  const child: ChildProcess = spawn(bin, ['-c', conf, '-p', dir, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const origin = `http://127.0.0.1:${port}`;
  for (let i = 0; !(await answers(origin)); i++) {
    if (child.exitCode !== null || i > 50) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not start (exit ${child.exitCode}): ${stderr.trim()}`);
    }
    await sleep(100);
  }
  return {
    origin,
    pid: child.pid ?? 0,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}
