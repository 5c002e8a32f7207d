import { KubikiError, fieldError, type ApiRecord, type PluginContext, type Principal } from 'kubiki/plugin';
import type { Knex } from 'knex';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export const bad = (field: string, rule: string, message: string): KubikiError => fieldError('validation-failed', field, rule, message);

export function uuidParam(value: unknown, field: string): string {
  if (typeof value !== 'string' || !UUID.test(value)) throw bad(field, 'format', `${field} must be a UUID`);
  return value.toLowerCase();
}

type Query = Record<string, string | string[] | undefined>;

function single(query: Query, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) throw fieldError('bad-query', name, 'single', `${name} may be given once`);
  return v;
}

/** Refuses query parameters a route does not know, naming the first. */
export function onlyParams(query: Query, allowed: string[]): void {
  for (const key of Object.keys(query)) {
    if (!allowed.includes(key)) throw fieldError('bad-query', key, 'unknown-parameter', `unknown query parameter ${key}; this route takes ${allowed.join(', ') || 'none'}`);
  }
}

export function limitParam(query: Query, fallback = 50, max = 200): number {
  const raw = single(query, 'limit');
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw fieldError('bad-query', 'limit', 'range', `limit must be an integer from 1 to ${max}`);
  return Number(raw);
}

export function dateParam(query: Query, name: string): string | undefined {
  const raw = single(query, name);
  if (raw === undefined) return undefined;
  if (!DATE.test(raw) || Number.isNaN(Date.parse(`${raw}T00:00:00Z`)) || new Date(`${raw}T00:00:00Z`).toISOString().slice(0, 10) !== raw) {
    throw fieldError('bad-query', name, 'format', `${name} must be a date YYYY-MM-DD`);
  }
  return raw;
}

export function uuidQuery(query: Query, name: string): string | undefined {
  const raw = single(query, name);
  if (raw === undefined) return undefined;
  if (!UUID.test(raw)) throw fieldError('bad-query', name, 'format', `${name} must be a UUID`);
  return raw.toLowerCase();
}

export function stringQuery(query: Query, name: string, values?: string[]): string | undefined {
  const raw = single(query, name);
  if (raw === undefined) return undefined;
  if (values && !values.includes(raw)) throw fieldError('bad-query', name, 'enum', `${name} must be one of ${values.join(', ')}`);
  return raw;
}

/** Opaque keyset cursors: base64url JSON. */
export const encodeCursor = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
export function decodeCursor<T>(query: Query, check: (v: unknown) => v is T): T | undefined {
  const raw = single(query, 'cursor');
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try { parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')); } catch { parsed = undefined; }
  if (!check(parsed)) throw fieldError('bad-query', 'cursor', 'format', 'cursor must be the "next" value of the previous page');
  return parsed;
}

/** The request body as an object of known keys (an empty body is {}). */
export function bodyObject(body: unknown, allowed: string[]): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('', 'type', 'the body must be a JSON object');
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw bad(key, 'unknown-field', `${key} is not accepted (${allowed.join(', ') || 'no fields'})`);
  }
  return body as Record<string, unknown>;
}

/** Digits of a phone number in one form: Russian 8XXXXXXXXXX / 7XXXXXXXXXX / XXXXXXXXXX become 7XXXXXXXXXX. */
export function normalizePhone(phone: unknown): string | undefined {
  if (typeof phone !== 'string') return undefined;
  const digits = phone.replace(/\D/g, '');
  if (digits.length < 5) return undefined;
  if (digits.length === 11 && (digits[0] === '8' || digits[0] === '7')) return `7${digits.slice(1)}`;
  if (digits.length === 10 && phone.trim()[0] !== '+') return `7${digits}`;
  return digits;
}

export const normalizeEmail = (email: unknown): string | undefined =>
  typeof email === 'string' && email.trim() !== '' ? email.trim().toLowerCase() : undefined;

export const isoOf = (v: unknown): string | null => (v instanceof Date ? v.toISOString() : v == null ? null : String(v));

type FilterOp = 'eq' | 'ne' | 'in' | 'gt' | 'gte' | 'lt' | 'lte' | 'contains' | 'null';
export interface ListFilter { field: string; op: FilterOp; value: unknown }

/** One page of records through the repository (the caller's permissions apply). */
export async function listRecords(ctx: PluginContext, entity: string, actor: Principal, filters: ListFilter[], options: { sort?: [string, 'asc' | 'desc'][]; limit?: number; trx?: Knex.Transaction } = {}): Promise<ApiRecord[]> {
  const result = await ctx.repository(entity).list({
    filters, sort: (options.sort ?? []).map(([field, dir]) => ({ field, dir })), limit: options.limit ?? 500, expand: [], total: false,
  }, { actor, trx: options.trx });
  return result.data;
}

export const mayRead = (actor: Principal, entity: string): boolean => actor.permissions.grant(`${entity}.read`) !== 'none';
