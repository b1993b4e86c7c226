/**
 * Loads the effective configuration: schema defaults < JSON file < POSTFLOW_* environment, validated by
 * convict in strict mode and then against the machine (folders exist, state dir writable, credentials
 * present, secret files private). Every problem found is collected, so an operator fixes the file once
 * instead of once per start: the thrown PF_ERR_CONFIG_INVALID carries one line per problem.
 */
import { accessSync, constants, mkdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { show, suggest } from './checks.ts';
import { PF_ERR_CONFIG_INVALID } from './errors.ts';
import {
  CHECKS,
  createConvict,
  isLeaf,
  SCHEMA,
  schemaLeaves,
  type Config,
  type SchemaGroup,
  type SchemaLeaf,
  type WatchFolderConfig,
} from './schema.ts';

export type { Config, WatchFolderConfig } from './schema.ts';
export { EXIT_CONFIG, PF_ERR_CONFIG_INVALID, isConfigInvalid, type ConfigInvalidError } from './errors.ts';

export interface LoadConfigOptions {
  /** The `--config FILE` argument, relative to `cwd`. */
  argvConfigPath?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * Check that Frame.io credentials are present (default true). Commands that run without Frame.io
   * (`demo` with its emulator, `config`, `auth login` which creates them) turn it off.
   */
  checkCredentials?: boolean;
  /**
   * Demand at least one watch folder (default true). `postflow upload FILE...` runs without any, taking its
   * destination from --folder.
   */
  requireWatchFolders?: boolean;
}

export interface ConfigFileLocation {
  path: string;
  /** Which rule found it, for messages: the flag, the env var, or the default location. */
  via: '--config' | 'POSTFLOW_CONFIG' | 'default';
}

export const DEFAULT_CONFIG_PATH = join('config', 'postflow.json');

const USER_SCOPES = 'openid profile email offline_access additional_info.roles';
const S2S_SCOPES = 'openid AdobeID frame.s2s.all';

/** `--config`, else POSTFLOW_CONFIG, else `./config/postflow.json` when it exists, else none. */
export function findConfigFile(opts: LoadConfigOptions = {}): ConfigFileLocation | null {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  if (opts.argvConfigPath) return { path: resolve(cwd, opts.argvConfigPath), via: '--config' };
  if (env.POSTFLOW_CONFIG) return { path: resolve(cwd, env.POSTFLOW_CONFIG), via: 'POSTFLOW_CONFIG' };
  const fallback = resolve(cwd, DEFAULT_CONFIG_PATH);
  return statOrNull(fallback)?.isFile() ? { path: fallback, via: 'default' } : null;
}

export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const location = findConfigFile({ ...opts, env, cwd });
  const source = location ? `file ${location.path}` : 'defaults and environment, no config file';

  let fileObject: Record<string, unknown> = {};
  if (location) {
    const read = readConfigFile(location);
    if (typeof read === 'string') throw PF_ERR_CONFIG_INVALID([read], source);
    fileObject = read;
  }

  const cv = createConvict(env);
  cv.load(fileObject);
  const raw = cv.getProperties();

  const problems = new Problems(env);
  checkShape(SCHEMA, raw, '', problems);
  try {
    cv.validate({ allowed: 'strict', output: () => {} });
  } catch (err) {
    // Our own walk explains every failure convict knows of; its text is the fallback should they disagree.
    if (problems.lines.length === 0) problems.lines.push(...(err as Error).message.split('\n'));
  }
  const home = env.HOME || homedir();
  const base = (key: string): string => (schemaLeafEnvSet(key, env) || !location ? cwd : dirname(location.path));
  // Keys that failed keep their defaults from here on, so the machine checks still run on the rest and the
  // operator sees every problem in one go.
  let config = buildConfig(sanitize(raw, problems), { env, home, base });
  // The default keeps one worker for small files; with a single worker there is nothing to keep it from,
  // so `workers: 1` alone stays a valid config. Only a value the operator wrote is held to the rule.
  const smallSet = (fileObject.queue as { smallFileWorkers?: unknown } | undefined)?.smallFileWorkers !== undefined || env.POSTFLOW_QUEUE_SMALL_FILE_WORKERS !== undefined;
  if (!smallSet && config.queue.smallFileWorkers >= config.workers) {
    config = { ...config, queue: { ...config.queue, smallFileWorkers: Math.max(0, config.workers - 1) } };
  }

  const machine = new Problems(env, problems.lines);
  checkWatchFolders(config, problems, machine, opts.requireWatchFolders ?? true);
  checkStateDir(config, problems, machine);
  checkTunnel(config, problems, machine);
  checkPorts(config, problems, machine);
  checkQueue(config, problems, machine);
  if (opts.checkCredentials ?? true) checkCredentials(config, problems, machine);
  if (location) checkSecretFileMode(location.path, fileObject, machine);
  if (machine.lines.length > 0) throw PF_ERR_CONFIG_INVALID(machine.lines, source);
  return deepFreeze(config);
}

/** Problem lines in the shape `key: what was found — expected what`, with the env var named when it set the key. */
class Problems {
  readonly lines: string[];
  readonly keys: string[] = [];
  readonly #env: NodeJS.ProcessEnv;

  constructor(env: NodeJS.ProcessEnv, lines: string[] = []) {
    this.#env = env;
    this.lines = lines;
  }

  add(key: string, found: string, expected: string): void {
    const leaf = leafOf(rootKey(key));
    const fromEnv = leaf && this.#env[leaf.env] !== undefined ? ` (set by ${leaf.env})` : '';
    this.lines.push(`${key}: ${found}${fromEnv} — expected ${expected}`);
    this.keys.push(key);
  }

  /** True when some problem concerns `key` or something inside it (`watch.folders` covers `watch.folders[2].path`). */
  touches(key: string): boolean {
    return this.keys.some((k) => k === key || k.startsWith(`${key}.`) || k.startsWith(`${key}[`) || key.startsWith(`${k}.`));
  }

}

const rootKey = (key: string): string => key.replace(/\[.*$/, '');
const LEAVES = new Map(schemaLeaves().map(({ key, leaf }) => [key, leaf]));
const leafOf = (key: string): SchemaLeaf | undefined => LEAVES.get(key);
const schemaLeafEnvSet = (key: string, env: NodeJS.ProcessEnv): boolean => {
  const leaf = leafOf(key);
  return leaf !== undefined && env[leaf.env] !== undefined;
};

function readConfigFile(location: ConfigFileLocation): Record<string, unknown> | string {
  const label = location.via === 'default' ? 'config file' : location.via;
  let text: string;
  try {
    text = readFileSync(location.path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `${label}: "${location.path}" does not exist — expected a readable JSON config file`;
    if (code === 'EISDIR') return `${label}: "${location.path}" is a folder — expected a JSON config file`;
    return `${label}: "${location.path}" cannot be read (${code ?? (err as Error).message}) — expected a file readable by this user`;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return `${location.path}: malformed JSON ${jsonErrorPosition(text, (err as Error).message)} — expected a JSON object of settings`;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return `${location.path}: found ${show(parsed)} — expected a JSON object of settings ({ "watch": { ... }, ... })`;
  }
  return parsed as Record<string, unknown>;
}

/** `at line 3, column 7 (Expected ':' after property name)` from V8's message, which gives a character offset. */
export function jsonErrorPosition(text: string, message: string): string {
  const reason = message.replace(/ in JSON at position \d+.*$/, '').replace(/ \(line \d+ column \d+\)$/, '');
  const m = /at position (\d+)/.exec(message);
  const offset = m ? Number(m[1]) : text.length;
  const before = text.slice(0, offset).split('\n');
  const line = before.length;
  const column = (before[before.length - 1]?.length ?? 0) + 1;
  return `at line ${line}, column ${column} (${reason})`;
}

/** Walks the schema and the merged values side by side: unknown keys, groups given non-objects, bad leaves. */
/** Only schema keys, each either the loaded value or, when a problem touches it, its default. */
function sanitize(raw: Record<string, unknown>, problems: Problems): RawConfig {
  const out: Record<string, unknown> = {};
  for (const { key, leaf } of schemaLeaves()) {
    const path = key.split('.');
    const value = problems.touches(key) ? structuredClone(leaf.default) : getPath(raw, path);
    let node = out;
    for (const part of path.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[path[path.length - 1]!] = value;
  }
  return out as unknown as RawConfig;
}

const getPath = (obj: unknown, path: readonly string[]): unknown =>
  path.reduce<unknown>((o, k) => (typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k] : undefined), obj);

function checkShape(group: SchemaGroup, value: unknown, prefix: string, problems: Problems): void {
  const names = Object.keys(group);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.add(prefix.slice(0, -1), `found ${show(value)}`, `an object with the keys ${names.join(', ')}`);
    return;
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!(key in group)) {
      problems.add(`${prefix}${key}`, 'unknown key', `one of ${names.join(', ')}${suggest(key, names)}`);
    }
  }
  for (const [name, node] of Object.entries(group)) {
    const key = `${prefix}${name}`;
    if (!isLeaf(node)) {
      checkShape(node, obj[name], `${key}.`, problems);
      continue;
    }
    const check = CHECKS.get(node.format);
    for (const issue of check ? check(obj[name]) : []) {
      const found = node.sensitive && issue.found.startsWith('found ') ? `found a ${kind(obj[name])} (secret not shown)` : issue.found;
      problems.add(`${key}${issue.at}`, found, issue.expected);
    }
  }
}

const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

interface RawWatchFolder {
  path: string;
  destination: string;
  include?: string[];
  exclude?: string[];
  layout?: WatchFolderConfig['layout'];
  onExisting?: WatchFolderConfig['onExisting'];
  upload?: WatchFolderConfig['upload'];
  afterUpload?: WatchFolderConfig['afterUpload'];
  notify?: { webhook?: string; slack?: string; eachFile?: boolean };
  bandwidth?: string;
  quietHours?: string;
  priority?: number;
  batchGapSeconds?: number;
}
type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] };
type RawConfig = Mutable<Omit<Config, 'watch'>> & {
  watch: { folders: RawWatchFolder[]; stabilitySeconds: number; pollIntervalSeconds: number; nativeEventsMaxFiles: number };
};

function buildConfig(
  raw: RawConfig,
  ctx: { env: NodeJS.ProcessEnv; home: string; base: (key: string) => string },
): Config {
  const expandHome = (p: string): string => (p === '~' ? ctx.home : p.startsWith('~/') ? join(ctx.home, p.slice(2)) : p);
  const filePath = (key: string, p: string): string => resolve(ctx.base(key), expandHome(p));

  const stateDir = raw.stateDir !== '' ? filePath('stateDir', raw.stateDir) : defaultStateDir(ctx.env, ctx.home);
  const folders: WatchFolderConfig[] = raw.watch.folders.map((f) => ({
    path: resolve(expandHome(f.path)),
    destination: f.destination.trim(),
    include: [...(f.include ?? [])],
    exclude: [...(f.exclude ?? [])],
    layout: f.layout ?? 'mirror',
    onExisting: f.onExisting ?? 'version',
    upload: f.upload ?? 'auto',
    afterUpload: f.afterUpload ?? 'leave',
    notify: { ...f.notify },
    bandwidth: f.bandwidth ?? 'off',
    quietHours: f.quietHours ?? '',
    priority: f.priority ?? 0,
    batchGapSeconds: f.batchGapSeconds ?? 60,
  }));
  const cloudflared = raw.tunnel.cloudflaredPath;
  return {
    ...raw,
    watch: { ...raw.watch, folders },
    frameio: {
      ...raw.frameio,
      apiUrl: raw.frameio.apiUrl.replace(/\/+$/, ''),
      refreshTokenFile:
        raw.frameio.refreshTokenFile !== ''
          ? filePath('frameio.refreshTokenFile', raw.frameio.refreshTokenFile)
          : join(stateDir, 'refresh-token'),
      scopes: raw.frameio.scopes.trim() || (raw.frameio.auth === 'client_credentials' ? S2S_SCOPES : USER_SCOPES),
    },
    tunnel: {
      ...raw.tunnel,
      // A bare name is a PATH lookup, as a shell would do it; only something path-like is resolved.
      cloudflaredPath: cloudflared.includes('/') || cloudflared.includes(sep) || cloudflared.startsWith('~')
        ? filePath('tunnel.cloudflaredPath', cloudflared)
        : cloudflared,
    },
    stateDir,
  };
}

/** systemd's StateDirectory= (a service), else the XDG base-directory rule (a user running it by hand). */
export function defaultStateDir(env: NodeJS.ProcessEnv, home: string): string {
  const systemd = env.STATE_DIRECTORY?.split(':')[0];
  if (systemd && isAbsolute(systemd)) return systemd;
  const xdg = env.XDG_STATE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'postflow');
  return join(home, '.local', 'state', 'postflow');
}

function statOrNull(p: string): Stats | null {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

function accessible(p: string, mode: number): boolean {
  try {
    accessSync(p, mode);
    return true;
  } catch {
    return false;
  }
}

function checkWatchFolders(config: Config, earlier: Problems, out: Problems, required: boolean): void {
  if (earlier.touches('watch.folders')) return;
  if (config.watch.folders.length === 0 && required) {
    out.add('watch.folders', 'found no folders', 'at least one { "path": "/Volumes/studio/exports", "destination": "FOLDER-ID" }');
    return;
  }
  config.watch.folders.forEach((folder, i) => {
    const key = `watch.folders[${i}].path`;
    const st = statOrNull(folder.path);
    if (!st) {
      out.add(key, `"${folder.path}" does not exist`, 'a readable folder (is the LucidLink filespace mounted?)');
    } else if (!st.isDirectory()) {
      out.add(key, `"${folder.path}" is a file, not a folder`, 'a readable folder to watch');
    } else if (!accessible(folder.path, constants.R_OK | constants.X_OK)) {
      out.add(key, `"${folder.path}" is not readable by this user`, 'a folder this user may list and read');
    }
    config.watch.folders.forEach((other, j) => {
      if (j >= i) return;
      const rel = relative(other.path, folder.path);
      const inside = rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
      const outside = relative(folder.path, other.path);
      const contains = !outside.startsWith('..') && !isAbsolute(outside);
      if (inside || contains) {
        out.add(key, `"${folder.path}" overlaps watch.folders[${j}].path "${other.path}"`, 'folders that do not contain each other (a file would be imported twice)');
      }
    });
  });
}

function checkStateDir(config: Config, earlier: Problems, out: Problems): void {
  if (earlier.touches('stateDir')) return;
  const dir = config.stateDir;
  const st = statOrNull(dir);
  if (st && !st.isDirectory()) {
    out.add('stateDir', `"${dir}" is a file`, 'a folder postflow can create or write to');
    return;
  }
  if (!st) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      out.add('stateDir', `"${dir}" cannot be created (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'a folder postflow can create or write to');
      return;
    }
  }
  if (!accessible(dir, constants.W_OK | constants.X_OK)) {
    out.add('stateDir', `"${dir}" is not writable by this user`, 'a folder postflow can write to');
  }
}

function checkTunnel(config: Config, earlier: Problems, out: Problems): void {
  if (config.tunnel.mode !== 'named' || earlier.touches('tunnel.mode')) return;
  if (config.tunnel.token === '' && !earlier.touches('tunnel.token')) {
    out.add('tunnel.token', 'missing while tunnel.mode is "named"', 'the named tunnel token from the Cloudflare dashboard (or POSTFLOW_TUNNEL_TOKEN)');
  }
  if (config.tunnel.hostname === '' && !earlier.touches('tunnel.hostname')) {
    out.add('tunnel.hostname', 'missing while tunnel.mode is "named"', 'the public hostname routed to the tunnel, e.g. "uploads.studio.com"');
  }
}

function checkPorts(config: Config, earlier: Problems, out: Problems): void {
  if (earlier.touches('server.port') || earlier.touches('admin.port')) return;
  if (config.server.port !== 0 && config.server.port === config.admin.port) {
    out.add('admin.port', `found ${config.admin.port}, the same port as server.port`, 'a different port (or 0): the admin listener must stay separate from the public one');
  }
}

function checkQueue(config: Config, earlier: Problems, out: Problems): void {
  if (earlier.touches('queue.smallFileWorkers') || earlier.touches('workers')) return;
  if (config.queue.smallFileWorkers > 0 && config.queue.smallFileWorkers >= config.workers) {
    out.add('queue.smallFileWorkers', `found ${config.queue.smallFileWorkers} with workers ${config.workers}`, 'fewer than workers (the rest serve files of any size), or 0');
  }
}

function checkCredentials(config: Config, earlier: Problems, out: Problems): void {
  if (earlier.touches('frameio.auth')) return;
  const { frameio } = config;
  if (frameio.clientId === '' && !earlier.touches('frameio.clientId')) {
    out.add('frameio.clientId', 'missing', 'the Adobe Developer Console client id (or POSTFLOW_FRAMEIO_CLIENT_ID)');
  }
  if (frameio.auth === 'client_credentials') {
    if (frameio.clientSecret === '' && !earlier.touches('frameio.clientSecret')) {
      out.add('frameio.clientSecret', 'missing while frameio.auth is "client_credentials"', 'the Server-to-Server client secret (or POSTFLOW_FRAMEIO_CLIENT_SECRET)');
    }
    return;
  }
  if (earlier.touches('frameio.refreshTokenFile') || earlier.touches('stateDir')) return;
  const file = frameio.refreshTokenFile;
  const st = statOrNull(file);
  if (!st) {
    out.add('frameio.refreshTokenFile', `"${file}" does not exist`, 'a refresh token saved by `postflow auth login` (or frameio.auth "client_credentials" with a client secret)');
  } else if (!st.isFile()) {
    out.add('frameio.refreshTokenFile', `"${file}" is not a file`, 'the file `postflow auth login` writes the refresh token to');
  } else if (!accessible(file, constants.R_OK | constants.W_OK)) {
    out.add('frameio.refreshTokenFile', `"${file}" is not readable and writable by this user`, 'a file postflow can read and rewrite (the token rotates at every refresh)');
  } else if (groupOrOtherCanRead(st)) {
    out.add('frameio.refreshTokenFile', `"${file}" is readable by group or others (mode ${modeOf(st)})`, `mode 0600 (chmod 600 ${file})`);
  }
}

function checkSecretFileMode(path: string, fileObject: Record<string, unknown>, out: Problems): void {
  const held = schemaLeaves()
    .filter(({ leaf }) => leaf.sensitive)
    .map(({ key }) => key)
    .filter((key) => {
      const v = getPath(fileObject, key.split('.'));
      return typeof v === 'string' && v !== '';
    });
  const st = statOrNull(path);
  if (held.length > 0 && st && groupOrOtherCanRead(st)) {
    out.add(held[0]!, `"${path}" holds ${held.join(' and ')} but is readable by group or others (mode ${modeOf(st)})`, `mode 0600 (chmod 600 ${path}), or the secret in the environment instead`);
  }
}

// Windows has no POSIX permission bits to speak of: there, ACLs decide and `mode` is synthetic.
const groupOrOtherCanRead = (st: Stats): boolean => process.platform !== 'win32' && (st.mode & 0o044) !== 0;
const modeOf = (st: Stats): string => `0${(st.mode & 0o777).toString(8)}`;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
