/**
 * postflow's command line: picks the command, turns every failure into one clear line and an exit code
 * (78 = bad configuration, as sysexits' EX_CONFIG, so service managers and operators can tell it apart).
 */
import { describeError, isPostflowError } from '../errors.ts';
import { COMMAND_HELP, MAIN_HELP } from './help.ts';

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./run.ts')).runCommand,
  upload: async () => (await import('./upload.ts')).uploadCommand,
  config: async () => (await import('./config.ts')).configCommand,
  status: async () => (await import('./status.ts')).statusCommand,
  jobs: async () => (await import('./jobs.ts')).jobsCommand,
  retry: async () => (await import('./retry.ts')).retryCommand,
  service: async () => (await import('./service.ts')).serviceCommand,
  auth: async () => (await import('./auth.ts')).authCommand,
  doctor: async () => (await import('./doctor.ts')).doctorCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    process.stdout.write(`${MAIN_HELP}\n`);
    return name === undefined ? 64 : 0;
  }
  if (name === 'help') {
    const topic = rest[0];
    process.stdout.write(`${topic && COMMAND_HELP[topic] ? COMMAND_HELP[topic] : MAIN_HELP}\n`);
    return 0;
  }
  if (name === '--version' || name === '-V') {
    const pkg = (await import('../../package.json', { with: { type: 'json' } })).default;
    process.stdout.write(`postflow ${pkg.version} (node ${process.version})\n`);
    return 0;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`postflow: unknown command "${name}" — expected one of: ${Object.keys(commands).join(', ')} (see \`postflow --help\`)\n`);
    return 64;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${COMMAND_HELP[name] ?? MAIN_HELP}\n`);
    return 0;
  }
  const command = await load();
  return command(rest);
}

/** Prints a failure as one line per problem (never a bare stack trace) and returns the exit code. */
export function reportFailure(err: unknown): number {
  if (isPostflowError(err) && err.code === 'PF_ERR_CONFIG_INVALID') {
    const problems = (err as { problems?: string[] }).problems ?? [err.message];
    for (const p of problems) process.stderr.write(`postflow: config: ${p}\n`);
    return 78;
  }
  if (isPostflowError(err) && err.code === 'PF_ERR_CLI_USAGE') {
    process.stderr.write(`postflow: ${err.message}\n`);
    return 64;
  }
  process.stderr.write(`postflow: ${describeError(err)}\n`);
  if (process.env.POSTFLOW_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return isPostflowError(err) && err.code.startsWith('PF_ERR_CONFIG') ? 78 : 1;
}
