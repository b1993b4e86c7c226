/**
 * The benchmarks' watch tree: 100,000 files in folders 10 levels deep, generated once and cached under
 * bench/.work/ (gitignored), because making 100k files costs tens of seconds and every watch bench needs
 * the same tree. A marker written after the last file says the tree is complete; a half-made tree (an
 * interrupted run) is deleted and made again.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const WORK_DIR = path.join(BENCH_DIR, '.work');

export interface TreeInfo {
  root: string;
  files: number;
  dirs: number;
  /** Depth of the deepest folder below root. */
  depth: number;
}

const FILES_PER_DIR = 100;
const DEPTH = 10;

/**
 * Binary fan-out, 10 levels, 100 files per folder: one top-level subtree holds up to 204,700 files, so 100k
 * files fill ~1,000 folders and most files sit 8–10 folders deep, like a studio's show/episode/reel/... tree.
 * Names look like exports (`A012_C003_0415XY_v02.mov`) so the path strings have a realistic length.
 */
function generate(root: string, count: number): TreeInfo {
  let made = 0;
  let dirs = 0;
  let depthSeen = 0;
  const make = (dir: string, depth: number): void => {
    fs.mkdirSync(dir, { recursive: true });
    dirs++;
    depthSeen = Math.max(depthSeen, depth);
    for (let i = 0; i < FILES_PER_DIR && made < count; i++, made++) {
      const name = `A${String(depth).padStart(3, '0')}_C${String(i).padStart(3, '0')}_${(made * 2654435761 % 0xffffff).toString(16).toUpperCase()}_v01.mov`;
      fs.writeFileSync(path.join(dir, name), '');
    }
    if (depth < DEPTH) for (let b = 0; b < 2 && made < count; b++) make(path.join(dir, `reel_${depth}_${b}`), depth + 1);
  };
  for (let top = 0; made < count; top++) make(path.join(root, `show_${top}`), 1);
  return { root, files: made, dirs, depth: depthSeen };
}

/** The cached tree of `files` files (generated on first use); never modify it from a bench. */
export function ensureTree(files = 100_000, log: (msg: string) => void = console.log): TreeInfo {
  const root = path.join(WORK_DIR, `tree-${files}`);
  const marker = path.join(WORK_DIR, `tree-${files}.json`);
  try {
    const info = JSON.parse(fs.readFileSync(marker, 'utf8')) as TreeInfo;
    if (info.root === root && info.files === files && fs.existsSync(root)) return info;
  } catch {
    // no marker: (re)generate
  }
  fs.rmSync(root, { recursive: true, force: true });
  const t0 = performance.now();
  const info = generate(root, files);
  fs.writeFileSync(marker, JSON.stringify(info));
  log(`generated ${info.files} files in ${info.dirs} folders (depth ${info.depth}) in ${Math.round(performance.now() - t0)} ms under ${root}`);
  return info;
}

/** A scratch folder under bench/.work that the caller removes. */
export function scratchDir(prefix: string): string {
  fs.mkdirSync(WORK_DIR, { recursive: true });
  return fs.mkdtempSync(path.join(WORK_DIR, `${prefix}-`));
}
