/**
 * Pure value checks for the configuration schema. Each check returns the problems it finds instead of
 * throwing, so the loader can print one line per problem with the exact key (`watch.folders[1].include`),
 * while the convict schema reuses the same checks as its `format` functions. Nothing here touches the disk.
 */
import { isAbsolute } from 'node:path';
import { BANDWIDTH_EXPECTED, bandwidthProblem } from './bandwidth.ts';
import { QUIET_HOURS_EXPECTED, quietHoursProblem } from './quiet-hours.ts';

/** One thing wrong with a value: `at` is appended to the key (`[0].path`, or '' for the value itself). */
export interface Issue {
  at: string;
  /** What is wrong, as a phrase: `found 0`, `unknown key`, `missing`. */
  found: string;
  expected: string;
}

export type Check = (value: unknown) => Issue[];

/** A short, one-line rendering of any value for problem messages. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const issue = (found: unknown, expected: string, at = ''): Issue => ({ at, found: `found ${show(found)}`, expected });

export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): Check {
  const expected = max === Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${min}` : `a whole number from ${min} to ${max}`;
  return (v) => (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? [] : [issue(v, expected)]);
}

/** Durations and rates: fractions allowed (tests run with 0.2 s polls), `strict` excludes zero. */
export function positiveNumber(opts: { allowZero?: boolean } = {}): Check {
  const expected = opts.allowZero ? 'a number ≥ 0' : 'a number > 0';
  return (v) =>
    typeof v === 'number' && Number.isFinite(v) && (opts.allowZero ? v >= 0 : v > 0) ? [] : [issue(v, expected)];
}

export function oneOf(values: readonly string[]): Check {
  const expected = `one of ${values.map((x) => `"${x}"`).join(', ')}`;
  return (v) => (typeof v === 'string' && values.includes(v) ? [] : [issue(v, expected)]);
}

export const anyString: Check = (v) => (typeof v === 'string' ? [] : [issue(v, 'a string')]);

export const boolean: Check = (v) => (typeof v === 'boolean' ? [] : [issue(v, 'true or false')]);

export const httpUrl: Check = (v) => {
  if (typeof v === 'string' && URL.canParse(v)) {
    const { protocol } = new URL(v);
    if (protocol === 'https:' || protocol === 'http:') return [];
  }
  return [issue(v, 'an http(s) URL such as "https://api.frame.io/v4"')];
};

/** Empty (the embedded SQLite store) or a PostgreSQL URL (issue 10: a fleet sharing one store). */
export const optionalPgUrl: Check = (v) => {
  if (v === '') return [];
  if (typeof v === 'string' && URL.canParse(v) && /^postgres(ql)?:$/.test(new URL(v).protocol) && new URL(v).hostname !== '') return [];
  return [issue(typeof v === 'string' ? v.replace(/:[^:@/]*@/, ':***@') : v, 'a PostgreSQL URL such as "postgres://postflow:PASSWORD@db.studio.lan:5432/postflow", or "" for the embedded SQLite store')];
};

/** Empty (not used) or 32 bytes as 64 hex digits (an AES-256 key). */
export const optionalKey256: Check = (v) =>
  typeof v === 'string' && (v === '' || /^[0-9a-fA-F]{64}$/.test(v))
    ? []
    : [issue(typeof v === 'string' ? `a value of ${v.length} characters` : v, '64 hex digits (32 random bytes, e.g. from `openssl rand -hex 32`), or "" when unused')];

const HOSTNAME = /^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$/i;

/** Empty (not configured) or a DNS name without scheme or path, as Cloudflare routes it. */
export const optionalHostname: Check = (v) =>
  typeof v === 'string' && (v === '' || HOSTNAME.test(v))
    ? []
    : [issue(v, 'a DNS name such as "uploads.studio.com" (no scheme, no path), or "" when unused')];

export const listenHost: Check = (v) =>
  typeof v === 'string' && v.trim() !== '' ? [] : [issue(v, 'an IP address or host name to listen on')];

/** The admin listener carries the control API: it must never be reachable from the network or the tunnel. */
export const loopbackHost: Check = (v) =>
  typeof v === 'string' && isLoopback(v)
    ? []
    : [issue(v, 'a loopback address ("127.0.0.1", "::1" or "localhost"): the admin listener must stay local')];

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Absolute, or starting with `~/` (expanded against HOME by the loader). */
export function isAbsoluteOrHome(p: string): boolean {
  return isAbsolute(p) || p === '~' || p.startsWith('~/');
}

const globList = (v: unknown, at: string): Issue[] => {
  if (!Array.isArray(v)) return [issue(v, 'an array of glob strings such as ["**/*.mov"]', at)];
  return v.flatMap((g, i) =>
    typeof g === 'string' && g !== '' ? [] : [issue(g, 'a non-empty glob string such as "**/*.mov"', `${at}[${i}]`)],
  );
};

/**
 * The keys one watch-folder object may carry. The four policy keys are fixed by issue 8 (operators write
 * them by hand), so their spelling and values are a contract, like the core keys of issue 3.
 */
export const WATCH_FOLDER_KEYS = {
  path: {
    doc: 'Absolute path of the folder to watch, recursively (e.g. a folder on the LucidLink filespace).',
    default: undefined,
    formatDoc: 'absolute path (required)',
  },
  destination: {
    doc: 'Frame.io folder id the files go to; a project id means its root folder.',
    default: undefined,
    formatDoc: 'Frame.io id (required)',
  },
  include: {
    doc: 'Glob patterns (relative to the watch folder); when non-empty, only matching files are queued.',
    default: [] as string[],
    formatDoc: 'array of globs',
  },
  exclude: {
    doc: 'Glob patterns (relative to the watch folder) never queued, on top of the built-in temp/system files.',
    default: [] as string[],
    formatDoc: 'array of globs',
  },
  layout: {
    doc: '"mirror" recreates the sub-folder tree under the destination (WATCH/ep101/reel2/cut.mov → DEST/ep101/reel2/cut.mov; missing folders are created once); "flat" puts every file in the destination itself.',
    default: 'mirror',
    values: ['mirror', 'flat'],
  },
  onExisting: {
    doc: 'A file with the same name already in its Frame.io folder (a re-export): "version" stacks the new one on it as the newest version, "new" adds a separate file, "skip" imports nothing when the content is identical (size and sha256) to the last import of that path still in Frame.io, else stacks it like "version".',
    default: 'version',
    values: ['version', 'new', 'skip'],
  },
  upload: {
    doc: '"auto": remote upload through the tunnel up to Frame.io\'s 50 GB cap, direct upload (local_upload) above it or once the tunnel has been down upload.directAfterTunnelDownSeconds; "remote": always through the tunnel, except files over 50 GB, which only the direct path takes; "direct": never through the tunnel.',
    default: 'auto',
    values: ['auto', 'remote', 'direct'],
  },
  afterUpload: {
    doc: 'After import: "leave" the file, "move" it into _uploaded/ at the top of the watch folder (keeping the tree; never watched), or write a "sidecar" <file>.postflow.json beside it (Frame.io ids and link); the source is never deleted.',
    default: 'leave',
    values: ['leave', 'move', 'sidecar'],
  },
  notify: {
    doc: 'Optional messages when a file is done (name, size, duration, Frame.io link) or failed (reason): "webhook" gets a JSON POST, "slack" a Slack incoming-webhook message. The URLs are secrets: they are never shown or logged.',
    default: {},
    formatDoc: '{ "webhook"?: URL, "slack"?: URL, "eachFile"?: boolean }',
  },
  bandwidth: {
    doc: 'Cap on what this folder\'s files send, under the global `bandwidth`: a rate ("20M") or an rclone timetable ("08:00,5M 19:00,off"), local time; "off" = only the global cap.',
    default: 'off',
    formatDoc: 'rate or rclone timetable',
  },
  quietHours: {
    doc: 'Windows ("09:00-18:00", several separated by spaces, may cross midnight) in which no new import of this folder starts; files are still watched and queued, and running imports finish.',
    default: '',
    formatDoc: '"HH:MM-HH:MM …" or ""',
  },
  priority: {
    doc: 'Queue order: higher first, then oldest first.',
    default: 0,
    formatDoc: 'integer',
  },
  batchGapSeconds: {
    doc: 'Files arriving in one sub-folder within this many seconds of each other form a batch: one notice when all are done or failed (log event "batch", webhook, Slack); per-file notices then only with notify.eachFile. 0 = no batches (a notice per file).',
    default: 60,
    formatDoc: 'seconds ≥ 0',
  },
} as const;

const FOLDER_KEY_NAMES = Object.keys(WATCH_FOLDER_KEYS);

export const watchFolders: Check = (v) => {
  if (!Array.isArray(v)) {
    return [issue(v, 'an array of watch folders like [{ "path": "/Volumes/studio/exports", "destination": "FOLDER-ID" }]')];
  }
  return v.flatMap((folder, i) => watchFolder(folder, `[${i}]`));
};

function watchFolder(f: unknown, at: string): Issue[] {
  if (typeof f !== 'object' || f === null || Array.isArray(f)) {
    return [issue(f, 'an object like { "path": "/Volumes/studio/exports", "destination": "FOLDER-ID" }', at)];
  }
  const o = f as Record<string, unknown>;
  const out: Issue[] = [];
  for (const key of Object.keys(o)) {
    if (!FOLDER_KEY_NAMES.includes(key)) {
      out.push({ at: `${at}.${key}`, found: 'unknown key', expected: `only ${FOLDER_KEY_NAMES.join(', ')}${suggest(key, FOLDER_KEY_NAMES)}` });
    }
  }
  if (!('path' in o)) out.push({ at: `${at}.path`, found: 'missing', expected: 'the absolute path of the folder to watch' });
  else if (typeof o.path !== 'string' || !isAbsoluteOrHome(o.path)) {
    out.push(issue(o.path, 'an absolute path such as "/Volumes/studio/exports"', `${at}.path`));
  }
  if (!('destination' in o)) {
    out.push({ at: `${at}.destination`, found: 'missing', expected: 'a Frame.io folder or project id' });
  } else if (typeof o.destination !== 'string' || o.destination.trim() === '') {
    out.push(issue(o.destination, 'a non-empty Frame.io folder or project id', `${at}.destination`));
  }
  if ('include' in o) out.push(...globList(o.include, `${at}.include`));
  if ('exclude' in o) out.push(...globList(o.exclude, `${at}.exclude`));
  for (const key of ['layout', 'onExisting', 'upload', 'afterUpload'] as const) {
    if (key in o) out.push(...oneOf(WATCH_FOLDER_KEYS[key].values)(o[key]).map((x) => ({ ...x, at: `${at}.${key}` })));
  }
  if ('notify' in o) out.push(...notifyTargets(o.notify, `${at}.notify`));
  if ('bandwidth' in o) {
    const p = bandwidthProblem(o.bandwidth);
    if (p !== undefined) out.push({ at: `${at}.bandwidth`, found: `found ${show(o.bandwidth)} (${p})`, expected: BANDWIDTH_EXPECTED });
  }
  if ('quietHours' in o) {
    const p = quietHoursProblem(o.quietHours);
    if (p !== undefined) out.push({ at: `${at}.quietHours`, found: `found ${show(o.quietHours)} (${p})`, expected: QUIET_HOURS_EXPECTED });
  }
  if ('priority' in o) out.push(...wholeNumber(-1_000_000, 1_000_000)(o.priority).map((x) => ({ ...x, at: `${at}.priority`, expected: 'a whole number (higher goes first), e.g. 10 or -5' })));
  if ('batchGapSeconds' in o) out.push(...positiveNumber({ allowZero: true })(o.batchGapSeconds).map((x) => ({ ...x, at: `${at}.batchGapSeconds` })));
  return out;
}

/** The global `bandwidth`: a rate or an rclone timetable. */
export const bandwidthCheck: Check = (v) => {
  const p = bandwidthProblem(v);
  return p === undefined ? [] : [{ at: '', found: `found ${show(v)} (${p})`, expected: BANDWIDTH_EXPECTED }];
};

const NOTIFY_KEYS = ['webhook', 'slack', 'eachFile'];

/** `{ webhook?, slack? }`, each an http(s) URL. Values are secrets (a Slack URL is its own credential): never echoed. */
function notifyTargets(v: unknown, at: string): Issue[] {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return [issue(v, '{ "webhook": "https://…", "slack": "https://hooks.slack.com/services/…" } (either or both)', at)];
  }
  const out: Issue[] = [];
  for (const [key, url] of Object.entries(v as Record<string, unknown>)) {
    if (!NOTIFY_KEYS.includes(key)) {
      out.push({ at: `${at}.${key}`, found: 'unknown key', expected: `only ${NOTIFY_KEYS.join(', ')}${suggest(key, NOTIFY_KEYS)}` });
    } else if (key === 'eachFile') {
      if (typeof url !== 'boolean') out.push(issue(url, 'true or false (per-file notices besides the batch notice)', `${at}.${key}`));
    } else if (typeof url !== 'string' || !URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
      out.push({ at: `${at}.${key}`, found: `found a ${typeof url === 'string' ? 'string that is not an http(s) URL' : typeof url} (not shown: it may hold a secret)`, expected: 'an http(s) URL' });
    }
  }
  return out;
}

/** ` (did you mean "x"?)` when a known name is a likely typo of `name`, else ''. */
export function suggest(name: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : distance(name.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? ` (did you mean "${best}"?)` : '';
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
