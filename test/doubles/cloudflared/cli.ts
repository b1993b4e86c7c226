/**
 * The stand-in's command line, parsed the way cloudflared's urfave/cli does: `--flag value`, `--flag=value`
 * or a single dash; flags of `tunnel` come before the `run` subcommand, `run`'s own flags after it. An
 * unknown flag is a usage error, as with the real binary, so a supervisor that builds a wrong argv fails
 * its tests instead of passing against a lenient double.
 */
export interface StandinArgs {
  version: boolean;
  command: 'version' | 'tunnel' | 'help';
  run: boolean;
  runName: string | undefined;
  flags: Map<string, string | true>;
}

const booleanFlags = new Set(['no-autoupdate', 'version', 'v', 'hello-world', 'post-quantum', 'help', 'h']);
const tunnelFlags = new Set([
  'url', 'metrics', 'no-autoupdate', 'loglevel', 'transport-loglevel', 'protocol', 'edge-ip-version', 'grace-period',
  'config', 'logfile', 'hello-world', 'origincert', 'ha-connections', 'retries', 'label', 'help', 'h',
]);
const runFlags = new Set(['token', 'token-file', 'credentials-file', 'url', 'protocol', 'post-quantum', 'edge-ip-version', 'help', 'h']);

export class UsageError extends Error {}

export function parseArgs(argv: string[]): StandinArgs {
  const flags = new Map<string, string | true>();
  let command: StandinArgs['command'] | undefined;
  let run = false;
  let runName: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith('-')) {
      const body = arg.replace(/^--?/, '');
      const eq = body.indexOf('=');
      const name = eq === -1 ? body : body.slice(0, eq);
      // Before the command, cloudflared accepts its global flags (a superset of tunnel's, plus --version).
      const known = run ? runFlags.has(name) : tunnelFlags.has(name) || (command === undefined && booleanFlags.has(name));
      if (!known) throw new UsageError(`flag provided but not defined: -${name}`);
      if (eq !== -1) flags.set(name, body.slice(eq + 1));
      else if (booleanFlags.has(name)) flags.set(name, true);
      else {
        const value = argv[++i];
        if (value === undefined) throw new UsageError(`flag needs an argument: -${name}`);
        flags.set(name, value);
      }
    } else if (command === undefined) {
      if (arg === 'tunnel') command = 'tunnel';
      else if (arg === 'version') command = 'version';
      else if (arg === 'help') command = 'help';
      else throw new UsageError(`unsupported command ${JSON.stringify(arg)} (the stand-in knows: tunnel, version)`);
    } else if (command === 'tunnel' && !run && arg === 'run') {
      run = true;
    } else if (run && runName === undefined) {
      runName = arg;
    } else {
      throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    }
  }
  const version = flags.has('version') || flags.has('v') || command === 'version';
  return { version, command: command ?? 'help', run, runName, flags };
}

export function flagString(args: StandinArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** `30s`, `1m30s`, `500ms` → milliseconds (Go's time.ParseDuration, the subset cloudflared users write). */
export function parseGoDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    consumed += m[0].length;
  }
  if (consumed !== text.length || consumed === 0) throw new UsageError(`invalid duration ${JSON.stringify(text)}`);
  return total;
}
