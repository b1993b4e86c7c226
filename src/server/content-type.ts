/**
 * Response metadata derived from a file name alone: its media type and a Content-Disposition that cannot
 * be used to inject headers or mislead a browser. Pure, so the hostile names are tested directly.
 */
import { extname } from 'node:path';

const TYPES: Readonly<Record<string, string>> = {
  // video
  '.mov': 'video/quicktime',
  '.qt': 'video/quicktime',
  '.mp4': 'video/mp4',
  '.m4v': 'video/x-m4v',
  '.mxf': 'application/mxf',
  '.avi': 'video/x-msvideo',
  '.mkv': 'video/x-matroska',
  '.webm': 'video/webm',
  '.mpg': 'video/mpeg',
  '.mpeg': 'video/mpeg',
  '.ts': 'video/mp2t',
  '.mts': 'video/mp2t',
  '.m2ts': 'video/mp2t',
  '.r3d': 'application/octet-stream', // RED raw has no registered type; Frame.io sniffs it by name
  '.braw': 'application/octet-stream', // Blackmagic raw, likewise
  '.ari': 'application/octet-stream',
  // audio
  '.wav': 'audio/wav',
  '.aif': 'audio/aiff',
  '.aiff': 'audio/aiff',
  '.mp3': 'audio/mpeg',
  '.m4a': 'audio/mp4',
  '.aac': 'audio/aac',
  '.flac': 'audio/flac',
  '.ogg': 'audio/ogg',
  // stills and image sequences
  '.dpx': 'image/x-dpx',
  '.exr': 'image/x-exr',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.heic': 'image/heic',
  '.psd': 'image/vnd.adobe.photoshop',
  '.svg': 'image/svg+xml',
  // documents, subtitles, interchange
  '.pdf': 'application/pdf',
  '.srt': 'application/x-subrip',
  '.vtt': 'text/vtt',
  '.scc': 'text/plain',
  '.xml': 'application/xml',
  '.fcpxml': 'application/xml',
  '.edl': 'text/plain',
  '.aaf': 'application/octet-stream',
  '.txt': 'text/plain',
  '.csv': 'text/csv',
  '.json': 'application/json',
  '.zip': 'application/zip',
};

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** Media type for `name` by its extension (case-insensitive), `application/octet-stream` when unknown. */
export function contentTypeFor(name: string): string {
  return TYPES[extname(name).toLowerCase()] ?? DEFAULT_CONTENT_TYPE;
}

// RFC 8187 attr-char: everything else is percent-encoded in filename*.
function encodeRfc8187(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * `attachment; filename="<ascii>"; filename*=UTF-8''<pct-encoded>`. The quoted fallback keeps printable
 * ASCII except `"` and `\` (replaced by `_`) so old clients get a usable name and no header can be split
 * or closed early; the exact name, any script, travels in filename*.
 */
export function contentDisposition(name: string): string {
  const cleaned = name.replace(/[\u0000-\u001f\u007f]/g, '');
  let ascii = '';
  for (const ch of cleaned) {
    const code = ch.codePointAt(0) as number;
    ascii += code >= 0x20 && code < 0x7f && ch !== '"' && ch !== '\\' ? ch : '_';
  }
  if (ascii.length === 0) ascii = 'file';
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeRfc8187(cleaned)}`;
}
