import { createError } from '../errors.ts';

/**
 * One attempt failed in a way a fresh attempt may fix (the retry rule decides how many). The messages say
 * what happened, not what comes next: the same text ends a job that has no attempts left.
 */
export const ERR_UPLOAD_STALLED = createError(
  'PF_ERR_UPLOAD_STALLED',
  (seconds: number, covered: number, size: number) =>
    `no bytes were pulled for ${seconds}s (${covered} of ${size} bytes served); raise upload.stallTimeoutSeconds if Frame.io is just slow`,
  { retryable: true },
);
export const ERR_UPLOAD_REMOTE_FAILED = createError(
  'PF_ERR_UPLOAD_REMOTE_FAILED',
  (fileId: string) => `Frame.io reported the import of file ${fileId} as failed (upload_failed)`,
  { retryable: true },
);
export const ERR_UPLOAD_SIZE_MISMATCH = createError(
  'PF_ERR_UPLOAD_SIZE_MISMATCH',
  (fileId: string, remote: number | null | undefined, local: number) =>
    `Frame.io file ${fileId} says upload_complete but has file_size ${remote ?? 'null'}, expected ${local}`,
  { retryable: true },
);
/** Not an attempt's failure: the watch folder (a cloud mount) is gone, so the job waits for it instead of ending. */
export const ERR_UPLOAD_FOLDER_UNAVAILABLE = createError(
  'PF_ERR_UPLOAD_FOLDER_UNAVAILABLE',
  (root: string, code: string) => `the watch folder ${root} is unavailable (${code}); the job waits until the folder is back`,
  { retryable: true },
);
/** The direct path: a part kept failing after its retries (network, 5xx, a broken-off body). */
export const ERR_UPLOAD_PART_FAILED = createError(
  'PF_ERR_UPLOAD_PART_FAILED',
  (part: number, parts: number, tries: number, last: string) => `part ${part} of ${parts} could not be uploaded in ${tries} tries (last: ${last})`,
  { retryable: true },
);
/** The direct path: storage refused the presigned part URLs (expired, or the upload no longer exists). */
export const ERR_UPLOAD_URLS_REFUSED = createError(
  'PF_ERR_UPLOAD_URLS_REFUSED',
  (part: number, status: number, detail: string, freshFiles: number) =>
    `storage refused part ${part} with ${status} (${detail}) after ${freshFiles} fresh file(s); expected the presigned URLs to be valid`,
  { retryable: true },
);
/** The direct path: local_upload answered part sizes that do not add up to the file. */
export const ERR_UPLOAD_PARTS_MISMATCH = createError(
  'PF_ERR_UPLOAD_PARTS_MISMATCH',
  (sum: number, count: number, size: number) => `local_upload returned ${count} part URL(s) adding up to ${sum} bytes, expected ${size}`,
  { retryable: true },
);
