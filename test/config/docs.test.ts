import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { schemaDocs } from '../../src/config/describe.ts';

const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

/** The rows of the key table: `| \`key\` | \`ENV\` or — | \`default\` | ...`. */
function documentedRows(): Map<string, { env: string; default: string }> {
  const rows = new Map<string, { env: string; default: string }>();
  for (const line of doc.split('\n')) {
    const m = /^\| `([^`]+)` \| (?:`([A-Z0-9_]+)`|—) \| `((?:[^`])*)` \|/.exec(line);
    if (m) rows.set(m[1]!, { env: m[2] ?? '', default: m[3]!.replace(/\\\|/g, '|') });
  }
  return rows;
}

test('every schema key is documented with its env variable and default', () => {
  const rows = documentedRows();
  for (const r of schemaDocs()) {
    const row = rows.get(r.key);
    assert.ok(row, `docs/configuration.md lacks a table row for ${r.key} (regenerate it with renderConfigTable())`);
    assert.equal(row.env, r.env, `env variable of ${r.key}`);
    assert.equal(row.default, r.default, `default of ${r.key}`);
  }
});

test('every documented key exists in the schema', () => {
  const known = new Set(schemaDocs().map((r) => r.key));
  const rows = documentedRows();
  assert.ok(rows.size >= known.size, 'the table was found');
  for (const key of rows.keys()) assert.ok(known.has(key), `docs/configuration.md documents ${key}, which the schema does not have`);
});

test('the doc keeps the operator example, the lookup order and exit code 78', () => {
  assert.match(doc, /"folders": \[\{ "path": "\/Volumes\/studio\/exports", "destination": "FOLDER-ID" \}\]/);
  assert.match(doc, /POSTFLOW_CONFIG/);
  assert.match(doc, /\.\/config\/postflow\.json/);
  assert.match(doc, /\*\*78\*\*/);
});
