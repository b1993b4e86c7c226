/**
 * What every bench prints at the end: each figure beside its baseline (measured in the same run) and its
 * target, then PASS/FAIL; the process exit code is 1 when any target is missed.
 */
export interface Check {
  name: string;
  /** The figure as shown, e.g. `1840 MB/s` or `0.93x`. */
  shown: string;
  /** Baseline it was compared with, if any. */
  baseline?: string;
  target: string;
  ok: boolean;
}

export class Report {
  readonly #title: string;
  readonly #checks: Check[] = [];
  readonly #notes: string[] = [];

  constructor(title: string) {
    this.#title = title;
  }

  check(c: Check): void {
    this.#checks.push(c);
  }

  note(line: string): void {
    this.#notes.push(line);
  }

  get ok(): boolean {
    return this.#checks.length > 0 && this.#checks.every((c) => c.ok);
  }

  /** Prints the table and sets process.exitCode. */
  finish(): boolean {
    const w = Math.max(...this.#checks.map((c) => c.name.length), 10);
    console.log(`\n== ${this.#title}`);
    for (const n of this.#notes) console.log(`   ${n}`);
    for (const c of this.#checks) {
      const base = c.baseline === undefined ? '' : `   baseline ${c.baseline}`;
      console.log(`   ${c.ok ? 'ok  ' : 'MISS'} ${c.name.padEnd(w)}  ${c.shown}${base}   target ${c.target}`);
    }
    console.log(this.ok ? 'PASS' : 'FAIL');
    process.exitCode = this.ok ? 0 : 1;
    return this.ok;
  }
}
