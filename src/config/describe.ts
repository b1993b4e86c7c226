/**
 * The configuration as people read it: `postflow config` prints the effective values with secrets hidden,
 * and docs/configuration.md is kept in step with the schema through `schemaDocs()` (a test compares them).
 */
import { WATCH_FOLDER_KEYS } from './checks.ts';
import { SCHEMA, schemaLeaves, SENSITIVE_KEYS, type Config } from './schema.ts';

export const REDACTED_VALUE = '[redacted]';

/**
 * A deep copy of `config` with every secret that is set replaced by "[redacted]" (an unset secret stays "",
 * so the output still tells whether one is configured).
 */
export function configForDisplay(config: Config): Record<string, unknown> {
  const copy = structuredClone(config) as unknown as Record<string, unknown>;
  for (const key of SENSITIVE_KEYS) {
    const path = key.split('.');
    const last = path.pop()!;
    let node: unknown = copy;
    for (const part of path) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[part] : undefined;
    if (typeof node === 'object' && node !== null && (node as Record<string, unknown>)[last] !== '') {
      (node as Record<string, unknown>)[last] = REDACTED_VALUE;
    }
  }
  // Notification URLs carry their own credential (a Slack webhook URL is enough to post to the channel).
  for (const folder of (copy.watch as { folders: { notify?: Record<string, string> }[] }).folders) {
    for (const key of Object.keys(folder.notify ?? {})) if (typeof folder.notify![key] === 'string') folder.notify![key] = REDACTED_VALUE;
  }
  return copy;
}

export interface SchemaDocRow {
  /** Dotted key; per-folder keys read `watch.folders[].layout`. */
  key: string;
  /** The POSTFLOW_* variable, or '' for per-folder keys (set them through POSTFLOW_WATCH_FOLDERS). */
  env: string;
  /** The default as an operator would write it, or how it is derived. */
  default: string;
  format: string;
  doc: string;
  sensitive: boolean;
}

/** One row per schema key, then one per watch-folder key, in schema order. */
export function schemaDocs(): SchemaDocRow[] {
  const rows: SchemaDocRow[] = schemaLeaves(SCHEMA).map(({ key, leaf }) => ({
    key,
    env: leaf.env,
    default: leaf.defaultDoc ?? JSON.stringify(leaf.default),
    format: leaf.formatDoc,
    doc: leaf.doc,
    sensitive: leaf.sensitive === true,
  }));
  for (const [name, spec] of Object.entries(WATCH_FOLDER_KEYS)) {
    rows.push({
      key: `watch.folders[].${name}`,
      env: '',
      default: spec.default === undefined ? '(required)' : JSON.stringify(spec.default),
      format: 'values' in spec ? spec.values.map((v) => `"${v}"`).join(' | ') : spec.formatDoc,
      doc: spec.doc,
      sensitive: false,
    });
  }
  return rows;
}

/** The Markdown table of docs/configuration.md, generated from the schema (paste it when keys change). */
export function renderConfigTable(rows: readonly SchemaDocRow[] = schemaDocs()): string {
  // Inside a Markdown table a bare pipe ends the cell, even within backticks.
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = ['| key | env | default | format | meaning |', '|---|---|---|---|---|'];
  for (const r of rows) {
    lines.push(
      `| \`${r.key}\` | ${r.env ? `\`${r.env}\`` : '—'} | \`${cell(r.default)}\` | ${cell(r.format)} | ${cell(r.doc)}${r.sensitive ? ' **Secret.**' : ''} |`,
    );
  }
  return lines.join('\n');
}
