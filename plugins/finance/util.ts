import { Decimal } from 'decimal.js';
import { fieldError, type Principal } from 'kubiki/plugin';

export { Decimal };

export const MONEY = /^[0-9]{1,16}(\.[0-9]{1,2})?$/;
const DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (v: unknown): v is string => typeof v === 'string' && UUID.test(v);
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function isDate(v: unknown): v is string {
  if (typeof v !== 'string' || !DATE.test(v)) return false;
  const d = new Date(`${v}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === v;
}

export const today = (): string => new Date().toISOString().slice(0, 10);

/** Rounds to 2 places half-up and prints with exactly 2 decimals. */
export const money = (d: Decimal.Value): string => new Decimal(d).toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2);

/** A required date field of a body, or a 400 naming it. */
export function dateField(body: Record<string, unknown>, field: string, required: boolean, prefix = ''): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) {
    if (required) throw fieldError('validation-failed', prefix + field, 'required', `${prefix + field} is required (YYYY-MM-DD)`);
    return undefined;
  }
  if (!isDate(v)) throw fieldError('validation-failed', prefix + field, 'format', `${prefix + field} must be a date YYYY-MM-DD`);
  return v;
}

/** An amount: a decimal string with at most 2 decimals, > 0 unless `allowZero`. */
export function amountField(v: unknown, field: string, options: { required?: boolean; allowZero?: boolean } = {}): Decimal | undefined {
  if (v === undefined || v === null) {
    if (options.required) throw fieldError('validation-failed', field, 'required', `${field} is required (a decimal string such as "1234.50")`);
    return undefined;
  }
  if (typeof v !== 'string') throw fieldError('validation-failed', field, 'type', `${field} must be a decimal string such as "1234.50", not a ${typeof v}`);
  if (!MONEY.test(v)) throw fieldError('validation-failed', field, 'format', `${field} must be a non-negative decimal string with at most 2 decimals ("1234.50")`);
  const d = new Decimal(v);
  if (!options.allowZero && d.isZero()) throw fieldError('validation-failed', field, 'positive', `${field} must be greater than zero`);
  return d;
}

export function refuseUnknown(body: Record<string, unknown>, allowed: string[], prefix = ''): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw fieldError('validation-failed', prefix + key, 'unknown-field', `${prefix + key} is not accepted (${allowed.join(', ')})`);
  }
}

export function bodyObject(body: unknown, example: string): Record<string, unknown> {
  if (body === undefined) return {};
  if (!isObject(body)) throw fieldError('validation-failed', '', 'type', `the body must be a JSON object: ${example}`);
  return body;
}

/**
 * The acting user with extra grants for the duration of one finance operation: whoever may post an
 * invoice may write the records posting changes (the entry, the invoice's state), and the audit trail
 * still names them. (Core keeps PermissionSet internal; only grant/has/raw are used by repositories.)
 */
export function elevated(actor: Principal, extra: string[]): Principal {
  const base = actor.permissions;
  const grant = (p: string) => (extra.includes(p) ? 'all' : base.grant(p));
  const permissions = { raw: [...base.raw, ...extra], grant, has: (p: string) => grant(p) === 'all' };
  return { ...actor, permissions: permissions as unknown as Principal['permissions'] };
}

/** Query helpers: `?from=&to=&asOf=` dates, validated. */
export function queryDate(query: Record<string, unknown>, name: string): string | undefined {
  const v = query[name];
  if (v === undefined || v === '') return undefined;
  if (!isDate(v)) throw fieldError('bad-query', name, 'format', `${name} must be a date YYYY-MM-DD`);
  return v;
}
