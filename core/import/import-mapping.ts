import { createHash } from 'node:crypto';
import { KubikiError, type FieldIssue } from '../errors.ts';
import { lazyValidator, toFieldIssues } from '../entities/ajv.ts';
import type { FieldDefinition, JsonSchema } from '../entities/entity-definition.ts';
import { isUuid } from '../entities/list-query.ts';
import { cellText, type SourceRow } from './import-sources.ts';

// A column mapping says how a file's columns become a record's fields: column → field with
// transforms (trim, decimal comma → dot, DD.MM.YYYY dates, value maps, splitting into arrays),
// constants for fields no column holds, and how references are looked up (by a natural key such
// as INN, SKU, e-mail or code, by an external id, or by id). Saved under a name and reused.

export const EXTERNAL_ID = '$externalId';
export const IGNORE = '$ignore';

export type Transform =
  | 'trim' | 'upper' | 'lower' | 'digits' | 'decimalComma' | 'collapseSpaces' | 'unquote'
  | { date: string }
  | { map: Record<string, string | number | boolean | null> }
  | { split: string }
  | { replace: [string, string] };

export interface ColumnMapping {
  /** The field the column fills, `$externalId` (the legacy system's key of the row) or `$ignore`. */
  field: string;
  transform?: Transform[];
  /** For a reference field: the referenced entity's field to look the value up by (`inn`, `sku`, `code`, `email`), `$externalId` or `id`. */
  ref?: string;
  /** Used when the cell is empty. */
  default?: unknown;
}

export interface MappingOptions {
  delimiter?: string;
  encoding?: string;
  sheet?: string;
  headerRow?: number;
  /** Decimal and integer cells use a comma as the decimal separator (`1 234,50`). */
  decimalComma?: boolean;
  /** How date cells are written when not YYYY-MM-DD, e.g. `DD.MM.YYYY` (applies to every date column without its own). */
  dateFormat?: string;
}

export interface MappingDefinition {
  /** The entity (`base.organizations`) or plugin import target (`finance.openingBalances`). */
  target: string;
  /** Column name (as in the header) → field name or a fuller mapping. Columns named like a field map themselves. */
  columns?: Record<string, string | ColumnMapping>;
  /** Values given to every row (a field no column holds, or the default when its column is empty). */
  constants?: Record<string, unknown>;
  /** Upsert key: a field whose value finds the record to update, `$externalId` or `id`. */
  key?: string;
  /** Namespace of external ids (the system they come from), `default` when not given. */
  source?: string;
  /** Map columns named exactly like a field (or its custom field) without listing them; default true. */
  autoColumns?: boolean;
  options?: MappingOptions;
}

const transformSchema: JsonSchema = {
  oneOf: [
    { type: 'string', enum: ['trim', 'upper', 'lower', 'digits', 'decimalComma', 'collapseSpaces', 'unquote'] },
    { type: 'object', required: ['date'], additionalProperties: false, properties: { date: { type: 'string', minLength: 2, maxLength: 40, description: 'e.g. DD.MM.YYYY, MM/DD/YYYY, DD.MM.YYYY HH:mm' } } },
    { type: 'object', required: ['map'], additionalProperties: false, properties: { map: { type: 'object', additionalProperties: { anyOf: [{ type: 'string' }, { type: 'integer' }, { type: 'boolean' }, { type: 'null' }] } } } },
    { type: 'object', required: ['split'], additionalProperties: false, properties: { split: { type: 'string', minLength: 1, maxLength: 5 } } },
    { type: 'object', required: ['replace'], additionalProperties: false, properties: { replace: { type: 'array', minItems: 2, maxItems: 2, items: { type: 'string', maxLength: 200 } } } },
  ],
};

/** The JSON Schema of a mapping (routes and files are checked against it). */
export const mappingSchema: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['target'],
  properties: {
    target: { type: 'string', pattern: '^[a-z][a-z0-9]*\\.[a-z][a-zA-Z0-9]*$', 'x-format-hint': 'an entity or import target as <plugin>.<name>, e.g. base.organizations', description: 'The entity or plugin import target' },
    columns: {
      type: 'object', maxProperties: 500,
      additionalProperties: {
        oneOf: [
          { type: 'string', minLength: 1, maxLength: 100 },
          {
            type: 'object', required: ['field'], additionalProperties: false,
            properties: {
              field: { type: 'string', minLength: 1, maxLength: 100 },
              transform: { type: 'array', maxItems: 20, items: transformSchema },
              ref: { type: 'string', minLength: 1, maxLength: 100 },
              default: {},
            },
          },
        ],
      },
    },
    constants: { type: 'object', maxProperties: 200 },
    key: { type: 'string', minLength: 1, maxLength: 100 },
    source: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$', 'x-format-hint': '1–64 lower-case letters, digits, ".", "_", "-" (1c, bitrix24)', description: 'The system external ids come from (as the external-id API names it)' },
    autoColumns: { type: 'boolean' },
    options: {
      type: 'object', additionalProperties: false,
      properties: {
        delimiter: { type: 'string', enum: [',', ';', '\t', '|', 'tab', 'semicolon'] },
        encoding: { type: 'string', enum: ['utf-8', 'utf8', 'windows-1251', 'cp1251'] },
        sheet: { type: 'string', minLength: 1, maxLength: 100 },
        headerRow: { type: 'integer', minimum: 1, maximum: 1000 },
        decimalComma: { type: 'boolean' },
        dateFormat: { type: 'string', minLength: 2, maxLength: 40 },
      },
    },
  },
};

const checkMapping = lazyValidator<MappingDefinition>(mappingSchema);

/** Checks a mapping's shape; 400 naming the field. */
export function parseMapping(value: unknown, where = 'mapping'): MappingDefinition {
  const validate = checkMapping();
  if (validate(value)) return value;
  const issues = toFieldIssues(validate.errors).map((i) => ({ ...i, field: i.field ? `${where}.${i.field}` : where }));
  throw new KubikiError('validation-failed', `the ${where} is not valid: ${issues.map((i) => i.message).join('; ')}`, { issues });
}

export const mappingHash = (m: MappingDefinition): string => createHash('sha256').update(stableJson(m)).digest('hex').slice(0, 32);

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

/** A problem with one row, named by the file's line and column. */
export interface RowIssue {
  line: number;
  /** The column's header text ('' when no column holds the field: a constant or a missing required field). */
  column: string;
  field: string;
  rule: string;
  message: string;
  value?: string;
}

/** A reference value still to be looked up. */
export interface PendingRef {
  field: string;
  column: string;
  raw: string;
  /** The referenced entity's field, `$externalId` or `id`. */
  by: string;
  target: string;
}

export interface MappedRow {
  line: number;
  fields: Record<string, unknown>;
  refs: PendingRef[];
  externalId?: string;
  issues: RowIssue[];
}

/** What a mapping is compiled against: the target's fields and how its references are keyed. */
export interface MappingTarget {
  name: string;
  fields: ReadonlyMap<string, FieldDefinition>;
  /** The default lookup field of a referenced entity (`inn` for organizations). */
  naturalKey(entity: string): string | undefined;
  /** Whether `field` exists on a referenced entity (checks `ref` in a mapping). */
  hasField(entity: string, field: string): boolean;
}

interface ColumnPlan {
  index: number;
  column: string;
  field: string;
  transforms: Transform[];
  ref?: { by: string; target: string };
  default?: unknown;
}

const EMPTY = (v: unknown): boolean => v === undefined || v === null || (typeof v === 'string' && v.trim() === '');

/** `DD.MM.YYYY HH:mm` → a parser to ISO (`YYYY-MM-DD` or `YYYY-MM-DDTHH:mm:ss`), undefined when the value does not fit. */
export function dateParser(format: string): (value: string) => string | undefined {
  const tokens = /YYYY|YY|MM|M|DD|D|HH|H|mm|ss/g;
  const order: string[] = [];
  let source = '';
  let last = 0;
  for (const m of format.matchAll(tokens)) {
    source += format.slice(last, m.index).replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+');
    order.push(m[0]);
    source += m[0] === 'YYYY' ? '(\\d{4})' : m[0].length === 1 ? '(\\d{1,2})' : '(\\d{2})';
    last = m.index + m[0].length;
  }
  source += format.slice(last).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^${source}$`);
  if (!order.some((t) => t.startsWith('Y')) || !order.some((t) => t.startsWith('M') && t !== 'mm') || !order.some((t) => t.startsWith('D'))) {
    throw new KubikiError('validation-failed', `date format ${format} needs a year (YYYY), a month (MM) and a day (DD)`, { issues: [{ field: 'transform', rule: 'date-format', message: `date format ${format} needs YYYY, MM and DD` }] });
  }
  return (value) => {
    const m = re.exec(value.trim());
    if (!m) return undefined;
    const parts: Record<string, number> = { Y: 0, M: 0, D: 0, H: 0, m: 0, s: 0 };
    order.forEach((t, i) => {
      const n = Number(m[i + 1]);
      if (t === 'YY') parts.Y = n < 70 ? 2000 + n : 1900 + n;
      else if (t === 'mm') parts.m = n;
      else if (t === 'ss') parts.s = n;
      else parts[t[0]] = n;
    });
    const date = new Date(Date.UTC(parts.Y, parts.M - 1, parts.D, parts.H, parts.m, parts.s));
    if (date.getUTCFullYear() !== parts.Y || date.getUTCMonth() !== parts.M - 1 || date.getUTCDate() !== parts.D || parts.H > 23 || parts.m > 59 || parts.s > 59) return undefined;
    const day = `${String(parts.Y).padStart(4, '0')}-${String(parts.M).padStart(2, '0')}-${String(parts.D).padStart(2, '0')}`;
    return order.some((t) => t.startsWith('H')) ? `${day}T${String(parts.H).padStart(2, '0')}:${String(parts.m).padStart(2, '0')}:${String(parts.s).padStart(2, '0')}Z` : day;
  };
}

const parsers = new Map<string, (value: string) => string | undefined>();
const parserOf = (format: string) => {
  let p = parsers.get(format);
  if (!p) parsers.set(format, (p = dateParser(format)));
  return p;
};

/** A transform applied to a text value; returns the new value or a reason it cannot apply. */
function applyTransform(value: unknown, t: Transform): { value: unknown } | { problem: string; rule: string } {
  if (typeof t === 'string') {
    if (typeof value !== 'string') return { value };
    switch (t) {
      case 'trim': return { value: value.trim() };
      case 'upper': return { value: value.toUpperCase() };
      case 'lower': return { value: value.toLowerCase() };
      case 'digits': return { value: value.replace(/\D+/g, '') };
      case 'collapseSpaces': return { value: value.replace(/\s+/g, ' ').trim() };
      case 'unquote': return { value: value.replace(/^'(?=[=+\-@\t\r])/, '') };
      case 'decimalComma': return { value: value.replace(/[\s\u00a0\u202f]/g, '').replace(',', '.') };
    }
  }
  if ('date' in t) {
    if (value instanceof Date) return { value };
    const parsed = parserOf(t.date)(cellText(value));
    return parsed === undefined ? { problem: `${cellText(value)} is not a date in the format ${t.date}`, rule: 'date-format' } : { value: parsed };
  }
  if ('map' in t) {
    const key = cellText(value);
    return Object.hasOwn(t.map, key) ? { value: t.map[key] } : { value };
  }
  if ('split' in t) return { value: typeof value === 'string' ? value.split(t.split).map((s) => s.trim()).filter((s) => s !== '') : value };
  if ('replace' in t) return { value: typeof value === 'string' ? value.split(t.replace[0]).join(t.replace[1]) : value };
  return { value };
}

const TRUE = new Set(['true', '1', 'yes', 'y', 'да', 'д', '+', 'истина', 'x', 'v', '✓']);
const FALSE = new Set(['false', '0', 'no', 'n', 'нет', 'н', '-', 'ложь', '']);

const isoDay = (d: Date): string => d.toISOString().slice(0, 10);

/**
 * A cell value (after transforms) → the field's JSON type. Values it cannot convert are passed on
 * as they are, so the entity validator names what is wrong in its own words.
 */
function convert(field: FieldDefinition, value: unknown, options: MappingOptions): { value: unknown } | { problem: string; rule: string } {
  switch (field.kind) {
    case 'integer': {
      if (typeof value === 'number') return { value };
      const s = cellText(value).replace(/[\s\u00a0\u202f]/g, '');
      const n = options.decimalComma ? s.replace(',', '.') : s;
      return /^-?\d+(\.0+)?$/.test(n) ? { value: Number(n) } : { value: s };
    }
    case 'decimal': {
      if (typeof value === 'number') return { value: Number.isInteger(value) ? String(value) : value.toFixed(Math.min(field.decimal!.scale + 2, 12)).replace(/0+$/, '').replace(/\.$/, '') };
      const s = cellText(value).replace(/[\s\u00a0\u202f]/g, '');
      return { value: options.decimalComma ? s.replace(',', '.') : s };
    }
    case 'boolean': {
      if (typeof value === 'boolean') return { value };
      if (typeof value === 'number') return { value: value !== 0 };
      const s = cellText(value).trim().toLowerCase();
      if (TRUE.has(s)) return { value: true };
      if (FALSE.has(s)) return { value: false };
      return { problem: `${field.name} must be yes or no (true/false, 1/0, да/нет), not ${cellText(value)}`, rule: 'type' };
    }
    case 'date': {
      if (value instanceof Date) return { value: isoDay(value) };
      const s = cellText(value).trim();
      if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return { value: s };
      if (/^\d{4}-\d{2}-\d{2}T00:00:00(\.000)?Z$/.test(s)) return { value: s.slice(0, 10) };
      const parsed = parserOf(options.dateFormat ?? 'DD.MM.YYYY')(s);
      return parsed !== undefined ? { value: parsed.slice(0, 10) } : { value: s };
    }
    case 'datetime': {
      if (value instanceof Date) return { value: value.toISOString() };
      const s = cellText(value).trim();
      if (!options.dateFormat || /^\d{4}-\d{2}-\d{2}T/.test(s)) return { value: s };
      const parsed = parserOf(options.dateFormat)(s);
      return { value: parsed ?? s };
    }
    case 'json': {
      if (Array.isArray(value) || (typeof value === 'object' && value !== null && !(value instanceof Date))) return { value };
      const s = cellText(value).trim();
      if (s.startsWith('[') || s.startsWith('{')) {
        try {
          return { value: JSON.parse(s) };
        } catch {
          return { problem: `${field.name} is not valid JSON`, rule: 'json' };
        }
      }
      if (field.schema.type === 'array') {
        const items = field.schema.items as JsonSchema | undefined;
        const parts = s.split(/[;,]/).map((p) => p.trim()).filter((p) => p !== '');
        return { value: items?.type === 'integer' ? parts.map((p) => (/^-?\d+$/.test(p) ? Number(p) : p)) : parts };
      }
      return { value: s };
    }
    default:
      // Text: a number from a spreadsheet (an INN typed as a number) becomes its digits.
      if (typeof value === 'number') return { value: Number.isInteger(value) ? value.toFixed(0) : String(value) };
      if (value instanceof Date) return { value: field.kind === 'uuid' ? cellText(value) : isoDay(value) };
      return { value: typeof value === 'string' ? value : cellText(value) };
  }
}

export interface CompiledMapping {
  definition: MappingDefinition;
  /** Column (header text) each field comes from, for naming errors. */
  columnOfField: ReadonlyMap<string, string>;
  /** Fields filled by constants only. */
  constantFields: ReadonlySet<string>;
  /** The upsert key, if any. */
  key?: string;
  source: string;
  /** Reference fields that will be looked up, with how. */
  refFields: ReadonlyMap<string, { by: string; target: string }>;
  /** Header columns nothing reads (reported, not an error). */
  unmappedColumns: string[];
  map(row: SourceRow): MappedRow;
}

const mappingError = (field: string, message: string): KubikiError =>
  new KubikiError('import-mapping-invalid', message, { issues: [{ field, rule: 'mapping', message }] });

/**
 * Compiles a mapping against the target's fields and the file's header: every mapped field must
 * exist, every mapped column must be in the header, references must name a lookup field of the
 * referenced entity. The result maps one row at a time.
 */
export function compileMapping(definition: MappingDefinition, target: MappingTarget, header: readonly string[], overrides: { key?: string } = {}): CompiledMapping {
  const options = definition.options ?? {};
  const columns = definition.columns ?? {};
  const plans: ColumnPlan[] = [];
  const headerIndex = new Map<string, number>();
  header.forEach((h, i) => { if (h !== '' && !headerIndex.has(h)) headerIndex.set(h, i); });
  const lowerIndex = new Map<string, number>();
  header.forEach((h, i) => { if (h !== '' && !lowerIndex.has(h.toLowerCase())) lowerIndex.set(h.toLowerCase(), i); });
  const used = new Set<number>();
  const fieldsTaken = new Map<string, string>();
  const refFields = new Map<string, { by: string; target: string }>();

  const planRef = (field: FieldDefinition, column: string, by: string | undefined): { by: string; target: string } | undefined => {
    if (!field.ref) {
      if (by !== undefined) throw mappingError(`columns.${column}.ref`, `column "${column}": ${field.name} is not a reference field, so it takes no "ref"`);
      return undefined;
    }
    if (field.ref === 'core.users') return by === undefined || by === 'id' ? undefined : (() => { throw mappingError(`columns.${column}.ref`, `column "${column}": users are referenced by id only`); })();
    const lookup = by ?? target.naturalKey(field.ref) ?? 'id';
    if (lookup !== 'id' && lookup !== EXTERNAL_ID && !target.hasField(field.ref, lookup)) {
      throw mappingError(`columns.${column}.ref`, `column "${column}": ${field.ref} has no field ${lookup} to look ${field.name} up by`);
    }
    return { by: lookup, target: field.ref };
  };

  const missing = Object.keys(columns).filter((c) => (headerIndex.get(c) ?? lowerIndex.get(c.toLowerCase())) === undefined);
  if (missing.length) {
    const has = header.filter(Boolean).join(', ') || 'none';
    throw new KubikiError('import-mapping-invalid', `the mapping reads column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `"${c}"`).join(', ')}, which the file does not have (its columns: ${has})`, {
      issues: missing.map((c) => ({ field: `columns.${c}`, rule: 'column', message: `the file has no column "${c}"` })),
    });
  }
  for (const [column, spec] of Object.entries(columns)) {
    const m: ColumnMapping = typeof spec === 'string' ? { field: spec } : spec;
    const index = (headerIndex.get(column) ?? lowerIndex.get(column.toLowerCase()))!;
    used.add(index);
    if (m.field === IGNORE) continue;
    if (m.field !== EXTERNAL_ID) {
      const field = target.fields.get(m.field);
      if (!field) throw mappingError(`columns.${column}.field`, `column "${column}" maps to ${m.field}, which is not a field of ${target.name} (fields: ${[...target.fields.keys()].join(', ')})`);
      if (fieldsTaken.has(m.field)) throw mappingError(`columns.${column}.field`, `columns "${fieldsTaken.get(m.field)}" and "${column}" both map to ${m.field}`);
      fieldsTaken.set(m.field, column);
      const ref = planRef(field, column, m.ref);
      if (ref) refFields.set(field.name, ref);
      plans.push({ index, column: header[index], field: m.field, transforms: m.transform ?? [], ref, default: m.default });
    } else {
      if (fieldsTaken.has(EXTERNAL_ID)) throw mappingError(`columns.${column}.field`, `columns "${fieldsTaken.get(EXTERNAL_ID)}" and "${column}" both hold the external id`);
      fieldsTaken.set(EXTERNAL_ID, column);
      plans.push({ index, column: header[index], field: EXTERNAL_ID, transforms: m.transform ?? [] });
    }
  }
  if (definition.autoColumns !== false) {
    header.forEach((h, index) => {
      if (used.has(index) || h === '') return;
      const field = target.fields.get(h) ?? [...target.fields.values()].find((f) => f.name.toLowerCase() === h.toLowerCase());
      const name = field?.name ?? (h.toLowerCase() === 'externalid' || h === EXTERNAL_ID ? EXTERNAL_ID : undefined);
      if (!name || fieldsTaken.has(name)) return;
      used.add(index);
      fieldsTaken.set(name, h);
      const ref = field ? planRef(field, h, undefined) : undefined;
      if (field && ref) refFields.set(field.name, ref);
      plans.push({ index, column: h, field: name, transforms: [], ref });
    });
  }
  const constants = definition.constants ?? {};
  for (const name of Object.keys(constants)) {
    if (!target.fields.has(name)) throw mappingError(`constants.${name}`, `constant ${name} is not a field of ${target.name}`);
  }
  const key = overrides.key ?? definition.key;
  if (key !== undefined && key !== 'id' && key !== EXTERNAL_ID) {
    if (!target.fields.has(key)) throw mappingError('key', `the key ${key} is not a field of ${target.name}`);
    if (!fieldsTaken.has(key) && !(key in constants)) throw mappingError('key', `the key ${key} is not read from any column (map a column to it)`);
  }
  if (key === EXTERNAL_ID && !fieldsTaken.has(EXTERNAL_ID)) throw mappingError('key', 'the key $externalId needs a column mapped to $externalId');
  if (key === 'id' && !fieldsTaken.has('id') && !headerIndex.has('id')) throw mappingError('key', 'the key id needs an id column');
  // `id` as a column: the record's id (a create keeps it; the key `id` updates by it).
  const idIndex = key === 'id' ? (headerIndex.get('id') ?? lowerIndex.get('id')) : undefined;
  if (idIndex !== undefined) used.add(idIndex);

  const columnOfField = new Map<string, string>();
  for (const p of plans) columnOfField.set(p.field, p.column);
  const constantFields = new Set(Object.keys(constants).filter((n) => !columnOfField.has(n)));
  const unmappedColumns = header.filter((h, i) => h !== '' && !used.has(i));
  const source = definition.source ?? 'default';
  const converted = new Map<string, unknown>();
  for (const [name, value] of Object.entries(constants)) converted.set(name, value);

  const map = (row: SourceRow): MappedRow => {
    const out: MappedRow = { line: row.line, fields: {}, refs: [], issues: [] };
    if (row.problem) out.issues.push({ line: row.line, column: '', field: '', rule: 'row', message: row.problem });
    if (row.problem && row.cells.length === 0) return out;
    for (const p of plans) {
      let value: unknown = row.cells[p.index];
      if (typeof value === 'string') {
        value = value.trim();
        // What Kubiki's own CSV export guards against formulas ('=…, '+7…) reads back as it was.
        if (/^'[=+\-@]/.test(value as string)) value = (value as string).slice(1);
      }
      if (EMPTY(value)) {
        if (p.default === undefined) continue;
        value = p.default;
      }
      const shown = cellText(value);
      let failed = false;
      for (const t of p.transforms) {
        const r = applyTransform(value, t);
        if ('problem' in r) {
          out.issues.push({ line: row.line, column: p.column, field: p.field, rule: r.rule, message: r.problem, value: shown });
          failed = true;
          break;
        }
        value = r.value;
      }
      if (failed || EMPTY(value)) continue;
      if (p.field === EXTERNAL_ID) {
        out.externalId = cellText(value).trim();
        continue;
      }
      const field = target.fields.get(p.field)!;
      if (p.ref) {
        const raw = cellText(value).trim();
        if (p.ref.by === 'id' && !isUuid(raw)) {
          out.issues.push({ line: row.line, column: p.column, field: p.field, rule: 'format', message: `${p.field} must be an id (UUID) of a ${p.ref.target} record`, value: shown });
        } else {
          out.refs.push({ field: p.field, column: p.column, raw, by: isUuid(raw) && p.ref.by !== EXTERNAL_ID ? 'id' : p.ref.by, target: p.ref.target });
        }
        continue;
      }
      const c = convert(field, value, options);
      if ('problem' in c) {
        out.issues.push({ line: row.line, column: p.column, field: p.field, rule: c.rule, message: c.problem, value: shown });
        continue;
      }
      out.fields[p.field] = c.value;
    }
    for (const [name, value] of converted) if (!(name in out.fields)) out.fields[name] = structuredClone(value);
    if (idIndex !== undefined) {
      const id = cellText(row.cells[idIndex]).trim();
      if (id) out.fields.id = id;
    }
    return out;
  };

  return { definition, columnOfField, constantFields, key, source, refFields, unmappedColumns, map };
}

/** A validator's (or a write's) field issue → a row issue naming the column it came from. */
export function rowIssueOf(line: number, issue: FieldIssue, mapping: CompiledMapping, fields: Record<string, unknown>): RowIssue {
  const top = issue.field.split('.')[0] ?? '';
  const column = mapping.columnOfField.get(top) ?? '';
  const value = top && fields[top] !== undefined ? cellText(typeof fields[top] === 'object' && fields[top] !== null ? JSON.stringify(fields[top]) : fields[top]) : undefined;
  const fromConstant = !column && mapping.constantFields.has(top);
  return {
    line, column, field: issue.field, rule: issue.rule,
    message: fromConstant ? `${issue.message} (from the mapping's constant ${top})` : issue.message,
    ...(value !== undefined ? { value } : {}),
  };
}
