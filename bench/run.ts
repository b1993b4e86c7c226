/**
 * `npm run bench` runs every benchmark; `npm run bench -- NAME [NAME…] [-- script args]` runs the named
 * ones (NAME is the file name without `.ts`, e.g. `server-throughput`; a prefix such as `watch` runs
 * every `watch-*`). `npm run bench -- --list` lists them.
 *
 * The rule, so new benchmarks need no registration: every `bench/*.ts` file except this one is a
 * benchmark (helpers live in `bench/lib/`, scratch data in `bench/.work/`, neither is scanned). A
 * benchmark is a script that measures postflow beside a baseline in the same run, prints its figures with
 * the baseline and the target, and exits 0 when every target is met, 1 when one is missed, 2 when it
 * cannot run here (e.g. the baseline tool is missing). None of them runs in the test suite.
 *
 * Each runs in its own Node process, one after another (they would skew each other's figures); the
 * runner exits non-zero when any of them did, after a summary line per benchmark.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

export function discover(dir: string = HERE): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && e.name !== 'run.ts')
    .map((e) => basename(e.name, '.ts'))
    .sort();
}

/** The benchmarks `wanted` names: exact names first, otherwise every one starting with the name. */
export function select(all: readonly string[], wanted: readonly string[]): { chosen: string[]; unknown: string[] } {
  if (wanted.length === 0) return { chosen: [...all], unknown: [] };
  const chosen: string[] = [];
  const unknown: string[] = [];
  for (const w of wanted) {
    const name = w.replace(/\.ts$/, '').replace(/^bench\//, '');
    const hits = all.includes(name) ? [name] : all.filter((a) => a.startsWith(name));
    if (hits.length === 0) unknown.push(w);
    for (const h of hits) if (!chosen.includes(h)) chosen.push(h);
  }
  return { chosen, unknown };
}

function runOne(name: string, args: readonly string[]): Promise<{ code: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(HERE, `${name}.ts`), ...args], { stdio: 'inherit' });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', forward).on('SIGTERM', forward);
    child.once('exit', (code, signal) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      resolve({ code: code ?? (signal ? 1 : 0), ms: performance.now() - t0 });
    });
  });
}

async function main(argv: string[]): Promise<number> {
  const sep = argv.indexOf('--');
  const names = sep === -1 ? argv : argv.slice(0, sep);
  const scriptArgs = sep === -1 ? [] : argv.slice(sep + 1);
  const all = discover();
  if (names.includes('--list') || names.includes('--help') || names.includes('-h')) {
    console.log(`benchmarks (every bench/*.ts but run.ts): ${all.join(', ')}`);
    console.log('usage: npm run bench [-- NAME… [-- args for the script]]');
    return 0;
  }
  const { chosen, unknown } = select(all, names);
  if (unknown.length > 0) {
    console.error(`unknown benchmark ${unknown.join(', ')}; known: ${all.join(', ')}`);
    return 2;
  }
  const results: Array<{ name: string; code: number; ms: number }> = [];
  for (const name of chosen) {
    console.log(`\n##### bench ${name}${scriptArgs.length ? ` ${scriptArgs.join(' ')}` : ''}`);
    results.push({ name, ...(await runOne(name, scriptArgs)) });
  }
  if (results.length > 1) {
    console.log('\n##### summary');
    for (const r of results) {
      const verdict = r.code === 0 ? 'PASS' : r.code === 2 ? 'SKIP (cannot run here)' : 'FAIL';
      console.log(`${verdict.padEnd(22)} ${r.name} (${(r.ms / 1000).toFixed(0)} s)`);
    }
  }
  return results.every((r) => r.code === 0) ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
