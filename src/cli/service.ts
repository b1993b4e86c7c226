/**
 * `postflow service install [--user] [--dry-run]`: writes the service definition for this OS (a systemd unit
 * on Linux, a launchd plist on macOS) with this installation's real paths, and prints the commands that
 * start it. It never starts anything itself: enabling a service is the operator's decision.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { homedir, platform as osPlatform } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAUNCHD_LABEL, renderPlist } from '../service/launchd-plist.ts';
import { DEFAULT_UNIT_PATHS, renderSystemUnit, renderUserUnit } from '../service/systemd-unit.ts';
import { ERR_CLI_USAGE, parseCommandArgs } from './args.ts';

/** The folder holding bin/postflow.js: this file is src/cli/service.ts inside it. */
export const INSTALL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ServicePlan {
  kind: 'systemd' | 'launchd';
  /** Where the file goes. */
  path: string;
  text: string;
  /** What the operator runs next, one command a line. */
  next: string[];
}

export interface PlanOptions {
  platform: 'linux' | 'darwin';
  user: boolean;
  installDir: string;
  configFile: string | undefined;
  serviceUser: string;
  graceSeconds: number;
  home: string;
  env: NodeJS.ProcessEnv;
  /** Write into this folder instead of the OS's (packaging, tests). */
  unitDir: string | undefined;
  /** Does the service account exist already (a hint is printed when not)? */
  accountExists: boolean;
}

/** Pure: what to write where, and what to run next. */
export function planService(o: PlanOptions): ServicePlan {
  const xdgConfig = o.env.XDG_CONFIG_HOME || join(o.home, '.config');
  if (o.platform === 'linux') {
    const configFile = o.configFile ?? (o.user ? join(xdgConfig, 'postflow', 'postflow.json') : DEFAULT_UNIT_PATHS.configFile);
    const paths = { installDir: o.installDir, configFile, graceSeconds: o.graceSeconds };
    const dir = o.unitDir ?? (o.user ? join(xdgConfig, 'systemd', 'user') : '/etc/systemd/system');
    const path = join(dir, 'postflow.service');
    if (o.user) {
      return {
        kind: 'systemd',
        path,
        text: renderUserUnit(paths),
        next: [
          'systemctl --user daemon-reload && systemctl --user enable --now postflow',
          'loginctl enable-linger "$USER"   # keeps it running while you are logged out',
          'journalctl --user -u postflow -f -o cat',
        ],
      };
    }
    const next: string[] = [];
    if (!o.accountExists) {
      next.push(`sudo useradd --system --home-dir /var/lib/postflow --shell /usr/sbin/nologin ${o.serviceUser}`);
    }
    next.push(
      `sudo install -d -m 0750 -o root -g ${o.serviceUser} ${dirname(configFile)}   # then put the config in ${configFile} (mode 0640)`,
      'sudo systemctl daemon-reload && sudo systemctl enable --now postflow',
      'journalctl -u postflow -f -o cat',
    );
    return { kind: 'systemd', path, text: renderSystemUnit({ ...paths, user: o.serviceUser }), next };
  }
  const support = join(o.home, 'Library', 'Application Support', 'postflow');
  const configFile = o.configFile ?? (o.user ? join(support, 'postflow.json') : '/usr/local/etc/postflow/postflow.json');
  const logDir = o.user ? join(o.home, 'Library', 'Logs', 'postflow') : '/usr/local/var/log/postflow';
  const stateDir = o.user ? join(support, 'state') : '/usr/local/var/lib/postflow';
  const dir = o.unitDir ?? (o.user ? join(o.home, 'Library', 'LaunchAgents') : '/Library/LaunchDaemons');
  const path = join(dir, `${LAUNCHD_LABEL}.plist`);
  const text = renderPlist({
    installDir: o.installDir,
    configFile,
    logDir,
    stateDir,
    graceSeconds: o.graceSeconds,
    userName: o.user ? undefined : o.serviceUser,
  });
  const next = o.user
    ? [
        `mkdir -p ${q(logDir)} ${q(stateDir)}`,
        `launchctl bootstrap gui/$(id -u) ${q(path)}`,
        `tail -f ${q(join(logDir, 'postflow.log'))}`,
      ]
    : [
        `sudo mkdir -p ${logDir} ${stateDir} && sudo chown ${o.serviceUser} ${logDir} ${stateDir} && sudo chmod 700 ${stateDir}`,
        `sudo launchctl bootstrap system ${path}`,
        `tail -f ${join(logDir, 'postflow.log')}`,
      ];
  return { kind: 'launchd', path, text, next };
}

const q = (s: string): string => (/[^\w@%+=:,./-]/.test(s) ? `'${s.replace(/'/g, `'\\''`)}'` : s);

/** shutdown.graceSeconds from the config file if it says, else the env var, else the default (30). */
export function graceSecondsOf(configFile: string | undefined, env: NodeJS.ProcessEnv): number {
  const fromEnv = Number(env.POSTFLOW_SHUTDOWN_GRACE_SECONDS);
  if (env.POSTFLOW_SHUTDOWN_GRACE_SECONDS && Number.isFinite(fromEnv) && fromEnv >= 0) return fromEnv;
  if (configFile && existsSync(configFile)) {
    try {
      const v = (JSON.parse(readFileSync(configFile, 'utf8')) as { shutdown?: { graceSeconds?: unknown } }).shutdown?.graceSeconds;
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
    } catch {
      /* an unreadable config is `postflow config`'s to report; the unit falls back to the default */
    }
  }
  return 30;
}

function accountExists(name: string): boolean {
  try {
    return readFileSync('/etc/passwd', 'utf8').split('\n').some((l) => l.split(':')[0] === name);
  } catch {
    return false;
  }
}

export async function serviceCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      user: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      platform: { type: 'string' },
      'service-user': { type: 'string' },
      'unit-dir': { type: 'string' },
    },
    true,
  );
  if (positionals[0] !== 'install' || positionals.length !== 1) {
    throw ERR_CLI_USAGE(`expected \`postflow service install [--user] [--dry-run]\`, found \`postflow service ${positionals.join(' ')}\``);
  }
  const platform = values.platform ?? osPlatform();
  if (platform !== 'linux' && platform !== 'darwin') {
    throw ERR_CLI_USAGE(`service files exist for linux (systemd) and darwin (launchd), found platform "${platform}"`);
  }
  const configFile = values.config ? resolve(values.config) : process.env.POSTFLOW_CONFIG ? resolve(process.env.POSTFLOW_CONFIG) : undefined;
  const serviceUser = values['service-user'] ?? (platform === 'darwin' ? '_postflow' : DEFAULT_UNIT_PATHS.user);
  const plan = planService({
    platform,
    user: values.user ?? false,
    installDir: INSTALL_DIR,
    configFile,
    serviceUser,
    graceSeconds: graceSecondsOf(configFile, process.env),
    home: process.env.HOME || homedir(),
    env: process.env,
    unitDir: values['unit-dir'] ? resolve(values['unit-dir']) : undefined,
    accountExists: platform === 'linux' ? accountExists(serviceUser) : true,
  });
  if (values['dry-run']) {
    process.stdout.write(`# would write ${plan.path}\n${plan.text}\n# then run:\n${plan.next.map((l) => `#   ${l}`).join('\n')}\n`);
    return 0;
  }
  try {
    await mkdir(dirname(plan.path), { recursive: true });
    await writeFile(plan.path, plan.text, { mode: 0o644 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    process.stderr.write(`postflow: cannot write ${plan.path} (${code}) — expected to run as root for a system service, or use --user\n`);
    return 1;
  }
  process.stdout.write(`wrote ${plan.path}\nnext, run:\n${plan.next.map((l) => `  ${l}`).join('\n')}\n`);
  return 0;
}
