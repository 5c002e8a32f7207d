// Purchase orders and goods receipts (contract: /api/warehouse/purchaseOrders, …/confirm, …/receive,
// …/close, …/cancel): a draft with totals from its lines, numbered PO-<year>-NNNNNN when confirmed,
// received in one or more receipts — one receipt move per line from SUPPLIERS at the line's net unit
// cost — up to the ordered quantity plus the order's tolerance; every refusal writes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiResponse, TestKubiki } from '../helpers/test-kubiki.ts';
import { startKubiki } from '../helpers/test-kubiki.ts';
import { SUPPLIERS, availability, ok, product, snapshot, warehouse } from './helpers.ts';

let t: TestKubiki;
let supplier: string;
beforeAll(async () => {
  t = await startKubiki({ enable: ['warehouse'] });
  supplier = ok(await t.api('POST', '/api/base/organizations', { name: 'Parts Ltd', roles: ['supplier'] }), 201).id;
}, 180_000);
afterAll(() => t?.close());

const YEAR = new Date().toISOString().slice(0, 4);
const as = (token?: string) => (token ? { token } : {});

/** An order line in the document-lines shape (VAT 20 % unless told). */
const line = (productId: string | undefined, quantity: string, price: string, extra: Record<string, unknown> = {}) => ({
  ...(productId ? { product: productId } : {}), description: `Item × ${quantity}`, quantity, price, vatRate: '20', ...extra,
});

const createOrder = async (body: Record<string, unknown>, token?: string) =>
  ok(await t.api('POST', '/api/warehouse/purchaseOrders', { supplier, ...body }, as(token)), 201);
const confirm = (id: string, token?: string) => t.api('POST', `/api/warehouse/purchaseOrders/${id}/confirm`, undefined, as(token));
/** A confirmed order for `lines` into warehouse `w` (its id and the record). */
const confirmedOrder = async (warehouseId: string, lines: unknown[], extra: Record<string, unknown> = {}) =>
  ok(await confirm((await createOrder({ warehouse: warehouseId, lines, ...extra })).id));
const receiveOn = (id: string, body: unknown, token?: string) => t.api('POST', `/api/warehouse/purchaseOrders/${id}/receive`, body, as(token));
const getOrder = async (id: string) => ok(await t.api('GET', `/api/warehouse/purchaseOrders/${id}`));
const movesOf = async (orderId: string): Promise<any[]> =>
  ok(await t.api('GET', `/api/warehouse/moves?sourceEntity=warehouse.purchaseOrders&sourceId=${orderId}&limit=100`)).data;
const seq = (number: string) => Number(number.slice(-6));

/** Row counts of the stock tables, the order tables and the audit trail, plus the order itself: equal before and after a refusal. */
async function state(orderId?: string) {
  return {
    rows: await snapshot(t),
    orders: await t.count('warehouse_purchase_orders'),
    receipts: await t.count('warehouse_receipts'),
    order: orderId ? await getOrder(orderId) : null,
  };
}

/** A problem+json answer with `status` and the given members. */
function expectProblem(res: ApiResponse, status: number, members: Record<string, unknown>) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, ...members });
}

const roleUser = async (role: string) => {
  const u = ok(await t.api('POST', '/api/users', { username: `${role}-${Math.random().toString(36).slice(2, 8)}`, roles: [role] }), 201);
  return { id: u.id as string, token: ok(await t.api('POST', `/api/users/${u.id}/tokens`, { name: 'test' }), 201).token as string };
};

describe('purchase orders', () => {
  it('is created as an unnumbered draft with totals computed from its lines and nothing received', async () => {
    const w = await warehouse(t);
    const a = await product(t);
    const b = await product(t);
    const po = await createOrder({ warehouse: w.id, date: '2026-03-10', expectedDate: '2026-03-20', lines: [
      line(a, '10', '100.00'),
      line(b, '8', '12.50', { discountPercent: '10', vatRate: '10' }),
    ] });
    // 10 × 100.00 = 1000.00, VAT 20 % 200.00; 8 × 12.50 − 10 % = 90.00, VAT 10 % 9.00.
    expect(po).toMatchObject({ status: 'draft', supplier, warehouse: w.id, subtotal: '1090.00', vatTotal: '209.00', total: '1299.00', received: ['0.000', '0.000'] });
    expect(po.number ?? null).toBeNull();
    expect(po.lines).toHaveLength(2);
    expect(po.lines[1]).toMatchObject({ product: b, price: '12.50', discountPercent: '10', vatRate: '10' });
    expect(Number(po.lines[1].quantity)).toBe(8);
    expect(await getOrder(po.id)).toMatchObject({ status: 'draft', total: '1299.00', received: ['0.000', '0.000'] });
    // Prices including VAT: 10 × 120.00 = 1200.00 gross, of which VAT 20 % is 200.00.
    const gross = await createOrder({ warehouse: w.id, pricesIncludeVat: true, lines: [line(a, '10', '120.00')] });
    expect(gross).toMatchObject({ subtotal: '1000.00', vatTotal: '200.00', total: '1200.00', received: ['0.000'] });
    // Nothing was put in stock by ordering.
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '0.000' });
  });

  it('refuses a malformed order with 400 naming the field, writing nothing', async () => {
    const w = await warehouse(t);
    const a = await product(t);
    const good = { supplier, warehouse: w.id, lines: [line(a, '1', '1.00')] };
    const before = await state();
    const cases: [Record<string, unknown>, string, string?][] = [
      [{ ...good, lines: [] }, 'lines', 'minItems'],
      [{ supplier, warehouse: w.id }, 'lines', 'required'],
      [{ ...good, colour: 'red' }, 'colour', 'unknown-field'],
      [{ ...good, number: 'PO-2026-000001' }, 'number', 'read-only'],
      [{ ...good, received: ['1'] }, 'received', 'read-only'],
      [{ ...good, tolerancePercent: '150' }, 'tolerancePercent'],
      [{ ...good, lines: [line(a, 'abc', '1.00')] }, 'lines.0.quantity', 'pattern'],
      [{ ...good, lines: [line(a, '1', '1.00', { vatRate: '18' })] }, 'lines.0.vatRate'],
      [{ ...good, lines: [{ ...line(a, '1', '1.00'), colour: 'red' }] }, 'lines.0.colour'],
    ];
    for (const [body, field, rule] of cases) {
      const res = await t.api('POST', '/api/warehouse/purchaseOrders', body);
      expect(res.status, `${JSON.stringify(body)} → ${JSON.stringify(res.body)}`).toBe(400);
      expectProblem(res, 400, { field, ...(rule ? { rule } : {}) });
    }
    // An unknown supplier is a dangling reference.
    expectProblem(await t.api('POST', '/api/warehouse/purchaseOrders', { ...good, supplier: '00000000-0000-4000-8000-000000000000' }), 400, { code: 'reference-not-found', field: 'supplier' });
    expect(await state()).toEqual(before);
  });

  it('is numbered PO-<year of its date>-NNNNNN when confirmed, gapless per year', async () => {
    const w = await warehouse(t);
    const a = await product(t);
    // 2025 is used by no other order of this file: its series starts at 1.
    const first = await confirmedOrder(w.id, [line(a, '1', '5.00')], { date: '2025-11-20' });
    expect(first).toMatchObject({ status: 'confirmed', number: 'PO-2025-000001' });
    // A refused confirmation takes no number.
    const bad = await createOrder({ warehouse: w.id, date: '2025-11-21', lines: [line(undefined, '1', '5.00')] });
    expect((await confirm(bad.id)).status).toBe(400);
    expect((await confirmedOrder(w.id, [line(a, '1', '5.00')], { date: '2025-12-31' })).number).toBe('PO-2025-000002');
    // Without a date: this year's series.
    const undated = await confirmedOrder(w.id, [line(a, '1', '5.00')]);
    expect(undated.number).toMatch(new RegExp(`^PO-${YEAR}-\\d{6}$`));
    const next = await confirmedOrder(w.id, [line(a, '1', '5.00')]);
    expect(next.number).toMatch(/^PO-\d{4}-\d{6}$/);
    expect(seq(next.number)).toBe(seq(undated.number) + 1);
    // Confirmed once only.
    expectProblem(await confirm(first.id), 409, { code: 'transition-not-allowed' });
    expect((await getOrder(first.id)).number).toBe('PO-2025-000001');
    // The status belongs to the lifecycle: not written directly.
    expectProblem(await t.api('PATCH', `/api/warehouse/purchaseOrders/${bad.id}`, { status: 'confirmed' }), 409, { code: 'transition-required', field: 'status' });
  });

  it('confirms only lines naming a stock product (400 naming the line), leaving the draft as it was', async () => {
    const w = await warehouse(t);
    const a = await product(t);
    const service = await product(t, {}, { kind: 'service' });
    const free = await createOrder({ warehouse: w.id, lines: [line(a, '2', '3.00'), line(undefined, '1', '10.00')] });
    let before = await state(free.id);
    expectProblem(await confirm(free.id), 400, { field: 'lines.1.product', rule: 'required' });
    expect(await state(free.id)).toEqual(before);
    const services = await createOrder({ warehouse: w.id, lines: [line(service, '1', '500.00'), line(a, '2', '3.00')] });
    before = await state(services.id);
    expectProblem(await confirm(services.id), 400, { field: 'lines.0.product', rule: 'stockable' });
    expect(await state(services.id)).toEqual(before);
    const still = await getOrder(services.id);
    expect(still.status).toBe('draft');
    expect(still.number ?? null).toBeNull();
  });
});

describe('receiving', () => {
  it('posts one receipt move per line at the net unit cost; the order goes partly received, then received', async () => {
    const w = await warehouse(t);
    const a = await product(t);
    const b = await product(t);
    const po = await confirmedOrder(w.id, [line(a, '10', '100.00'), line(b, '8', '12.50', { discountPercent: '10', vatRate: '10' })], { date: '2026-03-10' });
    expect(po.status).toBe('confirmed');

    const r1 = ok(await receiveOn(po.id, { date: '2026-03-12', lines: [{ line: 0, quantity: '4' }, { line: 1, quantity: '8' }] }), 201);
    // Received: 4 × 100.00 = 400.00 (VAT 80.00) and 8 × 12.50 − 10 % = 90.00 (VAT 9.00).
    expect(r1).toMatchObject({
      purchaseOrder: po.id, supplier, warehouse: w.id, location: w.root, date: '2026-03-12', pricesIncludeVat: false,
      orderLines: [0, 1], subtotal: '490.00', vatTotal: '89.00', total: '579.00',
    });
    expect(r1.number).toMatch(/^RCPT-2026-\d{6}$/);
    expect(r1.lines.map((l: { product: string; quantity: string; price: string; vatRate: string }) => [l.product, Number(l.quantity), l.price, l.vatRate])).toEqual([[a, 4, '100.00', '20'], [b, 8, '12.50', '10']]);
    expect(r1.lines[1].discountPercent).toBe('10');
    expect(r1.moves).toHaveLength(2);

    // The moves: SUPPLIERS → the warehouse, unit cost = net / ordered quantity (1000.00 / 10, 90.00 / 8).
    const moves = await movesOf(po.id);
    expect(moves.map((m) => m.id).sort()).toEqual([...r1.moves].sort());
    const moveOf = (p: string) => moves.find((m) => m.product === p);
    expect(moveOf(a)).toMatchObject({ kind: 'receipt', status: 'done', date: '2026-03-12', fromLocation: SUPPLIERS, toLocation: w.root, quantity: '4.000', unitCost: '100.0000', value: '400.00', sourceEntity: 'warehouse.purchaseOrders', sourceId: po.id, sourceLine: '0' });
    expect(moveOf(b)).toMatchObject({ kind: 'receipt', fromLocation: SUPPLIERS, toLocation: w.root, quantity: '8.000', unitCost: '11.2500', value: '90.00', sourceLine: '1' });
    expect(await getOrder(po.id)).toMatchObject({ status: 'partlyReceived', received: ['4.000', '8.000'] });
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '4.000', available: '4.000' });
    expect(await availability(t, b, w.root)).toMatchObject({ onHand: '8.000' });

    // The rest of line 0: every line has what was ordered.
    const r2 = ok(await receiveOn(po.id, { date: '2026-03-15', lines: [{ line: 0, quantity: '6' }] }), 201);
    expect(r2).toMatchObject({ orderLines: [0], subtotal: '600.00', vatTotal: '120.00', total: '720.00' });
    expect(r2.moves).toHaveLength(1);
    expect(seq(r2.number)).toBe(seq(r1.number) + 1);
    expect(await getOrder(po.id)).toMatchObject({ status: 'received', received: ['10.000', '8.000'] });
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '10.000' });
    const all = await movesOf(po.id);
    expect(all).toHaveLength(3);
    expect(all.find((m) => m.id === r2.moves[0])).toMatchObject({ product: a, quantity: '6.000', unitCost: '100.0000', value: '600.00', date: '2026-03-15', sourceLine: '0' });
    // The receipts are records of their own.
    expect(ok(await t.api('GET', `/api/warehouse/receipts/${r1.id}`))).toMatchObject({ number: r1.number, purchaseOrder: po.id, total: '579.00' });
    expect(ok(await t.api('GET', `/api/warehouse/receipts?purchaseOrder=${po.id}`)).data).toHaveLength(2);
  });

  it('values stock without the VAT when prices include it, and receives into the order\'s or the named location', async () => {
    const w = await warehouse(t, { zones: 1, bins: 2 });
    const a = await product(t);
    const lotted = await product(t, { tracking: 'lot' });
    // 10 × 120.00 gross at 20 %: net 1000.00, unit cost 100.0000; 3 × 11.00 gross at 10 %: net 30.00, unit cost 10.0000.
    const po = await confirmedOrder(w.id, [line(a, '10', '120.00'), line(lotted, '3', '11.00', { vatRate: '10' })], { pricesIncludeVat: true, location: w.bins[0] });
    const r1 = ok(await receiveOn(po.id, { lines: [{ line: 0, quantity: '5' }, { line: 1, quantity: '3', lotNumber: 'L-7' }] }), 201);
    // 5 × 120.00 = 600.00 gross (VAT 100.00) and 3 × 11.00 = 33.00 gross (VAT 3.00).
    expect(r1).toMatchObject({ location: w.bins[0], pricesIncludeVat: true, subtotal: '530.00', vatTotal: '103.00', total: '633.00', date: new Date().toISOString().slice(0, 10) });
    expect(r1.number).toMatch(new RegExp(`^RCPT-${YEAR}-\\d{6}$`));
    const moves = await movesOf(po.id);
    const first = moves.find((m) => m.product === a);
    expect(first).toMatchObject({ toLocation: w.bins[0], quantity: '5.000', unitCost: '100.0000', value: '500.00' });
    const lot = moves.find((m) => m.product === lotted);
    expect(lot).toMatchObject({ toLocation: w.bins[0], quantity: '3.000', unitCost: '10.0000', value: '30.00', lot: expect.any(String) });
    expect(ok(await t.api('GET', `/api/warehouse/lots/${lot.lot}`))).toMatchObject({ number: 'L-7', product: lotted });
    // The receipt may name another location of the warehouse.
    const r2 = ok(await receiveOn(po.id, { location: w.bins[1], lines: [{ line: 0, quantity: '5' }] }), 201);
    expect(r2.location).toBe(w.bins[1]);
    expect(ok(await t.api('GET', `/api/warehouse/moves/${r2.moves[0]}`))).toMatchObject({ fromLocation: SUPPLIERS, toLocation: w.bins[1], quantity: '5.000', unitCost: '100.0000' });
    expect(await availability(t, a, w.bins[0])).toMatchObject({ onHand: '5.000' });
    expect(await availability(t, a, w.bins[1])).toMatchObject({ onHand: '5.000' });
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '10.000' });
    expect(await getOrder(po.id)).toMatchObject({ status: 'received', received: ['10.000', '3.000'] });
  });

  it('accepts over-delivery up to the tolerance and refuses beyond it with 409, writing nothing', async () => {
    const w = await warehouse(t);
    const a = await product(t);
    const b = await product(t);
    const po = await confirmedOrder(w.id, [line(a, '100', '1.00'), line(b, '100', '1.00')], { tolerancePercent: '5' });
    // 5 % on 100 allows 105: 106 is refused, and the good first line is not received either.
    let before = await state(po.id);
    const over = await receiveOn(po.id, { lines: [{ line: 0, quantity: '50' }, { line: 1, quantity: '106' }] });
    expectProblem(over, 409, { code: 'warehouse.over-receipt', field: 'lines.1.quantity', ordered: '100.000', received: '0.000', allowed: '105.000' });
    expect(await state(po.id)).toEqual(before);
    expect(await movesOf(po.id)).toEqual([]);
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '0.000' });

    // 105 of b in one go is within the tolerance: received (above the ordered 100).
    ok(await receiveOn(po.id, { lines: [{ line: 1, quantity: '105' }] }), 201);
    // 60 + 46 > 105 is refused, 60 + 45 taken.
    ok(await receiveOn(po.id, { lines: [{ line: 0, quantity: '60' }] }), 201);
    expect(await getOrder(po.id)).toMatchObject({ status: 'partlyReceived', received: ['60.000', '105.000'] });
    before = await state(po.id);
    expectProblem(await receiveOn(po.id, { lines: [{ line: 0, quantity: '46' }] }), 409, { code: 'warehouse.over-receipt', field: 'lines.0.quantity', ordered: '100.000', received: '60.000', allowed: '105.000' });
    expect(await state(po.id)).toEqual(before);
    ok(await receiveOn(po.id, { lines: [{ line: 0, quantity: '45' }] }), 201);
    expect(await getOrder(po.id)).toMatchObject({ status: 'received', received: ['105.000', '105.000'] });
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '105.000' });
    expect(await availability(t, b, w.root)).toMatchObject({ onHand: '105.000' });

    // Without a tolerance nothing above the ordered quantity is taken.
    const exact = await confirmedOrder(w.id, [line(a, '10', '1.00')]);
    before = await state(exact.id);
    expectProblem(await receiveOn(exact.id, { lines: [{ line: 0, quantity: '10.001' }] }), 409, { code: 'warehouse.over-receipt', field: 'lines.0.quantity', allowed: '10.000' });
    expect(await state(exact.id)).toEqual(before);
  });

  it('refuses malformed receipt lines with 400 naming the field, writing nothing', async () => {
    const w = await warehouse(t);
    const a = await product(t);
    const b = await product(t);
    const po = await confirmedOrder(w.id, [line(a, '10', '1.00'), line(b, '10', '1.00')]);
    const before = await state(po.id);
    const cases: [unknown, string, string?][] = [
      [{ lines: [{ line: 0, quantity: '1' }, { line: 2, quantity: '1' }] }, 'lines.1.line', 'maximum'],
      [{ lines: [{ line: 1, quantity: '1' }, { line: 1, quantity: '2' }] }, 'lines.1.line', 'unique'],
      [{ lines: [{ line: -1, quantity: '1' }] }, 'lines.0.line'],
      [{ lines: [{ line: '0', quantity: '1' }] }, 'lines.0.line'],
      [{ lines: [{ line: 0, quantity: '0' }] }, 'lines.0.quantity'],
      [{ lines: [{ line: 0, quantity: '-1' }] }, 'lines.0.quantity'],
      [{ lines: [{ line: 0, quantity: 'abc' }] }, 'lines.0.quantity'],
      [{ lines: [{ line: 0, quantity: 1 }] }, 'lines.0.quantity'],
      [{ lines: [{ line: 0 }] }, 'lines.0.quantity', 'required'],
      [{ lines: [{ line: 0, quantity: '1', colour: 'red' }] }, 'lines.0.colour', 'unknown-field'],
      [{ lines: [{ line: 0, quantity: '1' }], colour: 'red' }, 'colour', 'unknown-field'],
      [{ lines: [] }, 'lines', 'minItems'],
      [{}, 'lines', 'required'],
      [{ date: '2026-02-30', lines: [{ line: 0, quantity: '1' }] }, 'date'],
    ];
    for (const [body, field, rule] of cases) {
      const res = await receiveOn(po.id, body);
      expect(res.status, `${JSON.stringify(body)} → ${JSON.stringify(res.body)}`).toBe(400);
      expectProblem(res, 400, { field, ...(rule ? { rule } : {}) });
    }
    expect(await state(po.id)).toEqual(before);
    expect(await movesOf(po.id)).toEqual([]);
  });

  it('refuses receipts unless the order is confirmed or partly received (409 warehouse.order-state), writing nothing', async () => {
    const w = await warehouse(t);
    const a = await product(t);
    const receiveOne = { lines: [{ line: 0, quantity: '1' }] };
    // A draft.
    const draft = await createOrder({ warehouse: w.id, lines: [line(a, '5', '2.00')] });
    let before = await state(draft.id);
    expectProblem(await receiveOn(draft.id, receiveOne), 409, { code: 'warehouse.order-state' });
    expect(await state(draft.id)).toEqual(before);
    // Closed short after a partial receipt.
    const closed = await confirmedOrder(w.id, [line(a, '5', '2.00')]);
    ok(await receiveOn(closed.id, { lines: [{ line: 0, quantity: '2' }] }), 201);
    ok(await t.api('POST', `/api/warehouse/purchaseOrders/${closed.id}/close`));
    expect(await getOrder(closed.id)).toMatchObject({ status: 'closed', received: ['2.000'] });
    before = await state(closed.id);
    expectProblem(await receiveOn(closed.id, receiveOne), 409, { code: 'warehouse.order-state' });
    expect(await state(closed.id)).toEqual(before);
    // Cancelled.
    const cancelled = await confirmedOrder(w.id, [line(a, '5', '2.00')]);
    ok(await t.api('POST', `/api/warehouse/purchaseOrders/${cancelled.id}/cancel`));
    before = await state(cancelled.id);
    expectProblem(await receiveOn(cancelled.id, receiveOne), 409, { code: 'warehouse.order-state' });
    expect(await state(cancelled.id)).toEqual(before);
    // Fully received.
    const done = await confirmedOrder(w.id, [line(a, '5', '2.00')], { tolerancePercent: '10' });
    ok(await receiveOn(done.id, { lines: [{ line: 0, quantity: '5' }] }), 201);
    expect((await getOrder(done.id)).status).toBe('received');
    before = await state(done.id);
    expectProblem(await receiveOn(done.id, receiveOne), 409, { code: 'warehouse.order-state' });
    expect(await state(done.id)).toEqual(before);
    // Only the two receipts went into stock.
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '7.000' });
  });

  it('cancels a draft or a confirmed order, but not once anything was received (close it instead)', async () => {
    const w = await warehouse(t);
    const a = await product(t);
    const draft = await createOrder({ warehouse: w.id, lines: [line(a, '5', '2.00')] });
    ok(await t.api('POST', `/api/warehouse/purchaseOrders/${draft.id}/cancel`));
    expect((await getOrder(draft.id)).status).toBe('cancelled');
    const confirmed = await confirmedOrder(w.id, [line(a, '5', '2.00')]);
    ok(await t.api('POST', `/api/warehouse/purchaseOrders/${confirmed.id}/cancel`));
    expect(await getOrder(confirmed.id)).toMatchObject({ status: 'cancelled', number: confirmed.number });

    const partly = await confirmedOrder(w.id, [line(a, '5', '2.00')]);
    ok(await receiveOn(partly.id, { lines: [{ line: 0, quantity: '1' }] }), 201);
    const before = await state(partly.id);
    expectProblem(await t.api('POST', `/api/warehouse/purchaseOrders/${partly.id}/cancel`), 409, { code: 'warehouse.order-state' });
    expect(await state(partly.id)).toEqual(before);
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '1.000' });
    ok(await t.api('POST', `/api/warehouse/purchaseOrders/${partly.id}/close`));
    expect(await getOrder(partly.id)).toMatchObject({ status: 'closed', received: ['1.000'] });
    // A draft is not closed.
    const other = await createOrder({ warehouse: w.id, lines: [line(a, '5', '2.00')] });
    expect((await t.api('POST', `/api/warehouse/purchaseOrders/${other.id}/close`)).status).toBe(409);
    expect((await getOrder(other.id)).status).toBe('draft');
  });

  it('makes receipts only by receiving: generic create, change and delete are refused', async () => {
    const w = await warehouse(t);
    const a = await product(t);
    const po = await confirmedOrder(w.id, [line(a, '5', '2.00')]);
    const r = ok(await receiveOn(po.id, { lines: [{ line: 0, quantity: '2' }] }), 201);
    const before = await state(po.id);
    const created = await t.api('POST', '/api/warehouse/receipts', { purchaseOrder: po.id, lines: [line(a, '2', '2.00')] });
    expect([400, 409], JSON.stringify(created.body)).toContain(created.status);
    const changed = await t.api('PATCH', `/api/warehouse/receipts/${r.id}`, { notes: 'changed' });
    expect([400, 409], JSON.stringify(changed.body)).toContain(changed.status);
    const deleted = await t.api('DELETE', `/api/warehouse/receipts/${r.id}`);
    expect([400, 409], JSON.stringify(deleted.body)).toContain(deleted.status);
    expect(await state(po.id)).toEqual(before);
    expect(ok(await t.api('GET', `/api/warehouse/receipts/${r.id}`))).toMatchObject({ number: r.number, total: r.total });
  });
});

describe('permissions', () => {
  it('receiving needs warehouse.purchaseOrders.receive: without it 403 and nothing written', async () => {
    const w = await warehouse(t);
    const a = await product(t);
    const orderer = await t.userWith(['warehouse.*.read', 'warehouse.purchaseOrders.create', 'warehouse.purchaseOrders.confirm', 'base.*.read']);
    const receiver = await t.userWith(['warehouse.*.read', 'warehouse.purchaseOrders.receive', 'base.*.read']);
    const po = await createOrder({ warehouse: w.id, lines: [line(a, '4', '25.00')] }, orderer.token);
    expectProblem(await confirm(po.id, receiver.token), 403, {});
    expect((await getOrder(po.id)).status).toBe('draft');
    expect(ok(await confirm(po.id, orderer.token)).status).toBe('confirmed');
    const before = await state(po.id);
    expectProblem(await receiveOn(po.id, { lines: [{ line: 0, quantity: '4' }] }, orderer.token), 403, { permission: 'warehouse.purchaseOrders.receive' });
    expect(await state(po.id)).toEqual(before);
    const r = ok(await receiveOn(po.id, { lines: [{ line: 0, quantity: '4' }] }, receiver.token), 201);
    expect(r).toMatchObject({ subtotal: '100.00', vatTotal: '20.00', total: '120.00' });
    expect(await getOrder(po.id)).toMatchObject({ status: 'received', received: ['4.000'] });
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '4.000' });
  });

  it('as shipped, a buyer orders and confirms but does not receive; a storekeeper receives but does not confirm', async () => {
    const w = await warehouse(t);
    const a = await product(t);
    const buyer = await roleUser('buyer');
    const keeper = await roleUser('storekeeper');
    const po = await createOrder({ warehouse: w.id, lines: [line(a, '2', '10.00')] }, buyer.token);
    expectProblem(await confirm(po.id, keeper.token), 403, {});
    expect(ok(await confirm(po.id, buyer.token)).status).toBe('confirmed');
    const before = await state(po.id);
    expectProblem(await receiveOn(po.id, { lines: [{ line: 0, quantity: '2' }] }, buyer.token), 403, { permission: 'warehouse.purchaseOrders.receive' });
    expect(await state(po.id)).toEqual(before);
    ok(await receiveOn(po.id, { lines: [{ line: 0, quantity: '2' }] }, keeper.token), 201);
    expect(await availability(t, a, w.root)).toMatchObject({ onHand: '2.000' });
  });
});
