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

/** A posted invoice of `net` + 20 % VAT. */
async function invoice(net: string, options: { organization?: string; kind?: string; date?: string; dueDate?: string } = {}): Promise<{ id: string; number: string; total: string }> {
  const { organization = acme, kind = 'customer', date = '2026-04-01', dueDate } = options;
  const d = await t.api('POST', '/api/finance/invoices', { kind, organization, date, ...(dueDate ? { dueDate } : {}), lines: [{ description: 'Work', quantity: '1', price: net, vatRate: '20' }] });
  const p = await t.api('POST', `/api/finance/invoices/${d.body.id}/post`);
  expect(p.status, JSON.stringify(p.body)).toBe(200);
  return p.body.invoice;
}
/** A payment, posted (with `allocations`, default none: all of it an advance) unless `draft`. */
async function payment(amount: string, options: { organization?: string; direction?: string; date?: string; allocations?: unknown[]; draft?: boolean } = {}): Promise<string> {
  const { organization = acme, direction = 'in', date = '2026-03-05', allocations = [], draft = false } = options;
  const r = await t.api('POST', '/api/finance/payments', { direction, organization, date, amount, reference: 'advance' });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  if (!draft) {
    const p = await t.api('POST', `/api/finance/payments/${r.body.id}/post`, { allocations });
    expect(p.status, JSON.stringify(p.body)).toBe(200);
  }
  return r.body.id;
}
const allocate = (id: string, body: unknown) => t.api('POST', `/api/finance/payments/${id}/allocate`, body);

describe('allocating an advance later', () => {
  it('allocates an advance to later invoices: paidAmount/status, allocations, unallocated; no entry; audited', async () => {
    const adv = await payment('1500.00'); // all of it stays on 62 as an advance
    expect((await t.api('GET', `/api/finance/payments/${adv}`)).body).toMatchObject({ status: 'posted', unallocated: '1500.00', allocations: [] });
    const a = await invoice('1000.00'); // 1200.00, dated after the payment
    const entries = await t.count('finance_entries');
    const audit = await t.count('kubiki_audit');

    const r = await allocate(adv, { allocations: [{ invoice: a.id, amount: '1200.00' }], date: '2026-04-02' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.payment).toMatchObject({ status: 'posted', unallocated: '300.00', allocations: [{ invoice: a.id, amount: '1200.00' }] });
    expect(r.body.invoices).toEqual([expect.objectContaining({ id: a.id, status: 'paid', paidAmount: '1200.00' })]);
    expect((await t.api('GET', `/api/finance/invoices/${a.id}`)).body).toMatchObject({ status: 'paid', paidAmount: '1200.00' });
    // The advance and the invoice were both on 62 for Acme: no journal entry, the books stay balanced.
    expect(await t.count('finance_entries')).toBe(entries);
    await expectBalanced(t);
    // One audit row for the invoice, one for the payment, one for the allocation row.
    expect(await t.count('kubiki_audit')).toBe(audit + 3);
    const rows = await t.k.db.table('finance_allocations').where({ payment_id: adv }).select('invoice_id', 'amount', t.k.db.knex.raw("to_char(date, 'YYYY-MM-DD') as date"));
    expect(rows).toEqual([{ invoice_id: a.id, amount: '1200.00', date: '2026-04-02' }]);

    // Several invoices in one call (one partly paid); the payment's list keeps one element per invoice.
    const b = await invoice('100.00'); // 120.00
    const c = await invoice('200.00'); // 240.00
    const r2 = await allocate(adv, { allocations: [{ invoice: c.id, amount: '100.00' }, { invoice: b.id, amount: '120.00' }] });
    expect(r2.status, JSON.stringify(r2.body)).toBe(200);
    expect(r2.body.payment.unallocated).toBe('80.00');
    expect((await t.api('GET', `/api/finance/invoices/${b.id}`)).body).toMatchObject({ status: 'paid', paidAmount: '120.00' });
    expect((await t.api('GET', `/api/finance/invoices/${c.id}`)).body).toMatchObject({ status: 'partlyPaid', paidAmount: '100.00' });
    const r3 = await allocate(adv, { allocations: [{ invoice: c.id, amount: '80.00' }] });
    expect(r3.status, JSON.stringify(r3.body)).toBe(200);
    expect(r3.body.payment.unallocated).toBe('0.00');
    expect(r3.body.payment.allocations).toEqual(expect.arrayContaining([{ invoice: a.id, amount: '1200.00' }, { invoice: b.id, amount: '120.00' }, { invoice: c.id, amount: '180.00' }]));
    expect(r3.body.payment.allocations).toHaveLength(3);
    expect((await t.api('GET', `/api/finance/invoices/${c.id}`)).body).toMatchObject({ status: 'partlyPaid', paidAmount: '180.00' });

    // Outgoing advances to suppliers work the same way.
    const out = await payment('500.00', { direction: 'out' });
    const s = await invoice('300.00', { kind: 'supplier' }); // 360.00
    const r4 = await allocate(out, { allocations: [{ invoice: s.id, amount: '360.00' }] });
    expect(r4.status, JSON.stringify(r4.body)).toBe(200);
    expect(r4.body.payment.unallocated).toBe('140.00');
    await expectBalanced(t);
  });

  it('refuses over-allocation (409 naming the field) and writes nothing', async () => {
    const adv = await payment('100.00');
    const big = await invoice('500.00'); // 600.00
    const small = await invoice('50.00'); // 60.00
    const paid = await invoice('10.00'); // 12.00
    await payment('12.00', { allocations: [{ invoice: paid.id, amount: '12.00' }] });
    const before = await snapshot(t);
    const cases: [unknown, string, string][] = [
      [{ allocations: [{ invoice: big.id, amount: '100.01' }] }, 'allocations', 'unallocated'],
      [{ allocations: [{ invoice: big.id, amount: '50.00' }, { invoice: small.id, amount: '50.01' }] }, 'allocations', 'unallocated'],
      [{ allocations: [{ invoice: small.id, amount: '60.01' }] }, 'allocations.0.amount', 'outstanding'],
      [{ allocations: [{ invoice: big.id, amount: '1.00' }, { invoice: paid.id, amount: '1.00' }] }, 'allocations.1.invoice', 'open'],
    ];
    for (const [body, field, rule] of cases) {
      const r = await allocate(adv, body);
      expect(r.status, JSON.stringify(r.body)).toBe(409);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(r.body).toMatchObject({ field, rule });
    }
    await expectNothingWritten(t, before);
    expect((await t.api('GET', `/api/finance/payments/${adv}`)).body.unallocated).toBe('100.00');
  });

  it('refuses bad input with problem+json naming the field and writes nothing', async () => {
    const adv = await payment('100.00');
    const draft = await payment('100.00', { draft: true });
    const inv = await invoice('50.00'); // 60.00
    const otherInv = await invoice('10.00', { organization: other });
    const supplierInv = await invoice('10.00', { kind: 'supplier' });
    const draftInv = (await t.api('POST', '/api/finance/invoices', { kind: 'customer', organization: acme, date: '2026-04-01', lines: [{ description: 'x', quantity: '1', price: '1', vatRate: '0' }] })).body;
    const viewer = await t.userWith(['finance.payments.read']);
    const before = await snapshot(t);
    const ok = { invoice: inv.id, amount: '10.00' };
    const cases: [string, unknown, number, string][] = [
      [adv, { allocations: [ok], extra: 1 }, 400, 'extra'],
      [adv, { allocations: [{ ...ok, note: 'x' }] }, 400, 'allocations.0.note'],
      [adv, {}, 400, 'allocations'],
      [adv, { allocations: [] }, 400, 'allocations'],
      [adv, { allocations: 'all' }, 400, 'allocations'],
      [adv, { allocations: [{ invoice: 'not-a-uuid', amount: '1.00' }] }, 400, 'allocations.0.invoice'],
      [adv, { allocations: [{ invoice: '0190f1c2-0000-7000-8000-0000000000aa', amount: '1.00' }] }, 400, 'allocations.0.invoice'],
      [adv, { allocations: [{ invoice: inv.id, amount: '-5.00' }] }, 400, 'allocations.0.amount'],
      [adv, { allocations: [{ invoice: inv.id, amount: '0.00' }] }, 400, 'allocations.0.amount'],
      [adv, { allocations: [{ invoice: inv.id, amount: 5 }] }, 400, 'allocations.0.amount'],
      [adv, { allocations: [{ invoice: inv.id }] }, 400, 'allocations.0.amount'],
      [adv, { allocations: [ok, ok] }, 400, 'allocations.1.invoice'],
      [adv, { allocations: [ok, { invoice: otherInv.id, amount: '1.00' }] }, 400, 'allocations.1.invoice'],
      [adv, { allocations: [{ invoice: supplierInv.id, amount: '1.00' }] }, 400, 'allocations.0.invoice'],
      [adv, { allocations: [{ invoice: draftInv.id, amount: '1.00' }] }, 409, 'allocations.0.invoice'],
      [adv, { allocations: [ok], date: '2026-03-04' }, 400, 'date'],
      [adv, { allocations: [ok], date: '2026-02-30' }, 400, 'date'],
      [draft, { allocations: [ok] }, 409, 'status'],
      [adv, [ok], 400, ''],
    ];
    for (const [id, body, status, field] of cases) {
      const r = await allocate(id, body);
      expect(r.status, `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`).toBe(status);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(r.body.field, JSON.stringify(r.body)).toBe(field);
    }
    expect((await allocate('0190f1c2-0000-7000-8000-0000000000bb', { allocations: [ok] })).status).toBe(404);
    expect((await t.api('POST', `/api/finance/payments/${adv}/allocate`, { allocations: [ok] }, { token: viewer.token })).status).toBe(403);
    await expectNothingWritten(t, before);
  });

  it('10 concurrent allocations of one advance against two invoices never exceed the advance', async () => {
    const adv = await payment('1000.00');
    const a = await invoice('500.00'); // 600.00: room for 4 × 150
    const b = await invoice('500.00');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => allocate(adv, { allocations: [{ invoice: i % 2 ? a.id : b.id, amount: '150.00' }] })));
    const ok = results.filter((r) => r.status === 200);
    // 1000 / 150: six fit in the advance (each invoice could take four).
    expect(ok).toHaveLength(6);
    for (const r of results.filter((x) => x.status !== 200)) {
      expect(r.body.status, JSON.stringify(r.body)).toBe(409);
      expect([['allocations', 'unallocated'], ['allocations.0.amount', 'outstanding'], ['allocations.0.invoice', 'open']]).toContainEqual([r.body.field, r.body.rule]);
    }
    const p = (await t.api('GET', `/api/finance/payments/${adv}`)).body;
    expect(p.unallocated).toBe('100.00');
    const [{ sum }] = await t.k.db.table('finance_allocations').where({ payment_id: adv }).sum({ sum: 'amount' });
    expect(Number(sum)).toBe(900);
    const paid = await Promise.all([a, b].map(async (x) => (await t.api('GET', `/api/finance/invoices/${x.id}`)).body.paidAmount as string));
    expect(paid.reduce((s, x) => s + Number(x), 0)).toBe(900);
    for (const x of paid) expect(Number(x)).toBeLessThanOrEqual(600);
    expect(p.allocations.reduce((s: number, x: { amount: string }) => s + Number(x.amount), 0)).toBe(900);
    await expectBalanced(t);
  });
});

describe('bank statement imported twice', () => {
  const statement = (rows: string[], header = 'date,amount,reference,counterpartyInn,counterpartyName') => [header, ...rows].join('\n');

  it('skips rows already imported (the same statement, an overlapping one) and reports them as duplicates', async () => {
    const rows = [
      '2026-07-01,100.00,Payment one,7707083893,Acme',
      '2026-07-02,-15.00,Bank fee,,Bank',
      '2026-07-02,-15.00,Bank fee,,Bank', // a second, genuinely equal fee on the same day
      '2026-07-03,250.00,Payment two,7736207543,Other',
    ];
    const first = await t.api('POST', '/api/finance/bank-statements', { csv: statement(rows) });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body).toMatchObject({ created: 4, duplicates: [] });
    const payments = await t.count('finance_payments');
    const ids = [...first.body.matched, ...first.body.unmatched].sort((x, y) => x.line - y.line).map((x: { payment: string }) => x.payment);

    const before = await snapshot(t);
    const again = await t.api('POST', '/api/finance/bank-statements', { csv: statement(rows) });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body).toMatchObject({ created: 0, matched: [], unmatched: [] });
    expect(again.body.duplicates.map((d: { line: number; payment: string; importedLine: number }) => [d.line, d.payment, d.importedLine])).toEqual([[2, ids[0], 2], [3, ids[1], 3], [4, ids[2], 4], [5, ids[3], 5]]);
    await expectNothingWritten(t, before);

    // Overlapping: the 2nd–4th rows again (reordered, `;` separated, DD.MM.YYYY, extra spaces in the reference), plus one new row.
    const overlap = [
      'date;amount;purpose;inn;name',
      '03.07.2026;250,00;Payment   two;7736207543;Other',
      '02.07.2026;-15,00;Bank fee;;Bank',
      '02.07.2026;-15,00;Bank fee;;Bank',
      '04.07.2026;-15,00;Bank fee;;Bank',
    ].join('\n');
    const r = await t.api('POST', '/api/finance/bank-statements', { csv: overlap });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.created).toBe(1);
    expect(r.body.unmatched.map((u: { line: number }) => u.line)).toEqual([5]);
    expect(r.body.duplicates.map((d: { line: number; payment: string }) => [d.line, d.payment])).toEqual([[2, ids[3]], [3, ids[1]], [4, ids[2]]]);
    expect(await t.count('finance_payments')).toBe(payments + 1);
  });

  it('uses the line id when the statement has one; a deleted draft is not imported again', async () => {
    const rows = ['id,date,amount,reference', 'TX-1,2026-08-01,-9.99,Card', 'TX-2,2026-08-01,-9.99,Card'];
    const first = await t.api('POST', '/api/finance/bank-statements', { csv: rows.join('\n') });
    expect(first.body.created, JSON.stringify(first.body)).toBe(2);
    const again = await t.api('POST', '/api/finance/bank-statements', { csv: [...rows, 'TX-3,2026-08-01,-9.99,Card'].join('\n') });
    expect(again.body).toMatchObject({ created: 1, unmatched: [expect.objectContaining({ line: 4 })] });
    expect(again.body.duplicates.map((d: { line: number }) => d.line)).toEqual([2, 3]);

    const gone = first.body.unmatched[0].payment;
    expect((await t.api('DELETE', `/api/finance/payments/${gone}`)).status).toBe(204);
    const third = await t.api('POST', '/api/finance/bank-statements', { csv: rows.join('\n') });
    expect(third.body).toMatchObject({ created: 0, duplicates: [{ line: 2, payment: null, importedLine: 2 }, { line: 3, payment: first.body.unmatched[1].payment }] });
  });

  it('two concurrent imports of one statement create each payment once', async () => {
    const csv = statement(Array.from({ length: 20 }, (_, i) => `2026-09-${String(i + 1).padStart(2, '0')},${i + 1}.00,Concurrent ${i},7707083893,Acme`));
    const payments = await t.count('finance_payments');
    const results = await Promise.all(Array.from({ length: 5 }, () => t.api('POST', '/api/finance/bank-statements', { csv })));
    for (const r of results) expect([200, 201], JSON.stringify(r.body)).toContain(r.status);
    expect(results.reduce((s, r) => s + r.body.created, 0)).toBe(20);
    expect(results.reduce((s, r) => s + r.body.duplicates.length, 0)).toBe(80);
    expect(await t.count('finance_payments')).toBe(payments + 20);
    const [{ n }] = await t.k.db.table('finance_payments').where('reference', 'like', 'Concurrent %').count({ n: '*' });
    expect(Number(n)).toBe(20);
  });
});

describe('ageing as of a past date', () => {
  it('uses only invoices dated ≤ asOf and allocations dated ≤ asOf', async () => {
    const ageco = await org(t, 'Ageco', '7728168971');
    const x = await invoice('1000.00', { organization: ageco, date: '2026-02-01', dueDate: '2026-02-15' }); // 1200.00
    const z = await invoice('10.00', { organization: ageco, date: '2026-02-10' }); // 12.00, no due date
    expect((await t.api('POST', `/api/finance/invoices/${z.id}/cancel`, { date: '2026-04-15' })).status).toBe(200);
    const adv = await payment('50.00', { organization: ageco, date: '2026-03-01' });
    const y = await invoice('100.00', { organization: ageco, date: '2026-05-01', dueDate: '2026-05-31' }); // 120.00
    expect((await allocate(adv, { allocations: [{ invoice: y.id, amount: '50.00' }], date: '2026-05-20' })).status).toBe(200);
    await payment('1200.00', { organization: ageco, date: '2026-06-10', allocations: [{ invoice: x.id, amount: '1200.00' }] });
    expect((await t.api('GET', `/api/finance/invoices/${x.id}`)).body.status).toBe('paid');

    const ageing = async (asOf?: string) => {
      const r = await t.api('GET', `/api/finance/reports/receivables-ageing${asOf ? `?asOf=${asOf}` : ''}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.rows.find((row: { organization: string }) => row.organization === ageco);
    };
    const zero = { notDue: '0.00', days0to30: '0.00', days31to60: '0.00', days61to90: '0.00', days90plus: '0.00' };
    expect(await ageing('2026-01-31')).toBeUndefined();
    // X 14 days past due, Z (cancelled only in April) 19 days past its date.
    expect(await ageing('2026-03-01')).toMatchObject({ ...zero, invoices: 2, days0to30: '1212.00', total: '1212.00' });
    // Z cancelled; Y dated, not due; X 84 days past due; nothing paid yet (the advance is allocated on 05-20).
    expect(await ageing('2026-05-10')).toMatchObject({ ...zero, invoices: 2, notDue: '120.00', days61to90: '1200.00', total: '1320.00' });
    expect(await ageing('2026-05-25')).toMatchObject({ ...zero, invoices: 2, notDue: '70.00', days90plus: '1200.00', total: '1270.00' });
    // X paid on 06-10, the day itself included.
    expect(await ageing('2026-06-10')).toMatchObject({ ...zero, invoices: 1, days0to30: '70.00', total: '70.00' });
    expect(await ageing()).toMatchObject({ invoices: 1, total: '70.00' });

    // Payables too.
    const s = await invoice('500.00', { organization: ageco, kind: 'supplier', date: '2026-02-01', dueDate: '2026-03-01' }); // 600.00
    await payment('600.00', { organization: ageco, direction: 'out', date: '2026-03-02', allocations: [{ invoice: s.id, amount: '600.00' }] });
    const payables = async (asOf: string) => (await t.api('GET', `/api/finance/reports/payables-ageing?asOf=${asOf}`)).body.rows.find((row: { organization: string }) => row.organization === ageco);
    expect(await payables('2026-03-01')).toMatchObject({ ...zero, invoices: 1, days0to30: '600.00', total: '600.00' });
    expect(await payables('2026-03-02')).toBeUndefined();
  });
});
