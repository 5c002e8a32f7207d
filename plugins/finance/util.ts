import { Decimal } from 'decimal.js';
import type { Principal } from 'kubiki/plugin';

export { Decimal };

const DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An account is named by its code or its id: only an id-shaped value is also compared with the id column. */
export const isUuid = (v: unknown): v is string => typeof v === 'string' && UUID.test(v);

/** A real calendar day YYYY-MM-DD (bank statement cells; request dates are checked by the routes' schemas). */
export function isDate(v: unknown): v is string {
  if (typeof v !== 'string' || !DATE.test(v)) return false;
  const d = new Date(`${v}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === v;
}

export const today = (): string => new Date().toISOString().slice(0, 10);

/** Rounds to 2 places half-up and prints with exactly 2 decimals. */
export const money = (d: Decimal.Value): string => new Decimal(d).toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2);

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
