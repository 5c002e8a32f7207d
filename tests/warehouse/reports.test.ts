// Stock reports, JSON and CSV: on hand by location (now and as of a date), the stock ledger of a
// product, valuation as of a date, movement history, slow movers, products below their reorder
// point with a suggested purchase quantity.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { CUSTOMERS, move, ok, product, receive, ship, warehouse, type Place } from './helpers.ts';

let t: TestKubiki;
let w: Place;
let other: Place;
let a: string;
let b: string;
beforeAll(async () => {
  t = await startKubiki({ enable: ['warehouse'] });
  w = await warehouse(t, { zones: 1, bins: 2 });
  other = await warehouse(t, { zones: 1, bins: 1 });
  const units = ok(await t.api('GET', '/api/base/units?limit=10')).data as { id: string }[];
  a = await product(t, { reorderPoint: '10', reorderQuantity: '20', purchaseUnit: units[0].id, purchaseFactor: '12' });
  b = await product(t, { reorderPoint: '2', reorderQuantity: '5' });
  await receive(t, a, w.bins[0], '8', '2.00', { date: '2026-07-01' });
  await receive(t, b, w.bins[1], '6', '4.00', { date: '2026-07-02' });
  await ship(t, a, w.bins[0], '3', { date: '2026-07-10' });
  await move(t, { kind: 'transfer', product: b, quantity: '2', fromLocation: w.bins[1], toLocation: other.bins[0], date: '2026-07-11' });
  await receive(t, a, other.bins[0], '4', '2.50', { date: '2026-08-01' });
  ok(await t.api('POST', '/api/warehouse/reservations', { product: a, warehouse: w.id, quantity: '1', demand: { entity: 'sales.orders', id: 'SO-9' } }), 201);
}, 180_000);
afterAll(() => t?.close());

const csv = async (path: string) => {
  const res = await t.api('GET', path);
  expect(res.status, String(res.body)).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
  return String(res.body).replace(/^\uFEFF/, '').trim().split('\r\n');
};

describe('stock reports', () => {
  it('stock on hand by location, now and as of a date, JSON and CSV', async () => {
    const now = ok(await t.api('GET', `/api/warehouse/reports/stock-on-hand?warehouse=${w.id}`));
    expect(now.rows.map((r: Record<string, string>) => [r.location, r.product, r.onHand, r.reserved, r.available])).toEqual(expect.arrayContaining([
      [w.bins[0], a, '5.000', '0.000', '5.000'],
      [w.root, a, '0.000', '1.000', '-1.000'],
      [w.bins[1], b, '4.000', '0.000', '4.000'],
    ]));
    expect(now.rows.every((r: { location: string }) => r.location !== other.bins[0])).toBe(true);
    const july = ok(await t.api('GET', '/api/warehouse/reports/stock-on-hand?asOf=2026-07-05'));
    expect(july.rows.map((r: Record<string, string>) => [r.location, r.product, r.onHand]).sort()).toEqual([[w.bins[0], a, '8.000'], [w.bins[1], b, '6.000']].sort());
    expect(july.columns).not.toContain('reserved');
    const lines = await csv(`/api/warehouse/reports/stock-on-hand?warehouse=${other.id}&format=csv&delimiter=;`);
    expect(lines[0]).toBe('location;locationCode;product;sku;name;lot;lotNumber;onHand;reserved;available;incoming;outgoing');
    expect(lines.slice(1).map((l) => l.split(';')[7]).sort()).toEqual(['2.000', '4.000']);
    // Accept: text/csv works as format=csv does.
    const accepted = await t.api('GET', `/api/warehouse/reports/stock-on-hand?warehouse=${other.id}`, undefined, { headers: { accept: 'text/csv' } });
    expect(accepted.headers.get('content-type')).toMatch(/^text\/csv/);
  });

  it('stock ledger of a product, valuation as of a date', async () => {
    const ledger = ok(await t.api('GET', `/api/warehouse/reports/stock-ledger?product=${a}`));
    expect(ledger.rows.map((r: Record<string, string>) => [r.date, r.quantityIn, r.quantityOut, r.value, r.balanceQuantity, r.balanceValue])).toEqual([
      ['2026-07-01', '8.000', null, '16.00', '8.000', '16.00'],
      ['2026-07-10', null, '3.000', '6.00', '5.000', '10.00'],
      ['2026-08-01', '4.000', null, '10.00', '9.000', '20.00'],
    ]);
    const inOther = ok(await t.api('GET', `/api/warehouse/reports/stock-ledger?product=${b}&location=${other.root}`));
    expect(inOther.rows.map((r: Record<string, string>) => [r.date, r.quantityIn, r.balanceQuantity])).toEqual([['2026-07-11', '2.000', '2.000']]);
    const v = ok(await t.api('GET', '/api/warehouse/reports/valuation?asOf=2026-07-31'));
    expect(v.rows.map((r: Record<string, string>) => [r.product, r.quantity, r.value])).toEqual(expect.arrayContaining([[a, '5.000', '10.00'], [b, '6.000', '24.00']]));
    expect(v.totalValue).toBe('34.00');
    const lines = await csv('/api/warehouse/reports/valuation?asOf=2026-07-31&format=csv');
    expect(lines[0]).toBe('product,sku,name,quantity,value,unitCost');
    expect((await csv(`/api/warehouse/reports/stock-ledger?product=${a}&format=csv`)).length).toBe(4);
  });

  it('movement history, paged and filtered', async () => {
    const first = ok(await t.api('GET', '/api/warehouse/reports/movements?from=2026-07-01&to=2026-08-31&limit=2'));
    expect(first.rows.map((r: { date: string }) => r.date)).toEqual(['2026-07-01', '2026-07-02']);
    expect(first.next).toEqual(expect.any(String));
    const second = ok(await t.api('GET', `/api/warehouse/reports/movements?from=2026-07-01&to=2026-08-31&limit=2&cursor=${first.next}`));
    expect(second.rows.map((r: { date: string }) => r.date)).toEqual(['2026-07-10', '2026-07-11']);
    const inOther = ok(await t.api('GET', `/api/warehouse/reports/movements?warehouse=${other.id}`));
    expect(inOther.rows.map((r: { kind: string }) => r.kind)).toEqual(['transfer', 'receipt']);
    const shipments = ok(await t.api('GET', '/api/warehouse/reports/movements?kind=shipment'));
    expect(shipments.rows.every((r: { kind: string; to: string }) => r.kind === 'shipment' && r.to === 'CUSTOMERS')).toBe(true);
    expect((await csv('/api/warehouse/reports/movements?kind=shipment&format=csv'))[0]).toBe('date,move,kind,sku,quantity,from,to,lot,value,source,memo');
    expect((await t.api('GET', '/api/warehouse/reports/movements?cursor=nonsense')).body).toMatchObject({ status: 400, field: 'cursor' });
    void CUSTOMERS;
  });

  it('slow movers and products below their reorder point', async () => {
    const slow = ok(await t.api('GET', '/api/warehouse/reports/slow-movers?days=30&asOf=2026-09-15'));
    // A shipped last on 10 July (67 days before), B never.
    expect(slow.rows.map((r: Record<string, unknown>) => [r.product, r.lastShipment, r.daysSinceShipment])).toEqual([[b, null, null], [a, '2026-07-10', 67]]);
    expect(ok(await t.api('GET', '/api/warehouse/reports/slow-movers?days=90&asOf=2026-09-15')).rows.map((r: { product: string }) => r.product)).toEqual([b]);
    // A: 9 on hand − 1 reserved = 8 ≤ 10 → max(20, 10 − 8) = 20, in boxes of 12: 2 boxes = 24.
    const reorder = ok(await t.api('GET', '/api/warehouse/reports/reorder'));
    expect(reorder.rows.map((r: Record<string, unknown>) => [r.product, r.projected, r.suggestedQuantity, r.suggestedPurchaseUnits])).toEqual([[a, '8.000', '24.000', '2']]);
    // In the other warehouse only: A has 4 (→ 20, 2 boxes = 24), B has 2 ≤ 2 (→ 5).
    const inOther = ok(await t.api('GET', `/api/warehouse/reports/reorder?warehouse=${other.id}`));
    expect(inOther.rows.map((r: Record<string, unknown>) => [r.product, r.projected, r.suggestedQuantity])).toEqual([[a, '4.000', '24.000'], [b, '2.000', '5.000']]);
    expect((await csv('/api/warehouse/reports/reorder?format=csv'))[0]).toMatch(/^product,sku,name,onHand/);
  });
});
