/**
 * The one pino logger of a postflow process. Created once by the composition root and handed to every room,
 * which makes child loggers with its own bindings (`{ job, file }`). Secrets are kept out in three layers,
 * because a leak in any one place is enough: redaction paths for known secret fields, serializers that strip
 * the token out of file URLs, and a last pass over each finished line for secret values the process knows.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { SENSITIVE_KEYS } from '../config/schema.ts';
import { redactUrl, redactUrlsIn, REDACTED, type SecretSet } from './redact.ts';

export type { Logger } from 'pino';

/**
 * Field paths whose values never reach a log line. The config schema's `sensitive` keys are included as they
 * appear when the config (or a part of it) is logged.
 */
export const REDACT_PATHS: readonly string[] = [
  ...new Set([
    ...SENSITIVE_KEYS,
    ...SENSITIVE_KEYS.map((k) => `config.${k}`),
    ...SENSITIVE_KEYS.map((k) => `*.${k.split('.').pop()!}`),
    'accessToken',
    'refreshToken',
    '*.accessToken',
    '*.refreshToken',
    'access_token',
    'refresh_token',
    '*.access_token',
    '*.refresh_token',
    'client_secret',
    '*.client_secret',
    'authorization',
    'headers.authorization',
    '*.headers.authorization',
    'headers["x-api-key"]',
    'clientSecret',
    'token',
    'tunnelToken',
    '*.tunnelToken',
    'password',
  ]),
];

/** Fields that hold a public file URL (or any URL that may carry one); logged with the token cut out. */
export const URL_FIELDS = ['url', 'sourceUrl', 'publicUrl'] as const;

export interface CreateLoggerOptions {
  level: string;
  /** Human-readable lines (pino-pretty) instead of JSON; the CLI passes `stdout.isTTY || --pretty`. */
  pretty: boolean;
  /**
   * Where lines go: stdout by default, a file descriptor (2 for stderr), or anything with `write(line)`
   * (tests collect lines).
   */
  destination?: number | DestinationStream | NodeJS.WritableStream;
  /** Secret values known at run time, scrubbed from every finished line (messages, error texts). */
  secrets?: SecretSet;
}

const urlSerializer = (v: unknown): unknown => (typeof v === 'string' ? redactUrl(v) : v);

function errSerializer(err: unknown): unknown {
  const out = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  if (typeof out !== 'object' || out === null) return out;
  // An error from fetch quotes the URL it failed on, token included.
  for (const key of ['message', 'stack'] as const) {
    if (typeof out[key] === 'string') out[key] = redactUrlsIn(out[key] as string);
  }
  return out;
}

function colorFor(destination: CreateLoggerOptions['destination']): boolean {
  if (destination === undefined || destination === 1) return process.stdout.isTTY === true;
  if (destination === 2) return process.stderr.isTTY === true;
  return false;
}

export function createLogger(opts: CreateLoggerOptions): Logger {
  const out =
    opts.destination === undefined || typeof opts.destination === 'number'
      ? pino.destination({ dest: opts.destination ?? 1, sync: true })
      : opts.destination;
  // prettyFactory formats in-process and synchronously: no transport thread that could lose the last lines
  // of a crashing daemon, and the scrubber sees the JSON line before it is reformatted.
  const prettify = opts.pretty
    ? pretty.prettyFactory({ colorize: colorFor(opts.destination), ignore: 'pid,hostname' })
    : undefined;
  const secrets = opts.secrets;
  const stream: DestinationStream =
    prettify || secrets
      ? {
          write(line: string) {
            const clean = secrets && secrets.size > 0 ? secrets.scrub(line) : line;
            out.write(prettify ? prettify(clean) : clean);
          },
        }
      : (out as DestinationStream);

  return pino(
    {
      level: opts.level,
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: {
        // Messages are free text and sometimes quote a URL; objects are handled by the serializers above.
        logMethod(args, method) {
          const scrubbed = args.map((a) => (typeof a === 'string' ? redactUrlsIn(a) : a)) as Parameters<typeof method>;
          return method.apply(this, scrubbed);
        },
      },
      serializers: {
        ...Object.fromEntries(URL_FIELDS.map((f) => [f, urlSerializer])),
        err: errSerializer,
        error: errSerializer,
      },
    },
    stream,
  );
}
