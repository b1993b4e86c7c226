/**
 * What happens to the source once its import is done (`afterUpload`): leave it, move it into the watch
 * folder's `_uploaded/` keeping its tree, or write `<file>.postflow.json` beside it with the Frame.io ids and
 * link. The source is never deleted: a move is a rename on the same volume, and a name already taken in
 * `_uploaded/` gets a numbered sibling instead of being overwritten. The watcher ignores both traces
 * (see watch/filters.ts), so neither is imported again.
 */
import { lstat, mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { Job } from '../jobs/store.ts';
import { SIDECAR_SUFFIX, UPLOADED_FOLDER } from '../watch/filters.ts';
import type { AfterUpload } from './landing.ts';

/** Where a moved file goes (pure): `<root>/_uploaded/<relPath>`. */
export function movedPath(root: string, relPath: string): string {
  return join(root, UPLOADED_FOLDER, ...relPath.split(/[\\/]/).filter((s) => s !== '' && s !== '.' && s !== '..'));
}

/** `cut.mov` → `cut (2).mov` (pure): the n-th free name for a file whose name is taken. */
export function numbered(path: string, n: number): string {
  const ext = extname(path);
  return join(dirname(path), `${basename(path, ext)} (${n})${ext}`);
}

export function sidecarPath(path: string): string {
  return `${path}${SIDECAR_SUFFIX}`;
}

/** What a sidecar says (pure): enough for a script or a person to find the file in Frame.io. */
export function sidecarContent(job: Job): Record<string, unknown> {
  return {
    postflow: 1,
    file: job.name,
    size: job.size,
    sha256: job.sha256,
    frameio: {
      fileId: job.frameioFileId,
      versionStackId: job.versionStackId,
      folderId: job.frameioFolderId,
      folderPath: job.frameioFolderPath,
      viewUrl: job.viewUrl,
    },
    landing: job.landing,
    uploadedAt: job.confirmedAt === null ? null : new Date(job.confirmedAt).toISOString(),
    job: job.id,
  };
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
}

/**
 * Runs the action for a done job; returns the path it produced (the moved file or the sidecar), or null
 * for `leave`. Throws on a file-system error (the caller logs it: the upload itself stays done).
 */
export async function runAfterUpload(job: Job, action: AfterUpload): Promise<string | null> {
  if (action === 'leave') return null;
  if (action === 'sidecar') {
    const target = sidecarPath(job.path);
    // Written beside the file under a hidden name, then renamed: a reader never sees half a sidecar.
    const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
    await writeFile(tmp, `${JSON.stringify(sidecarContent(job), null, 2)}\n`, { mode: 0o644 });
    await rename(tmp, target);
    return target;
  }
  const wanted = movedPath(job.root, job.relPath);
  await mkdir(dirname(wanted), { recursive: true });
  let target = wanted;
  for (let n = 2; await exists(target); n++) target = numbered(wanted, n);
  await rename(job.path, target);
  return target;
}
