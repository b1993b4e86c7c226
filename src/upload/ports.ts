/**
 * What one upload needs from the other rooms, declared narrowly here so the upload room depends on shapes,
 * not on the rooms' internals (the real file server, tunnel and Frame.io client satisfy these structurally,
 * and a test can hand in its own).
 */
import type { EventEmitter } from 'node:events';

export interface ExposedFile extends EventEmitter {
  readonly urlPath: string;
  readonly size: number;
  /** `ranges()`: the covered intervals in order (the content hash follows the prefix from byte 0). */
  readonly coverage: { readonly covered: number; readonly complete: boolean; ranges(): Array<[number, number]> };
  readonly bytesSent: number;
  readonly lastServedAt: number | undefined;
  revoke(): void;
}

export interface Exposer {
  /** `folderIndex`: the watch folder, whose bandwidth cap the responses obey. */
  expose(file: { jobId: string; path: string; name: string; folderIndex?: number }): Promise<ExposedFile>;
}

/** The bandwidth shaper (src/shaping/shaper.ts) as a job sees it: asked before the direct path's bytes go. */
export interface ShaperPort {
  take(bytes: number, folderIndex: number | undefined, signal?: AbortSignal): Promise<void> | undefined;
  sliceBytes(folderIndex: number | undefined): number;
}

/**
 * The tunnel as a job sees it. Events it listens to: 'url' (publicUrl) when a restarted tunnel has a new
 * hostname, and 'down' (reason) when it lost its edge connections or cloudflared exited.
 */
export interface TunnelView extends EventEmitter {
  /** Resolves with the public base URL (`https://host`, no trailing slash) once the tunnel is ready. */
  waitReady(signal?: AbortSignal): Promise<string>;
  /** Whether it is ready now (the runner's outage clock starts from it); also listens to 'ready'. */
  state?(): { status: string };
}

export interface RemoteFile {
  id: string;
  name: string;
  file_size?: number | null;
  view_url?: string | null;
  created_at?: string;
  type?: string;
  /** The folder, or the version stack the file was put on. */
  parent_id?: string | null;
}

export interface UploadStatus {
  upload_complete: boolean;
  upload_failed: boolean;
}

export interface FrameioPort {
  remoteUpload(folderId: string, name: string, sourceUrl: string, signal?: AbortSignal): Promise<{ file: RemoteFile }>;
  /** The direct path: a new file plus presigned part URLs (`upload_urls`). */
  localUpload(folderId: string, name: string, size: number, signal?: AbortSignal): Promise<{ file: RemoteFile & { media_type?: string }; uploadUrls: { size: number; url: string }[] }>;
  fileStatus(fileId: string, signal?: AbortSignal): Promise<UploadStatus>;
  getFile(fileId: string, signal?: AbortSignal): Promise<RemoteFile>;
  deleteFile(fileId: string, signal?: AbortSignal): Promise<void>;
  listChildren(folderId: string, opts?: { type?: string }): AsyncIterable<RemoteFile>;
  /** Version stacks (onExisting "version"); a port without them keeps every file separate. */
  createVersionStack?(folderId: string, fileIds: readonly string[], signal?: AbortSignal): Promise<{ id: string }>;
  moveFile?(fileId: string, parentId: string, signal?: AbortSignal): Promise<unknown>;
}

/** Lets a job wait out a lost Frame.io login instead of failing (the queue resumes after `auth login`). */
export interface AuthGate {
  isLost(): boolean;
  waitRestored(signal?: AbortSignal): Promise<void>;
}
