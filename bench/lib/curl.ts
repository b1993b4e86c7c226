/**
 * The bench's client: curl processes writing to /dev/null, as a lightweight puller whose own cost is the
 * same whichever server it pulls from. Each process fetches one byte range; the figure is the wall time
 * until the last one finishes.
 */
import { spawn } from 'node:child_process';

export interface PullResult {
  ms: number;
  bytes: number;
}

function curlRange(url: string, start: number, end: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-s', '--http1.1', '-o', '/dev/null', '-r', `${start}-${end}`, '-w', '%{http_code} %{size_download}', url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', reject);
    // 'close', not 'exit': only then has all of curl's -w output been read.
    child.once('close', (code) => {
      const [status, size] = out.trim().split(' ').map(Number);
      const want = end - start + 1;
      if (code !== 0 || status !== 206 || size !== want) {
        reject(new Error(`curl -r ${start}-${end}: exit ${code}, status ${status}, ${size} of ${want} bytes ${err.trim()}`));
      } else resolve(size);
    });
  });
}

/** `size` bytes split into `streams` equal ranges, each pulled by its own curl at once. */
export async function pullParallel(url: string, size: number, streams: number): Promise<PullResult> {
  return pullRanges(
    Array.from({ length: streams }, (_, i) => {
      const start = Math.floor((size * i) / streams);
      const end = Math.floor((size * (i + 1)) / streams) - 1;
      return { url, start, end };
    }),
  );
}

/** Each range pulled by its own curl, all at once. */
export async function pullRanges(ranges: ReadonlyArray<{ url: string; start: number; end: number }>): Promise<PullResult> {
  const t0 = performance.now();
  const sizes = await Promise.all(ranges.map((r) => curlRange(r.url, r.start, r.end)));
  return { ms: performance.now() - t0, bytes: sizes.reduce((a, b) => a + b, 0) };
}
