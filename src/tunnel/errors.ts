import { createError } from '../errors.ts';

export const ERR_TUNNEL_CLOUDFLARED_MISSING = createError(
  'PF_ERR_TUNNEL_CLOUDFLARED_MISSING',
  (path: string, reason: string) =>
    `cloudflared was not found at ${JSON.stringify(path)} (${reason}); expected an executable cloudflared — install it ` +
    '(macOS: `brew install cloudflared`; Debian/Ubuntu: Cloudflare\'s apt repository pkg.cloudflare.com; or the static ' +
    'binary from github.com/cloudflare/cloudflared/releases) or point tunnel.cloudflaredPath (POSTFLOW_CLOUDFLARED_PATH) at it',
);

export const ERR_TUNNEL_NAMED_INCOMPLETE = createError(
  'PF_ERR_TUNNEL_NAMED_INCOMPLETE',
  (missing: string) =>
    `tunnel.mode is "named" but ${missing} is empty; a named tunnel needs tunnel.token (POSTFLOW_TUNNEL_TOKEN) and tunnel.hostname (POSTFLOW_TUNNEL_HOSTNAME)`,
);

export const ERR_TUNNEL_STOPPED = createError(
  'PF_ERR_TUNNEL_STOPPED',
  () => 'the tunnel was stopped while waiting for it to become ready; expected a running tunnel',
);
