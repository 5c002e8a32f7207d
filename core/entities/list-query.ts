import type { Knex } from 'knex';
import { KubikiError, fieldError } from '../errors.ts';
import { decimalProblem } from './ajv.ts';
import type { EntityDefinition, FieldKind } from './entity-definition.ts';
import { SYSTEM_FIELD_KINDS } from './record-codec.ts';
import { applyTextSearch, escapeLike } from './text-search.ts';

export type FilterOp = 'eq' | 'ne' | 'in' | 'gt' | 'gte' | 'lt' | 'lte' | 'contains' | 'null';

export interface Filter {
  field: string;
  op: FilterOp;
  value: unknown;
}

export interface SortKey {
  field: string;
  dir: 'asc' | 'desc';
}

/** A parsed, checked list request: every name in it is a real column, every value fits its type. */
export interface ListSpec {
  filters: Filter[];
  q?: string;
  sort: SortKey[];
  limit: number;
  after?: { values: unknown[]; id: string };
  fields?: string[];
  expand: string[];
  total: boolean;
  /** `externalId=<source>:<id>` (or `externalId[in]=…`): records other systems know by these ids. */
  externalIds?: { source: string; externalId: string }[];
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const INT_MIN = -2147483648;
const INT_MAX = 2147483647;
/** 0001-01-01T00:00:00Z: PostgreSQL has no year 0, which is where ISO strings of earlier instants land. */
const MIN_TIMESTAMP = Date.parse('0001-01-01T00:00:00Z');
const RANGE_OPS = new Set<FilterOp>(['gt', 'gte', 'lt', 'lte']);
const OPS = new Set<FilterOp>(['eq', 'ne', 'in', 'gt', 'gte', 'lt', 'lte', 'contains', 'null']);

export const isUuid = (s: string): boolean => UUID.test(s);

function kindOf(entity: EntityDefinition, name: string): FieldKind | undefined {
  return SYSTEM_FIELD_KINDS[name] ?? entity.fields.get(name)?.kind;
}

/** Parses one query-string value into the column's type, or says which field and why not. */
function parseValue(entity: EntityDefinition, name: string, kind: FieldKind, raw: string, param: string): unknown {
  const bad = (why: string) => fieldError('bad-filter', name, 'type', `filter ${param}: "${raw}" ${why}`);
  switch (kind) {
    case 'text': return raw;
    case 'uuid': if (!UUID.test(raw)) throw bad('is not a UUID'); return raw.toLowerCase();
    case 'integer': {
      if (!/^-?\d{1,10}$/.test(raw)) throw bad('is not an integer');
      const n = Number(raw);
      if (n < INT_MIN || n > INT_MAX) throw bad(`is outside ${INT_MIN}…${INT_MAX}`);
      return n;
    }
    case 'boolean': if (raw !== 'true' && raw !== 'false') throw bad('must be true or false'); return raw === 'true';
    case 'date': {
      // Date.parse accepts 2026-02-30 (as 2 March) and year 0000, which PostgreSQL refuses.
      const t = Date.parse(raw);
      if (!DATE.test(raw) || Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== raw || raw.startsWith('0000')) throw bad('is not a date (YYYY-MM-DD)');
      return raw;
    }
    case 'datetime': {
      const t = Date.parse(raw);
      if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(raw) || t < MIN_TIMESTAMP) throw bad('is not an ISO 8601 timestamp');
      return new Date(t).toISOString();
    }
    case 'decimal': {
      const spec = entity.fields.get(name)!.decimal!;
      const problem = decimalProblem(raw, spec.precision, spec.scale);
      if (problem) throw bad(problem);
      return raw;
    }
    case 'json': throw fieldError('bad-filter', name, 'filterable', `filter ${param}: ${name} holds JSON and cannot be filtered`);
  }
}

function parseFilter(entity: EntityDefinition, param: string, raw: string): Filter {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\[([a-z]+)\])?$/.exec(param);
  const name = m?.[1] ?? param;
  const kind = m ? kindOf(entity, name) : undefined;
  if (!m || !kind) throw fieldError('bad-filter', name, 'unknown-field', `${name} is not a field of ${entity.qualifiedName}`);
  const op = (m[2] ?? 'eq') as FilterOp;
  if (!OPS.has(op)) throw fieldError('bad-filter', name, 'operator', `unknown operator [${m[2]}]; use one of ${[...OPS].join(', ')}`);
  if (op === 'null') {
    if (raw !== 'true' && raw !== 'false') throw fieldError('bad-filter', name, 'type', `${param} must be true or false`);
    return { field: name, op, value: raw === 'true' };
  }
  if (RANGE_OPS.has(op) && (kind === 'boolean' || kind === 'uuid')) {
    throw fieldError('bad-filter', name, 'operator', `[${op}] does not apply to ${kind} field ${name}`);
  }
  if (op === 'contains' && kind !== 'text') throw fieldError('bad-filter', name, 'operator', `[contains] applies to text fields only`);
  if (op === 'in') {
    const parts = raw.split(',');
    if (parts.length > 500) throw fieldError('bad-filter', name, 'maxItems', `${param} lists more than 500 values`);
    return { field: name, op, value: parts.map((p) => parseValue(entity, name, kind, p, param)) };
  }
  return { field: name, op, value: parseValue(entity, name, kind, raw, param) };
}

function parseSort(entity: EntityDefinition, raw: string): SortKey[] {
  const keys = raw.split(',').filter(Boolean).map((part): SortKey => {
    const dir = part.startsWith('-') ? 'desc' : 'asc';
    const field = part.replace(/^[-+]/, '');
    const kind = kindOf(entity, field);
    if (!kind) throw fieldError('bad-sort', field, 'unknown-field', `cannot sort by ${field}: not a field of ${entity.qualifiedName}`);
    if (kind === 'json') throw fieldError('bad-sort', field, 'sortable', `cannot sort by ${field}: it holds JSON`);
    return { field, dir };
  });
  if (keys.length > 5) throw fieldError('bad-sort', 'sort', 'maxItems', 'sort by at most 5 fields');
  return keys.filter((k) => k.field !== 'id');
}

const sortSignature = (sort: SortKey[]): string => sort.map((k) => (k.dir === 'desc' ? '-' : '') + k.field).join(',');

export function encodeCursor(sort: SortKey[], values: unknown[], id: string): string {
  return Buffer.from(JSON.stringify({ s: sortSignature(sort), v: values, id })).toString('base64url');
}

function decodeCursor(entity: EntityDefinition, sort: SortKey[], raw: string): { values: unknown[]; id: string } {
  const bad = (why: string) => fieldError('bad-query', 'cursor', 'cursor', `cursor ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw bad('is not a cursor this API issued');
  }
  const c = parsed as { s?: unknown; v?: unknown; id?: unknown };
  if (typeof c !== 'object' || c === null || !Array.isArray(c.v) || typeof c.id !== 'string' || !UUID.test(c.id)) throw bad('is not a cursor this API issued');
  if (c.s !== sortSignature(sort) || c.v.length !== sort.length) throw bad('belongs to a different sort order; start again without a cursor');
  // The values go into SQL comparisons: they must fit their columns like filter values do.
  const values = c.v.map((v, i) => {
    if (v === null) return null;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw bad('is not a cursor this API issued');
    const field = sort[i].field;
    try {
      const text = String(v);
      if (text.includes('\u0000')) throw bad('is not a cursor this API issued');
      return parseValue(entity, field, kindOf(entity, field)!, text, 'cursor');
    } catch {
      throw bad('is not a cursor this API issued');
    }
  });
  return { values, id: c.id };
}

const list = (raw: string): string[] => raw.split(',').map((s) => s.trim()).filter(Boolean);

export function parseListQuery(entity: EntityDefinition, query: Record<string, string | string[] | undefined>): ListSpec {
  const spec: ListSpec = { filters: [], sort: [], limit: DEFAULT_LIMIT, expand: [], total: false };
  let cursor: string | undefined;
  for (const [param, rawValue] of Object.entries(query)) {
    if (rawValue === undefined) continue;
    const values = Array.isArray(rawValue) ? rawValue : [rawValue];
    const single = (): string => {
      if (values.length > 1) throw fieldError('bad-query', param, 'single', `${param} may be given once`);
      return values[0];
    };
    switch (param) {
      case 'sort': spec.sort = parseSort(entity, single()); break;
      case 'limit': {
        const raw = single();
        const n = Number(raw);
        if (!/^\d+$/.test(raw) || n < 1 || n > MAX_LIMIT) throw fieldError('bad-query', 'limit', 'range', `limit must be an integer from 1 to ${MAX_LIMIT}`);
        spec.limit = n;
        break;
      }
      case 'cursor': cursor = single(); break;
      case 'q': spec.q = single(); break;
      case 'withTotal': {
        const raw = single();
        if (raw !== 'true' && raw !== 'false') throw fieldError('bad-query', 'withTotal', 'type', 'withTotal must be true or false');
        spec.total = raw === 'true';
        break;
      }
      case 'fields': {
        spec.fields = list(single());
        for (const f of spec.fields) {
          if (!kindOf(entity, f)) throw fieldError('bad-query', f, 'unknown-field', `fields: ${f} is not a field of ${entity.qualifiedName}`);
        }
        break;
      }
      case 'externalId':
      case 'externalId[in]': {
        const raw = single();
        const parts = param === 'externalId' ? [raw] : raw.split(',');
        if (parts.length > 500) throw fieldError('bad-filter', 'externalId', 'maxItems', `${param} lists more than 500 ids`);
        spec.externalIds = parts.map((part) => {
          const colon = part.indexOf(':');
          if (colon < 1 || colon === part.length - 1) throw fieldError('bad-filter', 'externalId', 'format', `${param}: "${part}" must be <source>:<id>, e.g. 1c:000123`);
          return { source: part.slice(0, colon), externalId: part.slice(colon + 1) };
        });
        break;
      }
      case 'expand': {
        spec.expand = list(single());
        for (const f of spec.expand) {
          if (!entity.fields.get(f)?.ref) throw fieldError('bad-query', f, 'expandable', `expand: ${f} is not a reference field of ${entity.qualifiedName}`);
        }
        break;
      }
      default:
        for (const v of values) spec.filters.push(parseFilter(entity, param, v));
    }
  }
  if (cursor !== undefined) spec.after = decodeCursor(entity, spec.sort, cursor);
  return spec;
}

export function applyFilters(qb: Knex.QueryBuilder, entity: EntityDefinition, spec: ListSpec): void {
  for (const f of spec.filters) {
    switch (f.op) {
      case 'eq': qb.where(f.field, f.value as Knex.Value); break;
      case 'ne': qb.where((w) => w.whereNot(f.field, f.value as Knex.Value).orWhereNull(f.field)); break;
      case 'in': qb.whereIn(f.field, f.value as Knex.Value[]); break;
      case 'gt': qb.where(f.field, '>', f.value as Knex.Value); break;
      case 'gte': qb.where(f.field, '>=', f.value as Knex.Value); break;
      case 'lt': qb.where(f.field, '<', f.value as Knex.Value); break;
      case 'lte': qb.where(f.field, '<=', f.value as Knex.Value); break;
      case 'contains': qb.whereILike(f.field, `%${escapeLike(String(f.value))}%`); break;
      case 'null': if (f.value) qb.whereNull(f.field); else qb.whereNotNull(f.field); break;
    }
  }
  if (spec.q) applyTextSearch(qb, entity, spec.q);
}

/**
 * Keyset pagination: rows strictly after the cursor in (sort keys…, id) order, nulls last in
 * both directions. Unlike OFFSET it stays fast on deep pages and skips nothing when rows are added.
 */
function applyAfter(qb: Knex.QueryBuilder, sort: SortKey[], values: unknown[], id: string, i: number): void {
  if (i === sort.length) {
    qb.where('id', '>', id);
    return;
  }
  const { field, dir } = sort[i];
  const v = values[i];
  if (v === null) {
    qb.whereNull(field).andWhere((w) => applyAfter(w, sort, values, id, i + 1));
    return;
  }
  qb.where((w) => {
    w.where((b) => b.where(field, dir === 'asc' ? '>' : '<', v as Knex.Value).orWhereNull(field))
      .orWhere((eq) => eq.where(field, v as Knex.Value).andWhere((rest) => applyAfter(rest, sort, values, id, i + 1)));
  });
}

export function applyPage(qb: Knex.QueryBuilder, spec: ListSpec): void {
  if (spec.after) {
    const { values, id } = spec.after;
    qb.where((w) => applyAfter(w, spec.sort, values, id, 0));
  }
  for (const { field, dir } of spec.sort) qb.orderByRaw(`?? ${dir} nulls last`, [field]);
  qb.orderBy('id', 'asc');
  qb.limit(spec.limit + 1);
}
