import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { expectBalanced, expectNothingWritten, org, snapshot } from './helpers.ts';

let t: TestKubiki;
let acme: string;
let other: string;
beforeAll(async () => {
  t = await startKubiki({ enable: ['base', 'finance'] });
  acme = await org(t, 'Acme', '7707083893');
  other = await org(t, 'Other', '7736207543');
});
afterAll(() => t?.close());

/** A posted customer invoice of `net` + 20 % VAT. */
async function invoice(net: string, organization = acme, kind = 'customer'): Promise<{ id: string; number: string; total: string }> {
  const d = await t.api('POST', '/api/finance/invoices', { kind, organization, date: '2026-03-01', dueDate: '2026-03-31', lines: [{ description: 'Work', quantity: '1', price: net, vatRate: '20' }] });
  const p = await t.api('POST', `/api/finance/invoices/${d.body.id}/post`);
  expect(p.status, JSON.stringify(p.body)).toBe(200);
  return p.body.invoice;
}
async function payment(amount: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await t.api('POST', '/api/finance/payments', { direction: 'in', organization: acme, date: '2026-03-05', amount, reference: 'bank', ...extra });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id;
}

describe('payments', () => {
  it('allocates partially and fully: Dr 51 / Cr 62, paidAmount and status follow; the rest is an advance', async () => {
    const inv = await invoice('1000.00'); // total 1200.00
    const p1 = await payment('500.00');
    const r1 = await t.api('POST', `/api/finance/payments/${p1}/post`, { allocations: [{ invoice: inv.id, amount: '500.00' }] });
    expect(r1.status, JSON.stringify(r1.body)).toBe(200);
    expect(r1.body.payment).toMatchObject({ status: 'posted', unallocated: '0.00', allocations: [{ invoice: inv.id, amount: '500.00' }] });
    expect(r1.body.entry.lines.map((l: { account: string; debit: string; credit: string }) => [l.account, l.debit, l.credit])).toEqual([['51', '500.00', '0.00'], ['62', '0.00', '500.00']]);
    expect((await t.api('GET', `/api/finance/invoices/${inv.id}`)).body).toMatchObject({ status: 'partlyPaid', paidAmount: '500.00' });

    const p2 = await payment('1000.00');
    const r2 = await t.api('POST', `/api/finance/payments/${p2}/post`, { allocations: [{ invoice: inv.id, amount: '700.00' }] });
    expect(r2.body.payment).toMatchObject({ unallocated: '300.00' });
    expect((await t.api('GET', `/api/finance/invoices/${inv.id}`)).body).toMatchObject({ status: 'paid', paidAmount: '1200.00' });
    // A paid invoice is not cancelled; a posted payment is not edited, re-posted or deleted.
    expect((await t.api('POST', `/api/finance/invoices/${inv.id}/cancel`)).body).toMatchObject({ status: 409, code: 'transition-not-allowed' });
    expect((await t.api('PATCH', `/api/finance/payments/${p2}`, { amount: '1.00' })).body).toMatchObject({ status: 409, code: 'document-locked', field: 'amount' });
    expect((await t.api('POST', `/api/finance/payments/${p2}/post`)).body).toMatchObject({ status: 409, code: 'transition-not-allowed' });
    expect((await t.api('DELETE', `/api/finance/payments/${p2}`)).body).toMatchObject({ status: 409, code: 'document-locked' });
    await expectBalanced(t);
  });

  it('allocates one payment to several invoices, using the draft\'s proposed allocations', async () => {
    const a = await invoice('100.00');
    const b = await invoice('200.00');
    const p = await payment('360.00', { allocations: [{ invoice: a.id, amount: '120.00' }, { invoice: b.id, amount: '240.00' }] });
    const r = await t.api('POST', `/api/finance/payments/${p}/post`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.invoices.map((i: { status: string }) => i.status)).toEqual(expect.arrayContaining(['paid', 'paid']));
  });

  it('refuses bad postings with the field named and nothing written', async () => {
    const inv = await invoice('50.00'); // 60.00
    const supplierInv = await invoice('10.00', acme, 'supplier');
    const otherInv = await invoice('10.00', other);
    const p = await payment('100.00');
    const noOrg = await payment('10.00', { organization: undefined });
    const before = await snapshot(t);
    const cases: [string, unknown, number, string][] = [
      [p, { allocations: [{ invoice: inv.id, amount: '61.00' }] }, 409, 'allocations.0.amount'],
      [p, { allocations: [{ invoice: inv.id, amount: '60.00' }, { invoice: otherInv.id, amount: '12.00' }] }, 400, 'allocations.1.invoice'],
      [p, { allocations: [{ invoice: supplierInv.id, amount: '1.00' }] }, 400, 'allocations.0.invoice'],
      [p, { allocations: [{ invoice: inv.id, amount: '60.001' }] }, 400, 'allocations.0.amount'],
      [p, { allocations: [{ invoice: inv.id }] }, 400, 'allocations.0.amount'],
      [p, { allocations: [{ invoice: 'x', amount: '1.00' }] }, 400, 'allocations.0.invoice'],
      [p, { allocations: [{ invoice: '0190f1c2-0000-7000-8000-0000000000aa', amount: '1.00' }] }, 400, 'allocations.0.invoice'],
      [p, { allocations: [{ invoice: inv.id, amount: '1.00' }, { invoice: inv.id, amount: '1.00' }] }, 400, 'allocations.1.invoice'],
      [p, { allocations: 'all' }, 400, 'allocations'],
      [p, { extra: 1 }, 400, 'extra'],
      [noOrg, {}, 400, 'organization'],
    ];
    for (const [id, body, status, field] of cases) {
      const r = await t.api('POST', `/api/finance/payments/${id}/post`, body);
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(r.body.field).toBe(field);
    }
    const big = await t.api('POST', '/api/finance/payments', { direction: 'in', amount: '1.00', status: 'posted' });
    expect(big.body).toMatchObject({ status: 409, code: 'transition-required', field: 'status' });
    const neg = await t.api('POST', '/api/finance/payments', { direction: 'sideways', amount: '1.00' });
    expect(neg.body).toMatchObject({ status: 400, field: 'direction' });
    await expectNothingWritten(t, before);
  });

  it('20 concurrent payment postings against one invoice never over-allocate', async () => {
    const inv = await invoice('1000.00'); // 1200.00: room for 8 payments of 150.00
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push(await payment('150.00'));
    const results = await Promise.all(ids.map((id) => t.api('POST', `/api/finance/payments/${id}/post`, { allocations: [{ invoice: inv.id, amount: '150.00' }] })));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status !== 200);
    expect(ok).toHaveLength(8);
    // Refused because it would over-allocate, or because the invoice is already fully paid.
    for (const r of refused) {
      expect(r.body.status).toBe(409);
      expect([['allocations.0.amount', 'outstanding'], ['allocations.0.invoice', 'open']]).toContainEqual([r.body.field, r.body.rule]);
    }
    expect(await t.count('finance_payments', { status: 'posted' })).toBeGreaterThanOrEqual(8);
    const after = (await t.api('GET', `/api/finance/invoices/${inv.id}`)).body;
    expect(after).toMatchObject({ status: 'paid', paidAmount: '1200.00' });
    const [{ sum }] = await t.k.db.table('finance_allocations').where({ invoice_id: inv.id }).sum({ sum: 'amount' });
    expect(Number(sum)).toBe(1200);
    await expectBalanced(t);
  });
});

describe('bank statement import', () => {
  it('creates draft payments, matching by invoice number and by amount; reports the unmatched', async () => {
    const a = await invoice('500.00'); // 600.00
    const b = await invoice('250.00'); // 300.00
    const csv = [
      'date,amount,reference,counterpartyInn,counterpartyName',
      `2026-03-10,600.00,"Оплата по счёту ${a.number}, в т.ч. НДС",7707083893,Acme`,
      '11.03.2026,300.00,Payment without number,7707083893,Acme',
      '2026-03-12,42.00,Unknown,7700000000,Nobody',
      '2026-03-12,-15.50,Bank fee,,Bank',
    ].join('\n');
    const r = await t.api('POST', '/api/finance/bank-statements', { csv });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.created).toBe(4);
    expect(r.body.matched).toEqual([
      expect.objectContaining({ line: 2, invoice: a.id, by: 'reference', allocated: '600.00' }),
      expect.objectContaining({ line: 3, invoice: b.id, by: 'amount', allocated: '300.00' }),
    ]);
    expect(r.body.unmatched.map((u: { line: number }) => u.line)).toEqual([4, 5]);
    const fee = (await t.api('GET', `/api/finance/payments/${r.body.unmatched[1].payment}`)).body;
    expect(fee).toMatchObject({ direction: 'out', amount: '15.50', status: 'draft', importLine: 5 });
    // Posting the matched draft applies its proposed allocation.
    const post = await t.api('POST', `/api/finance/payments/${r.body.matched[0].payment}/post`);
    expect(post.status, JSON.stringify(post.body)).toBe(200);
    expect((await t.api('GET', `/api/finance/invoices/${a.id}`)).body.status).toBe('paid');
  });

  it('reports every bad row with its line number and imports nothing', async () => {
    const before = await snapshot(t);
    const csv = 'date,amount,reference\n2026-03-10,100.00,ok\n2026-13-01,5,bad date\n2026-03-11,abc,bad amount\n';
    const r = await t.api('POST', '/api/finance/bank-statements', { csv });
    expect(r.status).toBe(400);
    expect(r.body.errors.map((e: { field: string }) => e.field)).toEqual(['csv.3.date', 'csv.4.amount']);
    expect(r.body.detail).toContain('line 3');
    expect((await t.api('POST', '/api/finance/bank-statements', { csv: 'when,how much\n1,2' })).body).toMatchObject({ status: 400, field: 'csv.1' });
    expect((await t.api('POST', '/api/finance/bank-statements', {})).body).toMatchObject({ status: 400, field: 'csv' });
    expect((await t.api('POST', '/api/finance/bank-statements', { csv: 'date,amount\n' })).body).toMatchObject({ status: 400, field: 'csv' });
    await expectNothingWritten(t, before);
  });
});
