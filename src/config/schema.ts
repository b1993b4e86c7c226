/**
 * The one configuration schema of postflow (convict). Operators write the JSON file by hand, so the core keys
 * of issue 3 and the per-folder keys of issue 8 are a contract: never rename or move them. Keys are grouped by
 * the room that reads them. Every leaf has `doc`, `format`, `default` and `env`; secrets carry `sensitive`.
 *
 * Formats are registered under names (not passed as bare functions) because convict picks how to coerce an
 * environment string by the format's name: a bare function would fall back to `parseFloat`, which reads
 * POSTFLOW_WORKERS=4x as 4 instead of reporting it.
 */
import convict from 'convict';
import {
  anyString,
  bandwidthCheck,
  boolean,
  httpUrl,
  listenHost,
  loopbackHost,
  oneOf,
  optionalHostname,
  optionalKey256,
  optionalPgUrl,
  positiveNumber,
  watchFolders,
  wholeNumber,
  type Check,
  type Issue,
} from './checks.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface WatchFolderConfig {
  /** Absolute, normalised path of the watched folder. */
  readonly path: string;
  /** Frame.io folder id (a project id stands for its root folder). */
  readonly destination: string;
  /** Globs relative to `path`; empty means every file. */
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly layout: 'mirror' | 'flat';
  readonly onExisting: 'version' | 'new' | 'skip';
  readonly upload: 'auto' | 'remote' | 'direct';
  readonly afterUpload: 'leave' | 'move' | 'sidecar';
  /** Where to say that a file is done or failed; both optional (secrets). `eachFile`: per-file notices too. */
  readonly notify: { readonly webhook?: string; readonly slack?: string; readonly eachFile?: boolean };
  /** Folder cap: a rate or an rclone timetable (see config/bandwidth.ts); "off" = only the global cap. */
  readonly bandwidth: string;
  /** Windows in which no new import of this folder starts (see config/quiet-hours.ts); "" = none. */
  readonly quietHours: string;
  /** Higher first; equal priorities oldest first. */
  readonly priority: number;
  /** Files arriving within this many seconds of each other in one sub-folder form a batch; 0 = no batches. */
  readonly batchGapSeconds: number;
}

/** The effective configuration, as `loadConfig` returns it: validated, defaults filled, paths absolute, frozen. */
export interface Config {
  readonly watch: {
    readonly folders: readonly WatchFolderConfig[];
    readonly stabilitySeconds: number;
    readonly pollIntervalSeconds: number;
    readonly nativeEventsMaxFiles: number;
  };
  readonly frameio: {
    readonly apiUrl: string;
    /** '' when not configured: the client uses the only account the login can see. */
    readonly accountId: string;
    readonly imsTokenUrl: string;
    readonly imsAuthorizeUrl: string;
    readonly clientId: string;
    readonly clientSecret: string;
    /** Always an absolute path (defaults to `<stateDir>/refresh-token`). */
    readonly refreshTokenFile: string;
    readonly auth: 'refresh_token' | 'client_credentials';
    /** Space-separated OAuth scopes; filled with the right default for `auth` when left empty. */
    readonly scopes: string;
    readonly maxRequestsPerSecond: number;
  };
  readonly tunnel: {
    readonly mode: 'quick' | 'named';
    /** A bare command name (looked up on PATH) or an absolute path. */
    readonly cloudflaredPath: string;
    readonly token: string;
    readonly hostname: string;
    readonly startTimeoutSeconds: number;
  };
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly maxTokenLifetimeHours: number;
    readonly maxConnections: number;
    readonly maxConnectionsPerToken: number;
  };
  readonly admin: { readonly host: string; readonly port: number };
  readonly upload: {
    readonly maxAttempts: number;
    readonly stallTimeoutSeconds: number;
    readonly statusPollSeconds: number;
    readonly directAfterTunnelDownSeconds: number;
  };
  readonly shutdown: { readonly graceSeconds: number };
  readonly log: { readonly level: LogLevel; readonly pretty: boolean };
  readonly store: {
    /** '' = the embedded SQLite store in stateDir; postgres://… = the fleet's shared PostgreSQL store. */
    readonly url: string;
    /** '' = generated once and kept in `<stateDir>/node-id`. */
    readonly nodeId: string;
    readonly leaseTimeoutSeconds: number;
    /** 64 hex digits: encrypts the fleet's shared Frame.io login in PostgreSQL; '' = no shared login. */
    readonly secretKey: string;
  };
  readonly workers: number;
  /** Global cap on what postflow sends: a rate or an rclone timetable; "off" = no cap. */
  readonly bandwidth: string;
  readonly queue: { readonly smallFileBytes: number; readonly smallFileWorkers: number };
  /** Always an absolute path to an existing, writable folder. */
  readonly stateDir: string;
}

/** Format name → the pure check behind it, so the loader can explain failures key by key. */
export const CHECKS = new Map<string, Check>();

function format(name: string, check: Check, coerce?: (raw: string) => unknown): string {
  CHECKS.set(name, check);
  convict.addFormat({
    name,
    validate: (value: unknown) => {
      const issues = check(value);
      if (issues.length > 0) throw new Error(issues.map((i: Issue) => `${i.at ? `${i.at}: ` : ''}${i.found} — expected ${i.expected}`).join('; '));
    },
    ...(coerce ? { coerce } : {}),
  });
  return name;
}

const NUMBER = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;
const toNumber = (raw: string): unknown => (NUMBER.test(raw) ? Number(raw) : raw);
const toBoolean = (raw: string): unknown => {
  const s = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return true;
  if (['false', '0', 'no', 'off'].includes(s)) return false;
  return raw;
};
const toJson = (raw: string): unknown => {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
};

const F = {
  string: format('postflow-string', anyString),
  url: format('postflow-http-url', httpUrl),
  hostname: format('postflow-hostname', optionalHostname),
  listenHost: format('postflow-listen-host', listenHost),
  loopback: format('postflow-loopback-host', loopbackHost),
  port: format('postflow-port', wholeNumber(0, 65535), toNumber),
  count: format('postflow-count', wholeNumber(1), toNumber),
  countOrZero: format('postflow-count-or-zero', wholeNumber(0), toNumber),
  bandwidth: format('postflow-bandwidth', bandwidthCheck),
  seconds: format('postflow-seconds', positiveNumber(), toNumber),
  secondsOrZero: format('postflow-seconds-or-zero', positiveNumber({ allowZero: true }), toNumber),
  boolean: format('postflow-boolean', boolean, toBoolean),
  folders: format('postflow-watch-folders', watchFolders, toJson),
  tunnelMode: format('postflow-tunnel-mode', oneOf(['quick', 'named'])),
  auth: format('postflow-frameio-auth', oneOf(['refresh_token', 'client_credentials'])),
  logLevel: format('postflow-log-level', oneOf(LOG_LEVELS)),
  pgUrl: format('postflow-store-url', optionalPgUrl),
  key256: format('postflow-key-256', optionalKey256),
};

/**
 * Extra schema fields postflow reads (convict keeps unknown fields): `defaultDoc` describes a default that is
 * derived at load time, `formatDoc` the format for humans, `path` marks values resolved against the config
 * file's folder ("file") or only when they contain a slash ("command", so `cloudflared` stays a PATH lookup).
 */
export interface SchemaLeaf {
  doc: string;
  format: string;
  default: unknown;
  env: string;
  sensitive?: boolean;
  defaultDoc?: string;
  formatDoc: string;
  path?: 'file' | 'command';
}
export interface SchemaGroup {
  [key: string]: SchemaLeaf | SchemaGroup;
}

export const SCHEMA = {
  watch: {
    folders: {
      doc: 'Folders to watch and where their files go in Frame.io; see "Watch folder keys".',
      format: F.folders,
      default: [],
      env: 'POSTFLOW_WATCH_FOLDERS',
      formatDoc: 'array of watch folders (JSON in the env var)',
    },
    stabilitySeconds: {
      doc: 'A file is queued only after its size and mtime stayed unchanged this long (exports are written slowly).',
      format: F.seconds,
      default: 30,
      env: 'POSTFLOW_WATCH_STABILITY_SECONDS',
      formatDoc: 'seconds > 0',
    },
    pollIntervalSeconds: {
      doc: 'How often the watch folders are swept; polling is needed because LucidLink sends no events for files written on other machines.',
      format: F.seconds,
      default: 5,
      env: 'POSTFLOW_WATCH_POLL_INTERVAL_SECONDS',
      formatDoc: 'seconds > 0',
    },
    nativeEventsMaxFiles: {
      doc: 'Up to this many files in a watch folder, chokidar\'s native events (inotify/FSEvents) tell postflow about local writes at once; above it the sweep alone notices files, because chokidar keeps state for every file (hundreds of MB at 100k files). 0 turns native events off.',
      format: F.countOrZero,
      default: 20000,
      env: 'POSTFLOW_WATCH_NATIVE_EVENTS_MAX_FILES',
      formatDoc: 'whole number ≥ 0',
    },
  },
  frameio: {
    apiUrl: {
      doc: 'Base URL of the Frame.io V4 API.',
      format: F.url,
      default: 'https://api.frame.io/v4',
      env: 'POSTFLOW_FRAMEIO_API_URL',
      formatDoc: 'http(s) URL',
    },
    accountId: {
      doc: 'Frame.io account id; empty means the only account the login can see.',
      format: F.string,
      default: '',
      env: 'POSTFLOW_FRAMEIO_ACCOUNT_ID',
      formatDoc: 'Frame.io id',
    },
    imsTokenUrl: {
      doc: 'Adobe IMS token endpoint used to get and refresh access tokens.',
      format: F.url,
      default: 'https://ims-na1.adobelogin.com/ims/token/v3',
      env: 'POSTFLOW_IMS_TOKEN_URL',
      formatDoc: 'http(s) URL',
    },
    imsAuthorizeUrl: {
      doc: 'Adobe IMS authorization endpoint `postflow auth login` sends the browser to (OAuth authorization code with PKCE).',
      format: F.url,
      default: 'https://ims-na1.adobelogin.com/ims/authorize/v2',
      env: 'POSTFLOW_IMS_AUTHORIZE_URL',
      formatDoc: 'http(s) URL',
    },
    clientId: {
      doc: 'Adobe Developer Console client id (sent as x-api-key on every call).',
      format: F.string,
      default: '',
      env: 'POSTFLOW_FRAMEIO_CLIENT_ID',
      formatDoc: 'string',
    },
    clientSecret: {
      doc: 'Adobe Developer Console client secret (Web App or Server-to-Server credential); keep the config file mode 0600 or pass it by env.',
      format: F.string,
      default: '',
      env: 'POSTFLOW_FRAMEIO_CLIENT_SECRET',
      sensitive: true,
      formatDoc: 'string (secret)',
    },
    refreshTokenFile: {
      doc: 'File holding the IMS refresh token written by `postflow auth login` (mode 0600, rotated at every refresh). Relative paths are resolved against the config file\'s folder.',
      format: F.string,
      default: '',
      defaultDoc: '<stateDir>/refresh-token',
      env: 'POSTFLOW_FRAMEIO_REFRESH_TOKEN_FILE',
      formatDoc: 'path',
      path: 'file',
    },
    auth: {
      doc: '"refresh_token": a user login from `postflow auth login`; "client_credentials": Server-to-Server credential (clientId + clientSecret, no login).',
      format: F.auth,
      default: 'refresh_token',
      env: 'POSTFLOW_FRAMEIO_AUTH',
      formatDoc: '"refresh_token" | "client_credentials"',
    },
    scopes: {
      doc: 'Space-separated OAuth scopes; empty picks the right ones for `frameio.auth`.',
      format: F.string,
      default: '',
      defaultDoc: '"openid profile email offline_access additional_info.roles" (refresh_token) or "openid AdobeID frame.s2s.all" (client_credentials)',
      env: 'POSTFLOW_FRAMEIO_SCOPES',
      formatDoc: 'string',
    },
    maxRequestsPerSecond: {
      doc: 'Ceiling on all Frame.io API calls per second from this daemon together; each operation is also paced to its own published limit (3–10/s per user).',
      format: F.seconds,
      default: 10,
      env: 'POSTFLOW_FRAMEIO_MAX_REQUESTS_PER_SECOND',
      formatDoc: 'number > 0',
    },
  },
  tunnel: {
    mode: {
      doc: '"quick": a trycloudflare.com tunnel with a new hostname at every start (no account); "named": a Cloudflare named tunnel (token + hostname).',
      format: F.tunnelMode,
      default: 'quick',
      env: 'POSTFLOW_TUNNEL_MODE',
      formatDoc: '"quick" | "named"',
    },
    cloudflaredPath: {
      doc: 'The cloudflared executable: a command name looked up on PATH, or a path (relative paths are resolved against the config file\'s folder).',
      format: F.string,
      default: 'cloudflared',
      env: 'POSTFLOW_CLOUDFLARED_PATH',
      formatDoc: 'command or path',
      path: 'command',
    },
    token: {
      doc: 'Named tunnel token from the Cloudflare dashboard (required when tunnel.mode is "named").',
      format: F.string,
      default: '',
      env: 'POSTFLOW_TUNNEL_TOKEN',
      sensitive: true,
      formatDoc: 'string (secret)',
    },
    hostname: {
      doc: 'Public hostname routed to the named tunnel, e.g. "uploads.studio.com" (required when tunnel.mode is "named").',
      format: F.hostname,
      default: '',
      env: 'POSTFLOW_TUNNEL_HOSTNAME',
      formatDoc: 'DNS name',
    },
    startTimeoutSeconds: {
      doc: 'How long cloudflared may take to report a ready edge connection before the start counts as failed and is retried.',
      format: F.seconds,
      default: 60,
      env: 'POSTFLOW_TUNNEL_START_TIMEOUT_SECONDS',
      formatDoc: 'seconds > 0',
    },
  },
  server: {
    host: {
      doc: 'Address the public file server listens on; cloudflared connects to it locally, so keep it on loopback.',
      format: F.listenHost,
      default: '127.0.0.1',
      env: 'POSTFLOW_SERVER_HOST',
      formatDoc: 'IP address or host name',
    },
    port: {
      doc: 'Port of the public file server; 0 picks any free port.',
      format: F.port,
      default: 0,
      env: 'POSTFLOW_SERVER_PORT',
      formatDoc: 'port 0–65535',
    },
    maxTokenLifetimeHours: {
      doc: 'A file URL stops working after this long even if its job hangs.',
      format: F.seconds,
      default: 24,
      env: 'POSTFLOW_SERVER_MAX_TOKEN_LIFETIME_HOURS',
      formatDoc: 'hours > 0',
    },
    maxConnections: {
      doc: 'Cap on concurrent connections to the public file server in total.',
      format: F.count,
      default: 64,
      env: 'POSTFLOW_SERVER_MAX_CONNECTIONS',
      formatDoc: 'whole number ≥ 1',
    },
    maxConnectionsPerToken: {
      doc: 'Cap on concurrent connections for one file URL (Frame.io pulls one file with several parallel Range requests).',
      format: F.count,
      default: 16,
      env: 'POSTFLOW_SERVER_MAX_CONNECTIONS_PER_TOKEN',
      formatDoc: 'whole number ≥ 1',
    },
  },
  admin: {
    host: {
      doc: 'Address of the local admin listener (status page, metrics, control API); loopback only, never reachable through the tunnel.',
      format: F.loopback,
      default: '127.0.0.1',
      env: 'POSTFLOW_ADMIN_HOST',
      formatDoc: 'loopback address',
    },
    port: {
      doc: 'Port of the local admin listener; 0 picks any free port.',
      format: F.port,
      default: 0,
      env: 'POSTFLOW_ADMIN_PORT',
      formatDoc: 'port 0–65535',
    },
  },
  upload: {
    maxAttempts: {
      doc: 'Import attempts per file (stalled or failed pulls start over) before the job ends failed with the reason.',
      format: F.count,
      default: 5,
      env: 'POSTFLOW_UPLOAD_MAX_ATTEMPTS',
      formatDoc: 'whole number ≥ 1',
    },
    stallTimeoutSeconds: {
      doc: 'An import whose file gets no bytes served for this long is treated as stalled and retried; on the direct path, a part upload with no progress this long is retried.',
      format: F.seconds,
      default: 300,
      env: 'POSTFLOW_UPLOAD_STALL_TIMEOUT_SECONDS',
      formatDoc: 'seconds > 0',
    },
    statusPollSeconds: {
      doc: 'How often a job reads its file\'s /status from Frame.io while the import runs.',
      format: F.seconds,
      default: 5,
      env: 'POSTFLOW_UPLOAD_STATUS_POLL_SECONDS',
      formatDoc: 'seconds > 0',
    },
    directAfterTunnelDownSeconds: {
      doc: 'Files of watch folders with upload "auto" go as direct uploads (local_upload, no tunnel) once the tunnel has been down this long; 0 switches at once.',
      format: F.secondsOrZero,
      default: 120,
      env: 'POSTFLOW_UPLOAD_DIRECT_AFTER_TUNNEL_DOWN_SECONDS',
      formatDoc: 'seconds ≥ 0',
    },
  },
  shutdown: {
    graceSeconds: {
      doc: 'On SIGTERM/SIGINT, how long imports in flight may finish before the daemon stops anyway (match systemd TimeoutStopSec).',
      format: F.secondsOrZero,
      default: 30,
      env: 'POSTFLOW_SHUTDOWN_GRACE_SECONDS',
      formatDoc: 'seconds ≥ 0',
    },
  },
  log: {
    level: {
      doc: 'Lowest log level written.',
      format: F.logLevel,
      default: 'info',
      env: 'POSTFLOW_LOG_LEVEL',
      formatDoc: LOG_LEVELS.map((l) => `"${l}"`).join(' | '),
    },
    pretty: {
      doc: 'Human-readable log lines instead of JSON (also on when stdout is a terminal or with --pretty).',
      format: F.boolean,
      default: false,
      env: 'POSTFLOW_LOG_PRETTY',
      formatDoc: 'true | false',
    },
  },
  store: {
    url: {
      doc: 'Job store: empty for the embedded SQLite store in stateDir; a PostgreSQL URL to share one queue among several daemons on one filespace (a fleet, see docs/scale-out.md). Carries the database password: a secret.',
      format: F.pgUrl,
      default: '',
      env: 'POSTFLOW_STORE_URL',
      sensitive: true,
      formatDoc: '"" | postgres://user:password@host:port/database',
    },
    nodeId: {
      doc: 'This daemon\'s name in the fleet (leases, `postflow status`). Empty: generated once from the host name and kept in <stateDir>/node-id.',
      format: F.string,
      default: '',
      env: 'POSTFLOW_STORE_NODE_ID',
      formatDoc: 'string',
    },
    leaseTimeoutSeconds: {
      doc: 'A job whose daemon has not renewed its lease for this long (crashed, frozen, cut off) is taken over by another daemon of the fleet, which looks in Frame.io before importing again. Heartbeats go every third of it.',
      format: F.seconds,
      default: 30,
      env: 'POSTFLOW_STORE_LEASE_TIMEOUT_SECONDS',
      formatDoc: 'seconds > 0',
    },
    secretKey: {
      doc: 'AES-256-GCM key (64 hex digits) that encrypts the fleet\'s shared Frame.io login in PostgreSQL, so the database alone cannot reveal it. Same value on every daemon of the fleet; empty: each daemon keeps its own refresh-token file.',
      format: F.key256,
      default: '',
      env: 'POSTFLOW_STORE_SECRET_KEY',
      sensitive: true,
      formatDoc: '"" | 64 hex digits',
    },
  },
  workers: {
    doc: 'How many files are imported at the same time.',
    format: F.count,
    default: 4,
    env: 'POSTFLOW_WORKERS',
    formatDoc: 'whole number ≥ 1',
  },
  bandwidth: {
    doc: 'Cap on everything postflow sends (file server responses, direct-upload parts), in bytes per second as in rclone --bwlimit: a rate ("50M" = 50 MiB/s, "1.5G", "off") or a timetable in local time ("08:00,20M 19:00,off", "Mon-08:00,10M Sat-00:00,off"). Changes are picked up while running (SIGHUP or saving the file).',
    format: F.bandwidth,
    default: 'off',
    env: 'POSTFLOW_BANDWIDTH',
    formatDoc: 'rate or rclone timetable',
  },
  queue: {
    smallFileBytes: {
      doc: 'Files up to this size (bytes) count as small: they may use the workers kept for small files.',
      format: F.countOrZero,
      default: 2147483648,
      env: 'POSTFLOW_QUEUE_SMALL_FILE_BYTES',
      formatDoc: 'bytes ≥ 0',
    },
    smallFileWorkers: {
      doc: 'Workers that only take small files, so a short file never waits behind a long run of large ones; 0 = none kept. Must be less than workers.',
      format: F.countOrZero,
      default: 1,
      env: 'POSTFLOW_QUEUE_SMALL_FILE_WORKERS',
      formatDoc: 'whole number ≥ 0, < workers',
    },
  },
  stateDir: {
    doc: 'Folder for the job store, the refresh token and other state (created with mode 0700). Relative paths are resolved against the config file\'s folder.',
    format: F.string,
    default: '',
    defaultDoc: '$STATE_DIRECTORY (set by systemd StateDirectory=), else $XDG_STATE_HOME/postflow, else ~/.local/state/postflow',
    env: 'POSTFLOW_STATE_DIR',
    formatDoc: 'path',
    path: 'file',
  },
} satisfies SchemaGroup;

export function isLeaf(node: SchemaLeaf | SchemaGroup): node is SchemaLeaf {
  return typeof (node as SchemaLeaf).doc === 'string' && 'default' in node && typeof (node as SchemaLeaf).format === 'string';
}

/** Every leaf with its dotted key, in schema order. */
export function schemaLeaves(group: SchemaGroup = SCHEMA, prefix = ''): { key: string; leaf: SchemaLeaf }[] {
  return Object.entries(group).flatMap(([name, node]) =>
    isLeaf(node) ? [{ key: `${prefix}${name}`, leaf: node }] : schemaLeaves(node, `${prefix}${name}.`),
  );
}

/** Dotted keys of the secrets (`frameio.clientSecret`, `tunnel.token`). */
export const SENSITIVE_KEYS: readonly string[] = schemaLeaves()
  .filter(({ leaf }) => leaf.sensitive === true)
  .map(({ key }) => key);

/** A fresh convict instance over the schema, reading `env` (precedence: defaults < file < env). */
export function createConvict(env: NodeJS.ProcessEnv) {
  return convict<Record<string, unknown>>(SCHEMA as unknown as convict.Schema<Record<string, unknown>>, { env, args: [] });
}
