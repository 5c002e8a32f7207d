// With finance enabled, moves post their value through finance's postingRules extension point:
// balanced entries, once per move however often events are delivered; a back-dated move also
// posts the revaluations it caused. (Every other warehouse test runs without finance.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { expectBalanced } from '../finance/helpers.ts';
import { INVENTORY_LOSS, SCRAP, move, ok, product, receive, ship, warehouse, type Place } from './helpers.ts';

let t: TestKubiki;
let w: Place;
beforeAll(async () => {
  t = await startKubiki({ enable: ['finance', 'warehouse'] });
  w = await warehouse(t);
}, 180_000);
afterAll(() => t?.close());

type Line = { account: string; debit: string; credit: string };
const entriesOf = async (moveId: string): Promise<{ date: string; memo: string; lines: Line[] }[]> => {
  const res = ok(await t.api('GET', `/api/finance/entries?sourceEntity=warehouse.moves&sourceId=${moveId}`));
  return res.data.map((e: { date: string; memo: string; lines: Line[] }) => ({ date: e.date, memo: e.memo, lines: e.lines.map((l) => ({ account: l.account, debit: l.debit, credit: l.credit })) }))
    .sort((a: { date: string }, b: { date: string }) => a.date.localeCompare(b.date));
};
const settle = async () => { await t.k.dispatcher.drainAll(); await t.k.dispatcher.drainAll(); };

describe('finance postings', () => {
  it('contributes a posting rule for warehouse moves', async () => {
    const rules = ok(await t.api('GET', '/api/finance/posting-rules'));
    expect(rules.data).toEqual(expect.arrayContaining([{ name: 'warehouse-moves', entity: 'warehouse.postings', subscribed: true }]));
  });

  it('posts receipts, issues, scrap and surplus at their value; transfers post nothing', async () => {
    const p = await product(t);
    const r = await receive(t, p, w.bins[0], '10', '5.00', { date: '2026-05-04' });
    const s = await ship(t, p, w.bins[0], '4', { date: '2026-05-05' });
    const x = await move(t, { kind: 'scrap', product: p, quantity: '1', fromLocation: w.bins[0], toLocation: SCRAP, date: '2026-05-06' });
    const g = await move(t, { kind: 'adjustment', product: p, quantity: '2', fromLocation: INVENTORY_LOSS, toLocation: w.bins[1], date: '2026-05-07' });
    const tr = await move(t, { kind: 'transfer', product: p, quantity: '3', fromLocation: w.bins[0], toLocation: w.bins[1], date: '2026-05-08' });
    await settle();
    expect(await entriesOf(r.id)).toEqual([{ date: '2026-05-04', memo: expect.any(String), lines: [{ account: '41', debit: '50.00', credit: '0.00' }, { account: '60', debit: '0.00', credit: '50.00' }] }]);
    expect((await entriesOf(s.id))[0].lines).toEqual([{ account: '90.02', debit: '20.00', credit: '0.00' }, { account: '41', debit: '0.00', credit: '20.00' }]);
    expect((await entriesOf(x.id))[0].lines).toEqual([{ account: '91.02', debit: '5.00', credit: '0.00' }, { account: '41', debit: '0.00', credit: '5.00' }]);
    expect((await entriesOf(g.id))[0].lines).toEqual([{ account: '41', debit: '10.00', credit: '0.00' }, { account: '91.01', debit: '0.00', credit: '10.00' }]);
    expect(await entriesOf(tr.id)).toEqual([]);
    await expectBalanced(t);
  });

  it('posts once per move, however often the events are delivered', async () => {
    const p = await product(t);
    const r = await receive(t, p, w.bins[0], '3', '7.00');
    const planned = await move(t, { kind: 'shipment', status: 'planned', product: p, quantity: '1', fromLocation: w.bins[0], toLocation: '019b0000-0000-7000-8000-000000000002' });
    await settle();
    expect(await entriesOf(planned.id)).toEqual([]);
    const completed = ok(await t.api('POST', `/api/warehouse/moves/${planned.id}/complete`, {}));
    expect(completed).toMatchObject({ status: 'done', planned: planned.id });
    await settle();
    const before = await t.count('finance_entries');
    // Every warehouse event delivered again.
    const redelivered = await t.k.db.table('kubiki_outbox').where({ plugin: 'warehouse', entity: 'postings' }).update({ dispatched_at: null, attempts: 0, next_attempt_at: t.k.db.knex.fn.now() });
    expect(redelivered).toBeGreaterThanOrEqual(2);
    await settle();
    expect(await t.count('kubiki_outbox', { plugin: 'warehouse', dispatched_at: null })).toBe(0);
    expect(await t.count('finance_entries')).toBe(before);
    expect(await entriesOf(r.id)).toHaveLength(1);
    expect(await entriesOf(completed.id)).toHaveLength(1);
    await expectBalanced(t);
  });

  it('a back-dated move posts its own value and the revaluation of the issues after it', async () => {
    const p = await product(t);
    await receive(t, p, w.bins[0], '10', '10.00', { date: '2026-06-01' });
    const s = await ship(t, p, w.bins[0], '5', { date: '2026-06-10' }); // 50.00
    // Late: 10 @ 16.00 on 5 June → the issue costs 5 × 260/20 = 65.00 (+15.00).
    const late = await receive(t, p, w.bins[0], '10', '16.00', { date: '2026-06-05' });
    await settle();
    expect(s.value).toBe('50.00');
    const posted = await entriesOf(late.id);
    expect(posted.map((e) => [e.date, e.lines])).toEqual([
      ['2026-06-05', [{ account: '41', debit: '160.00', credit: '0.00' }, { account: '60', debit: '0.00', credit: '160.00' }]],
      ['2026-06-10', [{ account: '90.02', debit: '15.00', credit: '0.00' }, { account: '41', debit: '0.00', credit: '15.00' }]],
    ]);
    // The books' inventory equals the stock valuation.
    const stock = ok(await t.api('GET', '/api/warehouse/reports/valuation'));
    const tb = ok(await t.api('GET', '/api/finance/reports/trial-balance?from=2026-01-01&to=2026-12-31'));
    const inventory = tb.rows.find((r: { account: string }) => r.account === '41');
    expect(inventory.closingDebit).toBe(stock.totalValue);
    await expectBalanced(t);
  });
});
