/**
 * Bench scratch space and data files. Throughput figures need real bytes (a sparse file is served from the
 * zero page and flatters every server), so each file is written once with random contents into
 * `bench/.work/` (gitignored) and reused by later runs; it is read through once per run so that every
 * contender is served from the page cache, not from the disk.
 */
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WORK_DIR = join(ROOT, 'bench', '.work');

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function workPath(...parts: string[]): string {
  mkdirSync(WORK_DIR, { recursive: true });
  return join(WORK_DIR, ...parts);
}

/** Path of `bench/.work/<name>`, a file of exactly `bytes` random bytes, written now if missing. */
export function ensureDataFile(name: string, bytes: number): string {
  const path = workPath(name);
  if (existsSync(path) && statSync(path).size === bytes) return path;
  const t0 = performance.now();
  const fd = openSync(path, 'w');
  try {
    const block = Buffer.allocUnsafe(16 * MiB);
    for (let done = 0; done < bytes; ) {
      const n = Math.min(block.length, bytes - done);
      randomFillSync(block, 0, n);
      done += writeSync(fd, block, 0, n);
    }
  } finally {
    closeSync(fd);
  }
  console.log(`wrote ${path} (${(bytes / GiB).toFixed(2)} GiB of random bytes) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return path;
}

/** Reads the file through so it sits in the page cache. */
export function warmPageCache(path: string): void {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(8 * MiB);
    while (readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    closeSync(fd);
  }
}
