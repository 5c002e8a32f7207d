import { expect } from 'vitest';
import type { ApiResponse, TestKubiki } from '../helpers/test-kubiki.ts';

// Shared set-up for the warehouse tests: places, products and moves through the REST API.

export const SUPPLIERS = '019b0000-0000-7000-8000-000000000001';
export const CUSTOMERS = '019b0000-0000-7000-8000-000000000002';
export const INVENTORY_LOSS = '019b0000-0000-7000-8000-000000000003';
export const SCRAP = '019b0000-0000-7000-8000-000000000004';
export const TRANSIT = '019b0000-0000-7000-8000-000000000005';

let n = 0;
const unique = () => `${Date.now().toString(36)}${(n++).toString(36)}`;

export function ok<T = any>(res: ApiResponse<T>, status = 200): T {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  return res.body;
}

export interface Place { id: string; root: string; zones: string[]; bins: string[] }

/** A warehouse with `zones` zones of `bins` bins each. */
export async function warehouse(t: TestKubiki, options: { code?: string; reservationPolicy?: 'refuse' | 'backorder'; allowNegativeStock?: boolean; zones?: number; bins?: number } = {}): Promise<Place> {
  const code = options.code ?? `W${unique()}`;
  const w = ok(await t.api('POST', '/api/warehouse/warehouses', {
    code, name: `Warehouse ${code}`, ...(options.reservationPolicy ? { reservationPolicy: options.reservationPolicy } : {}),
    ...(options.allowNegativeStock !== undefined ? { allowNegativeStock: options.allowNegativeStock } : {}),
  }), 201);
  const zones: string[] = [];
  const bins: string[] = [];
  for (let z = 0; z < (options.zones ?? 1); z++) {
    const zone = ok(await t.api('POST', '/api/warehouse/locations', { code: `${code}-Z${z}`, name: `Zone ${z}`, type: 'internal', level: 'zone', parent: w.location }), 201);
    zones.push(zone.id);
    for (let b = 0; b < (options.bins ?? 2); b++) {
      const bin = ok(await t.api('POST', '/api/warehouse/locations', { code: `${code}-Z${z}-B${b}`, name: `Bin ${z}.${b}`, type: 'internal', level: 'bin', parent: zone.id }), 201);
      bins.push(bin.id);
    }
  }
  return { id: w.id, root: w.location, zones, bins };
}

/** A catalogue product (goods) with optional stock settings. */
export async function product(t: TestKubiki, settings: Record<string, unknown> = {}, base: Record<string, unknown> = {}): Promise<string> {
  const sku = `P-${unique()}`;
  const p = ok(await t.api('POST', '/api/base/products', { sku, name: `Product ${sku}`, ...base }), 201);
  if (Object.keys(settings).length) ok(await t.api('POST', '/api/warehouse/products', { product: p.id, ...settings }), 201);
  return p.id;
}

export async function move(t: TestKubiki, body: Record<string, unknown>, status = 201, token?: string): Promise<any> {
  return ok(await t.api('POST', '/api/warehouse/moves', body, token ? { token } : {}), status);
}

export const receive = (t: TestKubiki, productId: string, to: string, quantity: string, unitCost: string, extra: Record<string, unknown> = {}) =>
  move(t, { kind: 'receipt', product: productId, quantity, fromLocation: SUPPLIERS, toLocation: to, unitCost, ...extra });

export const ship = (t: TestKubiki, productId: string, from: string, quantity: string, extra: Record<string, unknown> = {}) =>
  move(t, { kind: 'shipment', product: productId, quantity, fromLocation: from, toLocation: CUSTOMERS, ...extra });

export async function availability(t: TestKubiki, productId: string, location: string): Promise<{ onHand: string; reserved: string; available: string; incoming: string; outgoing: string }> {
  return ok(await t.api('GET', `/api/warehouse/availability?product=${productId}&location=${location}`));
}

/** Row counts of the warehouse's tables and the audit trail: "nothing written" compares two of these. */
export async function snapshot(t: TestKubiki): Promise<Record<string, number>> {
  const tables = ['warehouse_moves', 'warehouse_planned_moves', 'warehouse_postings', 'warehouse_balances', 'warehouse_reservations', 'warehouse_costs', 'warehouse_serials', 'warehouse_revaluations', 'warehouse_periods', 'warehouse_period_quantities',
    'warehouse_counts', 'warehouse_count_lines', 'warehouse_lots', 'warehouse_locations', 'warehouse_warehouses', 'warehouse_products', 'kubiki_audit', 'kubiki_outbox'];
  const out: Record<string, number> = {};
  for (const name of tables) out[name] = await t.count(name);
  // Balances are upserted; their quantities must not change either.
  const [sums] = await t.k.db.table('warehouse_balances').select(t.k.db.knex.raw('coalesce(sum(on_hand),0)::text as h, coalesce(sum(reserved),0)::text as r, coalesce(sum(incoming),0)::text as i, coalesce(sum(outgoing),0)::text as o'));
  out.balanceSums = Number(Object.values(sums as Record<string, string>).map(Number).reduce((a, b) => a * 31 + b, 7));
  return out;
}

/**
 * Balances recomputed from the ledger: on hand from the ledger's (done) moves, reserved from active
 * reservations, incoming/outgoing from planned moves — per product × location × lot, non-zero rows only.
 */
export async function recomputedBalances(t: TestKubiki): Promise<Map<string, Record<string, string>>> {
  const s = t.schema;
  const { rows } = await t.k.db.knex.raw(
    `select product_id, location_id, lot_id, sum(h)::numeric(18,3)::text as on_hand, sum(r)::numeric(18,3)::text as reserved, sum(i)::numeric(18,3)::text as incoming, sum(o)::numeric(18,3)::text as outgoing from (
       select m.product as product_id, m."toLocation" as location_id, coalesce(m.lot, '00000000-0000-0000-0000-000000000000') as lot_id, m.quantity as h, 0 as r, 0 as i, 0 as o
         from ??.warehouse_moves m join ??.warehouse_locations l on l.id = m."toLocation" and l.type in ('internal','transit') where m.status = 'done'
       union all select m.product, m."fromLocation", coalesce(m.lot, '00000000-0000-0000-0000-000000000000'), -m.quantity, 0, 0, 0
         from ??.warehouse_moves m join ??.warehouse_locations l on l.id = m."fromLocation" and l.type in ('internal','transit') where m.status = 'done'
       union all select m.product, m."toLocation", coalesce(m.lot, '00000000-0000-0000-0000-000000000000'), 0, 0, m.quantity, 0
         from ??.warehouse_planned_moves m join ??.warehouse_locations l on l.id = m."toLocation" and l.type in ('internal','transit') where m.status = 'planned'
       union all select m.product, m."fromLocation", coalesce(m.lot, '00000000-0000-0000-0000-000000000000'), 0, 0, 0, m.quantity
         from ??.warehouse_planned_moves m join ??.warehouse_locations l on l.id = m."fromLocation" and l.type in ('internal','transit') where m.status = 'planned'
       union all select r.product, r.location, coalesce(r.lot, '00000000-0000-0000-0000-000000000000'), 0, r.reserved - r.consumed - r.released, 0, 0
         from ??.warehouse_reservations r where r.status = 'active'
     ) d group by 1, 2, 3`,
    [s, s, s, s, s, s, s, s, s],
  );
  const out = new Map<string, Record<string, string>>();
  for (const r of rows as Record<string, string>[]) {
    if ([r.on_hand, r.reserved, r.incoming, r.outgoing].every((v) => Number(v) === 0)) continue;
    out.set(`${r.product_id}|${r.location_id}|${r.lot_id}`, { onHand: r.on_hand, reserved: r.reserved, incoming: r.incoming, outgoing: r.outgoing });
  }
  return out;
}

/** The balance rows as stored, non-zero ones, in the same shape. */
export async function storedBalances(t: TestKubiki): Promise<Map<string, Record<string, string>>> {
  const rows: Record<string, string>[] = await t.k.db.table('warehouse_balances').select('product_id', 'location_id', 'lot_id', 'on_hand', 'reserved', 'incoming', 'outgoing');
  const out = new Map<string, Record<string, string>>();
  for (const r of rows) {
    if ([r.on_hand, r.reserved, r.incoming, r.outgoing].every((v) => Number(v) === 0)) continue;
    out.set(`${r.product_id}|${r.location_id}|${r.lot_id}`, { onHand: r.on_hand, reserved: r.reserved, incoming: r.incoming, outgoing: r.outgoing });
  }
  return out;
}
