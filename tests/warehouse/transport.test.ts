// Delivery trips (contract: /api/warehouse/vehicles, /api/warehouse/trips, PUT …/stops, …/depart,
// …/stops/{n}/delivered, …/stops/{n}/failed, …/cancel): a trip is planned for a vehicle, carries
// shipments as stops in delivery order within the vehicle's capacity (weight and volume summed from
// the shipments), departs once every shipment is shipped, and completes when every stop is reported.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApiResponse, TestKubiki } from '../helpers/test-kubiki.ts';
import { startKubiki } from '../helpers/test-kubiki.ts';
import { ok, product, receive, snapshot, warehouse, type Place } from './helpers.ts';

let t: TestKubiki;
let north: string;
let south: string;
let w: Place;
beforeAll(async () => {
  t = await startKubiki({ enable: ['warehouse'] });
  north = ok(await t.api('POST', '/api/base/organizations', { name: 'North Shop', roles: ['customer'] }), 201).id;
  south = ok(await t.api('POST', '/api/base/organizations', { name: 'South Shop', roles: ['customer'] }), 201).id;
}, 180_000);
afterAll(() => t?.close());
// Every test ships from a warehouse of its own.
beforeEach(async () => { w = await warehouse(t); });

const as = (token?: string) => (token ? { token } : {});
let plates = 0;

/** A goods product of `weight` kg and `volume` m³ per unit with plenty in stock (a fresh one per call). */
async function goods(weight: string, volume: string): Promise<string> {
  const p = await product(t, { weight, volume });
  await receive(t, p, w.root, '1000', '1.00');
  return p;
}

/**
 * A shipment to `customer` at `address` of [product, quantity] lines, taken as far as `until`:
 * a confirmed sales order, its shipment picking, then packed, then shipped. Answers it as stored.
 */
async function shipment(customer: string, address: string, lines: [string, string][], until: 'picking' | 'packed' | 'shipped' = 'shipped') {
  const so = ok(await t.api('POST', '/api/warehouse/salesOrders', {
    customer, warehouse: w.id, deliveryAddress: address,
    lines: lines.map(([p, quantity]) => ({ product: p, description: 'Goods', quantity, price: '10.00', vatRate: '20' })),
  }), 201);
  ok(await t.api('POST', `/api/warehouse/salesOrders/${so.id}/confirm`));
  const s = ok(await t.api('POST', `/api/warehouse/salesOrders/${so.id}/shipments`, {}), 201);
  if (until !== 'picking') ok(await t.api('POST', `/api/warehouse/shipments/${s.id}/pack`, {}));
  if (until === 'shipped') ok(await t.api('POST', `/api/warehouse/shipments/${s.id}/ship`, {}));
  return getShipment(s.id);
}

const vehicle = async (capacityWeight: string, capacityVolume?: string, token?: string) =>
  ok(await t.api('POST', '/api/warehouse/vehicles', { plate: `A${String(++plates).padStart(3, '0')}BC77`, capacityWeight, ...(capacityVolume ? { capacityVolume } : {}) }, as(token)), 201);
const trip = async (vehicleId: string, extra: Record<string, unknown> = {}, token?: string) =>
  ok(await t.api('POST', '/api/warehouse/trips', { date: '2026-12-10', vehicle: vehicleId, ...extra }, as(token)), 201);
const getTrip = async (id: string) => ok(await t.api('GET', `/api/warehouse/trips/${id}`));
const getShipment = async (id: string) => ok(await t.api('GET', `/api/warehouse/shipments/${id}`));
const setStops = (tripId: string, shipments: string[], token?: string) => t.api('PUT', `/api/warehouse/trips/${tripId}/stops`, { shipments }, as(token));
const depart = (tripId: string, token?: string) => t.api('POST', `/api/warehouse/trips/${tripId}/depart`, {}, as(token));
const report = (tripId: string, n: number, outcome: 'delivered' | 'failed', body: unknown = {}, token?: string) =>
  t.api('POST', `/api/warehouse/trips/${tripId}/stops/${n}/${outcome}`, body, as(token));
const tripOf = async (shipmentId: string) => (await getShipment(shipmentId)).trip ?? null;
const seq = (number: string) => Number(number.slice(-6));

/** Row counts, the trips and the shipments as stored: equal before and after a refusal. */
async function state(tripIds: string[], shipmentIds: string[]) {
  return {
    rows: await snapshot(t),
    trips: await t.count('warehouse_trips'),
    stored: await Promise.all(tripIds.map(getTrip)),
    shipments: await Promise.all(shipmentIds.map(getShipment)),
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

describe('vehicles and trips', () => {
  it('a vehicle has a capacity; a trip starts planned, numbered TRIP-<year>-NNNNNN, with no stops and no load', async () => {
    const plate = 'К777КК77';
    const v = ok(await t.api('POST', '/api/warehouse/vehicles', { plate, name: 'Van 1', capacityWeight: '1500', capacityVolume: '12.5' }), 201);
    expect(v).toMatchObject({ plate, name: 'Van 1', capacityWeight: '1500.000', capacityVolume: '12.5000', active: true });
    expectProblem(await t.api('POST', '/api/warehouse/vehicles', { plate, capacityWeight: '100' }), 409, { code: 'unique-violation', field: 'plate' });
    expectProblem(await t.api('POST', '/api/warehouse/vehicles', { plate: 'X1' }), 400, { field: 'capacityWeight', rule: 'required' });
    const driver = ok(await t.api('POST', '/api/base/people', { firstName: 'Ivan', lastName: 'Petrov' }), 201).id;
    const first = await trip(v.id, { driver, route: 'North-East', warehouse: w.id });
    expect(first).toMatchObject({ status: 'planned', date: '2026-12-10', vehicle: v.id, driver, route: 'North-East', warehouse: w.id, stops: [], weight: '0.000', volume: '0.0000' });
    expect(first.number).toMatch(/^TRIP-2026-\d{6}$/);
    const second = await trip(v.id);
    expect(seq(second.number)).toBe(seq(first.number) + 1);
    expectProblem(await t.api('POST', '/api/warehouse/trips', { date: '2026-12-10', vehicle: '00000000-0000-4000-8000-000000000000' }), 400, { code: 'reference-not-found', field: 'vehicle' });
    expectProblem(await t.api('POST', '/api/warehouse/trips', { vehicle: v.id }), 400, { field: 'date', rule: 'required' });
    // The status is the trip's own.
    expectProblem(await t.api('PATCH', `/api/warehouse/trips/${first.id}`, { status: 'departed' }), 400, { field: 'status', rule: 'read-only' });
    expect((await getTrip(first.id)).status).toBe('planned');
  });
});

describe('stops', () => {
  it('lists the shipments as stops in delivery order with their customer and address, the load summed', async () => {
    const heavy = await goods('2.500', '0.0100');
    const light = await goods('0.750', '0.002500');
    // A: 4 × 2.500 = 10.000 kg, 0.0400 m³. B: 6 × 2.500 + 4 × 0.750 = 18.000 kg, 0.0600 + 0.0100 = 0.0700 m³.
    const a = await shipment(north, 'North St 1', [[heavy, '4']]);
    const b = await shipment(south, 'South Ave 2', [[heavy, '6'], [light, '4']]);
    expect(a).toMatchObject({ weight: '10.000', volume: '0.0400' });
    expect(b).toMatchObject({ weight: '18.000', volume: '0.0700' });
    const v = await vehicle('1500', '12');
    const tr = await trip(v.id);
    const planned = ok(await setStops(tr.id, [b.id, a.id]));
    expect(planned).toMatchObject({ id: tr.id, status: 'planned', weight: '28.000', volume: '0.1100' });
    expect(planned.stops).toEqual([
      { shipment: b.id, customer: south, address: 'South Ave 2', status: 'pending', reason: null, at: null },
      { shipment: a.id, customer: north, address: 'North St 1', status: 'pending', reason: null, at: null },
    ]);
    expect(await getTrip(tr.id)).toMatchObject({ weight: '28.000', volume: '0.1100', stops: planned.stops });
    expect(await tripOf(a.id)).toBe(tr.id);
    expect(await tripOf(b.id)).toBe(tr.id);
    // Dropped from the list: off the trip, the load recomputed.
    const again = ok(await setStops(tr.id, [a.id]));
    expect(again).toMatchObject({ weight: '10.000', volume: '0.0400' });
    expect(again.stops.map((s: { shipment: string }) => s.shipment)).toEqual([a.id]);
    expect(await tripOf(b.id)).toBeNull();
    expect(await tripOf(a.id)).toBe(tr.id);
    // A shipment still being picked may be planned already.
    const c = await shipment(north, 'North St 1', [[light, '2']], 'picking');
    expect(ok(await setStops(tr.id, [a.id, c.id]))).toMatchObject({ weight: '11.500', volume: '0.0450' });
  });

  it('refuses a load above the vehicle\'s capacity, by weight or by volume (409 warehouse.over-capacity), changing nothing', async () => {
    const heavy = await goods('2.500', '0.0100');
    const a = await shipment(north, 'North St 1', [[heavy, '4']]); // 10.000 kg, 0.0400 m³
    const b = await shipment(south, 'South Ave 2', [[heavy, '6']]); // 15.000 kg, 0.0600 m³
    const c = await shipment(south, 'South Ave 2', [[heavy, '4']]); // 10.000 kg, 0.0400 m³
    const small = await vehicle('20', '1');
    const tr = await trip(small.id);
    let before = await state([tr.id], [a.id, b.id, c.id]);
    expectProblem(await setStops(tr.id, [a.id, b.id]), 409, { code: 'warehouse.over-capacity', weight: '25.000', capacityWeight: '20.000' });
    expect(await state([tr.id], [a.id, b.id, c.id])).toEqual(before);
    expect(await tripOf(a.id)).toBeNull();
    // Exactly the capacity is fine.
    expect(ok(await setStops(tr.id, [a.id, c.id]))).toMatchObject({ weight: '20.000', volume: '0.0800' });
    // By volume: 0.0400 + 0.0600 = 0.1000 m³ above 0.0500, though 25 kg is far below 1000.
    const d = await shipment(north, 'North St 1', [[heavy, '4']]);
    const e = await shipment(south, 'South Ave 2', [[heavy, '6']]);
    const van = await vehicle('1000', '0.05');
    const tr2 = await trip(van.id);
    before = await state([tr2.id], [d.id, e.id]);
    expectProblem(await setStops(tr2.id, [d.id, e.id]), 409, { code: 'warehouse.over-capacity', weight: '25.000', volume: '0.1000', capacityWeight: '1000.000', capacityVolume: '0.0500' });
    expect(await state([tr2.id], [d.id, e.id])).toEqual(before);
    expect(ok(await setStops(tr2.id, [d.id]))).toMatchObject({ weight: '10.000', volume: '0.0400' });
  });

  it('refuses a shipment on another trip, a cancelled or an unknown one (naming it), changing nothing', async () => {
    const heavy = await goods('1.000', '0.0010');
    const a = await shipment(north, 'North St 1', [[heavy, '1']]);
    const b = await shipment(south, 'South Ave 2', [[heavy, '1']]);
    const cancelled = await shipment(south, 'South Ave 2', [[heavy, '1']], 'picking');
    ok(await t.api('POST', `/api/warehouse/shipments/${cancelled.id}/cancel`, {}));
    const v = await vehicle('1000');
    const first = await trip(v.id);
    const second = await trip(v.id);
    ok(await setStops(first.id, [a.id]));
    const before = await state([first.id, second.id], [a.id, b.id]);
    expectProblem(await setStops(second.id, [b.id, a.id]), 409, { code: 'warehouse.trip-state', field: 'shipments.1' });
    expectProblem(await setStops(second.id, [cancelled.id]), 409, { code: 'warehouse.trip-state', field: 'shipments.0' });
    const unknown = await setStops(second.id, [b.id, '00000000-0000-4000-8000-000000000000']);
    expect([400, 404], JSON.stringify(unknown.body)).toContain(unknown.status);
    expect(unknown.body).toMatchObject({ code: 'reference-not-found', field: 'shipments.1' });
    expect(await state([first.id, second.id], [a.id, b.id])).toEqual(before);
    expect(await tripOf(b.id)).toBeNull();
    // Cancelled, the first trip lets its shipment go: it may join the second.
    ok(await t.api('POST', `/api/warehouse/trips/${first.id}/cancel`, {}));
    expect(await getTrip(first.id)).toMatchObject({ status: 'cancelled' });
    expect(await tripOf(a.id)).toBeNull();
    expectProblem(await setStops(first.id, [a.id]), 409, { code: 'warehouse.trip-state' });
    expect(ok(await setStops(second.id, [b.id, a.id])).stops.map((s: { shipment: string }) => s.shipment)).toEqual([b.id, a.id]);
    expect(await tripOf(a.id)).toBe(second.id);
  });
});

describe('delivery', () => {
  it('departs only with stops whose shipments are all shipped (409 naming the stop); a departed trip keeps its stops', async () => {
    const heavy = await goods('1.000', '0.0010');
    const a = await shipment(north, 'North St 1', [[heavy, '2']]);
    const b = await shipment(south, 'South Ave 2', [[heavy, '3']], 'packed');
    const v = await vehicle('1000');
    const tr = await trip(v.id);
    expectProblem(await depart(tr.id), 409, { code: 'warehouse.trip-state' });
    ok(await setStops(tr.id, [a.id, b.id]));
    const before = await state([tr.id], [a.id, b.id]);
    expectProblem(await depart(tr.id), 409, { code: 'warehouse.trip-state', field: 'stops.1' });
    expect(await state([tr.id], [a.id, b.id])).toEqual(before);
    // Stops are reported only once the trip is out.
    expectProblem(await report(tr.id, 1, 'delivered'), 409, { code: 'warehouse.trip-state' });
    ok(await t.api('POST', `/api/warehouse/shipments/${b.id}/ship`, {}));
    ok(await depart(tr.id));
    expect(await getTrip(tr.id)).toMatchObject({ status: 'departed', weight: '5.000' });
    expect((await getTrip(tr.id)).stops.map((s: { status: string }) => s.status)).toEqual(['pending', 'pending']);
    // Out: its stops are fixed, it is not cancelled nor sent again.
    const out = await state([tr.id], [a.id, b.id]);
    expectProblem(await setStops(tr.id, [a.id]), 409, { code: 'warehouse.trip-state' });
    expect((await t.api('POST', `/api/warehouse/trips/${tr.id}/cancel`, {})).status).toBe(409);
    expect((await depart(tr.id)).status).toBe(409);
    expect(await state([tr.id], [a.id, b.id])).toEqual(out);
  });

  it('reports stops delivered or failed (a failure needs a reason) and completes the trip when every stop is reported', async () => {
    const heavy = await goods('1.000', '0.0010');
    const a = await shipment(north, 'North St 1', [[heavy, '1']]);
    const b = await shipment(south, 'South Ave 2', [[heavy, '1']]);
    const v = await vehicle('1000');
    const tr = await trip(v.id);
    ok(await setStops(tr.id, [a.id, b.id]));
    ok(await depart(tr.id));

    const started = Date.now();
    ok(await report(tr.id, 1, 'delivered'));
    let stored = await getTrip(tr.id);
    expect(stored.status).toBe('departed');
    expect(stored.stops[0]).toMatchObject({ shipment: a.id, status: 'delivered', reason: null });
    expect(stored.stops[0].at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/);
    expect(Date.parse(stored.stops[0].at)).toBeGreaterThanOrEqual(started - 1000);
    expect(Date.parse(stored.stops[0].at)).toBeLessThanOrEqual(Date.now() + 1000);
    expect(stored.stops[1]).toMatchObject({ status: 'pending', at: null });

    // Reported once only, either way.
    let before = await state([tr.id], [a.id, b.id]);
    expectProblem(await report(tr.id, 1, 'delivered'), 409, { code: 'warehouse.trip-state' });
    expectProblem(await report(tr.id, 1, 'failed', { reason: 'Closed' }), 409, { code: 'warehouse.trip-state' });
    // A failure names its reason.
    expectProblem(await report(tr.id, 2, 'failed', {}), 400, { field: 'reason', rule: 'required' });
    expectProblem(await report(tr.id, 2, 'failed', { reason: '' }), 400, { field: 'reason' });
    expectProblem(await report(tr.id, 2, 'delivered', { colour: 'red' }), 400, { field: 'colour' });
    // Stop 3 does not exist.
    expectProblem(await report(tr.id, 3, 'delivered'), 404, { code: 'not-found' });
    expect(await state([tr.id], [a.id, b.id])).toEqual(before);

    const at = '2026-12-10T15:30:00.000Z';
    ok(await report(tr.id, 2, 'failed', { reason: 'Nobody at the address', at }));
    stored = await getTrip(tr.id);
    expect(stored.status).toBe('completed');
    expect(stored.stops[1]).toMatchObject({ shipment: b.id, customer: south, address: 'South Ave 2', status: 'failed', reason: 'Nobody at the address' });
    expect(new Date(stored.stops[1].at).toISOString()).toBe(at);
    expect(stored.stops[0].status).toBe('delivered');
    // Completed: nothing more to report.
    before = await state([tr.id], [a.id, b.id]);
    expectProblem(await report(tr.id, 2, 'delivered'), 409, { code: 'warehouse.trip-state' });
    expect(await state([tr.id], [a.id, b.id])).toEqual(before);
  });
});

describe('permissions', () => {
  it('a dispatcher plans, sends and reports trips; a stock viewer cannot (403 warehouse.trips.dispatch)', async () => {
    const heavy = await goods('1.000', '0.0010');
    const a = await shipment(north, 'North St 1', [[heavy, '3']]);
    const dispatcher = await roleUser('dispatcher');
    const viewer = await roleUser('stock-viewer');
    const v = await vehicle('100', undefined, dispatcher.token);
    const tr = await trip(v.id, { route: 'Ring' }, dispatcher.token);
    const before = await state([tr.id], [a.id]);
    expectProblem(await setStops(tr.id, [a.id], viewer.token), 403, { permission: 'warehouse.trips.dispatch' });
    expect(await state([tr.id], [a.id])).toEqual(before);
    expect(ok(await setStops(tr.id, [a.id], dispatcher.token))).toMatchObject({ weight: '3.000' });
    expectProblem(await depart(tr.id, viewer.token), 403, { permission: 'warehouse.trips.dispatch' });
    ok(await depart(tr.id, dispatcher.token));
    expectProblem(await report(tr.id, 1, 'delivered', {}, viewer.token), 403, { permission: 'warehouse.trips.dispatch' });
    ok(await report(tr.id, 1, 'delivered', {}, dispatcher.token));
    expect(await getTrip(tr.id)).toMatchObject({ status: 'completed', stops: [expect.objectContaining({ shipment: a.id, status: 'delivered' })] });
  });
});
