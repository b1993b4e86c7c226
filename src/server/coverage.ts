/**
 * Which bytes of one file have left the machine, as a union of half-open intervals. Frame.io pulls with
 * parallel and retried ranges, so adding up bytes sent would pass 100 % long before the file is whole;
 * the union counts a byte once however often it is sent, and `complete` means every byte went out.
 *
 * Intervals are kept sorted and merged, so a sequential pull stays one interval however many chunks it
 * has; inserting finds its place by binary search.
 */
export class Coverage {
  readonly size: number;
  // Flat [start0, end0, start1, end1, …], sorted, disjoint and non-adjacent.
  #bounds: number[] = [];
  #covered = 0;

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`coverage size must be a non-negative integer, got ${size}`);
    this.size = size;
  }

  /** Bytes covered at least once. */
  get covered(): number {
    return this.#covered;
  }

  get complete(): boolean {
    return this.#covered === this.size;
  }

  /** Marks [start, endExclusive) as sent; parts outside the file are ignored. Returns the newly covered bytes. */
  add(start: number, endExclusive: number): number {
    const s = Math.max(0, start);
    const e = Math.min(this.size, endExclusive);
    if (!(e > s)) return 0;
    const b = this.#bounds;
    const n = b.length / 2;
    // First interval whose end reaches s (touching counts, so adjacent chunks merge).
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((b[2 * mid + 1] as number) < s) lo = mid + 1;
      else hi = mid;
    }
    const first = lo;
    let last = first; // one past the last interval that overlaps or touches [s, e)
    let mergedStart = s;
    let mergedEnd = e;
    let absorbed = 0;
    while (last < n && (b[2 * last] as number) <= e) {
      const is = b[2 * last] as number;
      const ie = b[2 * last + 1] as number;
      if (is < mergedStart) mergedStart = is;
      if (ie > mergedEnd) mergedEnd = ie;
      absorbed += ie - is;
      last++;
    }
    const gained = mergedEnd - mergedStart - absorbed;
    b.splice(2 * first, 2 * (last - first), mergedStart, mergedEnd);
    this.#covered += gained;
    return gained;
  }

  /** The covered intervals as [start, endExclusive) pairs, in order. */
  ranges(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.#bounds.length; i += 2) out.push([this.#bounds[i] as number, this.#bounds[i + 1] as number]);
    return out;
  }
}
