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
export const ERR_UPLOAD_TOO_LARGE = createError(
  'PF_ERR_UPLOAD_TOO_LARGE',
  (size: number, limit: number) =>
    `file is ${size} bytes, over Frame.io's remote-upload limit of ${limit} bytes — such files need the direct (local_upload) path, not built yet`,
);
/** Not an attempt's failure: the watch folder (a cloud mount) is gone, so the job waits for it instead of ending. */
export const ERR_UPLOAD_FOLDER_UNAVAILABLE = createError(
  'PF_ERR_UPLOAD_FOLDER_UNAVAILABLE',
  (root: string, code: string) => `the watch folder ${root} is unavailable (${code}); the job waits until the folder is back`,
  { retryable: true },
);
