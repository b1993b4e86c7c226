/**
 * Folder mirroring (`layout: "mirror"`): a file at WATCH/ep101/reel2/cut.mov lands in DEST/ep101/reel2/.
 * Folders are found by listing (every page: Frame.io allows duplicate names, so "is it there" must look at
 * all of them) and created only when missing. Each (parent, name) is resolved once per daemon — concurrent
 * jobs needing the same new folder share one promise, so it is created once — and a failure is not cached.
 */
import { isPostflowError } from '../errors.ts';

export interface FolderPort {
  listChildren(folderId: string, opts?: { type?: string; signal?: AbortSignal }): AsyncIterable<{ id: string; name: string; type: string }>;
  createFolder(parentId: string, name: string, signal?: AbortSignal): Promise<{ id: string }>;
}

/** Folder names of a relative directory, as Frame.io folder names ('' and '.' are the root itself). */
export function folderSegments(relDir: string): string[] {
  return relDir
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .map((s) => (s.length > 255 ? s.slice(0, 255) : s));
}

export class FolderMirror {
  readonly #port: FolderPort;
  readonly #cache = new Map<string, Promise<string>>();

  constructor(port: FolderPort) {
    this.#port = port;
  }

  /** The id of ROOT/relDir in Frame.io, creating what is missing. */
  async resolve(rootId: string, relDir: string, signal?: AbortSignal): Promise<string> {
    let id = rootId;
    for (const name of folderSegments(relDir)) id = await this.#child(id, name, signal);
    return id;
  }

  #child(parentId: string, name: string, signal?: AbortSignal): Promise<string> {
    const key = `${parentId}\u0000${name}`;
    let pending = this.#cache.get(key);
    if (!pending) {
      pending = this.#findOrCreate(parentId, name, signal);
      this.#cache.set(key, pending);
      pending.catch(() => this.#cache.delete(key));
    }
    return pending;
  }

  async #find(parentId: string, name: string, signal?: AbortSignal): Promise<string | undefined> {
    for await (const child of this.#port.listChildren(parentId, { type: 'folder', ...(signal ? { signal } : {}) })) {
      if (child.type === 'folder' && child.name === name) return child.id;
    }
    return undefined;
  }

  async #findOrCreate(parentId: string, name: string, signal?: AbortSignal): Promise<string> {
    const existing = await this.#find(parentId, name, signal);
    if (existing) return existing;
    try {
      return (await this.#port.createFolder(parentId, name, signal)).id;
    } catch (err) {
      // A create that timed out may have happened (no idempotency keys): look again before giving up.
      if (isPostflowError(err) && err.code === 'PF_ERR_FRAMEIO_CREATE_UNCERTAIN') {
        const found = await this.#find(parentId, name, signal);
        if (found) return found;
      }
      throw err;
    }
  }

  /** Forget what is cached (a folder deleted in Frame.io by a person shows up as a failed import). */
  clear(): void {
    this.#cache.clear();
  }
}
