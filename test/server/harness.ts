/**
 * Shared set-up for the server tests: a real server on a loopback port, a temp dir cleaned up after the
 * test, log lines captured for assertions, and a raw-socket client for requests `fetch` refuses to send.
 */
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { createFileServer } from '../../src/server/public-server.ts';
import type { FileServer, FileServerOptions } from '../../src/server/public-server.ts';

export interface Started {
  server: FileServer;
  origin: string;
  port: number;
  dir: string;
  logs: string[];
}

export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'pf-server-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startServer(t: TestContext, options: Partial<FileServerOptions> = {}): Promise<Started> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
      cb();
    },
  });
  const server = createFileServer({ host: '127.0.0.1', port: 0, logger: pino({ level: 'debug' }, sink), ...options });
  t.after(() => server.close());
  const { port, origin } = await server.listen();
  return { server, origin, port, dir: tempDir(t), logs };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Everything received, status line included. */
  raw: Buffer;
}

/** Sends `request` verbatim on a new connection and reads until the server closes it. */
export function rawRequest(port: number, request: string | Buffer, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of response within ${timeoutMs} ms for ${JSON.stringify(String(request).slice(0, 200))}`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined); // a reset after the answer is fine; judged on what arrived
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const split = raw.indexOf('\r\n\r\n');
      const head = (split === -1 ? raw : raw.subarray(0, split)).toString('latin1');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
      resolve({ status, headers, body: split === -1 ? Buffer.alloc(0) : raw.subarray(split + 4), raw });
    });
    socket.write(request);
  });
}

/** A sparse file of `size` bytes (no disk used) with each text of `marks` at its offset: big-file tests without gigabytes. */
export function sparseFile(path: string, size: number, marks: ReadonlyArray<readonly [number, string]> = []): void {
  writeFileSync(path, '');
  truncateSync(path, size);
  const fd = openSync(path, 'r+');
  try {
    for (const [offset, text] of marks) writeSync(fd, Buffer.from(text), 0, Buffer.byteLength(text), offset);
  } finally {
    closeSync(fd);
  }
}
