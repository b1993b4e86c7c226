import path from 'node:path';

export interface FilterOptions {
  /** Globs a file must match to be kept (folders are always descended unless excluded or hidden). */
  include?: string[];
  /** Globs of files and folders to skip; an excluded folder is not descended. */
  exclude?: string[];
}

/** `relPath` is '/'-separated and relative to the watch root. True = keep (watch the file / descend). */
export type PathFilter = (relPath: string, isDir: boolean) => boolean;

/** postflow's own sidecar beside an uploaded file (`afterUpload: "sidecar"`): never a deliverable itself. */
export const SIDECAR_SUFFIX = '.postflow.json';
/**
 * Where `afterUpload: "move"` puts uploaded files: this folder at the top of the watch folder, keeping their
 * tree. Inside the watch root, so the move is a rename on the same volume (a LucidLink filespace's root is
 * often the mount point, whose parent is not writable); never watched, so moved files are not imported again.
 */
export const UPLOADED_FOLDER = '_uploaded';

// Names editors, OSes and download tools give files that are not (yet) deliverables. Compared lower-cased
// because Windows and macOS volumes are case-insensitive and tools write `.TMP` as often as `.tmp`.
const IGNORED_NAMES = new Set(['thumbs.db', 'desktop.ini']);
const IGNORED_SUFFIXES = ['.tmp', '.part', '.crdownload', SIDECAR_SUFFIX];
const IGNORED_PREFIXES = ['~$']; // Office lock files; `._*`, `.~lock.*`, `.DS_Store` are hidden anyway

/** True when a file or folder of this base name is never watched, whatever the folder's globs say. */
export function isAlwaysIgnored(name: string, isDir: boolean): boolean {
  if (name.startsWith('.')) return true;
  if (isDir) return false;
  const lower = name.toLowerCase();
  if (IGNORED_NAMES.has(lower)) return true;
  for (const s of IGNORED_SUFFIXES) if (lower.endsWith(s)) return true;
  for (const p of IGNORED_PREFIXES) if (lower.startsWith(p)) return true;
  return false;
}

interface CompiledGlob {
  pattern: string;
  /** A pattern without '/' is matched against the base name too, as operators write `*.mov`. */
  baseName: boolean;
}

function compile(patterns: string[] | undefined): CompiledGlob[] {
  // Lower-cased for the same reason as the default names: `*.mov` must match `A001.MOV`.
  return (patterns ?? []).map((p) => {
    const pattern = p.replace(/\\/g, '/').replace(/^\.\//, '').toLowerCase();
    return { pattern, baseName: !pattern.includes('/') };
  });
}

function matchesAny(globs: CompiledGlob[], lowerRel: string, lowerName: string, isDir: boolean): boolean {
  for (const g of globs) {
    if (path.posix.matchesGlob(lowerRel, g.pattern)) return true;
    // `renders/**` names everything below `renders`, so it excludes the folder itself (not descended).
    if (isDir && path.posix.matchesGlob(lowerRel + '/', g.pattern)) return true;
    if (g.baseName && path.posix.matchesGlob(lowerName, g.pattern)) return true;
  }
  return false;
}

export function createFilter(opts: FilterOptions = {}): PathFilter {
  const include = compile(opts.include);
  const exclude = compile(opts.exclude);
  return (relPath, isDir) => {
    const slash = relPath.lastIndexOf('/');
    const name = slash === -1 ? relPath : relPath.slice(slash + 1);
    // Hidden anywhere on the path, not only the base name: native events hand over deep paths whose
    // hidden ancestor the walk would never have entered.
    if (relPath.startsWith('.') || relPath.includes('/.')) return false;
    if (relPath === UPLOADED_FOLDER || relPath.startsWith(`${UPLOADED_FOLDER}/`)) return false;
    if (isAlwaysIgnored(name, isDir)) return false;
    if (exclude.length === 0 && (include.length === 0 || isDir)) return true;
    const lowerRel = relPath.toLowerCase();
    const lowerName = name.toLowerCase();
    if (exclude.length > 0 && matchesAny(exclude, lowerRel, lowerName, isDir)) return false;
    if (isDir || include.length === 0) return true;
    return matchesAny(include, lowerRel, lowerName, false);
  };
}
