/**
 * Request-body checks in the V4 style: `{"data": {...}}`, every field known (additionalProperties false in
 * the spec, answered as 422 `Unexpected field: foo`), required fields present, lengths and ranges honoured.
 */

export type FieldRule =
  | { type: 'string'; required?: boolean; minLength?: number; maxLength?: number }
  | { type: 'integer'; required?: boolean; minimum?: number; maximum?: number }
  | { type: 'string[]'; required?: boolean; minItems?: number; maxItems?: number; unique?: boolean };

export interface V4Error {
  detail: string;
  title?: string;
  source?: { pointer: string };
}

export type Validated = { ok: true; data: Record<string, unknown> } | { ok: false; status: number; errors: V4Error[] };

function invalid(pointer: string, detail: string): V4Error {
  return { detail, source: { pointer }, title: 'Invalid value' };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function validateBody(body: unknown, rules: Record<string, FieldRule>): Validated {
  if (!isRecord(body)) return { ok: false, status: 400, errors: [{ detail: 'Request body must be a JSON object', title: 'Bad request' }] };
  const errors: V4Error[] = [];
  for (const key of Object.keys(body)) {
    if (key !== 'data') errors.push(invalid(`/${key}`, `Unexpected field: ${key}`));
  }
  const data = body.data;
  if (!isRecord(data)) {
    errors.push(invalid('/data', data === undefined ? 'Missing field: data' : 'data must be an object'));
    return { ok: false, status: 422, errors };
  }
  for (const key of Object.keys(data)) {
    if (!(key in rules)) errors.push(invalid(`/data/${key}`, `Unexpected field: ${key}`));
  }
  for (const [key, rule] of Object.entries(rules)) {
    const v = data[key];
    const ptr = `/data/${key}`;
    if (v === undefined || v === null) {
      if (rule.required) errors.push(invalid(ptr, `Missing field: ${key}`));
      continue;
    }
    if (rule.type === 'string') {
      if (typeof v !== 'string') errors.push(invalid(ptr, `${key} must be a string`));
      else if (v.length < (rule.minLength ?? 0)) errors.push(invalid(ptr, `${key} should be at least ${rule.minLength} character(s)`));
      else if (rule.maxLength !== undefined && v.length > rule.maxLength) {
        errors.push(invalid(ptr, `${key} should be at most ${rule.maxLength} character(s), got ${v.length}`));
      }
    } else if (rule.type === 'integer') {
      if (typeof v !== 'number' || !Number.isInteger(v)) errors.push(invalid(ptr, `${key} must be an integer`));
      else if (rule.minimum !== undefined && v < rule.minimum) errors.push(invalid(ptr, `${key} must be at least ${rule.minimum}`));
      else if (rule.maximum !== undefined && v > rule.maximum) errors.push(invalid(ptr, `${key} must be at most ${rule.maximum}`));
    } else {
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) errors.push(invalid(ptr, `${key} must be an array of strings`));
      else if (rule.minItems !== undefined && v.length < rule.minItems) errors.push(invalid(ptr, `${key} needs at least ${rule.minItems} items`));
      else if (rule.maxItems !== undefined && v.length > rule.maxItems) errors.push(invalid(ptr, `${key} takes at most ${rule.maxItems} items`));
      else if (rule.unique && new Set(v).size !== v.length) errors.push(invalid(ptr, `${key} must not repeat an item`));
    }
  }
  return errors.length > 0 ? { ok: false, status: 422, errors } : { ok: true, data };
}
