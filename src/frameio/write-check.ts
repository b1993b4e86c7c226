/**
 * Can this login add files to a destination? Frame.io's V4 API has no side-effect-free way to ask (roles
 * listed on a folder do not say what is inherited), so postflow checks the way an import would fail: it
 * creates a small, clearly named folder there and deletes it at once. Run once per destination at start-up,
 * so a read-only destination stops the daemon with one clear line instead of failing every import later.
 */
import { randomBytes } from 'node:crypto';
import { isPostflowError } from '../errors.ts';

export interface WriteCheckPort {
  createFolder(parentId: string, name: string, signal?: AbortSignal): Promise<{ id: string }>;
  deleteFolder(folderId: string, signal?: AbortSignal): Promise<void>;
}

/** The probe folder's name: recognisable in Frame.io's activity log, never a name an editor would use. */
export function probeName(): string {
  return `.postflow-write-check-${randomBytes(4).toString('hex')}`;
}

/**
 * 'writable', or 'read-only' when Frame.io refuses the create with 403. Other errors (network, 5xx, 429
 * after retries) are thrown: they say nothing about permissions.
 */
export async function checkWritable(port: WriteCheckPort, folderId: string, signal?: AbortSignal): Promise<'writable' | 'read-only'> {
  let probe: { id: string };
  try {
    probe = await port.createFolder(folderId, probeName(), signal);
  } catch (err) {
    if (isPostflowError(err) && err.status === 403) return 'read-only';
    throw err;
  }
  await port.deleteFolder(probe.id, signal);
  return 'writable';
}
