/**
 * Run-time checks of Frame.io answers: only the fields postflow relies on are verified (ids, names, the
 * status flags), so a proxy's HTML page or a changed shape becomes PF_ERR_FRAMEIO_BAD_RESPONSE at the
 * call, not an `undefined` three rooms later. Pure: each parser returns the value or a description of what
 * is wrong.
 */
import type { Account, Asset, File, FileUploadStatus, FileWithUploadUrls, Folder, Me, Project, VersionStack } from './types.ts';

export type Parsed<T> = T | { problem: string };

export function isProblem<T>(p: Parsed<T>): p is { problem: string } {
  return typeof p === 'object' && p !== null && 'problem' in p && Object.keys(p).length === 1;
}

type Obj = Record<string, unknown>;

function obj(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function needStrings(x: unknown, what: string, keys: readonly string[]): Obj | { problem: string } {
  if (!obj(x)) return { problem: `${what} is not an object` };
  for (const k of keys) {
    if (typeof x[k] !== 'string' || x[k] === '') return { problem: `${what}.${k} is not a non-empty string` };
  }
  return x;
}

/** `{"data": X}` → X. */
export function unwrapData(body: unknown): unknown {
  if (!obj(body) || !('data' in body)) return { problem: 'no "data" member' };
  return body.data;
}

export function parseFile(x: unknown): Parsed<File> {
  const o = needStrings(x, 'file', ['id', 'name']);
  if (isProblem(o)) return o;
  if (o.type !== undefined && o.type !== 'file') return { problem: `file.type is ${JSON.stringify(o.type)}, expected "file"` };
  if (o.file_size !== undefined && o.file_size !== null && typeof o.file_size !== 'number') return { problem: 'file.file_size is not a number' };
  return o as unknown as File;
}

export function parseFileWithUploadUrls(x: unknown): Parsed<FileWithUploadUrls> {
  const f = parseFile(x);
  if (isProblem(f)) return f;
  const urls = (x as Obj).upload_urls;
  if (!Array.isArray(urls) || urls.length === 0) return { problem: 'file.upload_urls is not a non-empty array' };
  for (const [i, u] of urls.entries()) {
    if (!obj(u) || typeof u.url !== 'string' || typeof u.size !== 'number' || !(u.size >= 1)) {
      return { problem: `file.upload_urls[${i}] is not {size >= 1, url}` };
    }
  }
  return x as FileWithUploadUrls;
}

export function parseFolder(x: unknown): Parsed<Folder> {
  const o = needStrings(x, 'folder', ['id', 'name']);
  if (isProblem(o)) return o;
  if (o.type !== undefined && o.type !== 'folder') return { problem: `folder.type is ${JSON.stringify(o.type)}, expected "folder"` };
  return o as unknown as Folder;
}

export function parseProject(x: unknown): Parsed<Project> {
  const o = needStrings(x, 'project', ['id', 'root_folder_id']);
  return isProblem(o) ? o : (o as unknown as Project);
}

export function parseAccount(x: unknown): Parsed<Account> {
  const o = needStrings(x, 'account', ['id']);
  return isProblem(o) ? o : (o as unknown as Account);
}

export function parseMe(x: unknown): Parsed<Me> {
  const o = needStrings(x, 'me', ['id']);
  return isProblem(o) ? o : (o as unknown as Me);
}

export function parseAsset(x: unknown): Parsed<Asset> {
  const o = needStrings(x, 'asset', ['id', 'name', 'type']);
  if (isProblem(o)) return o;
  if (o.type !== 'file' && o.type !== 'folder' && o.type !== 'version_stack') {
    return { problem: `asset.type is ${JSON.stringify(o.type)}, expected file | folder | version_stack` };
  }
  return o as unknown as Asset;
}

export function parseVersionStack(x: unknown): Parsed<VersionStack> {
  const o = needStrings(x, 'version stack', ['id']);
  return isProblem(o) ? o : (o as unknown as VersionStack);
}

export function parseUploadStatus(x: unknown): Parsed<FileUploadStatus> {
  if (!obj(x)) return { problem: 'status is not an object' };
  if (typeof x.upload_complete !== 'boolean' || typeof x.upload_failed !== 'boolean') {
    return { problem: 'status.upload_complete / upload_failed are not booleans' };
  }
  return x as unknown as FileUploadStatus;
}

/** A list page: `{data: [...], links: {next}}`, each item checked by `item`. */
export function parsePage<T>(body: unknown, item: (x: unknown) => Parsed<T>): Parsed<{ data: T[]; next: string | null; totalCount?: number }> {
  if (!obj(body) || !Array.isArray(body.data)) return { problem: 'no "data" array' };
  const links = body.links;
  let next: string | null = null;
  if (obj(links) && typeof links.next === 'string' && links.next !== '') next = links.next;
  else if (obj(links) && links.next !== null && links.next !== undefined) return { problem: 'links.next is neither a string nor null' };
  const data: T[] = [];
  for (const x of body.data) {
    const p = item(x);
    if (isProblem(p)) return p;
    data.push(p);
  }
  const out: { data: T[]; next: string | null; totalCount?: number } = { data, next };
  if (typeof body.total_count === 'number') out.totalCount = body.total_count;
  return out;
}

/** The API's own words from an error envelope (`errors[].detail`), for the error message. */
export function errorDetail(body: unknown): string | undefined {
  if (!obj(body) || !Array.isArray(body.errors)) return undefined;
  const parts = body.errors
    .map((e) => (obj(e) ? (typeof e.detail === 'string' ? e.detail : typeof e.title === 'string' ? e.title : undefined) : undefined))
    .filter((s): s is string => s !== undefined);
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/**
 * `links.next` is a path such as `/v4/accounts/…/children?after=…` without the original query: resolve it
 * against the API base (keeping any prefix the base has before `/v4`) and re-append what we asked for.
 */
export function nextPageUrl(apiUrl: string, next: string, keep: Record<string, string | undefined>): string {
  const base = new URL(apiUrl);
  let url: URL;
  if (/^https?:\/\//i.test(next)) url = new URL(next);
  else {
    const basePath = base.pathname.replace(/\/+$/, '');
    const prefix = basePath.endsWith('/v4') && next.startsWith('/v4/') ? basePath.slice(0, -3) : '';
    url = new URL(`${prefix}${next}`, base.origin);
  }
  for (const [k, v] of Object.entries(keep)) {
    if (v !== undefined && !url.searchParams.has(k)) url.searchParams.set(k, v);
  }
  return url.toString();
}
