// Valuation: moving average and FIFO, values exact to the kopeck and computed by hand below;
// back-dated moves re-value only the issues after them, starting from the last closed stock
// period's snapshot (never from the beginning of time); valuation as of any date.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { ok, product, receive, ship, warehouse, type Place } from './helpers.ts';

let t: TestKubiki;
let w: Place;
beforeAll(async () => {
  t = await startKubiki({ enable: ['warehouse'] });
  w = await warehouse(t);
}, 180_000);
afterAll(() => t?.close());

const valuation = async (asOf: string, p: string) => {
  const r = ok(await t.api('GET', `/api/warehouse/reports/valuation?asOf=${asOf}&product=${p}`));
  return r.rows[0] ? { quantity: r.rows[0].quantity, value: r.rows[0].value } : { quantity: '0.000', value: '0.00' };
};
const revaluations = async (p: string) => (await t.k.db.table('warehouse_revaluations').where({ product_id: p }).orderBy('date').select('date', 'delta', 'stock_delta', 'move_id', 'caused_by'))
  .map((r: { date: string; delta: string; stock_delta: string; move_id: string; caused_by: string }) => ({ ...r, date: String(r.date).slice(0, 10) }));
const state = async (p: string) => t.k.db.table('warehouse_costs').where({ product_id: p }).first();

describe('moving average', () => {
  it('values issues at the running average, exactly', async () => {
    const p = await product(t);
    const bin = w.bins[0];
    expect((await receive(t, p, bin, '3', '10.00', { date: '2026-01-10' })).value).toBe('30.00');
    expect((await receive(t, p, bin, '4', '11.00', { date: '2026-01-11' })).value).toBe('44.00');
    // 7 for 74.00: two of them are 74 × 2/7 = 21.142857… → 21.14; five left for 52.86.
    const s1 = await ship(t, p, bin, '2', { date: '2026-01-12' });
    expect(s1).toMatchObject({ value: '21.14', unitCost: '10.5700', valuation: 'out' });
    // The rest goes out at exactly what is left: no rounding residue stays behind.
    const s2 = await ship(t, p, bin, '5', { date: '2026-01-13' });
    expect(s2.value).toBe('52.86');
    expect(await state(p)).toMatchObject({ quantity: '0.000', value: '0.00' });
  });

  it('a back-dated receipt re-values the later issues from the last closed period, and only those', async () => {
    const p = await product(t);
    const bin = w.bins[1];
    // February, then closed: the snapshot holds 4 for 36.00.
    await receive(t, p, bin, '4', '9.00', { date: '2026-02-10' });
    const feb = ok(await t.api('POST', '/api/warehouse/periods', { date: '2026-02-28' }), 201);
    expect(feb).toMatchObject({ status: 'closed' });
    // March as posted:                                                   quantity  value
    await receive(t, p, bin, '10', '10.00', { date: '2026-03-01' }); //        14   136.00
    const s1 = await ship(t, p, bin, '4', { date: '2026-03-05' }); //          10    97.14  (136 × 4/14 = 38.857… → 38.86)
    await receive(t, p, bin, '10', '13.00', { date: '2026-03-10' }); //        20   227.14
    const s2 = await ship(t, p, bin, '6', { date: '2026-03-15' }); //          14   159.00  (227.14 × 6/20 = 68.142 → 68.14)
    expect([s1.value, s2.value]).toEqual(['38.86', '68.14']);
    expect(await valuation('2026-03-31', p)).toEqual({ quantity: '14.000', value: '159.00' });

    // The snapshot, not the ledger, is where recomputation starts: spoil February's move in the
    // database (as if the beginning of time were unreadable); the results below do not change.
    const februaryMove = await t.k.db.table('warehouse_moves').where({ product: p, date: '2026-02-10' }).first('id', 'value');
    await t.k.db.table('warehouse_moves').where({ id: februaryMove.id }).update({ value: '999.99' });

    // A receipt dated 3 March arrives late: 5 for 80.00. Replayed from the snapshot (4, 36.00):
    //   03-01 +10 → 14 136.00;  03-03 +5 → 19 216.00;  03-05 −4: 216 × 4/19 = 45.4736… → 45.47 → 15 170.53
    //   03-10 +10 → 25 300.53;  03-15 −6: 300.53 × 6/25 = 72.1272 → 72.13 → 19 228.40
    const late = await receive(t, p, bin, '5', '16.00', { date: '2026-03-03' });
    expect(late.value).toBe('80.00');
    await t.k.db.table('warehouse_moves').where({ id: februaryMove.id }).update({ value: februaryMove.value });
    // The posted issues keep their values; each changed one has a revaluation dated as it.
    expect((await t.api('GET', `/api/warehouse/moves/${s1.id}`)).body.value).toBe('38.86');
    expect(await revaluations(p)).toEqual([
      { date: '2026-03-05', delta: '6.61', stock_delta: '-6.61', move_id: s1.id, caused_by: late.id },
      { date: '2026-03-15', delta: '3.99', stock_delta: '-3.99', move_id: s2.id, caused_by: late.id },
    ]);
    expect(await state(p)).toMatchObject({ quantity: '19.000', value: '228.40' });
    // Valuation as of any date: before, between and after the late move's effects.
    expect(await valuation('2026-02-28', p)).toEqual({ quantity: '4.000', value: '36.00' });
    expect(await valuation('2026-03-03', p)).toEqual({ quantity: '19.000', value: '216.00' });
    expect(await valuation('2026-03-05', p)).toEqual({ quantity: '15.000', value: '170.53' });
    expect(await valuation('2026-03-31', p)).toEqual({ quantity: '19.000', value: '228.40' });
    // Σ in − Σ out: 36 + 100 + 80 + 130 − 45.47 − 72.13 = 228.40.
    const ledger = ok(await t.api('GET', `/api/warehouse/reports/stock-ledger?product=${p}&from=2026-03-01&to=2026-03-31`));
    expect(ledger.opening).toEqual({ quantity: '4.000', value: '36.00' });
    expect(ledger.closing).toEqual({ quantity: '19.000', value: '228.40' });
    expect(ledger.rows.map((r: Record<string, unknown>) => [r.date, r.quantityIn ?? `-${r.quantityOut}`, r.value, r.revaluation, r.balanceValue])).toEqual([
      ['2026-03-01', '10.000', '100.00', null, '136.00'],
      ['2026-03-03', '5.000', '80.00', null, '216.00'],
      ['2026-03-05', '-4.000', '45.47', '6.61', '170.53'],
      ['2026-03-10', '10.000', '130.00', null, '300.53'],
      ['2026-03-15', '-6.000', '72.13', '3.99', '228.40'],
    ]);
    // A move into the closed period is refused, naming the date.
    const refused = await t.api('POST', '/api/warehouse/moves', { kind: 'receipt', product: p, quantity: '1', fromLocation: '019b0000-0000-7000-8000-000000000001', toLocation: bin, unitCost: '1.00', date: '2026-02-20' });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'warehouse.period-closed', field: 'date', closedUntil: '2026-02-28' });
    // Only the last closed period reopens; then February takes moves again.
    const reopened = ok(await t.api('POST', `/api/warehouse/periods/${feb.id}/reopen`));
    expect(reopened.status).toBe('open');
    expect(await t.count('warehouse_period_costs', { period_id: feb.id })).toBe(0);
    ok(await t.api('POST', `/api/warehouse/periods/${feb.id}/close`));
  });
});

describe('FIFO', () => {
  it('issues from the oldest layers; a back-dated receipt re-values only the issue that would have taken it', async () => {
    const p = await product(t, { valuation: 'fifo' });
    const bin = w.bins[0];
    // February is closed (above): this product starts in March, so its replay starts empty.
    await receive(t, p, bin, '5', '8.00', { date: '2026-03-01' }); //   layers 5@8
    await receive(t, p, bin, '10', '10.00', { date: '2026-03-02' }); //  5@8, 10@10
    await receive(t, p, bin, '10', '12.00', { date: '2026-03-10' }); //  5@8, 10@10, 10@12
    const s1 = await ship(t, p, bin, '12', { date: '2026-03-15' }); //   5@8 + 7@10 = 110.00 → 3@10, 10@12
    const s2 = await ship(t, p, bin, '6', { date: '2026-03-20' }); //    3@10 + 3@12 = 66.00 → 7@12
    expect([s1.value, s2.value]).toEqual(['110.00', '66.00']);
    expect(await state(p)).toMatchObject({ quantity: '7.000', value: '84.00' });

    // Late: 4 @ 9.50 dated 5 March, a layer between 10@10 (2 March) and 10@12 (10 March):
    //   03-15 −12: 5@8 + 7@10 = 110.00 (unchanged) → 3@10, 4@9.50, 10@12
    //   03-20 −6: 3@10 + 3@9.50 = 58.50 (was 66.00: −7.50) → 1@9.50, 10@12 = 129.50
    const late = await receive(t, p, bin, '4', '9.50', { date: '2026-03-05' });
    expect(late.value).toBe('38.00');
    expect(await revaluations(p)).toEqual([{ date: '2026-03-20', delta: '-7.50', stock_delta: '7.50', move_id: s2.id, caused_by: late.id }]);
    const s = await state(p);
    expect(s).toMatchObject({ quantity: '11.000', value: '129.50' });
    expect((typeof s.layers === 'string' ? JSON.parse(s.layers) : s.layers).map((l: { q: string; v: string }) => [l.q, l.v])).toEqual([['1.000', '9.50'], ['10.000', '120.00']]);
    expect(await valuation('2026-03-19', p)).toEqual({ quantity: '17.000', value: '188.00' });
    expect(await valuation('2026-03-20', p)).toEqual({ quantity: '11.000', value: '129.50' });
    // The next issue continues from the corrected layers: 1@9.50 + 2@12 = 33.50.
    expect((await ship(t, p, bin, '3', { date: '2026-03-25' })).value).toBe('33.50');
  });

  it('a reversal puts stock back at the value it left with, and a reversed receipt leaves from its own layer', async () => {
    const p = await product(t, { valuation: 'fifo' });
    const bin = w.bins[1];
    const r1 = await receive(t, p, bin, '5', '10.00', { date: '2026-04-01' });
    const r2 = await receive(t, p, bin, '5', '20.00', { date: '2026-04-02' });
    const s = await ship(t, p, bin, '6', { date: '2026-04-03' }); // 5@10 + 1@20 = 70.00
    expect(s.value).toBe('70.00');
    const back = ok(await t.api('POST', `/api/warehouse/moves/${s.id}/reverse`, { date: '2026-04-04' }), 201);
    expect(back).toMatchObject({ reverses: s.id, value: '70.00', fromLocation: s.toLocation, toLocation: s.fromLocation, valuation: 'in' });
    // A second reversal of the same move is refused.
    expect((await t.api('POST', `/api/warehouse/moves/${s.id}/reverse`, {})).body).toMatchObject({ status: 409, field: 'id', rule: 'reversed-once' });
    // Layers now: 4@20 (the 20.00 receipt's, one unit shipped) and the returned 6 for 70.00.
    // Reversing the 20.00 receipt takes its own layer first (4 for 80.00), then 1 of the
    // returned layer (70 × 1/6 = 11.666… → 11.67): 91.67; left 5 for 58.33.
    const rr = ok(await t.api('POST', `/api/warehouse/moves/${r2.id}/reverse`, { date: '2026-04-05' }), 201);
    expect(rr.value).toBe('91.67');
    // Σ in − Σ out: 50 + 100 + 70 − 70 − 91.67 = 58.33.
    expect(await state(p)).toMatchObject({ quantity: '5.000', value: '58.33' });
    // A reversal is not reversed again.
    expect((await t.api('POST', `/api/warehouse/moves/${rr.id}/reverse`, {})).body).toMatchObject({ status: 409, rule: 'not-a-reversal' });
    void r1;
  });
});
