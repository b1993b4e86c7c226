/**
 * Which way a file goes to Frame.io: `remote` (Frame.io pulls it through the tunnel, remote_upload) or
 * `direct` (postflow PUTs it to presigned storage URLs, local_upload). Pure, so the rule is tested without a
 * tunnel or a clock: the runner asks it before an attempt and again while it waits for a tunnel that is down.
 */

export type UploadPath = 'remote' | 'direct';
export type FolderUploadSetting = 'auto' | 'remote' | 'direct';

/** Why a path was chosen; logged beside the choice so an operator can tell a forced path from a fallback. */
export type PathReason = 'over-remote-limit' | 'folder-direct' | 'tunnel-down' | 'remote';

export interface PathInput {
  size: number;
  /** The watch folder's `upload` key. */
  setting: FolderUploadSetting;
  /** How long the tunnel has been unavailable (ms), or null while it is ready. */
  tunnelDownForMs: number | null;
  /** `upload.directAfterTunnelDownSeconds` in ms. */
  directAfterTunnelDownMs: number;
  /** Frame.io's remote-upload cap in bytes. */
  remoteLimit: number;
}

export function choosePath(input: PathInput): { path: UploadPath; reason: PathReason } {
  // Above the cap remote_upload cannot work whatever the folder says, so even "remote" goes direct.
  if (input.size > input.remoteLimit) return { path: 'direct', reason: 'over-remote-limit' };
  if (input.setting === 'direct') return { path: 'direct', reason: 'folder-direct' };
  if (input.setting === 'auto' && input.tunnelDownForMs !== null && input.tunnelDownForMs >= input.directAfterTunnelDownMs) {
    return { path: 'direct', reason: 'tunnel-down' };
  }
  return { path: 'remote', reason: 'remote' };
}

/**
 * Milliseconds until an `auto` file waiting for the tunnel should give up on it and go direct, or null when
 * waiting can never turn into a direct upload (tunnel ready, or a folder that forces remote).
 */
export function msUntilDirect(input: PathInput): number | null {
  if (input.setting !== 'auto' || input.tunnelDownForMs === null) return null;
  return Math.max(0, input.directAfterTunnelDownMs - input.tunnelDownForMs);
}

/**
 * Since when the tunnel has been unavailable, from its 'down' and 'ready' events. Kept per runner (not per
 * job) so that an outage that began before a job started counts in full.
 */
export class TunnelOutage {
  #downSince: number | null;

  constructor(downSince: number | null = null) {
    this.#downSince = downSince;
  }

  down(at: number): void {
    this.#downSince ??= at;
  }

  up(): void {
    this.#downSince = null;
  }

  /** ms since the outage began, or null while the tunnel is ready. */
  downFor(now: number): number | null {
    return this.#downSince === null ? null : Math.max(0, now - this.#downSince);
  }
}
