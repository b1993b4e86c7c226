/** A pino logger whose JSON lines a test can read back (level as the test needs it). */
import { Writable } from 'node:stream';
import pino from 'pino';

export function captureLogs(level: pino.Level = 'debug'): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
