/**
 * Loads the optional sendfile(2) addon (src/server/native, built by `npm ci`'s install script). It is
 * optional because a machine without a C toolchain must still run postflow: then the file server keeps its
 * read+write path, only slower and with more CPU per byte.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface SendfileAddon {
  /**
   * Sends up to `length` bytes of `inFd` from `position` to the non-blocking socket `outFd` on libuv's
   * thread pool. Resolves with the bytes sent: fewer than `length` (even 0) when the socket stayed full for
   * a moment. Rejects with an Error whose `code` is the errno name (EPIPE, ECONNRESET, EINVAL, ...) and
   * `bytesSent` the bytes that went first, or code EOF when `position` is past the file's end.
   */
  sendfile(outFd: number, inFd: number, position: number, length: number): Promise<number>;
}

export type SendfileLoad = { addon: SendfileAddon; reason?: undefined } | { addon: undefined; reason: string };

export const DEFAULT_ADDON_PATH = fileURLToPath(new URL('./native/build/Release/sendfile.node', import.meta.url));

export interface LoadSendfileOptions {
  /** The compiled addon; default the node-gyp build output next to this file. */
  path?: string;
  /** `POSTFLOW_SENDFILE=0` forces read+write (tests, the bench's comparison). Default process.env. */
  env?: Record<string, string | undefined>;
}

export function loadSendfile(opts: LoadSendfileOptions = {}): SendfileLoad {
  const env = opts.env ?? process.env;
  if (env['POSTFLOW_SENDFILE'] === '0') return { addon: undefined, reason: 'POSTFLOW_SENDFILE=0' };
  const path = opts.path ?? DEFAULT_ADDON_PATH;
  try {
    const mod = createRequire(import.meta.url)(path) as Partial<SendfileAddon>;
    if (typeof mod.sendfile !== 'function') return { addon: undefined, reason: `${path} has no sendfile function` };
    return { addon: mod as SendfileAddon };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      addon: undefined,
      reason: code === 'MODULE_NOT_FOUND' ? 'addon not built' : `addon did not load: ${(err as Error).message.split('\n')[0]}`,
    };
  }
}
