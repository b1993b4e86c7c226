/**
 * The V4 routes the emulator serves: path patterns with the spec's operationIds, and handlers that read
 * and change the store. Authentication, rate limits and faults are the server's business (emulator.ts);
 * a handler sees an authenticated request and returns a status and a body in the V4 envelope.
 */
import { paginate, type PageQuery } from './pagination.ts';
import type { Asset, AssetType, FileAsset, FolderAsset, Store } from './store.ts';
import { validateBody, type V4Error } from './validate.ts';

export interface V4Request {
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
}

export interface V4Answer {
  status: number;
  body?: unknown;
}

export interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  operation: string;
  handle(r: V4Request): V4Answer | Promise<V4Answer>;
}

export interface V4Deps {
  store: Store;
  /** Creates the File, starts the import, and answers once the source has been probed. */
  remoteUpload(folder: FolderAsset, name: string, sourceUrl: string): Promise<FileAsset>;
  /** Creates the File and its presigned part URLs. */
  localUpload(folder: FolderAsset, name: string, fileSize: number): { file: FileAsset; uploadUrls: { size: number; url: string }[] };
  /** Removes assets and stops their imports. */
  deleteAsset(id: string): void;
  /** False for a folder the user may only read (fault readOnlyFolderIds, inherited by sub folders). */
  writable(folder: FolderAsset): boolean;
}

const forbidden = (): V4Answer => errors(403, { detail: 'You do not have permission to add assets to this folder', title: 'Forbidden' });

export function errors(status: number, ...list: V4Error[]): V4Answer {
  return { status, body: { errors: list } };
}

const notFound = (what: string): V4Answer => errors(404, { detail: `${what} not found`, title: 'Not found' });

function compile(template: string): { pattern: RegExp; keys: string[] } {
  const keys: string[] = [];
  const source = template.replace(/\{(\w+)\}/g, (_m, key: string) => {
    keys.push(key);
    return '([^/]+)';
  });
  return { pattern: new RegExp(`^${source}$`), keys };
}

function pageQuery(q: URLSearchParams): PageQuery {
  return { after: q.get('after'), pageSize: q.get('page_size'), includeTotalCount: q.get('include_total_count') };
}

function listAnswer<T>(items: { seq: number; value: T }[], q: URLSearchParams, path: string, max: number): V4Answer {
  const page = paginate(items, pageQuery(q), path, max);
  if (!page.ok) return errors(422, { detail: page.detail, title: 'Invalid value', source: { pointer: `/${page.parameter}` } });
  return { status: 200, body: page.body };
}

const ALL_TYPES: readonly AssetType[] = ['file', 'folder', 'version_stack'];

function parseTypes(raw: string | null): Set<AssetType> | string {
  if (raw === null || raw === '') return new Set(ALL_TYPES);
  const set = new Set<AssetType>();
  for (const t of raw.split(',')) {
    const type = t.trim() as AssetType;
    if (!ALL_TYPES.includes(type)) return `type ${JSON.stringify(t)} is not one of file, folder, version_stack`;
    set.add(type);
  }
  return set;
}

export function createV4Routes(deps: V4Deps): Route[] {
  const { store } = deps;
  const routes: Route[] = [];
  const add = (method: string, template: string, operation: string, handle: Route['handle']): void => {
    routes.push({ method, ...compile(`/v4${template}`), operation, handle });
  };

  /** Resolves the account (404 for another one) and then the named asset of the wanted type. */
  const asset = <T extends AssetType>(r: V4Request, key: string, type: T, what: string): Extract<Asset, { type: T }> | V4Answer => {
    if (r.params.account_id !== store.accountId) return notFound('Account');
    return store.get(r.params[key] ?? '', type) ?? notFound(what);
  };
  const isAnswer = (v: unknown): v is V4Answer => typeof v === 'object' && v !== null && 'status' in v && !('type' in v);
  const items = (list: Asset[]) => list.map((a) => ({ seq: a.seq, value: store.json(a) }));
  const base = (r: V4Request, tail: string) => `/v4/accounts/${r.params.account_id}${tail}`;

  add('GET', '/me', 'users.show', () => ({ status: 200, body: { data: store.me() } }));
  add('GET', '/accounts', 'accounts.index', (r) => listAnswer([{ seq: 1, value: store.accountJson() }], r.query, '/v4/accounts', 100));
  add('GET', '/accounts/{account_id}/workspaces', 'workspaces.index', (r) => {
    if (r.params.account_id !== store.accountId) return notFound('Account');
    return listAnswer([{ seq: 1, value: store.workspaceJson() }], r.query, base(r, '/workspaces'), 100);
  });
  add('GET', '/accounts/{account_id}/workspaces/{workspace_id}', 'workspaces.show', (r) => {
    if (r.params.account_id !== store.accountId || r.params.workspace_id !== store.workspaceId) return notFound('Workspace');
    return { status: 200, body: { data: store.workspaceJson() } };
  });
  const projectItems = () => [...store.projects.values()].map((p, i) => ({ seq: i + 1, value: store.projectJson(p) }));
  add('GET', '/accounts/{account_id}/workspaces/{workspace_id}/projects', 'projects.index', (r) => {
    if (r.params.account_id !== store.accountId || r.params.workspace_id !== store.workspaceId) return notFound('Workspace');
    return listAnswer(projectItems(), r.query, base(r, `/workspaces/${r.params.workspace_id}/projects`), 100);
  });
  add('GET', '/accounts/{account_id}/projects', 'account_projects.index', (r) => {
    if (r.params.account_id !== store.accountId) return notFound('Account');
    return listAnswer(projectItems(), r.query, base(r, '/projects'), 100);
  });
  add('GET', '/accounts/{account_id}/projects/{project_id}', 'projects.show', (r) => {
    const p = r.params.account_id === store.accountId ? store.projects.get(r.params.project_id ?? '') : undefined;
    return p ? { status: 200, body: { data: store.projectJson(p) } } : notFound('Project');
  });

  // ── folders ──
  add('GET', '/accounts/{account_id}/folders/{folder_id}', 'folders.show', (r) => {
    const f = asset(r, 'folder_id', 'folder', 'Folder');
    return isAnswer(f) ? f : { status: 200, body: { data: store.json(f) } };
  });
  add('DELETE', '/accounts/{account_id}/folders/{folder_id}', 'folders.delete', (r) => {
    const f = asset(r, 'folder_id', 'folder', 'Folder');
    if (isAnswer(f)) return f;
    if (f.parentId === null) return errors(403, { detail: 'A project root folder cannot be deleted', title: 'Forbidden' });
    deps.deleteAsset(f.id);
    return { status: 204 };
  });
  add('GET', '/accounts/{account_id}/folders/{folder_id}/children', 'folders.index', (r) => {
    const f = asset(r, 'folder_id', 'folder', 'Folder');
    if (isAnswer(f)) return f;
    const types = parseTypes(r.query.get('type'));
    if (typeof types === 'string') return errors(422, { detail: types, title: 'Invalid value', source: { pointer: '/type' } });
    return listAnswer(items(store.children(f.id, types)), r.query, base(r, `/folders/${f.id}/children`), 500);
  });
  const narrowList = (tail: string, type: AssetType, operation: string): void => {
    add('GET', `/accounts/{account_id}/folders/{folder_id}/${tail}`, operation, (r) => {
      const f = asset(r, 'folder_id', 'folder', 'Folder');
      if (isAnswer(f)) return f;
      return listAnswer(items(store.children(f.id, new Set([type]))), r.query, base(r, `/folders/${f.id}/${tail}`), 500);
    });
  };
  narrowList('files', 'file', 'files.list');
  narrowList('folders', 'folder', 'folders.list');
  narrowList('version_stacks', 'version_stack', 'version_stacks.list');
  add('POST', '/accounts/{account_id}/folders/{folder_id}/folders', 'folders.create', (r) => {
    const f = asset(r, 'folder_id', 'folder', 'Folder');
    if (isAnswer(f)) return f;
    if (!deps.writable(f)) return forbidden();
    const v = validateBody(r.body, { name: { type: 'string', required: true, minLength: 1, maxLength: 255 } });
    if (!v.ok) return errors(v.status, ...v.errors);
    return { status: 201, body: { data: store.json(store.createFolder(f, v.data.name as string)) } };
  });

  // ── files ──
  add('POST', '/accounts/{account_id}/folders/{folder_id}/files/remote_upload', 'files.create_remote_upload', async (r) => {
    const f = asset(r, 'folder_id', 'folder', 'Folder');
    if (isAnswer(f)) return f;
    if (!deps.writable(f)) return forbidden();
    const v = validateBody(r.body, {
      name: { type: 'string', required: true, minLength: 1, maxLength: 255 },
      source_url: { type: 'string', required: true, minLength: 1 },
    });
    if (!v.ok) return errors(v.status, ...v.errors);
    const file = await deps.remoteUpload(f, v.data.name as string, v.data.source_url as string);
    return { status: 202, body: { data: store.json(file), links: { status: base(r, `/files/${file.id}/status`) } } };
  });
  add('POST', '/accounts/{account_id}/folders/{folder_id}/files/local_upload', 'files.create_local_upload', (r) => {
    const f = asset(r, 'folder_id', 'folder', 'Folder');
    if (isAnswer(f)) return f;
    if (!deps.writable(f)) return forbidden();
    const v = validateBody(r.body, {
      name: { type: 'string', required: true, minLength: 1, maxLength: 255 },
      file_size: { type: 'integer', required: true, minimum: 1, maximum: 5_000_000_000_000 },
    });
    if (!v.ok) return errors(v.status, ...v.errors);
    const { file, uploadUrls } = deps.localUpload(f, v.data.name as string, v.data.file_size as number);
    return { status: 201, body: { data: { ...store.json(file), upload_urls: uploadUrls } } };
  });
  add('GET', '/accounts/{account_id}/files/{file_id}', 'files.show', (r) => {
    const f = asset(r, 'file_id', 'file', 'File');
    return isAnswer(f) ? f : { status: 200, body: { data: store.json(f) } };
  });
  add('GET', '/accounts/{account_id}/files/{file_id}/status', 'files.show_file_upload_status', (r) => {
    const f = asset(r, 'file_id', 'file', 'File');
    return isAnswer(f) ? f : { status: 200, body: { data: store.statusJson(f) } };
  });
  add('DELETE', '/accounts/{account_id}/files/{file_id}', 'files.delete', (r) => {
    const f = asset(r, 'file_id', 'file', 'File');
    if (isAnswer(f)) return f;
    deps.deleteAsset(f.id);
    return { status: 204 };
  });
  add('PATCH', '/accounts/{account_id}/files/{file_id}/move', 'files.move', (r) => {
    const f = asset(r, 'file_id', 'file', 'File');
    if (isAnswer(f)) return f;
    const v = validateBody(r.body, { parent_id: { type: 'string', required: true } });
    if (!v.ok) return errors(v.status, ...v.errors);
    const target = store.assets.get(v.data.parent_id as string);
    if (!target || target.type === 'file') return notFound('Destination folder or version stack');
    if (target.projectId !== f.projectId) return errors(422, { detail: 'Destination is in another project', title: 'Invalid value', source: { pointer: '/data/parent_id' } });
    store.move(f, target.id);
    return { status: 200, body: { data: store.json(f) } };
  });

  // ── version stacks ──
  add('POST', '/accounts/{account_id}/folders/{folder_id}/version_stacks', 'version_stacks.create', (r) => {
    const f = asset(r, 'folder_id', 'folder', 'Folder');
    if (isAnswer(f)) return f;
    const v = validateBody(r.body, { file_ids: { type: 'string[]', required: true, minItems: 2, maxItems: 10, unique: true } });
    if (!v.ok) return errors(v.status, ...v.errors);
    const files: FileAsset[] = [];
    for (const id of v.data.file_ids as string[]) {
      const file = store.get(id, 'file');
      if (!file || file.parentId !== f.id) {
        return errors(422, { detail: `File ${id} does not exist in the parent folder`, title: 'Invalid value', source: { pointer: '/data/file_ids' } });
      }
      files.push(file);
    }
    return { status: 201, body: { data: store.json(store.createStack(f, files)) } };
  });
  add('GET', '/accounts/{account_id}/version_stacks/{version_stack_id}', 'version_stacks.show', (r) => {
    const s = asset(r, 'version_stack_id', 'version_stack', 'Version stack');
    return isAnswer(s) ? s : { status: 200, body: { data: store.json(s) } };
  });
  add('GET', '/accounts/{account_id}/version_stacks/{version_stack_id}/children', 'version_stacks.index', (r) => {
    const s = asset(r, 'version_stack_id', 'version_stack', 'Version stack');
    if (isAnswer(s)) return s;
    return listAnswer(items(store.children(s.id)), r.query, base(r, `/version_stacks/${s.id}/children`), 500);
  });

  return routes;
}

export function matchRoute(routes: Route[], method: string, path: string): { route: Route; params: Record<string, string> } | 'method' | undefined {
  let pathMatched = false;
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    pathMatched = true;
    if (route.method !== method) continue;
    const params: Record<string, string> = {};
    route.keys.forEach((k, i) => {
      params[k] = decodeURIComponent(m[i + 1] ?? '');
    });
    return { route, params };
  }
  return pathMatched ? 'method' : undefined;
}
