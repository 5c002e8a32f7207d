import { Decimal } from 'decimal.js';
import { fieldError, type KubikiError, type Principal } from 'kubiki/plugin';

export { Decimal };

/** Lot key of untracked stock in balance rows (balances key on product × location × lot). */
export const NIL = '00000000-0000-0000-0000-000000000000';

/** Location types that hold stock (balances kept, value counted). */
export const STOCKABLE = new Set(['internal', 'transit']);

export const ZERO = new Decimal(0);
export const dec = (v: unknown): Decimal => (v === null || v === undefined || v === '' ? new Decimal(0) : new Decimal(String(v)));
/** `d` as a Decimal (a Decimal as it is: they are immutable). */
const decimalOf = (d: Decimal.Value): Decimal => (d instanceof Decimal ? d : new Decimal(d));
/** Quantities: 3 decimals, as numeric(18,3) stores them. */
export const qty = (d: Decimal.Value): string => decimalOf(d).toDecimalPlaces(3, Decimal.ROUND_HALF_UP).toFixed(3);
/** Money: 2 decimals, half-up. */
export const money = (d: Decimal.Value): string => decimalOf(d).toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2);
export const round2 = (d: Decimal): Decimal => d.toDecimalPlaces(2, Decimal.ROUND_HALF_UP);
export const round4 = (d: Decimal): Decimal => d.toDecimalPlaces(4, Decimal.ROUND_HALF_UP);
export const cost = (d: Decimal.Value): string => decimalOf(d).toDecimalPlaces(4, Decimal.ROUND_HALF_UP).toFixed(4);

export const today = (): string => new Date().toISOString().slice(0, 10);
export const isUuid = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);

export const invalid = (field: string, rule: string, message: string): KubikiError => fieldError('validation-failed', field, rule, message);

/** A date column as YYYY-MM-DD (the driver hands dates back as text; a Date is read as UTC). */
export const dateText = (v: unknown): string => (v instanceof Date ? v.toISOString().slice(0, 10) : String(v).slice(0, 10));

/**
 * The acting user with extra grants for one warehouse operation: whoever may post moves may write
 * the records posting writes (moves, reservations), and the audit trail still names them.
 */
export function elevated(actor: Principal, extra: readonly string[]): Principal {
  const base = actor.permissions;
  const grant = (p: string) => (extra.includes(p) ? 'all' : base.grant(p));
  const permissions = { raw: [...base.raw, ...extra], grant, has: (p: string) => grant(p) === 'all' };
  return { ...actor, permissions: permissions as unknown as Principal['permissions'] };
}

/** Groups items by a key, keeping first-seen order. */
export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

export const chunks = <T>(list: readonly T[], size: number): T[][] => Array.from({ length: Math.ceil(list.length / size) }, (_, i) => list.slice(i * size, i * size + size));

const refs = new WeakMap<object, Map<string, string>>();
/**
 * `"schema"."table"` of one of the plugin's own tables, for raw statements (upserts with ORDER BY,
 * jsonb_to_recordset): taken from the plugin's own query builder, so it is quoted as knex quotes it.
 */
export function tableRef(ctx: { table(name: string): { toSQL(): { sql: string } } }, name: string): string {
  let map = refs.get(ctx);
  if (!map) refs.set(ctx, (map = new Map()));
  let ref = map.get(name);
  if (!ref) {
    const sql = ctx.table(name).toSQL().sql;
    const m = /^select \* from (.+)$/.exec(sql);
    if (!m) throw new Error(`cannot name table ${name} from ${sql}`);
    ref = m[1];
    map.set(name, ref);
  }
  return ref;
}

/** `raw` of the transaction, or of the plugin's database handle outside one. */
export function rawOf(ctx: { table(name: string): unknown }, trx?: { raw: (sql: string, bindings?: readonly unknown[]) => unknown }): (sql: string, bindings?: readonly unknown[]) => any {
  if (trx) return (sql, bindings) => trx.raw(sql, bindings ?? []);
  const client = (ctx.table('warehouse_balances') as { client: { raw: (sql: string, bindings?: readonly unknown[]) => unknown } }).client;
  return (sql, bindings) => client.raw(sql, bindings ?? []);
}
