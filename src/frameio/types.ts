/**
 * Frame.io V4 shapes, typed from the OpenAPI document in ../shared/reference (components.schemas). Fields
 * the spec marks required are required here; the rest are optional. Only the resources postflow touches are
 * typed; the client checks the few fields it relies on at run time (see parse.ts), the rest is trusted.
 */

export type Uuid = string;
/** ISO-8601 UTC with microseconds, e.g. "2024-02-07T16:44:41.986478Z". */
export type Timestamp = string;

/** AssetCommon: what files, folders and version stacks share. */
export interface AssetCommon {
  id: Uuid;
  name: string;
  type: 'file' | 'folder' | 'version_stack';
  project_id: Uuid;
  /** Parent folder or version stack. */
  parent_id: Uuid | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  view_url: string;
  adobe_id?: string | null;
}

export interface File extends AssetCommon {
  type: 'file';
  /** There is no failed status: `/status` is the only failure signal. */
  status: 'created' | 'uploaded' | 'transcoded';
  media_type: string;
  file_size: number;
  adobe_version_id?: string | null;
}

export interface Folder extends AssetCommon {
  type: 'folder';
  cover_file_id: Uuid | null;
}

export interface VersionStack extends AssetCommon {
  type: 'version_stack';
  head_version: File;
}

/** An entry of `GET /folders/{id}/children`. */
export type Asset = File | Folder | VersionStack;
export type AssetType = Asset['type'];

export interface Project {
  id: Uuid;
  name: string;
  status: 'active' | 'inactive';
  storage: number;
  workspace_id: Uuid;
  root_folder_id: Uuid;
  created_at: Timestamp;
  updated_at: Timestamp;
  view_url: string;
  restricted?: boolean;
  adobe_id?: string | null;
}

export interface Account {
  id: Uuid;
  display_name: string;
  roles: Array<'admin' | 'member' | 'owner'>;
  storage_limit: number | null;
  storage_usage: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  adobe_id?: string | null;
  image?: string | null;
  v4_migrated_at?: Timestamp | null;
}

/** `GET /v4/me` (schema "Profile"): no account id here, use `GET /v4/accounts`. */
export interface Me {
  id: Uuid;
  name: string;
  email: string;
  avatar_url: string | null;
}

export interface FileUploadStatus {
  id: Uuid;
  filetype: string;
  uploaded_at: Timestamp | null;
  upload_completed_at: Timestamp | null;
  upload_complete: boolean;
  upload_failed: boolean;
}

/** 202 answer of remote_upload. */
export interface RemoteUploadResponse {
  data: File;
  /** `status`: `/v4/accounts/{account_id}/files/{file_id}/status`. */
  links: { status: string };
}

export interface UploadUrl {
  /** Bytes of the file this part carries, in order. */
  size: number;
  /** Presigned S3 URL: PUT with `Content-Type: <media_type>` and `x-amz-acl: private`. */
  url: string;
}

export interface FileWithUploadUrls extends File {
  upload_urls: UploadUrl[];
}

/** 201 answer of local_upload. */
export interface LocalUploadResponse {
  data: FileWithUploadUrls;
}

/** Single resources are wrapped in `data`. */
export interface DataEnvelope<T> {
  data: T;
}

/** Lists: `links.next` is a relative path that does NOT carry page_size/type/include. */
export interface ListEnvelope<T> {
  data: T[];
  links: { next: string | null };
  total_count?: number;
}

export interface ApiErrorItem {
  detail: string;
  title?: string;
  source?: { pointer: string };
}

export interface ApiErrorEnvelope {
  errors: ApiErrorItem[];
}

/** Adobe IMS `/ims/token/v3` answer. */
export interface ImsTokenResponse {
  access_token: string;
  token_type?: string;
  /** Seconds. */
  expires_in: number;
  /** Present for user logins; rotates at every use. */
  refresh_token?: string;
  scope?: string;
}
