/**
 * A per-folder cache of a Frame.io folder's files and version stacks, for namesake look-ups.
 *
 * Without it every finished job listed its whole destination folder: O(n²) pages over a burst of n files
 * into one folder, and Frame.io allows 100 `folders.index` calls a minute, which held a burst to a couple of
 * files a second. Here a folder is listed once (concurrent look-ups share that one listing), then kept up to
 * date with what this daemon itself does there (`add`, `remove`), and listed again only:
 * - after a TTL, so namesakes made by others (the web app, another machine) are seen; the TTL grows with the
 *   folder so that re-listing a big folder never takes more than about half of the `folders.index` budget;
 * - when a caller asks for `fresh` (a decision that must not rest on an old answer), or `invalidate`s the
 *   folder after Frame.io contradicted the cache (a namesake that is no longer there).
 * Edits made while a listing is under way are replayed onto its result, so none is lost to a refresh.
 */
import type { Listed } from './landing.ts';

export interface FolderListingOptions {
  list: (folderId: string) => AsyncIterable<Listed>;
  now?: () => number;
  /** The shortest time a listing is trusted; default 60 s. */
  minTtlMs?: number;
  /** Per page of the last listing (100 entries), added to the TTL; default 1.2 s = half of 100 calls/min. */
  ttlPerPageMs?: number;
  pageSize?: number;
}

type Edit = { op: 'add'; entry: Listed } | { op: 'remove'; id: string };

interface Entry {
  /** id → entry, and name → ids, so a look-up costs one name, not the folder. */
  byId: Map<string, Listed>;
  byName: Map<string, Set<string>>;
  loadedAt: number;
  loading?: Promise<void>;
  /** Edits seen while `loading` runs, replayed onto its result. */
  journal?: Edit[];
}

export class FolderListings {
  readonly #opts: Required<Omit<FolderListingOptions, 'list' | 'now'>>;
  readonly #list: FolderListingOptions['list'];
  readonly #now: () => number;
  readonly #folders = new Map<string, Entry>();
  /** Full listings fetched (for tests and logs). */
  listings = 0;

  constructor(opts: FolderListingOptions) {
    this.#list = opts.list;
    this.#now = opts.now ?? Date.now;
    this.#opts = { minTtlMs: opts.minTtlMs ?? 60_000, ttlPerPageMs: opts.ttlPerPageMs ?? 1200, pageSize: opts.pageSize ?? 100 };
  }

  /** The folder's entries named `name` (files and version stacks as listed). */
  async named(folderId: string, name: string, opts: { fresh?: boolean } = {}): Promise<Listed[]> {
    const entry = await this.#ready(folderId, opts.fresh === true);
    const ids = entry.byName.get(name);
    if (!ids) return [];
    return [...ids].map((id) => entry.byId.get(id)!);
  }

  /** This daemon put `entry` into the folder (a new file, a new version stack). */
  add(folderId: string, entry: Listed): void {
    this.#edit(folderId, { op: 'add', entry });
  }

  /** This daemon took `id` out of the folder (deleted, moved into a stack). */
  remove(folderId: string, id: string): void {
    this.#edit(folderId, { op: 'remove', id });
  }

  /** Frame.io contradicted the cache: the next look-up lists the folder again. */
  invalidate(folderId: string): void {
    const entry = this.#folders.get(folderId);
    if (entry && !entry.loading) entry.loadedAt = Number.NEGATIVE_INFINITY;
  }

  #edit(folderId: string, edit: Edit): void {
    const entry = this.#folders.get(folderId);
    // A folder never listed needs no edit: its first listing will show the change.
    if (!entry) return;
    entry.journal?.push(edit);
    apply(entry, edit);
  }

  #ttl(entry: Entry): number {
    return this.#opts.minTtlMs + Math.ceil(entry.byId.size / this.#opts.pageSize) * this.#opts.ttlPerPageMs;
  }

  async #ready(folderId: string, fresh: boolean): Promise<Entry> {
    let entry = this.#folders.get(folderId);
    if (!entry) {
      entry = { byId: new Map(), byName: new Map(), loadedAt: Number.NEGATIVE_INFINITY };
      this.#folders.set(folderId, entry);
    }
    if (entry.loading) {
      await entry.loading;
      // A fresh answer must come from a listing that started after the question.
      if (!fresh) return entry;
    } else if (!fresh && this.#now() - entry.loadedAt < this.#ttl(entry)) {
      return entry;
    }
    if (!entry.loading) entry.loading = this.#load(folderId, entry);
    await entry.loading;
    return entry;
  }

  async #load(folderId: string, entry: Entry): Promise<void> {
    const startedAt = this.#now();
    entry.journal = [];
    try {
      const fresh: Entry = { byId: new Map(), byName: new Map(), loadedAt: startedAt };
      for await (const c of this.#list(folderId)) apply(fresh, { op: 'add', entry: c });
      this.listings++;
      for (const edit of entry.journal) apply(fresh, edit);
      entry.byId = fresh.byId;
      entry.byName = fresh.byName;
      entry.loadedAt = startedAt;
    } finally {
      delete entry.journal;
      delete entry.loading;
    }
  }
}

function apply(entry: Entry, edit: Edit): void {
  if (edit.op === 'add') {
    const { entry: c } = edit;
    entry.byId.set(c.id, c);
    let ids = entry.byName.get(c.name);
    if (!ids) entry.byName.set(c.name, (ids = new Set()));
    ids.add(c.id);
    return;
  }
  const c = entry.byId.get(edit.id);
  if (!c) return;
  entry.byId.delete(edit.id);
  const ids = entry.byName.get(c.name);
  ids?.delete(edit.id);
  if (ids?.size === 0) entry.byName.delete(c.name);
}
