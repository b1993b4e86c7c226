#!/usr/bin/env node
// postflow's executable. The daemon is TypeScript run by Node 24's type stripping, and its libraries need
// Node >= 22, so when the `node` on PATH is older (Debian's Node 20, a system service's PATH) this shim
// re-executes itself with the Node 24 the project installs in node_modules (npm package `node`).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import module from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const major = Number(process.versions.node.split('.')[0]);

// V8's default heap sizing is made for throughput, not for a daemon beside a render job: under a burst of
// 10,000 small jobs it grew the young generation to 134 MB (64 MB semi-spaces) and the old one to ~4x its
// ~55 MB of live data, RSS 485 MB. A 4 MB semi-space and a 1.5x growing factor held the same burst at
// 228 MB with no jobs-per-CPU-second cost measurable on the bench (bench/burst.ts, docs in the report of
// issue 6). Only command-line flags size the heap, so the shim re-executes itself with them (execve: same
// pid, same stdio, nothing left behind); where execve is missing (Windows) the process runs without them.
// --expose-gc: one major GC once the start-up sweep's garbage is dead (daemon.ts, watch/sweep-worker.ts); an
// idle daemon watching 100k files otherwise kept ~70 MB of it (272 → 200 MB RSS).
const V8_FLAGS = ['--max-semi-space-size=4', '--heap-growing-percent=50', '--expose-gc'];
const hasV8Flags = process.execArgv.some((a) => a.startsWith('--max-semi-space-size'));

if (major >= 24 && !hasV8Flags && typeof process.execve === 'function') {
  process.execve(process.execPath, [process.execPath, ...process.execArgv, ...V8_FLAGS, fileURLToPath(import.meta.url), ...process.argv.slice(2)], process.env);
}

if (major >= 24) {
  // V8's on-disk compile cache: compiling postflow's modules (type stripping included) is ~500 ms of every
  // start, ~275 ms with the cache (bench/restart.ts). Under systemd it lives in CacheDirectory=
  // ($CACHE_DIRECTORY, as PrivateTmp empties /tmp at every stop); elsewhere in os.tmpdir(). NODE_COMPILE_CACHE
  // overrides the place, NODE_DISABLE_COMPILE_CACHE=1 turns it off. It never fails the start.
  const cacheDir = process.env.NODE_COMPILE_CACHE === undefined && process.env.CACHE_DIRECTORY ? join(process.env.CACHE_DIRECTORY.split(':')[0], 'node-compile-cache') : undefined;
  module.enableCompileCache?.(cacheDir);
  const { main, reportFailure } = await import(join(here, '..', 'src', 'cli', 'main.ts'));
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (err) {
    process.exitCode = reportFailure(err);
  }
} else {
  const pinned = join(here, '..', 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(pinned)) {
    process.stderr.write(
      `postflow: needs Node.js 24 (this is ${process.version}) — run \`npm ci\` in ${join(here, '..')} to install it, or put Node 24 on PATH\n`,
    );
    process.exit(78);
  }
  const child = spawn(pinned, [...V8_FLAGS, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  // Forward service-manager signals so the daemon shuts down gracefully, not the shim alone.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
