import { createError } from '../errors.ts';

export const ERR_AUTH_LOGIN_FAILED = createError(
  'PF_ERR_CLI_AUTH_LOGIN_FAILED',
  (detail: string) => `login did not complete (${detail}); expected the browser to come back with an authorization code — run \`postflow auth login\` again`,
);
export const ERR_AUTH_LOGIN_TIMEOUT = createError(
  'PF_ERR_CLI_AUTH_LOGIN_TIMEOUT',
  (minutes: number) => `no redirect and no pasted code within ${minutes} min; expected the authorize URL to be opened and approved — run \`postflow auth login\` again`,
);
export const ERR_AUTH_NO_REFRESH_TOKEN = createError(
  'PF_ERR_CLI_AUTH_NO_REFRESH_TOKEN',
  (scope: string) => `Adobe IMS answered without a refresh token (granted scope "${scope}"); expected the offline_access scope to be granted to this credential in the Adobe Developer Console`,
);
export const ERR_AUTH_NO_CLIENT_ID = createError(
  'PF_ERR_CLI_AUTH_NO_CLIENT_ID',
  () => 'frameio.clientId is empty; expected the client id of the Adobe Developer Console credential (or POSTFLOW_FRAMEIO_CLIENT_ID)',
);
export const ERR_AUTH_PORT_BUSY = createError(
  'PF_ERR_CLI_AUTH_PORT_BUSY',
  (port: number) => `port ${port} on 127.0.0.1 is in use; expected a free port for the login redirect — pass another with --port (registered as a redirect URI of the credential)`,
);
