// Places, product stock settings and the move ledger through REST: the location tree, kinds of
// moves between location types, units, lots, serial numbers (never twice in stock), planned moves
// (incoming/outgoing), reversals instead of edits, negative stock by warehouse setting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { CUSTOMERS, INVENTORY_LOSS, SCRAP, SUPPLIERS, TRANSIT, availability, move, ok, product, receive, ship, snapshot, warehouse, type Place } from './helpers.ts';

let t: TestKubiki;
let w: Place;
beforeAll(async () => {
  t = await startKubiki({ enable: ['warehouse'] });
  w = await warehouse(t, { zones: 2, bins: 2 });
}, 180_000);
afterAll(() => t?.close());

describe('places', () => {
  it('keeps locations as a tree under each warehouse: root, zones, bins', async () => {
    const wh = ok(await t.api('GET', `/api/warehouse/warehouses/${w.id}`));
    expect(wh).toMatchObject({ reservationPolicy: 'refuse', allowNegativeStock: false, location: w.root });
    const root = ok(await t.api('GET', `/api/warehouse/locations/${w.root}`));
    expect(root).toMatchObject({ type: 'internal', level: 'warehouse', warehouse: w.id, path: '/', code: wh.code });
    const bin = ok(await t.api('GET', `/api/warehouse/locations/${w.bins[3]}`));
    expect(bin).toMatchObject({ type: 'internal', level: 'bin', warehouse: w.id, parent: w.zones[1], path: `/${w.root}/${w.zones[1]}/` });
    // Virtual locations come with the plugin.
    const virtual = ok(await t.api('GET', '/api/warehouse/locations?type[ne]=internal&sort=code'));
    expect(virtual.data.map((l: { code: string; type: string }) => `${l.code}:${l.type}`)).toEqual(['CUSTOMERS:customer', 'INVENTORY-LOSS:inventory-loss', 'SCRAP:scrap', 'SUPPLIERS:supplier', 'TRANSIT:transit']);
  });

  it('refuses what would break the tree', async () => {
    const before = await snapshot(t);
    // An internal location lives under a warehouse; a bin holds nothing; type and parent are fixed.
    expect((await t.api('POST', '/api/warehouse/locations', { code: 'LOOSE', name: 'Loose', type: 'internal' })).body).toMatchObject({ status: 400, field: 'parent', rule: 'required' });
    expect((await t.api('POST', '/api/warehouse/locations', { code: 'IN-BIN', name: 'x', type: 'internal', parent: w.bins[0] })).body).toMatchObject({ status: 400, field: 'parent', rule: 'level' });
    expect((await t.api('POST', '/api/warehouse/locations', { code: 'X', name: 'x', type: 'scrap', parent: w.zones[0] })).body).toMatchObject({ status: 400, field: 'parent', rule: 'type' });
    expect((await t.api('POST', '/api/warehouse/locations', { code: 'X', name: 'x', type: 'internal', parent: w.zones[0], warehouse: '00000000-0000-7000-8000-000000000009' })).body).toMatchObject({ status: 400, field: 'warehouse', rule: 'read-only' });
    expect((await t.api('PATCH', `/api/warehouse/locations/${w.bins[0]}`, { type: 'scrap' })).body).toMatchObject({ status: 400, field: 'type', rule: 'immutable' });
    expect((await t.api('PATCH', `/api/warehouse/locations/${w.bins[0]}`, { parent: w.zones[1] })).body).toMatchObject({ status: 400, field: 'parent', rule: 'immutable' });
    // A warehouse is made through its route (with its root location), never by a bare record write.
    expect(await snapshot(t)).toEqual(before);
    // Names and codes may change.
    expect(ok(await t.api('PATCH', `/api/warehouse/locations/${w.bins[0]}`, { name: 'Bin A' })).name).toBe('Bin A');
  });
});

describe('product stock settings', () => {
  it('copies the catalogue name and fixes tracking once the product has moves', async () => {
    const p = await product(t);
    const s = ok(await t.api('POST', '/api/warehouse/products', { product: p, tracking: 'none', reorderPoint: '5', weight: '1.250' }), 201);
    expect(s.sku).toMatch(/^P-/);
    await receive(t, p, w.bins[0], '1', '1.00');
    expect((await t.api('PATCH', `/api/warehouse/products/${s.id}`, { tracking: 'lot' })).body).toMatchObject({ status: 409, field: 'tracking', rule: 'no-moves' });
    expect(ok(await t.api('PATCH', `/api/warehouse/products/${s.id}`, { reorderPoint: '8' })).reorderPoint).toBe('8.000');
    // A second settings record for the same product is a unique violation.
    expect((await t.api('POST', '/api/warehouse/products', { product: p })).status).toBe(409);
  });

  it('converts purchase and sales units into the stock unit', async () => {
    const units = ok(await t.api('GET', '/api/base/units?limit=100')).data as { id: string; code: string }[];
    const [box, pack] = [units[0].id, units[1].id];
    const p = await product(t, { purchaseUnit: box, purchaseFactor: '12', salesUnit: pack, salesFactor: '0.5' });
    const r = await move(t, { kind: 'receipt', product: p, quantity: '2.5', unit: box, fromLocation: SUPPLIERS, toLocation: w.bins[0], unitCost: '3.00' });
    expect(r).toMatchObject({ quantity: '30.000', enteredQuantity: '2.500', enteredUnit: box, value: '90.00' });
    const s = await move(t, { kind: 'shipment', product: p, quantity: '4', unit: pack, fromLocation: w.bins[0], toLocation: CUSTOMERS });
    expect(s).toMatchObject({ quantity: '2.000', value: '6.00' });
    const unknownUnit = await t.api('POST', '/api/warehouse/moves', { kind: 'shipment', product: p, quantity: '1', unit: units[2].id, fromLocation: w.bins[0], toLocation: CUSTOMERS });
    expect(unknownUnit.body).toMatchObject({ status: 400, field: 'unit', rule: 'unit' });
  });
});

describe('moves', () => {
  it('fits each kind to its locations and keeps the balances per location', async () => {
    const p = await product(t);
    await receive(t, p, w.bins[0], '10', '2.00');
    await move(t, { kind: 'transfer', product: p, quantity: '3', fromLocation: w.bins[0], toLocation: w.bins[2] });
    await move(t, { kind: 'transfer', product: p, quantity: '1', fromLocation: w.bins[2], toLocation: TRANSIT });
    await move(t, { kind: 'scrap', product: p, quantity: '1', fromLocation: w.bins[0], toLocation: SCRAP });
    await move(t, { kind: 'adjustment', product: p, quantity: '2', fromLocation: INVENTORY_LOSS, toLocation: w.bins[1] });
    await move(t, { kind: 'adjustment', product: p, quantity: '1', fromLocation: w.bins[1], toLocation: INVENTORY_LOSS });
    await ship(t, p, w.bins[0], '2');
    expect(await availability(t, p, w.bins[0])).toMatchObject({ onHand: '4.000' });
    expect(await availability(t, p, w.zones[0])).toMatchObject({ onHand: '5.000' });
    expect(await availability(t, p, w.zones[1])).toMatchObject({ onHand: '2.000' });
    expect(await availability(t, p, w.root)).toMatchObject({ onHand: '7.000' });
    expect(await availability(t, p, TRANSIT)).toMatchObject({ onHand: '1.000' });
    // Valued stock counts transit too: 10 in, 1 scrapped, +2 −1 adjusted, 2 shipped = 8.
    const v = ok(await t.api('GET', `/api/warehouse/reports/valuation?product=${p}`));
    expect(v.rows[0]).toMatchObject({ quantity: '8.000', value: '16.00' });

    const service = await product(t, {}, { kind: 'service' });
    const before = await snapshot(t);
    const wrong = [
      [{ kind: 'receipt', fromLocation: CUSTOMERS, toLocation: SCRAP }, 'kind', 'locations'],
      [{ kind: 'shipment', fromLocation: SUPPLIERS, toLocation: CUSTOMERS }, 'kind', 'locations'],
      [{ kind: 'transfer', fromLocation: w.bins[0], toLocation: CUSTOMERS }, 'kind', 'locations'],
      [{ kind: 'scrap', fromLocation: w.bins[0], toLocation: INVENTORY_LOSS }, 'kind', 'locations'],
      [{ kind: 'transfer', fromLocation: w.bins[0], toLocation: w.bins[0] }, 'toLocation', 'different'],
      [{ kind: 'shipment', fromLocation: w.bins[0], toLocation: CUSTOMERS, unitCost: '1.00' }, 'unitCost', 'receipts-only'],
      [{ kind: 'shipment', fromLocation: w.bins[0], toLocation: '00000000-0000-7000-8000-000000000001' }, 'toLocation', 'x-ref'],
    ] as const;
    for (const [body, field, rule] of wrong) {
      const res = await t.api('POST', '/api/warehouse/moves', { product: p, quantity: '1', ...body });
      expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(400);
      expect(res.body).toMatchObject({ field, rule });
    }
    // Not more than the bin has, even when the warehouse has more.
    expect((await t.api('POST', '/api/warehouse/moves', { kind: 'shipment', product: p, quantity: '5', fromLocation: w.bins[0], toLocation: CUSTOMERS })).body).toMatchObject({ status: 409, code: 'warehouse.insufficient-stock', available: '4.000' });
    // A service is not kept in stock.
    expect((await t.api('POST', '/api/warehouse/moves', { kind: 'receipt', product: service, quantity: '1', fromLocation: SUPPLIERS, toLocation: w.bins[0] })).body).toMatchObject({ status: 400, field: 'product', rule: 'stockable' });
    expect(await snapshot(t)).toEqual(before);
  });

  it('is append-only: no edits, no deletions, corrected by a reversal', async () => {
    const p = await product(t);
    const r = await receive(t, p, w.bins[0], '5', '4.00', { source: { entity: 'purchasing.orders', id: 'PO-7', line: '1' } });
    expect(r).toMatchObject({ sourceEntity: 'purchasing.orders', sourceId: 'PO-7', sourceLine: '1' });
    const before = await snapshot(t);
    expect((await t.api('PATCH', `/api/warehouse/moves/${r.id}`, { quantity: '6' })).body).toMatchObject({ status: 409, code: 'warehouse.move-posted' });
    expect((await t.api('DELETE', `/api/warehouse/moves/${r.id}`)).body).toMatchObject({ status: 409, code: 'warehouse.move-posted' });
    expect(await snapshot(t)).toEqual(before);
    const back = ok(await t.api('POST', `/api/warehouse/moves/${r.id}/reverse`, { memo: 'wrong supplier' }), 201);
    expect(back).toMatchObject({ reverses: r.id, fromLocation: w.bins[0], toLocation: SUPPLIERS, quantity: '5.000', value: '20.00', memo: 'wrong supplier', sourceId: 'PO-7' });
    expect(await availability(t, p, w.bins[0])).toMatchObject({ onHand: '0.000' });
    expect(ok(await t.api('GET', `/api/warehouse/moves/${r.id}`))).toMatchObject({ quantity: '5.000', status: 'done' });
  });

  it('reverses a move once even when clients race to reverse it (409 reversed-once, never a 500)', async () => {
    const p = await product(t);
    const r = await receive(t, p, w.bins[0], '5', '1.00');
    const answers = await Promise.all(Array.from({ length: 6 }, () => t.api('POST', `/api/warehouse/moves/${r.id}/reverse`, {})));
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    for (const a of answers.filter((x) => x.status === 409)) expect(a.body).toMatchObject({ field: 'id', rule: 'reversed-once' });
    expect(await availability(t, p, w.bins[0])).toMatchObject({ onHand: '0.000' });
  });

  it('plans moves as incoming and outgoing, then completes or cancels them', async () => {
    const p = await product(t);
    const planned = await move(t, { kind: 'receipt', status: 'planned', date: '2026-12-10', product: p, quantity: '8', fromLocation: SUPPLIERS, toLocation: w.bins[0], unitCost: '2.50' });
    expect(planned).toMatchObject({ status: 'planned', valuation: 'in' });
    expect(planned.value).toBeUndefined();
    expect(await availability(t, p, w.root)).toMatchObject({ onHand: '0.000', incoming: '8.000' });
    const done = ok(await t.api('POST', `/api/warehouse/moves/${planned.id}/complete`, {}));
    expect(done).toMatchObject({ status: 'done', value: '20.00' });
    expect(await availability(t, p, w.root)).toMatchObject({ onHand: '8.000', incoming: '0.000' });
    const out = await move(t, { kind: 'shipment', status: 'planned', product: p, quantity: '3', fromLocation: w.bins[0], toLocation: CUSTOMERS });
    expect(await availability(t, p, w.root)).toMatchObject({ outgoing: '3.000', onHand: '8.000' });
    expect(ok(await t.api('POST', `/api/warehouse/moves/${out.id}/cancel`))).toMatchObject({ status: 'cancelled' });
    expect(await availability(t, p, w.root)).toMatchObject({ outgoing: '0.000', onHand: '8.000' });
    expect((await t.api('POST', `/api/warehouse/moves/${out.id}/complete`, {})).body).toMatchObject({ status: 409, code: 'warehouse.move-posted' });
  });

  it('allows negative stock only where the warehouse says so', async () => {
    const loose = await warehouse(t, { allowNegativeStock: true, bins: 1 });
    const p = await product(t);
    await receive(t, p, loose.bins[0], '2', '10.00');
    const s = await ship(t, p, loose.bins[0], '5');
    // 2 at 10.00, the 3 beyond stock at the last cost.
    expect(s.value).toBe('50.00');
    expect(await availability(t, p, loose.root)).toMatchObject({ onHand: '-3.000' });
    expect((await receive(t, p, loose.bins[0], '4', '12.00')).value).toBe('48.00');
    expect(await availability(t, p, loose.root)).toMatchObject({ onHand: '1.000' });
  });
});

describe('lots and serial numbers', () => {
  it('keeps lot-tracked stock per lot', async () => {
    const p = await product(t, { tracking: 'lot' });
    const a = await receive(t, p, w.bins[0], '5', '1.00', { lotNumber: 'A-1' });
    const again = await receive(t, p, w.bins[0], '2', '1.00', { lotNumber: 'A-1' });
    expect(again.lot).toBe(a.lot);
    await receive(t, p, w.bins[0], '3', '1.00', { lotNumber: 'B-1' });
    expect((await t.api('POST', '/api/warehouse/moves', { kind: 'shipment', product: p, quantity: '8', lot: a.lot, fromLocation: w.bins[0], toLocation: CUSTOMERS })).body).toMatchObject({ status: 409, available: '7.000' });
    await ship(t, p, w.bins[0], '7', { lot: a.lot });
    const rows = ok(await t.api('GET', `/api/warehouse/reports/stock-on-hand?product=${p}`)).rows;
    expect(rows.map((r: { lotNumber: string; onHand: string }) => `${r.lotNumber}:${r.onHand}`)).toEqual(['B-1:3.000']);
    // A lot number is made by a receipt only; an untracked product takes no lot.
    expect((await t.api('POST', '/api/warehouse/moves', { kind: 'transfer', product: p, quantity: '1', lotNumber: 'C', fromLocation: w.bins[0], toLocation: w.bins[1] })).body).toMatchObject({ field: 'lotNumber', rule: 'receipts-only' });
    const plain = await product(t);
    expect((await t.api('POST', '/api/warehouse/moves', { kind: 'receipt', product: plain, quantity: '1', lotNumber: 'C', fromLocation: SUPPLIERS, toLocation: w.bins[0] })).body).toMatchObject({ field: 'lotNumber', rule: 'tracking' });
  });

  it('has a serial number in stock at most once and moves it only from where it is', async () => {
    const p = await product(t, { tracking: 'serial' });
    await receive(t, p, w.bins[0], '3', '100.00', { serials: ['S1', 'S2', 'S3'] });
    const before = await snapshot(t);
    const twice = await t.api('POST', '/api/warehouse/moves', { kind: 'receipt', product: p, quantity: '1', fromLocation: SUPPLIERS, toLocation: w.bins[1], unitCost: '1.00', serials: ['S2'] });
    expect(twice.body).toMatchObject({ status: 409, code: 'warehouse.serial-in-stock', field: 'serials', serial: 'S2' });
    const elsewhere = await t.api('POST', '/api/warehouse/moves', { kind: 'transfer', product: p, quantity: '1', fromLocation: w.bins[1], toLocation: w.bins[2], serials: ['S1'] });
    expect(elsewhere.body).toMatchObject({ status: 409, code: 'warehouse.serial-not-found', serial: 'S1' });
    expect((await t.api('POST', '/api/warehouse/moves', { kind: 'shipment', product: p, quantity: '2', fromLocation: w.bins[0], toLocation: CUSTOMERS, serials: ['S1'] })).body).toMatchObject({ status: 400, field: 'serials', rule: 'count' });
    expect((await t.api('POST', '/api/warehouse/moves', { kind: 'shipment', product: p, quantity: '1.5', fromLocation: w.bins[0], toLocation: CUSTOMERS, serials: ['S1'] })).body).toMatchObject({ status: 400, field: 'quantity', rule: 'integer' });
    expect(await snapshot(t)).toEqual(before);
    await move(t, { kind: 'transfer', product: p, quantity: '1', fromLocation: w.bins[0], toLocation: w.bins[2], serials: ['S1'] });
    await ship(t, p, w.bins[0], '1', { serials: ['S2'] });
    const serials = ok(await t.api('GET', `/api/warehouse/serials?product=${p}`)).data;
    expect(serials.map((s: { serial: string; location: string | null }) => [s.serial, s.location])).toEqual([['S1', w.bins[2]], ['S2', null], ['S3', w.bins[0]]]);
    // Shipped, it may come back (a return).
    await move(t, { kind: 'receipt', product: p, quantity: '1', fromLocation: CUSTOMERS, toLocation: w.bins[1], serials: ['S2'] });
    // A batch naming one serial twice is refused before anything happens.
    const batch = await t.api('POST', '/api/warehouse/moves/batch', { moves: [
      { kind: 'receipt', product: p, quantity: '1', fromLocation: SUPPLIERS, toLocation: w.bins[1], unitCost: '1.00', serials: ['S9'] },
      { kind: 'receipt', product: p, quantity: '1', fromLocation: SUPPLIERS, toLocation: w.bins[2], unitCost: '1.00', serials: ['S9'] },
    ] });
    expect(batch.body).toMatchObject({ status: 400, field: 'moves.1.serials', rule: 'unique' });
  });
});

describe('batches', () => {
  it('posts many moves in one transaction, all or none, naming the failing one', async () => {
    const p = await product(t);
    const q = await product(t);
    const res = ok(await t.api('POST', '/api/warehouse/moves/batch', { moves: [
      { kind: 'receipt', product: p, quantity: '5', fromLocation: SUPPLIERS, toLocation: w.bins[0], unitCost: '1.00', date: '2026-06-02' },
      { kind: 'receipt', product: q, quantity: '5', fromLocation: SUPPLIERS, toLocation: w.bins[0], unitCost: '2.00', date: '2026-06-01' },
      { kind: 'shipment', product: p, quantity: '2', fromLocation: w.bins[0], toLocation: CUSTOMERS, date: '2026-06-03' },
    ] }), 201);
    expect(res.data.map((m: { product: string; value: string }) => [m.product, m.value])).toEqual([[p, '5.00'], [q, '10.00'], [p, '2.00']]);
    const before = await snapshot(t);
    const bad = await t.api('POST', '/api/warehouse/moves/batch', { moves: [
      { kind: 'receipt', product: p, quantity: '5', fromLocation: SUPPLIERS, toLocation: w.bins[0], unitCost: '1.00' },
      { kind: 'shipment', product: q, quantity: '50', fromLocation: w.bins[0], toLocation: CUSTOMERS },
    ] });
    expect(bad.body).toMatchObject({ status: 409, code: 'warehouse.insufficient-stock', field: 'moves.1.quantity' });
    expect(await snapshot(t)).toEqual(before);
  });
});
