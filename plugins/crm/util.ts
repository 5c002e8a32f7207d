import { fieldError, type ApiRecord, type PluginContext, type Principal } from 'kubiki/plugin';
import type { Knex } from 'knex';

/** Opaque keyset cursors: base64url JSON (the route's query schema has checked the characters). */
export const encodeCursor = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
export function decodeCursor<T>(raw: string | undefined, check: (v: unknown) => v is T): T | undefined {
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try { parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')); } catch { parsed = undefined; }
  if (!check(parsed)) throw fieldError('bad-query', 'cursor', 'format', 'cursor must be the "next" value of the previous page');
  return parsed;
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
