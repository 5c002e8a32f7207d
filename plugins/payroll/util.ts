import { Decimal } from 'decimal.js';
import { fieldError, type KubikiError, type Principal } from 'kubiki/plugin';

export { Decimal };

export const ZERO = new Decimal(0);
/** A decimal from a stored value (numeric columns come back as text); empty is zero. */
export const dec = (v: unknown): Decimal => (v === null || v === undefined || v === '' ? new Decimal(0) : new Decimal(String(v)));
/** Money: 2 decimals, half-up, printed with both. */
export const money = (d: Decimal.Value): string => new Decimal(d).toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2);
/** Rounded half-up to `places`, printed with exactly that many decimals. */
export const fixed = (d: Decimal.Value, places: number): string => new Decimal(d).toDecimalPlaces(places, Decimal.ROUND_HALF_UP).toFixed(places);
/** A decimal printed plainly, without trailing zeros ("7.2", "8"). */
export const plain = (d: Decimal.Value): string => new Decimal(d).toFixed();

export const isUuid = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
export const invalid = (field: string, rule: string, message: string): KubikiError => fieldError('validation-failed', field, rule, message);

// ── Calendar dates as YYYY-MM-DD text (UTC days: no time zone can shift them) ───────────────────
const DAY_MS = 86_400_000;
export const toDay = (date: string): number => Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10))) / DAY_MS;
export const fromDay = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10);
export const addDays = (date: string, days: number): string => fromDay(toDay(date) + days);
export const daysBetween = (a: string, b: string): number => toDay(b) - toDay(a);
/** ISO weekday: 1 Monday … 7 Sunday. */
export const isoWeekday = (date: string): number => ((new Date(toDay(date) * DAY_MS).getUTCDay() + 6) % 7) + 1;
export const daysInMonth = (period: string): number => new Date(Date.UTC(Number(period.slice(0, 4)), Number(period.slice(5, 7)), 0)).getUTCDate();
/** First and last day of a month YYYY-MM. */
export const periodRange = (period: string): { from: string; to: string } => ({ from: `${period}-01`, to: `${period}-${String(daysInMonth(period)).padStart(2, '0')}` });
export const minDate = (a: string, b: string): string => (a < b ? a : b);
export const maxDate = (a: string, b: string): string => (a > b ? a : b);
/** Every date from `from` to `to`, both included. */
export function eachDay(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = toDay(from), end = toDay(to); d <= end; d++) out.push(fromDay(d));
  return out;
}
/** The month `n` months after `period` (negative: before). */
export function shiftMonth(period: string, n: number): string {
  const index = Number(period.slice(0, 4)) * 12 + Number(period.slice(5, 7)) - 1 + n;
  return `${Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, '0')}`;
}
/** ISO week of a date: "2026-W03" and the Monday it starts on. */
export function isoWeek(date: string): { week: string; monday: string } {
  const monday = addDays(date, 1 - isoWeekday(date));
  const thursday = addDays(monday, 3);
  const year = Number(thursday.slice(0, 4));
  const week = Math.floor(daysBetween(`${year}-01-01`, thursday) / 7) + 1;
  return { week: `${year}-W${String(week).padStart(2, '0')}`, monday };
}
/** A date column as YYYY-MM-DD (the driver may hand back a Date read as UTC). */
export const dateText = (v: unknown): string => (v instanceof Date ? v.toISOString().slice(0, 10) : String(v).slice(0, 10));

/**
 * The acting user with extra grants for one payroll operation: whoever may compute a run may write
 * its payslips, and the audit trail still names them. (Only grant/has/raw are used by repositories.)
 */
export function elevated(actor: Principal, extra: readonly string[]): Principal {
  const base = actor.permissions;
  const grant = (p: string) => (extra.includes(p) ? 'all' : base.grant(p));
  const permissions = { raw: [...base.raw, ...extra], grant, has: (p: string) => grant(p) === 'all' };
  return { ...actor, permissions: permissions as unknown as Principal['permissions'] };
}

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
/** `"schema"."table"` of one of the plugin's own tables, for raw statements (taken from its query builder, quoted as knex quotes it). */
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
export function rawOf(ctx: { table(name: string): unknown }, trx?: unknown): (sql: string, bindings?: readonly unknown[]) => Promise<{ rows: any[] }> {
  const runner = (trx ?? (ctx.table('payroll_runs') as { client: unknown }).client) as { raw(sql: string, bindings: readonly unknown[]): Promise<{ rows: any[] }> };
  return (sql, bindings) => runner.raw(sql, bindings ?? []);
}
