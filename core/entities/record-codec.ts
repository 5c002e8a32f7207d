import type { EntityDefinition, FieldDefinition, FieldKind } from './entity-definition.ts';

/** A record as the API shows it: system fields plus the entity's fields that have a value. */
export type ApiRecord = { id: string; version: number; [field: string]: unknown };
export type Row = Record<string, unknown>;

/** System columns as if they were fields: filterable and sortable like declared ones. */
export const SYSTEM_FIELD_KINDS: Record<string, FieldKind> = {
  id: 'uuid', version: 'integer', createdAt: 'datetime', updatedAt: 'datetime', createdBy: 'uuid', updatedBy: 'uuid',
};

const iso = (v: unknown): unknown => (v instanceof Date ? v.toISOString() : v);

function fieldToApi(field: FieldDefinition, value: unknown): unknown {
  if (field.kind === 'datetime') return iso(value);
  if (field.kind === 'json' && typeof value === 'string') return JSON.parse(value);
  return value;
}

/** Row → API record; `only` limits the entity fields returned (id and version always come). */
export function rowToRecord(entity: EntityDefinition, row: Row, only?: ReadonlySet<string>): ApiRecord {
  const out: ApiRecord = { id: String(row.id), version: Number(row.version) };
  for (const field of entity.fields.values()) {
    if (only && !only.has(field.name)) continue;
    const value = row[field.name];
    if (value !== null && value !== undefined) out[field.name] = fieldToApi(field, value);
  }
  for (const name of ['createdAt', 'updatedAt', 'createdBy', 'updatedBy']) {
    if (only && !only.has(name)) continue;
    const value = row[name];
    if (value !== null && value !== undefined) out[name] = iso(value);
  }
  return out;
}

/**
 * The SQL counterpart of rowToRecord: a jsonb expression building the API record from the row
 * alias `w`, in the same text forms the driver hands back (decimals and dates as text, timestamps
 * as ISO instants in UTC). Used where the record must be stored in the statement that writes it.
 */
export function recordJsonSql(entity: EntityDefinition, w: string): { sql: string; bindings: string[] } {
  const iso = (col: string) => `to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
  const parts: string[] = [`'id', ${w}."id"::text`, `'version', ${w}."version"`];
  // Field names are identifiers checked at load (letters, digits, underscore): quoted into the text,
  // so the statement's text names its columns (prepared statements are named after the text).
  const add = (name: string, kind: FieldKind) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`unexpected field name ${name}`);
    const col = `${w}."${name}"`;
    const value = kind === 'datetime' ? iso(col) : kind === 'decimal' || kind === 'date' || kind === 'uuid' ? `${col}::text` : col;
    parts.push(`'${name}', ${value}`);
  };
  for (const field of entity.fields.values()) add(field.name, field.kind);
  for (const name of ['createdAt', 'updatedAt', 'createdBy', 'updatedBy']) add(name, SYSTEM_FIELD_KINDS[name]);
  // Top-level nulls left out as rowToRecord does (nulls inside JSON fields stay).
  return { sql: `(select coalesce(jsonb_object_agg(key, value), '{}'::jsonb) from jsonb_each(jsonb_build_object(${parts.join(', ')})) where value <> 'null'::jsonb)`, bindings: [] };
}

/** The entity fields of a row as the API shows them (what validation and diffs compare). */
export function rowToFields(entity: EntityDefinition, row: Row): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of entity.fields.values()) {
    const value = row[field.name];
    if (value !== null && value !== undefined) out[field.name] = fieldToApi(field, value);
  }
  return out;
}

/** "12.5" → "12.50" for numeric(p, 2): the text PostgreSQL will store and return. Input is validated. */
function normalizeDecimal(value: string, scale: number): string {
  const negative = value.startsWith('-');
  const [intPart, fraction = ''] = (negative ? value.slice(1) : value).split('.');
  const integer = intPart.replace(/^0+(?=\d)/, '');
  const digits = scale ? `${integer}.${fraction.padEnd(scale, '0').slice(0, scale)}` : integer;
  return negative && /[1-9]/.test(digits) ? `-${digits}` : digits;
}

/**
 * Validated input → exactly what the database will hand back, so a create can be journaled in
 * the same statement as its insert (no read-back needed to know the stored values).
 */
export function normalizeFields(entity: EntityDefinition, fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    const field = entity.fields.get(name);
    if (field?.kind === 'decimal' && typeof value === 'string') out[name] = normalizeDecimal(value, field.decimal!.scale);
    else if (field?.kind === 'datetime' && typeof value === 'string') out[name] = new Date(value).toISOString();
    else out[name] = value;
  }
  return out;
}

/** API values → column values (JSON columns are sent as text so arrays do not become SQL arrays). */
export function fieldsToColumns(entity: EntityDefinition, fields: Record<string, unknown>): Row {
  const out: Row = {};
  for (const [name, value] of Object.entries(fields)) {
    const field = entity.fields.get(name);
    if (!field) continue;
    out[name] = value === null || value === undefined ? null : field.kind === 'json' ? JSON.stringify(value) : value;
  }
  return out;
}

const sameValue = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Field-by-field before/after of a change: what the audit trail and events carry. */
export function diffFields(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, { before: unknown; after: unknown }> {
  const changes: Record<string, { before: unknown; after: unknown }> = {};
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const b = before[name] ?? null;
    const a = after[name] ?? null;
    if (!sameValue(a, b)) changes[name] = { before: b, after: a };
  }
  return changes;
}
