import type { Knex } from 'knex';
import { KubikiError, type PluginContext, type Principal } from 'kubiki/plugin';
import { dec, elevated, invalid, isUuid, qty } from '../util.ts';

// What the order documents (purchase orders, receipts, sales orders, shipments, trips) share.

/** The fixed outside locations the seeds ship (plugins/warehouse/seeds/locations.json). */
export const SUPPLIERS = '019b0000-0000-7000-8000-000000000001';
export const CUSTOMERS = '019b0000-0000-7000-8000-000000000002';

/** A line of a document, as base.document-lines stores it. */
export interface OrderLine {
  product?: string;
  description: string;
  quantity: string;
  price: string;
  discountPercent?: string;
  vatRate: string;
  [more: string]: unknown;
}

export type Row = Record<string, any>;

/** What a lifecycle transition hands its action: `{record, input, transition: {name, from, to}}`. */
export interface Moment { id: string; from: string; input: Record<string, unknown> }

export function momentOf(input: Record<string, unknown>, action: string, route: string): Moment {
  const record = input.record as { id?: unknown } | undefined;
  const transition = input.transition as { from?: unknown } | undefined;
  if (!record || typeof record !== 'object' || !isUuid(record.id) || !transition || typeof transition !== 'object') {
    throw new KubikiError('validation-failed', `warehouse.${action} runs as a lifecycle transition's action; a workflow takes the transition (or calls ${route})`);
  }
  return { id: record.id, from: String(transition.from), input: (input.input ?? {}) as Record<string, unknown> };
}

/** Locks a row of one of the warehouse's tables FOR UPDATE, or 404 naming the entity. */
export async function lockRow(ctx: PluginContext, table: string, entity: string, id: string, trx: Knex.Transaction): Promise<Row> {
  const row = await ctx.table(table, trx).where({ id }).forUpdate().first();
  if (!row) throw new KubikiError('not-found', `${entity} ${id} does not exist`, { extra: { entity, id } });
  return row as Row;
}

/** Next number of a series, e.g. PO-2026-000124: gapless, taken in the caller's transaction (a rollback gives it back). */
export async function nextNumber(ctx: PluginContext, prefix: string, date: string, trx: Knex.Transaction | Knex): Promise<string> {
  const key = `${prefix}-${date.slice(0, 4)}`;
  const [row] = await ctx.table('warehouse_counters', trx).insert({ key, value: 1 }).onConflict('key')
    .merge({ value: trx.raw('warehouse_counters.value + 1') }).returning('value');
  return `${key}-${String(row.value).padStart(6, '0')}`;
}

/** The order code's writes to its own and the stock layer's records: whoever took the step, audited as them. */
export const orderWriter = (actor: Principal): Principal =>
  elevated(actor, ['warehouse.moves.post', 'warehouse.reservations.reserve', 'warehouse.reservations.read', 'warehouse.lots.create',
    'warehouse.purchaseOrders.update', 'warehouse.receipts.create', 'warehouse.salesOrders.update', 'warehouse.shipments.create',
    'warehouse.shipments.update', 'warehouse.trips.update']);

/** Per-line quantities (received, shipped) as stored: one 3-decimal string per line. */
export const quantities = (values: unknown, length: number): string[] =>
  Array.from({ length }, (_, i) => qty(Array.isArray(values) && values[i] !== undefined && values[i] !== null ? dec(values[i]) : 0));

/**
 * Checks request lines that point at document lines by position (`{line, …}`): each line exists
 * (`lines.N.line` maximum) and is named once (`lines.N.line` unique).
 */
export function checkLineRefs(refs: readonly { line: number }[], count: number): void {
  const seen = new Set<number>();
  refs.forEach((r, i) => {
    if (r.line >= count) throw invalid(`lines.${i}.line`, 'maximum', `lines.${i}.line: the order has ${count} line${count === 1 ? '' : 's'} (0–${count - 1}); there is no line ${r.line}`);
    if (seen.has(r.line)) throw invalid(`lines.${i}.line`, 'unique', `lines.${i}.line: order line ${r.line} is named twice`);
    seen.add(r.line);
  });
}

/** A document line with another quantity (a receipt's or shipment's part of an order line). */
export const withQuantity = (line: OrderLine, quantity: string): OrderLine => ({ ...line, quantity });

/** The warehouse record (root location, reservation policy), or 404. */
export async function warehouseOf(ctx: PluginContext, id: string, trx: Knex.Transaction): Promise<Row> {
  const w = await ctx.table('warehouse_warehouses', trx).where({ id }).first();
  if (!w) throw new KubikiError('not-found', `warehouse.warehouses ${id} does not exist`);
  return w as Row;
}

/** An internal location of `warehouse` (its root or under it), or 400 naming `field`. */
export async function checkLocationIn(ctx: PluginContext, location: string, warehouse: string, field: string, trx: Knex.Transaction): Promise<void> {
  const l = await ctx.table('warehouse_locations', trx).where({ id: location }).first('id', 'type', 'warehouse', 'code');
  if (!l) throw invalid(field, 'x-ref', `${field}: no warehouse.locations record ${location}`);
  if (l.type !== 'internal' || l.warehouse !== warehouse) throw invalid(field, 'warehouse', `${field}: location ${l.code} is not an internal location of the order's warehouse`);
}

/** Totals of a document with lines (sales order, shipment, receipt), as the money module computes them. */
export function documentFields(ctx: PluginContext, fields: Readonly<Row>): Row {
  const lines = Array.isArray(fields.lines) ? (fields.lines as OrderLine[]) : [];
  const t = ctx.money.totals(lines, { pricesIncludeVat: fields.pricesIncludeVat === true });
  return { subtotal: t.subtotal, vatTotal: t.vatTotal, total: t.total };
}

