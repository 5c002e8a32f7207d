// Sales orders and shipments (contract: /api/warehouse/salesOrders, …/confirm, …/cancel,
// …/shipments; /api/warehouse/shipments/{id}/pack, …/ship, …/cancel): confirming numbers the order
// SO-<year>-NNNNNN and reserves every stock line (refused, or back-ordered by the warehouse's policy);
// a shipment takes what is left, is packed and shipped — posting the shipment moves that consume the
// reservations — and moves the order to partlyShipped, then shipped; cancelling gives the stock back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiResponse, TestKubiki } from '../helpers/test-kubiki.ts';
import { startKubiki } from '../helpers/test-kubiki.ts';
import { CUSTOMERS, availability, ok, product, receive, snapshot, warehouse, type Place } from './helpers.ts';

let t: TestKubiki;
let customer: string;
beforeAll(async () => {
  t = await startKubiki({ enable: ['warehouse'] });
  customer = ok(await t.api('POST', '/api/base/organizations', { name: 'Acme Retail', roles: ['customer'] }), 201).id;
}, 180_000);
afterAll(() => t?.close());

const YEAR = new Date().toISOString().slice(0, 4);
const TODAY = new Date().toISOString().slice(0, 10);
const as = (token?: string) => (token ? { token } : {});

/** An order line in the document-lines shape (VAT 20 % unless told). */
const line = (productId: string | undefined, quantity: string, price: string, extra: Record<string, unknown> = {}) => ({
  ...(productId ? { product: productId } : {}), description: `Item × ${quantity}`, quantity, price, vatRate: '20', ...extra,
});

const createOrder = async (w: Place, lines: unknown[], extra: Record<string, unknown> = {}, token?: string) =>
  ok(await t.api('POST', '/api/warehouse/salesOrders', { customer, warehouse: w.id, lines, ...extra }, as(token)), 201);
const confirm = (id: string, token?: string) => t.api('POST', `/api/warehouse/salesOrders/${id}/confirm`, undefined, as(token));
const confirmedOrder = async (w: Place, lines: unknown[], extra: Record<string, unknown> = {}) => ok(await confirm((await createOrder(w, lines, extra)).id));
const getOrder = async (id: string) => ok(await t.api('GET', `/api/warehouse/salesOrders/${id}`));
const getShipment = async (id: string) => ok(await t.api('GET', `/api/warehouse/shipments/${id}`));
const getReservation = async (id: string) => ok(await t.api('GET', `/api/warehouse/reservations/${id}`));
const newShipment = (orderId: string, body: unknown = {}, token?: string) => t.api('POST', `/api/warehouse/salesOrders/${orderId}/shipments`, body, as(token));
const step = (shipmentId: string, name: 'pack' | 'ship' | 'cancel', body: unknown = {}, token?: string) =>
  t.api('POST', `/api/warehouse/shipments/${shipmentId}/${name}`, body, as(token));
/** Packs and ships a shipment; answers it as stored afterwards. */
const packAndShip = async (shipmentId: string) => {
  ok(await step(shipmentId, 'pack'));
  ok(await step(shipmentId, 'ship'));
  return getShipment(shipmentId);
};
const shipmentsOf = async (orderId: string): Promise<any[]> => ok(await t.api('GET', `/api/warehouse/shipments?salesOrder=${orderId}&limit=100`)).data;
const seq = (number: string) => Number(number.slice(-6));

/** A goods product with `stock` units received into the warehouse's root location. */
async function stocked(w: Place, stock: string, settings: Record<string, unknown> = {}) {
  const p = await product(t, settings);
  if (stock !== '0') await receive(t, p, w.root, stock, '10.00');
  return p;
}

/** Row counts of the stock tables, the order tables and the audit trail, plus the order itself: equal before and after a refusal. */
async function state(orderId?: string) {
  return {
    rows: await snapshot(t),
    orders: await t.count('warehouse_sales_orders'),
    shipments: await t.count('warehouse_shipments'),
    order: orderId ? await getOrder(orderId) : null,
  };
}

function expectProblem(res: ApiResponse, status: number, members: Record<string, unknown>) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, ...members });
}

const roleUser = async (role: string) => {
  const u = ok(await t.api('POST', '/api/users', { username: `${role}-${Math.random().toString(36).slice(2, 8)}`, roles: [role] }), 201);
  return { id: u.id as string, token: ok(await t.api('POST', `/api/users/${u.id}/tokens`, { name: 'test' }), 201).token as string };
};

describe('sales orders', () => {
  it('is created as an unnumbered draft with totals, reserving nothing', async () => {
    const w = await warehouse(t);
    const a = await stocked(w, '10');
    const b = await stocked(w, '10');
    const so = await createOrder(w, [line(a, '3', '250.00', { vatRate: '22' }), line(b, '2', '99.99', { discountPercent: '10', vatRate: '10' })], { date: '2026-05-05', deliveryAddress: 'Main St 1' });
    // 3 × 250.00 = 750.00, VAT 22 % 165.00; 2 × 99.99 − 10 % = 179.982 → 179.98, VAT 10 % 17.998 → 18.00.
    expect(so).toMatchObject({ status: 'draft', customer, warehouse: w.id, subtotal: '929.98', vatTotal: '183.00', total: '1112.98', reserved: [], reservations: [], shipped: ['0.000', '0.000'] });
    expect(so.number ?? null).toBeNull();
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '10.000', reserved: '0.000', available: '10.000' });
    expect(await t.count('warehouse_reservations', { demandId: so.id })).toBe(0);
  });

  it('confirming numbers it SO-<year>-NNNNNN and reserves each stock line in its warehouse', async () => {
    const w = await warehouse(t);
    const a = await stocked(w, '10');
    const b = await stocked(w, '5');
    const service = await product(t, {}, { kind: 'service' });
    const so = await createOrder(w, [line(a, '3', '10.00'), line(b, '2', '10.00'), line(service, '1', '50.00'), line(undefined, '1', '5.00')], { date: '2026-05-05' });
    const confirmed = ok(await confirm(so.id));
    expect(confirmed).toMatchObject({ id: so.id, status: 'confirmed' });
    expect(confirmed.number).toMatch(/^SO-2026-\d{6}$/);
    // One reservation per stock line; the service and the free-text line hold nothing.
    expect(confirmed.reservations).toHaveLength(4);
    expect(confirmed.reservations.slice(2)).toEqual([null, null]);
    expect(confirmed.reserved.slice(0, 2)).toEqual(['3.000', '2.000']);
    const [ra, rb] = confirmed.reservations;
    expect(await getReservation(ra)).toMatchObject({ product: a, location: w.root, quantity: '3.000', reserved: '3.000', backordered: '0.000', status: 'active', demandEntity: 'warehouse.salesOrders', demandId: so.id, demandLine: '0' });
    expect(await getReservation(rb)).toMatchObject({ product: b, location: w.root, quantity: '2.000', reserved: '2.000', demandLine: '1' });
    expect(await t.count('warehouse_reservations', { demandId: so.id })).toBe(2);
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '10.000', reserved: '3.000', available: '7.000' });
    expect(await availability(t, b, w.root)).toMatchObject({ onHand: '5.000', reserved: '2.000', available: '3.000' });
    expect(await getOrder(so.id)).toMatchObject({ status: 'confirmed', number: confirmed.number, reservations: confirmed.reservations });
    // Confirmed once only: nothing reserved twice.
    expectProblem(await confirm(so.id), 409, { code: 'transition-not-allowed' });
    expect(await availability(t, a, w.root)).toMatchObject({ reserved: '3.000' });
    // Without a date: this year's series, next number.
    const undated = await confirmedOrder(w, [line(a, '1', '10.00')]);
    expect(undated.number).toMatch(new RegExp(`^SO-${YEAR}-\\d{6}$`));
  });

  it('refuses to confirm beyond available stock: 409 naming the line, the order still a draft, nothing reserved, no number taken', async () => {
    const w = await warehouse(t);
    const a = await stocked(w, '10');
    const b = await stocked(w, '1');
    const first = await confirmedOrder(w, [line(a, '1', '10.00')]);
    const so = await createOrder(w, [line(a, '4', '10.00'), line(b, '2', '10.00')]);
    const before = await state(so.id);
    expectProblem(await confirm(so.id), 409, { code: 'warehouse.insufficient-stock', field: 'lines.1.quantity' });
    // Line 0 could have been reserved: it was not either.
    expect(await state(so.id)).toEqual(before);
    const draft = await getOrder(so.id);
    expect(draft.status).toBe('draft');
    expect(draft.number ?? null).toBeNull();
    expect(await availability(t, a, w.root)).toMatchObject({ reserved: '1.000', available: '9.000' });
    expect(await availability(t, b, w.root)).toMatchObject({ reserved: '0.000', available: '1.000' });
    // Once the stock is there it confirms, with the number after the last one.
    await receive(t, b, w.root, '1', '10.00');
    const confirmed = ok(await confirm(so.id));
    expect(confirmed).toMatchObject({ status: 'confirmed', reserved: ['4.000', '2.000'] });
    expect(seq(confirmed.number)).toBe(seq(first.number) + 1);
    expect(await availability(t, b, w.root)).toMatchObject({ onHand: '2.000', reserved: '2.000', available: '0.000' });
  });

  it('back-orders what is missing where the warehouse\'s policy says so', async () => {
    const w = await warehouse(t, { reservationPolicy: 'backorder' });
    const a = await stocked(w, '3');
    const so = await confirmedOrder(w, [line(a, '5', '10.00')]);
    expect(so).toMatchObject({ status: 'confirmed', reserved: ['3.000'] });
    expect(await getReservation(so.reservations[0])).toMatchObject({ quantity: '5.000', reserved: '3.000', backordered: '2.000', status: 'active' });
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '3.000', reserved: '3.000', available: '0.000' });
  });

  it('cancelling gives the reserved stock back', async () => {
    const w = await warehouse(t);
    const a = await stocked(w, '10');
    const b = await stocked(w, '10');
    const so = await confirmedOrder(w, [line(a, '6', '10.00'), line(b, '4', '10.00')]);
    expect(await availability(t, a, w.root)).toMatchObject({ reserved: '6.000', available: '4.000' });
    ok(await t.api('POST', `/api/warehouse/salesOrders/${so.id}/cancel`));
    expect((await getOrder(so.id)).status).toBe('cancelled');
    expect(await getReservation(so.reservations[0])).toMatchObject({ status: 'released', released: '6.000' });
    expect(await getReservation(so.reservations[1])).toMatchObject({ status: 'released', released: '4.000' });
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '10.000', reserved: '0.000', available: '10.000' });
    expect(await availability(t, b, w.root)).toMatchObject({ onHand: '10.000', reserved: '0.000', available: '10.000' });
    // A draft cancels too; a cancelled order ships nothing.
    const draft = await createOrder(w, [line(a, '1', '10.00')]);
    ok(await t.api('POST', `/api/warehouse/salesOrders/${draft.id}/cancel`));
    expect((await getOrder(draft.id)).status).toBe('cancelled');
    expectProblem(await newShipment(so.id), 409, { code: 'warehouse.order-state' });
  });

  it('refuses to cancel with a shipment being picked or packed, or after something was shipped', async () => {
    const w = await warehouse(t);
    const a = await stocked(w, '10');
    const so = await confirmedOrder(w, [line(a, '10', '10.00')]);
    const s1 = ok(await newShipment(so.id, { lines: [{ line: 0, quantity: '4' }] }), 201);
    let before = await state(so.id);
    expectProblem(await t.api('POST', `/api/warehouse/salesOrders/${so.id}/cancel`), 409, { code: 'warehouse.order-state' });
    expect(await state(so.id)).toEqual(before);
    ok(await step(s1.id, 'pack'));
    expectProblem(await t.api('POST', `/api/warehouse/salesOrders/${so.id}/cancel`), 409, { code: 'warehouse.order-state' });
    ok(await step(s1.id, 'ship'));
    before = await state(so.id);
    expectProblem(await t.api('POST', `/api/warehouse/salesOrders/${so.id}/cancel`), 409, { code: 'warehouse.order-state' });
    expect(await state(so.id)).toEqual(before);
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '6.000', reserved: '6.000', available: '0.000' });
    // With its only shipment cancelled, an order cancels and its reservation is released.
    const other = await confirmedOrder(w, [line(await stocked(w, '2'), '2', '10.00')]);
    const s2 = ok(await newShipment(other.id), 201);
    ok(await step(s2.id, 'cancel'));
    ok(await t.api('POST', `/api/warehouse/salesOrders/${other.id}/cancel`));
    expect(await getReservation(other.reservations[0])).toMatchObject({ status: 'released' });
  });
});

describe('shipments', () => {
  it('takes by default every stock line with what is left, priced and weighed as ordered', async () => {
    const w = await warehouse(t);
    const a = await stocked(w, '20', { weight: '2.500', volume: '0.0100' });
    const b = await stocked(w, '20', { weight: '0.750', volume: '0.002500' });
    const service = await product(t, {}, { kind: 'service' });
    const so = await confirmedOrder(w, [line(a, '10', '25.00'), line(service, '1', '40.00'), line(b, '4', '5.00', { vatRate: '10' })], { deliveryAddress: 'Main St 1' });
    const s = ok(await newShipment(so.id), 201);
    // 10 × 25.00 = 250.00 (VAT 50.00) and 4 × 5.00 = 20.00 (VAT 2.00); the service is not shipped.
    // Weight 10 × 2.500 + 4 × 0.750 = 28.000 kg; volume 10 × 0.0100 + 4 × 0.0025 = 0.1100 m³.
    expect(s).toMatchObject({ salesOrder: so.id, customer, warehouse: w.id, status: 'picking', orderLines: [0, 2], weight: '28.000', volume: '0.1100', subtotal: '270.00', vatTotal: '52.00', total: '322.00', deliveryAddress: 'Main St 1' });
    expect(s.number).toMatch(new RegExp(`^SHP-${YEAR}-\\d{6}$`));
    expect(s.lines.map((l: { product: string; quantity: string; price: string }) => [l.product, Number(l.quantity), l.price])).toEqual([[a, 10, '25.00'], [b, 4, '5.00']]);
    expect(s.picks).toHaveLength(2);
    // Nothing moves while picking.
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '20.000', reserved: '10.000' });
    expect(await getOrder(so.id)).toMatchObject({ status: 'confirmed', shipped: ['0.000', '0.000', '0.000'] });
    // Everything is in that shipment: nothing is left for another.
    const before = await state(so.id);
    expectProblem(await newShipment(so.id), 409, { code: 'warehouse.over-shipment' });
    expectProblem(await newShipment(so.id, { lines: [{ line: 0, quantity: '1' }] }), 409, { code: 'warehouse.over-shipment', field: 'lines.0.quantity' });
    expect(await state(so.id)).toEqual(before);
    // Cancelled, its quantities are free to ship again; the delivery address may be another.
    ok(await step(s.id, 'cancel'));
    expect((await getShipment(s.id)).status).toBe('cancelled');
    const again = ok(await newShipment(so.id, { deliveryAddress: 'Dock 4' }), 201);
    expect(again).toMatchObject({ orderLines: [0, 2], weight: '28.000', deliveryAddress: 'Dock 4', total: '322.00' });
    expect(seq(again.number)).toBe(seq(s.number) + 1);
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '20.000', reserved: '10.000' });
  });

  it('pack then ship posts the moves, consumes the reservation, and moves the order to partlyShipped then shipped', async () => {
    const w = await warehouse(t);
    const a = await stocked(w, '20');
    const so = await confirmedOrder(w, [line(a, '10', '25.00')]);
    const [reservation] = so.reservations;
    const s1 = ok(await newShipment(so.id, { lines: [{ line: 0, quantity: '4' }] }), 201);
    expect(s1).toMatchObject({ orderLines: [0], subtotal: '100.00', vatTotal: '20.00', total: '120.00' });
    // Not shipped before it is packed.
    let before = await state(so.id);
    expectProblem(await step(s1.id, 'ship'), 409, { code: 'transition-not-allowed' });
    expect(await state(so.id)).toEqual(before);
    ok(await step(s1.id, 'pack', { packages: 2 }));
    expect(await getShipment(s1.id)).toMatchObject({ status: 'packed', packages: 2 });
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '20.000', reserved: '10.000', available: '10.000' });
    ok(await step(s1.id, 'ship'));
    const shipped1 = await getShipment(s1.id);
    expect(shipped1).toMatchObject({ status: 'shipped', date: TODAY });
    expect(shipped1.moves).toHaveLength(1);
    expect(ok(await t.api('GET', `/api/warehouse/moves/${shipped1.moves[0]}`))).toMatchObject({ kind: 'shipment', status: 'done', product: a, quantity: '4.000', fromLocation: w.root, toLocation: CUSTOMERS, reservation });
    expect(await getReservation(reservation)).toMatchObject({ reserved: '10.000', consumed: '4.000', status: 'active' });
    // 20 − 4 on hand, 10 − 4 reserved.
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '16.000', reserved: '6.000', available: '10.000' });
    expect(await getOrder(so.id)).toMatchObject({ status: 'partlyShipped', shipped: ['4.000'] });
    // A shipped shipment is not shipped again nor cancelled.
    before = await state(so.id);
    expectProblem(await step(s1.id, 'ship'), 409, { code: 'transition-not-allowed' });
    expectProblem(await step(s1.id, 'cancel'), 409, { code: 'transition-not-allowed' });
    expect(await state(so.id)).toEqual(before);

    // The rest: 6 by default.
    const s2 = ok(await newShipment(so.id), 201);
    expect(Number(s2.lines[0].quantity)).toBe(6);
    expect(s2).toMatchObject({ subtotal: '150.00', vatTotal: '30.00', total: '180.00' });
    const shipped2 = await packAndShip(s2.id);
    expect(shipped2.status).toBe('shipped');
    expect(ok(await t.api('GET', `/api/warehouse/moves/${shipped2.moves[0]}`))).toMatchObject({ kind: 'shipment', quantity: '6.000', fromLocation: w.root, toLocation: CUSTOMERS, reservation });
    expect(await getReservation(reservation)).toMatchObject({ consumed: '10.000', status: 'done' });
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '10.000', reserved: '0.000', available: '10.000' });
    expect(await getOrder(so.id)).toMatchObject({ status: 'shipped', shipped: ['10.000'] });
    expect((await shipmentsOf(so.id)).map((x) => x.status).sort()).toEqual(['shipped', 'shipped']);
    // Shipped: no more shipments.
    expectProblem(await newShipment(so.id), 409, { code: 'warehouse.order-state' });
  });

  it('counts an order shipped when every stock line is, whatever its service lines', async () => {
    const w = await warehouse(t);
    const a = await stocked(w, '5');
    const b = await stocked(w, '5');
    const service = await product(t, {}, { kind: 'service' });
    const so = await confirmedOrder(w, [line(a, '2', '10.00'), line(service, '1', '40.00'), line(b, '3', '10.00')]);
    await packAndShip(ok(await newShipment(so.id, { lines: [{ line: 2, quantity: '3' }] }), 201).id);
    expect(await getOrder(so.id)).toMatchObject({ status: 'partlyShipped', shipped: ['0.000', '0.000', '3.000'] });
    await packAndShip(ok(await newShipment(so.id), 201).id);
    expect(await getOrder(so.id)).toMatchObject({ status: 'shipped', shipped: ['2.000', '0.000', '3.000'] });
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '3.000', reserved: '0.000' });
    expect(await availability(t, b, w.root)).toMatchObject({ onHand: '2.000', reserved: '0.000' });
  });

  it('ships from the location named on the line', async () => {
    const w = await warehouse(t, { zones: 1, bins: 2 });
    const a = await product(t);
    await receive(t, a, w.bins[1], '5', '10.00');
    const so = await confirmedOrder(w, [line(a, '3', '10.00')]);
    const s = ok(await newShipment(so.id, { lines: [{ line: 0, quantity: '3', location: w.bins[1] }] }), 201);
    expect(s.picks).toEqual([expect.objectContaining({ location: w.bins[1] })]);
    const shipped = await packAndShip(s.id);
    expect(ok(await t.api('GET', `/api/warehouse/moves/${shipped.moves[0]}`))).toMatchObject({ fromLocation: w.bins[1], toLocation: CUSTOMERS, quantity: '3.000' });
    expect(await availability(t, a, w.bins[1])).toMatchObject({ onHand: '2.000' });
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '2.000', reserved: '0.000', available: '2.000' });
  });

  it('refuses more than is left (409 warehouse.over-shipment naming the line) and malformed lines (400), writing nothing', async () => {
    const w = await warehouse(t);
    const a = await stocked(w, '20');
    const b = await stocked(w, '20');
    const so = await confirmedOrder(w, [line(a, '10', '10.00'), line(b, '5', '10.00')]);
    let before = await state(so.id);
    expectProblem(await newShipment(so.id, { lines: [{ line: 0, quantity: '11' }] }), 409, { code: 'warehouse.over-shipment', field: 'lines.0.quantity' });
    // The good first line is not taken either.
    expectProblem(await newShipment(so.id, { lines: [{ line: 0, quantity: '2' }, { line: 1, quantity: '6' }] }), 409, { code: 'warehouse.over-shipment', field: 'lines.1.quantity' });
    expect(await state(so.id)).toEqual(before);
    // 6 in picking: 4 left.
    ok(await newShipment(so.id, { lines: [{ line: 0, quantity: '6' }] }), 201);
    before = await state(so.id);
    expectProblem(await newShipment(so.id, { lines: [{ line: 0, quantity: '5' }] }), 409, { code: 'warehouse.over-shipment', field: 'lines.0.quantity' });
    for (const [body, field] of [
      [{ lines: [{ line: 0, quantity: '0' }] }, 'lines.0.quantity'],
      [{ lines: [{ line: 0, quantity: '-1' }] }, 'lines.0.quantity'],
      [{ lines: [{ line: 0, quantity: 'abc' }] }, 'lines.0.quantity'],
      [{ lines: [{ line: 0, quantity: '1', colour: 'red' }] }, 'lines.0.colour'],
      [{ colour: 'red' }, 'colour'],
    ] as [unknown, string][]) {
      const res = await newShipment(so.id, body);
      expect(res.status, `${JSON.stringify(body)} → ${JSON.stringify(res.body)}`).toBe(400);
      expectProblem(res, 400, { field });
    }
    expect(await state(so.id)).toEqual(before);
    const rest = ok(await newShipment(so.id, { lines: [{ line: 0, quantity: '4' }] }), 201);
    expect(Number(rest.lines[0].quantity)).toBe(4);
  });

  it('refuses shipments for an order that is not confirmed (409 warehouse.order-state)', async () => {
    const w = await warehouse(t);
    const a = await stocked(w, '5');
    const draft = await createOrder(w, [line(a, '2', '10.00')]);
    const before = await state(draft.id);
    expectProblem(await newShipment(draft.id), 409, { code: 'warehouse.order-state' });
    expectProblem(await newShipment(draft.id, { lines: [{ line: 0, quantity: '1' }] }), 409, { code: 'warehouse.order-state' });
    expect(await state(draft.id)).toEqual(before);
  });
});

describe('under concurrency', () => {
  it('two clients shipping the whole rest at once: exactly one shipment is made, the other is refused', async () => {
    const w = await warehouse(t);
    const a = await stocked(w, '10');
    // Once naming the quantity, once leaving it to the default (what is left).
    for (const explicit of [true, false]) {
      const so = await confirmedOrder(w, [line(a, '5', '10.00')]);
      const full = explicit ? { lines: [{ line: 0, quantity: '5' }] } : {};
      const answers = await Promise.all([newShipment(so.id, full), newShipment(so.id, full)]);
      expect(answers.map((r) => r.status).sort(), JSON.stringify(answers.map((r) => r.body))).toEqual([201, 409]);
      expect(answers.find((r) => r.status === 409)!.body).toMatchObject({ code: 'warehouse.over-shipment' });
      const made = await shipmentsOf(so.id);
      expect(made).toHaveLength(1);
      expect(Number(made[0].lines[0].quantity)).toBe(5);
    }
    // The two orders' 5 each: still all reserved, none gone.
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '10.000', reserved: '10.000', available: '0.000' });
  });
});

describe('permissions', () => {
  it('a sales clerk enters, confirms and makes shipments but does not ship; a storekeeper ships; a reader makes none', async () => {
    const w = await warehouse(t);
    const a = await stocked(w, '10');
    const clerk = await roleUser('sales-clerk');
    const keeper = await roleUser('storekeeper');
    const reader = await t.userWith(['warehouse.*.read']);
    const so = await createOrder(w, [line(a, '3', '10.00')], {}, clerk.token);
    const confirmed = ok(await confirm(so.id, clerk.token));
    expect(confirmed.reserved).toEqual(['3.000']);
    let before = await state(so.id);
    expectProblem(await newShipment(so.id, {}, reader.token), 403, { permission: 'warehouse.shipments.create' });
    expect(await state(so.id)).toEqual(before);
    const s = ok(await newShipment(so.id, {}, clerk.token), 201);
    before = await state(so.id);
    expectProblem(await step(s.id, 'pack', {}, clerk.token), 403, {});
    expect(await state(so.id)).toEqual(before);
    ok(await step(s.id, 'pack', {}, keeper.token));
    expectProblem(await step(s.id, 'ship', {}, clerk.token), 403, {});
    ok(await step(s.id, 'ship', {}, keeper.token));
    expect(await getOrder(so.id)).toMatchObject({ status: 'shipped', shipped: ['3.000'] });
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '7.000', reserved: '0.000' });
  });
});
