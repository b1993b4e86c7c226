/**
 * Where and how a file lands in Frame.io, per watch folder: which folder (the destination, or the
 * destination plus the mirrored sub folders), and what a namesake already there means (`onExisting`):
 * stack the new file on it as a new version, keep both, or skip content that is already there.
 * Frame.io has no "upsert" and no idempotency keys, so every decision looks at the folder first, and a
 * stacking call whose answer was lost is checked by reading the new file's parent back.
 */
import { posix } from 'node:path';
import type { Job, JobStore } from '../jobs/store.ts';
import { FolderListings } from './folder-listing.ts';
import { folderSegments, type FolderMirror } from './folders.ts';

export type Layout = 'mirror' | 'flat';
export type OnExisting = 'version' | 'new' | 'skip';
export type AfterUpload = 'leave' | 'move' | 'sidecar';

/** The per-watch-folder keys of issue 8 that the upload room reads. */
export interface FolderPolicy {
  layout: Layout;
  onExisting: OnExisting;
  afterUpload: AfterUpload;
}

export interface Destination {
  folderId: string;
  /** Relative to the watch folder's destination, '/'-separated; '' for the destination itself. */
  folderPath: string;
}

/** The Frame.io folder path a file lands in, relative to the destination (pure). */
export function landingPath(relPath: string, layout: Layout): string {
  if (layout === 'flat') return '';
  return folderSegments(posix.dirname(relPath.replace(/\\/g, '/'))).join('/');
}

/**
 * `destinationFor(job, signal)` for the runner: the destination root (a project id resolved to its root
 * folder, once) plus the mirrored sub folders, created once however many jobs need them at the same time.
 */
export function destinationResolver(opts: {
  mirror: FolderMirror;
  /** A configured destination id → the Frame.io folder id it stands for (cache it: called per job). */
  root: (destination: string, signal?: AbortSignal) => Promise<string>;
  layoutOf: (job: Job) => Layout;
}): (job: Job, signal?: AbortSignal) => Promise<Destination> {
  return async (job, signal) => {
    const folderPath = landingPath(job.relPath, opts.layoutOf(job));
    const rootId = await opts.root(job.destination, signal);
    return { folderId: await opts.mirror.resolve(rootId, folderPath, signal), folderPath };
  };
}

/** An entry of a folder listing, as far as namesakes go. */
export interface Listed {
  id: string;
  name: string;
  type?: string;
  created_at?: string;
}

export interface LandingPort {
  listChildren(folderId: string, opts?: { type?: string }): AsyncIterable<Listed>;
  getFile(fileId: string, signal?: AbortSignal): Promise<{ id: string; parent_id?: string | null }>;
  createVersionStack?(folderId: string, fileIds: readonly string[], signal?: AbortSignal): Promise<{ id: string }>;
  moveFile?(fileId: string, parentId: string, signal?: AbortSignal): Promise<unknown>;
}

/**
 * The namesake a new version goes onto (pure): a version stack of that name if there is one (it already
 * holds the earlier versions), else the newest file of that name. `exclude` is the new file itself.
 */
export function pickNamesake<T extends Listed>(children: readonly T[], name: string, exclude?: string): T | undefined {
  const same = children.filter((c) => c.name === name && c.id !== exclude && (c.type === 'file' || c.type === 'version_stack'));
  const newest = (xs: T[]): T | undefined =>
    xs.reduce<T | undefined>((best, x) => (best === undefined || Date.parse(x.created_at ?? '') >= Date.parse(best.created_at ?? '') ? x : best), undefined);
  return newest(same.filter((c) => c.type === 'version_stack')) ?? newest(same.filter((c) => c.type === 'file'));
}

/**
 * The done job whose content a `skip` re-export may match (pure): the newest earlier done job of the same
 * path, if it landed in this folder with a known sha256 and the same size. Only the newest counts: content
 * equal to an older version is a revert, which is a new version, not a duplicate.
 */
export function skipCandidate(history: readonly Job[], job: Pick<Job, 'id' | 'size'>, folderId: string): Job | undefined {
  const prev = history.filter((j) => j.id !== job.id && j.state === 'done').sort((a, b) => (b.finishedAt ?? 0) - (a.finishedAt ?? 0))[0];
  if (!prev || prev.sha256 === null || prev.size !== job.size || prev.frameioFolderId !== folderId) return undefined;
  return prev;
}

export interface Landing {
  /**
   * The namesake in `folderId` that is `prev`'s import (the file, or the stack it went onto); else undefined.
   * Always a fresh listing: a "yes" here skips an upload, so it must not rest on a cached answer.
   */
  stillThere(folderId: string, name: string, prev: Pick<Job, 'frameioFileId' | 'versionStackId'>): Promise<Listed | undefined>;
  /**
   * Puts `fileId` on top of its namesake in `folderId` as a new version. Returns the version stack id, or
   * null when there is no namesake (the file simply stays where it is).
   */
  stack(folderId: string, name: string, fileId: string, signal?: AbortSignal): Promise<string | null>;
  /** This daemon deleted `fileId` from `folderId` (crash clean-up, an abandoned attempt). */
  forget(folderId: string, fileId: string): void;
}

export interface LandingOptions {
  now?: () => number;
  /** Passed to the folder listing cache (see folder-listing.ts). */
  minTtlMs?: number;
}

export function createLanding(
  port: LandingPort,
  call: <T>(fn: () => Promise<T>) => Promise<T> = (fn) => fn(),
  opts: LandingOptions = {},
): Landing & { readonly listings: FolderListings } {
  const now = opts.now ?? Date.now;
  // Two jobs of one name finishing together (flat layout, two sub folders) must not both stack on the same
  // namesake: one stacks, the other then finds the stack and goes on top.
  const queues = new Map<string, Promise<unknown>>();
  const serial = <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const run = (queues.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    queues.set(key, tail);
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key);
    });
    return run;
  };

  // One listing per folder, shared by every job landing there (one page of 100 per call, 100 calls a minute).
  const listings = new FolderListings({
    list: (folderId) => port.listChildren(folderId, { type: 'file,version_stack' }),
    now,
    ...(opts.minTtlMs !== undefined ? { minTtlMs: opts.minTtlMs } : {}),
  });
  const named = (folderId: string, name: string, fresh = false): Promise<Listed[]> => call(() => listings.named(folderId, name, { fresh }));

  return {
    listings,

    async stillThere(folderId, name, prev) {
      const found = pickNamesake(await named(folderId, name, true), name);
      return found && (found.id === prev.frameioFileId || found.id === prev.versionStackId) ? found : undefined;
    },

    forget(folderId, fileId) {
      listings.remove(folderId, fileId);
    },

    stack(folderId, name, fileId, signal) {
      return serial(`${folderId}\u0000${name}`, async () => {
        const { createVersionStack, moveFile } = port;
        if (!createVersionStack || !moveFile) throw new Error('this Frame.io client cannot stack versions');
        for (let tries = 1; ; tries++) {
          // A cached "no namesake" is trusted for the TTL (a namesake someone else made meanwhile is the
          // only thing it can miss); a cached namesake that is gone is caught by Frame.io refusing the call.
          const namesake = pickNamesake(await named(folderId, name, tries > 1), name, fileId);
          if (!namesake) {
            // The new file is now the namesake the next version of this name goes onto.
            listings.add(folderId, { id: fileId, name, type: 'file', created_at: new Date(now()).toISOString() });
            return null;
          }
          try {
            if (namesake.type === 'version_stack') {
              await call(() => moveFile.call(port, fileId, namesake.id, signal));
              listings.remove(folderId, fileId);
              return namesake.id;
            }
            const stack = (await call(() => createVersionStack.call(port, folderId, [namesake.id, fileId], signal))).id;
            listings.remove(folderId, fileId);
            listings.remove(folderId, namesake.id);
            listings.add(folderId, { id: stack, name, type: 'version_stack', created_at: new Date(now()).toISOString() });
            return stack;
          } catch (err) {
            // The cache (or Frame.io) disagreed with the call: the next look-up lists the folder again.
            listings.invalidate(folderId);
            // The answer may be lost after the stack was made, or someone stacked the namesake meanwhile:
            // where the new file is now tells which.
            const parent = (await call(() => port.getFile(fileId, signal))).parent_id;
            if (parent && parent !== folderId) {
              listings.remove(folderId, fileId);
              return parent;
            }
            if (tries >= 2) throw err;
          }
        }
      });
    },
  };
}

/** Whether `job`'s stored history lets a `skip` decision even start (pure guard for the runner). */
export async function historyOf(store: JobStore, job: Job): Promise<Job[]> {
  return store.list({ path: job.path, states: ['done'], order: 'desc', limit: 10 });
}
