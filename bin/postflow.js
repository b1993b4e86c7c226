#!/usr/bin/env node
// postflow's executable. The daemon is TypeScript run by Node 24's type stripping, and its libraries need
// Node >= 22, so when the `node` on PATH is older (Debian's Node 20, a system service's PATH) this shim
// re-executes itself with the Node 24 the project installs in node_modules (npm package `node`).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const major = Number(process.versions.node.split('.')[0]);

if (major >= 24) {
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
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  // Forward service-manager signals so the daemon shuts down gracefully, not the shim alone.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
