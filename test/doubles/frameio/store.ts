/**
 * The emulator's in-memory Frame.io: one user, one account, one workspace, projects with a root folder,
 * and a tree of folders, files and version stacks. It knows nothing of HTTP; it hands out resources in
 * the V4 JSON shapes (File, Folder, VersionStack, Project...) from the spec.
 */
import { randomUUID } from 'node:crypto';
import { extname } from 'node:path';

export type AssetType = 'file' | 'folder' | 'version_stack';
export type FileStatus = 'created' | 'uploaded' | 'transcoded';

interface AssetBase {
  seq: number;
  id: string;
  name: string;
  parentId: string | null;
  projectId: string;
  createdAt: string;
  updatedAt: string;
}

export interface FileAsset extends AssetBase {
  type: 'file';
  fileSize: number;
  mediaType: string;
  status: FileStatus;
  uploadedAt: string | null;
  uploadCompletedAt: string | null;
  uploadComplete: boolean;
  uploadFailed: boolean;
}

export interface FolderAsset extends AssetBase {
  type: 'folder';
}

export interface StackAsset extends AssetBase {
  type: 'version_stack';
}

export type Asset = FileAsset | FolderAsset | StackAsset;

export interface ProjectRecord {
  id: string;
  name: string;
  workspaceId: string;
  rootFolderId: string;
  createdAt: string;
}

/** ISO-8601 UTC with microseconds, as the V4 API writes timestamps. */
export function isoMicros(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

const MEDIA_TYPES: Record<string, string> = {
  '.mov': 'video/quicktime',
  '.mp4': 'video/mp4',
  '.m4v': 'video/x-m4v',
  '.mxf': 'application/mxf',
  '.avi': 'video/x-msvideo',
  '.mkv': 'video/x-matroska',
  '.wav': 'audio/wav',
  '.aif': 'audio/aiff',
  '.aiff': 'audio/aiff',
  '.mp3': 'audio/mpeg',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.exr': 'image/x-exr',
  '.pdf': 'application/pdf',
  '.txt': 'text/plain',
  '.bin': 'application/octet-stream',
};

export function mediaTypeFor(name: string): string {
  return MEDIA_TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream';
}

export class Store {
  readonly userId = randomUUID();
  readonly accountId = randomUUID();
  readonly workspaceId = randomUUID();
  readonly projects = new Map<string, ProjectRecord>();
  readonly assets = new Map<string, Asset>();
  readonly #now: () => number;
  readonly #createdAt: string;
  #seq = 0;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#createdAt = isoMicros(now());
  }

  createProject(name: string): ProjectRecord {
    const id = randomUUID();
    const root = this.#add<FolderAsset>({ type: 'folder', name: 'root', parentId: null, projectId: id });
    const project = { id, name, workspaceId: this.workspaceId, rootFolderId: root.id, createdAt: isoMicros(this.#now()) };
    this.projects.set(id, project);
    return project;
  }

  #add<A extends Asset>(fields: Omit<A, 'seq' | 'id' | 'createdAt' | 'updatedAt'>): A {
    const at = isoMicros(this.#now());
    const asset = { ...fields, seq: ++this.#seq, id: randomUUID(), createdAt: at, updatedAt: at } as A;
    this.assets.set(asset.id, asset);
    return asset;
  }

  get<T extends AssetType>(id: string, type: T): Extract<Asset, { type: T }> | undefined {
    const a = this.assets.get(id);
    return a?.type === type ? (a as Extract<Asset, { type: T }>) : undefined;
  }

  createFolder(parent: FolderAsset, name: string): FolderAsset {
    return this.#add<FolderAsset>({ type: 'folder', name, parentId: parent.id, projectId: parent.projectId });
  }

  createFile(parent: FolderAsset, name: string, fileSize: number): FileAsset {
    return this.#add<FileAsset>({
      type: 'file',
      name,
      parentId: parent.id,
      projectId: parent.projectId,
      fileSize,
      mediaType: mediaTypeFor(name),
      status: 'created',
      uploadedAt: null,
      uploadCompletedAt: null,
      uploadComplete: false,
      uploadFailed: false,
    });
  }

  /** Stacks `files` (oldest first) into a new version stack in `parent`, named after the newest. */
  createStack(parent: FolderAsset, files: FileAsset[]): StackAsset {
    const head = files.at(-1);
    const stack = this.#add<StackAsset>({ type: 'version_stack', name: head?.name ?? 'stack', parentId: parent.id, projectId: parent.projectId });
    for (const f of files) this.move(f, stack.id);
    return stack;
  }

  /** Moving re-sequences the file, so it lists after everything already in its new parent (newest version last). */
  move(file: FileAsset, parentId: string): void {
    file.parentId = parentId;
    file.seq = ++this.#seq;
    file.updatedAt = isoMicros(this.#now());
    const parent = this.assets.get(parentId);
    if (parent?.type === 'version_stack') {
      parent.name = file.name;
      parent.updatedAt = file.updatedAt;
    }
  }

  children(parentId: string, types?: ReadonlySet<AssetType>): Asset[] {
    const out: Asset[] = [];
    for (const a of this.assets.values()) if (a.parentId === parentId && (!types || types.has(a.type))) out.push(a);
    return out.sort((x, y) => x.seq - y.seq);
  }

  /** Removes an asset and everything under it; returns the file ids removed (their imports must stop). */
  delete(id: string): string[] {
    const removed: string[] = [];
    const walk = (assetId: string): void => {
      for (const child of this.children(assetId)) walk(child.id);
      const a = this.assets.get(assetId);
      if (a?.type === 'file') removed.push(a.id);
      this.assets.delete(assetId);
    };
    walk(id);
    return removed;
  }

  headVersion(stack: StackAsset): FileAsset | undefined {
    return this.children(stack.id, new Set(['file'])).at(-1) as FileAsset | undefined;
  }

  viewUrl(a: Asset): string {
    return `https://next.frame.io/project/${a.projectId}/view/${a.id}`;
  }

  // ── V4 JSON shapes ────────────────────────────────────────────────────────────────────────────────

  me(): Record<string, unknown> {
    return { id: this.userId, name: 'Postflow Test', email: 'postflow-test@example.com', avatar_url: null };
  }

  accountJson(): Record<string, unknown> {
    return {
      id: this.accountId,
      display_name: 'Postflow Test Studio',
      roles: ['owner'],
      storage_limit: null,
      storage_usage: [...this.assets.values()].reduce((n, a) => n + (a.type === 'file' && a.uploadComplete ? a.fileSize : 0), 0),
      created_at: this.#createdAt,
      updated_at: this.#createdAt,
      image: null,
      adobe_id: null,
      v4_migrated_at: null,
    };
  }

  workspaceJson(): Record<string, unknown> {
    return { id: this.workspaceId, name: 'Postflow Workspace', account_id: this.accountId, created_at: this.#createdAt, updated_at: this.#createdAt };
  }

  projectJson(p: ProjectRecord): Record<string, unknown> {
    return {
      id: p.id,
      name: p.name,
      status: 'active',
      storage: 0,
      restricted: false,
      workspace_id: p.workspaceId,
      root_folder_id: p.rootFolderId,
      created_at: p.createdAt,
      updated_at: p.createdAt,
      view_url: `https://next.frame.io/project/${p.id}/`,
      adobe_id: null,
    };
  }

  json(a: Asset): Record<string, unknown> {
    const common = {
      id: a.id,
      name: a.name,
      type: a.type,
      parent_id: a.parentId,
      project_id: a.projectId,
      created_at: a.createdAt,
      updated_at: a.updatedAt,
      view_url: this.viewUrl(a),
      adobe_id: null,
    };
    if (a.type === 'folder') return { ...common, cover_file_id: null };
    if (a.type === 'version_stack') {
      const head = this.headVersion(a);
      return { ...common, head_version: head ? this.json(head) : null };
    }
    return { ...common, file_size: a.fileSize, media_type: a.mediaType, status: a.status, adobe_version_id: null };
  }

  statusJson(f: FileAsset): Record<string, unknown> {
    return {
      id: f.id,
      filetype: f.mediaType,
      uploaded_at: f.uploadedAt,
      upload_completed_at: f.uploadCompletedAt,
      upload_complete: f.uploadComplete,
      upload_failed: f.uploadFailed,
    };
  }
}
