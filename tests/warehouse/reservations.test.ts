// Reservations against demand lines: refused beyond available or back-ordered by the warehouse's
// setting, released, consumed by shipments, filled; race-free under concurrency (20 clients for
// 10 units leave exactly 10 reservations), products never block each other, and after random
// concurrent traffic the balances equal what the ledger says.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onPostgres } from '../helpers/shared-database.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { CUSTOMERS, SUPPLIERS, availability, move, ok, product, receive, recomputedBalances, ship, storedBalances, warehouse, type Place } from './helpers.ts';

let t: TestKubiki;
let w: Place;
let backorders: Place;
beforeAll(async () => {
  t = await startKubiki({ enable: ['warehouse'] });
  w = await warehouse(t, { zones: 2, bins: 2 });
  backorders = await warehouse(t, { reservationPolicy: 'backorder' });
}, 180_000);
afterAll(() => t?.close());

let line = 0;
const demand = () => ({ entity: 'sales.orders', id: 'SO-1', line: String(++line) });
const reserve = (body: Record<string, unknown>) => t.api('POST', '/api/warehouse/reservations', { demand: demand(), ...body });

describe('reservations', () => {
  it('holds stock in a warehouse: available drops, the rest of the warehouse sees it', async () => {
    const p = await product(t);
    await receive(t, p, w.bins[0], '6', '1.00');
    await receive(t, p, w.bins[2], '4', '1.00');
    const r = ok(await reserve({ product: p, warehouse: w.id, quantity: '7', reference: 'SO-1/1' }), 201);
    expect(r).toMatchObject({ location: w.root, quantity: '7.000', reserved: '7.000', backordered: '0.000', status: 'active' });
    expect(await availability(t, p, w.root)).toMatchObject({ onHand: '10.000', reserved: '7.000', available: '3.000' });
    // A zone's own stock is not reserved there, but taking more than the warehouse has free is refused:
    // bin 0 holds 6, yet only 3 are free in the warehouse.
    const taken = await t.api('POST', '/api/warehouse/moves', { kind: 'shipment', product: p, quantity: '4', fromLocation: w.bins[0], toLocation: CUSTOMERS });
    expect(taken.status).toBe(409);
    expect(taken.body).toMatchObject({ code: 'warehouse.insufficient-stock', field: 'quantity', available: '3.000', requested: '4.000' });
    // Moving stock inside the warehouse is fine: nothing leaves it.
    await move(t, { kind: 'transfer', product: p, quantity: '6', fromLocation: w.bins[0], toLocation: w.bins[1] });
    // More than is free: refused, nothing reserved.
    const refused = await reserve({ product: p, warehouse: w.id, quantity: '4' });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'warehouse.insufficient-stock', field: 'quantity', available: '3.000', requested: '4.000' });
    // The same demand line again answers its reservation.
    const again = await t.api('POST', '/api/warehouse/reservations', { product: p, warehouse: w.id, quantity: '7', demand: { entity: 'sales.orders', id: 'SO-1', line: String(line - 1) } });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(r.id);
  });

  it('is consumed by shipments naming it and released when no longer needed', async () => {
    const p = await product(t);
    await receive(t, p, w.bins[0], '10', '2.00');
    const r = ok(await reserve({ product: p, warehouse: w.id, quantity: '6' }), 201);
    const s = await ship(t, p, w.bins[0], '4', { reservation: r.id });
    expect(s.reservation).toBe(r.id);
    expect(ok(await t.api('GET', `/api/warehouse/reservations/${r.id}`))).toMatchObject({ consumed: '4.000', status: 'active' });
    expect(await availability(t, p, w.root)).toMatchObject({ onHand: '6.000', reserved: '2.000', available: '4.000' });
    // Not more than it holds.
    const over = await t.api('POST', '/api/warehouse/moves', { kind: 'shipment', product: p, quantity: '3', fromLocation: w.bins[0], toLocation: CUSTOMERS, reservation: r.id });
    expect(over.status).toBe(409);
    expect(over.body).toMatchObject({ field: 'quantity', rule: 'reservation' });
    // Partly released, then the rest shipped: done.
    expect(ok(await t.api('POST', `/api/warehouse/reservations/${r.id}/release`, { quantity: '1' }))).toMatchObject({ released: '1.000', status: 'active' });
    await ship(t, p, w.bins[0], '1', { reservation: r.id });
    expect(ok(await t.api('GET', `/api/warehouse/reservations/${r.id}`))).toMatchObject({ consumed: '5.000', released: '1.000', status: 'done' });
    const closed = await t.api('POST', '/api/warehouse/moves', { kind: 'shipment', product: p, quantity: '1', fromLocation: w.bins[0], toLocation: CUSTOMERS, reservation: r.id });
    expect(closed.body).toMatchObject({ status: 409, code: 'warehouse.reservation-closed', field: 'reservation' });
    expect(await availability(t, p, w.root)).toMatchObject({ reserved: '0.000' });
    // Released entirely: closed, its stock free again.
    const r2 = ok(await reserve({ product: p, warehouse: w.id, quantity: '3' }), 201);
    expect(ok(await t.api('POST', `/api/warehouse/reservations/${r2.id}/release`, {}))).toMatchObject({ released: '3.000', status: 'released' });
    expect((await t.api('POST', `/api/warehouse/reservations/${r2.id}/release`, {})).body).toMatchObject({ status: 409, code: 'warehouse.reservation-closed' });
    expect(await availability(t, p, w.root)).toMatchObject({ reserved: '0.000' });
    // Reservations are never edited directly.
    expect((await t.api('PATCH', `/api/warehouse/reservations/${r2.id}`, { quantity: '1' })).status).toBe(409);
    expect((await t.api('DELETE', `/api/warehouse/reservations/${r2.id}`)).status).toBe(409);
  });

  it('back-orders beyond available where the warehouse says so, and fills the back-order when stock arrives', async () => {
    const p = await product(t);
    await receive(t, p, backorders.bins[0], '3', '1.00');
    const r = ok(await reserve({ product: p, warehouse: backorders.id, quantity: '5' }), 201);
    expect(r).toMatchObject({ quantity: '5.000', reserved: '3.000', backordered: '2.000', status: 'active' });
    expect(await availability(t, p, backorders.root)).toMatchObject({ available: '0.000' });
    expect(ok(await t.api('POST', `/api/warehouse/reservations/${r.id}/fill`))).toMatchObject({ reserved: '3.000', backordered: '2.000' });
    await receive(t, p, backorders.bins[1], '10', '1.00');
    expect(ok(await t.api('POST', `/api/warehouse/reservations/${r.id}/fill`))).toMatchObject({ reserved: '5.000', backordered: '0.000' });
    expect(await availability(t, p, backorders.root)).toMatchObject({ onHand: '13.000', reserved: '5.000', available: '8.000' });
  });

  it('reserves in a zone (its stock only) and reserves lots', async () => {
    const p = await product(t);
    await receive(t, p, w.bins[0], '5', '1.00');
    await receive(t, p, w.bins[3], '5', '1.00');
    // Zone 0 has 5: a reservation there takes only its stock, though the warehouse has 10.
    const zone0 = ok(await reserve({ product: p, location: w.zones[0], quantity: '5' }), 201);
    expect(zone0.location).toBe(w.zones[0]);
    expect((await reserve({ product: p, location: w.zones[0], quantity: '1' })).body).toMatchObject({ status: 409, available: '0.000' });
    expect(await availability(t, p, w.zones[1])).toMatchObject({ available: '5.000' });
    ok(await reserve({ product: p, warehouse: w.id, quantity: '5' }), 201);
    expect(await availability(t, p, w.root)).toMatchObject({ onHand: '10.000', reserved: '10.000', available: '0.000' });

    const lotted = await product(t, { tracking: 'lot' });
    const a = await receive(t, lotted, w.bins[0], '5', '1.00', { lotNumber: 'L-A' });
    const b = await receive(t, lotted, w.bins[3], '5', '1.00', { lotNumber: 'L-B' });
    ok(await reserve({ product: lotted, warehouse: w.id, lot: a.lot, quantity: '4' }), 201);
    // Lot A has 1 left unreserved; the warehouse has 6.
    expect((await reserve({ product: lotted, warehouse: w.id, lot: a.lot, quantity: '2' })).body).toMatchObject({ status: 409, available: '1.000' });
    ok(await reserve({ product: lotted, warehouse: w.id, quantity: '5' }), 201);
    // 1 left in the warehouse: shipping 2 of lot B is refused, 1 goes.
    expect((await t.api('POST', '/api/warehouse/moves', { kind: 'shipment', product: lotted, quantity: '2', lot: b.lot, fromLocation: w.bins[3], toLocation: CUSTOMERS })).status).toBe(409);
    await ship(t, lotted, w.bins[3], '1', { lot: b.lot });
    // A lot-tracked product moves only with its lot.
    expect((await t.api('POST', '/api/warehouse/moves', { kind: 'shipment', product: lotted, quantity: '1', fromLocation: w.bins[3], toLocation: CUSTOMERS })).body).toMatchObject({ status: 400, field: 'lot', rule: 'required' });
  });
});

describe('under concurrency', () => {
  it('20 clients reserving 1 unit each of 10 available leave exactly 10 reservations', async () => {
    const p = await product(t);
    await receive(t, p, w.bins[0], '10', '1.00');
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => t.api('POST', '/api/warehouse/reservations', { product: p, warehouse: w.id, quantity: '1', demand: { entity: 'sales.orders', id: `RACE-${i}` } })));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(10);
    expect(statuses.filter((s) => s === 409)).toHaveLength(10);
    expect(answers.filter((a) => a.status === 409).every((a) => a.body.code === 'warehouse.insufficient-stock')).toBe(true);
    expect(await t.count('warehouse_reservations', { product: p, status: 'active' })).toBe(10);
    expect(await availability(t, p, w.root)).toMatchObject({ onHand: '10.000', reserved: '10.000', available: '0.000' });
    // One balance row per key: the upsert never made a second one.
    const rows = await t.k.db.table('warehouse_balances').where({ product_id: p }).select('location_id', 'lot_id');
    expect(new Set(rows.map((r: { location_id: string; lot_id: string }) => `${r.location_id}|${r.lot_id}`)).size).toBe(rows.length);
  });

  it.skipIf(!onPostgres())('two clients reserving different products never block each other (PostgreSQL: PGlite has one connection)', async () => {
    const x = await product(t);
    const y = await product(t);
    await receive(t, x, w.bins[0], '5', '1.00');
    await receive(t, y, w.bins[0], '5', '1.00');
    // Someone holds product x's balance rows (as a reservation of x does while it runs)…
    const trx = await t.k.db.knex.transaction();
    try {
      await trx.raw('select * from ??.warehouse_balances where product_id = ? for update', [t.schema, x]);
      // …a reservation of y goes through at once,
      const started = Date.now();
      const ry = await t.api('POST', '/api/warehouse/reservations', { product: y, warehouse: w.id, quantity: '1', demand: demand() });
      expect(ry.status).toBe(201);
      expect(Date.now() - started).toBeLessThan(2000);
      // …while one of x waits for the lock.
      let settled = false;
      const rx = t.api('POST', '/api/warehouse/reservations', { product: x, warehouse: w.id, quantity: '1', demand: demand() }).then((r) => { settled = true; return r; });
      await new Promise((r) => setTimeout(r, 500));
      expect(settled).toBe(false);
      await trx.commit();
      expect((await rx).status).toBe(201);
    } finally {
      if (!trx.isCompleted()) await trx.rollback();
    }
  });

  it('balances equal the ledger after random concurrent traffic (and no available stock went negative)', { timeout: 120_000 }, async () => {
    const products = await Promise.all(Array.from({ length: 6 }, () => product(t)));
    const lotted = await product(t, { tracking: 'lot' });
    const places = [...w.bins, w.root];
    let seed = 17;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const pick = <T>(list: T[]): T => list[Math.floor(rnd() * list.length)];
    const amount = () => String(1 + Math.floor(rnd() * 5));
    const reservations: string[] = [];
    const planned: string[] = [];
    const done: string[] = [];
    const statuses = new Map<number, number>();
    const client = async (c: number) => {
      for (let i = 0; i < 40; i++) {
        const p = rnd() < 0.15 ? lotted : pick(products);
        const lot = p === lotted ? { lotNumber: pick(['L1', 'L2']) } : {};
        const lotRef = async () => (p === lotted ? { lot: (await t.k.db.table('warehouse_lots').where({ product: p }).first('id'))?.id } : {});
        const r = rnd();
        let res;
        if (r < 0.3) res = await t.api('POST', '/api/warehouse/moves', { kind: 'receipt', product: p, quantity: amount(), fromLocation: SUPPLIERS, toLocation: pick(places), unitCost: `${1 + Math.floor(rnd() * 9)}.00`, ...lot });
        else if (r < 0.45) res = await t.api('POST', '/api/warehouse/moves', { kind: 'shipment', product: p, quantity: amount(), fromLocation: pick(places), toLocation: CUSTOMERS, ...(await lotRef()) });
        else if (r < 0.55) res = await t.api('POST', '/api/warehouse/moves', { kind: 'transfer', product: p, quantity: amount(), fromLocation: pick(places), toLocation: pick(places), ...(await lotRef()) });
        else if (r < 0.7) res = await t.api('POST', '/api/warehouse/reservations', { product: p, warehouse: w.id, quantity: amount(), demand: { entity: 'sales.orders', id: `RND-${c}-${i}` } });
        else if (r < 0.78 && reservations.length) res = await t.api('POST', `/api/warehouse/reservations/${pick(reservations)}/release`, {});
        else if (r < 0.86) res = await t.api('POST', '/api/warehouse/moves', { kind: 'receipt', status: 'planned', product: p, quantity: amount(), fromLocation: SUPPLIERS, toLocation: pick(places), date: '2026-12-20', ...lot });
        else if (r < 0.93 && planned.length) res = await t.api('POST', `/api/warehouse/moves/${planned.shift()}/${rnd() < 0.7 ? 'complete' : 'cancel'}`, {});
        else if (done.length) res = await t.api('POST', `/api/warehouse/moves/${pick(done)}/reverse`, {});
        else continue;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 500) throw new Error(JSON.stringify(res.body));
        if (res.status === 201 && res.body.demandEntity) reservations.push(res.body.id);
        if (res.status === 201 && res.body.status === 'planned') planned.push(res.body.id);
        if (res.status === 201 && res.body.status === 'done' && !res.body.reverses) done.push(res.body.id);
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, c) => client(c)));
    expect(statuses.get(201) ?? 0).toBeGreaterThan(100);
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
    expect(await storedBalances(t)).toEqual(await recomputedBalances(t));
    // Available (on hand − reserved) in the warehouse, and on hand in every location, never below zero.
    const rows: { product_id: string; on_hand: string; reserved: string }[] = await t.k.db.table('warehouse_balances').where({ root_id: w.root }).select('product_id', 'on_hand', 'reserved');
    expect(rows.filter((r) => Number(r.on_hand) < 0)).toEqual([]);
    const byProduct = new Map<string, number>();
    for (const r of rows) byProduct.set(r.product_id, (byProduct.get(r.product_id) ?? 0) + Number(r.on_hand) - Number(r.reserved));
    expect([...byProduct.values()].filter((v) => v < 0)).toEqual([]);
  });
});
