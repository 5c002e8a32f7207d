import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHIPPED_PLUGINS, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { expectBalanced, org } from './helpers.ts';

let t: TestKubiki;
let acme: string;
beforeAll(async () => {
  t = await startKubiki({ enable: ['base', 'finance', 'shop'], pluginDirs: [SHIPPED_PLUGINS, path.join(import.meta.dirname, 'fixtures/plugins')] });
  acme = await org(t, 'Acme', '7707083893');
});
afterAll(() => t?.close());

const post = async (date: string, lines: unknown[]) => {
  const r = await t.api('POST', '/api/finance/entries', { date, memo: 'r', lines });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
};

describe('reports', () => {
  it('trial balance, P&L and balance sheet agree, in JSON and CSV', async () => {
    await post('2026-05-01', [{ account: '51', debit: '10000.00' }, { account: '80', credit: '10000.00' }]);
    await post('2026-05-10', [{ account: '62', debit: '1220.00', organization: acme }, { account: '90.01', credit: '1000.00' }, { account: '68.02', credit: '220.00' }]);
    await post('2026-05-20', [{ account: '44', debit: '300.00' }, { account: '51', credit: '300.00' }]);
    await post('2026-06-02', [{ account: '51', debit: '1220.00' }, { account: '62', credit: '1220.00', organization: acme }]);

    const tb = await t.api('GET', '/api/finance/reports/trial-balance?from=2026-05-15&to=2026-06-30');
    expect(tb.status).toBe(200);
    expect(tb.body.balanced).toBe(true);
    const row = (code: string) => tb.body.rows.find((r: { account: string }) => r.account === code);
    expect(row('51')).toMatchObject({ openingDebit: '10000.00', debit: '1220.00', credit: '300.00', closingDebit: '10920.00' });
    expect(row('62')).toMatchObject({ openingDebit: '1220.00', credit: '1220.00', closingDebit: '0.00', closingCredit: '0.00' });
    expect(tb.body.totals.closingDebit).toBe(tb.body.totals.closingCredit);

    const csv = await t.api('GET', '/api/finance/reports/trial-balance?to=2026-06-30&format=csv');
    expect(csv.headers.get('content-type')).toContain('text/csv');
    expect(String(csv.body).split('\r\n')[0]).toBe('account,name,type,openingDebit,openingCredit,debit,credit,closingDebit,closingCredit');
    expect(String(csv.body)).toContain('68.02,НДС / VAT payable,liability,0.00,0.00,0.00,220.00,0.00,220.00');

    const pl = await t.api('GET', '/api/finance/reports/profit-and-loss?from=2026-05-01&to=2026-05-31');
    expect(pl.body).toMatchObject({ income: '1000.00', expenses: '300.00', netProfit: '700.00' });

    const bs = await t.api('GET', '/api/finance/reports/balance-sheet?asOf=2026-05-31');
    expect(bs.body).toMatchObject({ assets: '10920.00', liabilities: '220.00', equity: '10700.00', liabilitiesAndEquity: '10920.00', balanced: true });

    const gl = await t.api('GET', '/api/finance/reports/general-ledger?account=51&from=2026-05-15&to=2026-06-30');
    expect(gl.body).toMatchObject({ opening: '10000.00', debit: '1220.00', credit: '300.00', closing: '10920.00' });
    expect(gl.body.rows.map((r: { balance: string }) => r.balance)).toEqual(['9700.00', '10920.00']);
    const glCsv = await t.api('GET', '/api/finance/reports/general-ledger?account=51&format=csv');
    expect(String(glCsv.body).split('\r\n')[0]).toBe('date,entry,memo,source,organization,debit,credit,balance');

    for (const [url, field] of [['trial-balance?to=never', 'to'], ['general-ledger', 'account'], ['general-ledger?account=zzz', 'account'], ['trial-balance?format=xml', 'format'], ['balance-sheet?asOf=2026-02-30', 'asOf'], ['trial-balance?from=2026-02-01&to=2026-01-01', 'from']]) {
      const r = await t.api('GET', `/api/finance/reports/${url}`);
      expect(r.status, url).toBe(400);
      expect(r.body.field).toBe(field);
    }
  });

  it('ages receivables and payables by due date', async () => {
    const mk = async (date: string, dueDate: string, price: string) => {
      const d = await t.api('POST', '/api/finance/invoices', { kind: 'customer', organization: acme, date, dueDate, lines: [{ description: 'x', quantity: '1', price, vatRate: 'exempt' }] });
      expect((await t.api('POST', `/api/finance/invoices/${d.body.id}/post`)).status).toBe(200);
    };
    await mk('2026-01-01', '2026-01-10', '100.00'); // 111 days overdue on 2026-05-01
    await mk('2026-03-01', '2026-03-10', '200.00'); // 52
    await mk('2026-04-01', '2026-04-20', '300.00'); // 11
    await mk('2026-04-25', '2026-05-25', '400.00'); // not due
    const r = await t.api('GET', '/api/finance/reports/receivables-ageing?asOf=2026-05-01');
    expect(r.status).toBe(200);
    expect(r.body.rows).toEqual([expect.objectContaining({ organization: acme, name: 'Acme', notDue: '400.00', days0to30: '300.00', days31to60: '200.00', days61to90: '0.00', days90plus: '100.00', total: '1000.00' })]);
    const p = await t.api('GET', '/api/finance/reports/payables-ageing?asOf=2026-05-01&format=csv');
    expect(String(p.body).trim()).toBe('organization,name,invoices,notDue,days0to30,days31to60,days61to90,days90plus,total');
  });

  it('compares a budget with actual movements', async () => {
    const accounts = (await t.api('GET', '/api/finance/accounts?code[in]=44,90.01')).body.data;
    const id = (code: string) => accounts.find((a: { code: string }) => a.code === code).id;
    for (const b of [{ account: id('44'), month: '2026-05', amount: '250.00' }, { account: id('90.01'), month: '2026-05', amount: '1500.00' }]) {
      expect((await t.api('POST', '/api/finance/budgets', { budget: 'B2026', ...b })).status).toBe(201);
    }
    const r = await t.api('GET', '/api/finance/reports/budget?budget=B2026');
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.rows).toEqual([
      expect.objectContaining({ account: '44', month: '2026-05', planned: '250.00', actual: '300.00', variance: '50.00' }),
      expect.objectContaining({ account: '90.01', month: '2026-05', planned: '1500.00', actual: '1000.00', variance: '-500.00' }),
    ]);
    expect((await t.api('GET', '/api/finance/reports/budget?budget=none')).status).toBe(404);
  });
});

describe('posting rules', () => {
  it('posts entries for another plugin\'s records through finance.postingRules, once per event', async () => {
    const rules = await t.api('GET', '/api/finance/posting-rules');
    expect(rules.body.data).toEqual([{ name: 'shop-cash-sale', entity: 'shop.sales', subscribed: true }]);
    const sale = await t.api('POST', '/api/shop/sales', { title: 'S-1', date: '2026-05-15', amount: '99.90' });
    await t.api('PATCH', `/api/shop/sales/${sale.body.id}`, { status: 'done' });
    await t.k.dispatcher.drainAll();
    await t.k.dispatcher.drainAll();
    const entries = await t.api('GET', `/api/finance/entries?sourceEntity=shop.sales&sourceId=${sale.body.id}`);
    expect(entries.body.data).toHaveLength(1);
    expect(entries.body.data[0]).toMatchObject({ memo: 'Cash sale S-1', lines: [{ account: '50', debit: '99.90' }, { account: '90.01', credit: '99.90' }] });
  });
});

describe('debit = credit', () => {
  it('holds after 1,000 randomly generated documents (entries, invoices, payments)', { timeout: 120_000 }, async () => {
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const amount = () => (Math.floor(rnd() * 100000) / 100 + 0.01).toFixed(2);
    const accounts = ['01', '10', '41', '44', '50', '51', '60', '62', '76', '80', '90.02', '91.01', '91.02'];
    const invoices: { id: string; total: string }[] = [];
    let docs = 0;
    // 800 manual entries of 2–6 lines through the posting service, in batches (POST /entries/batch)…
    const batch = [];
    for (let i = 0; i < 800; i++) {
      const n = 2 + Math.floor(rnd() * 5);
      const lines = [];
      const debits = [];
      for (let j = 0; j < n - 1; j++) { const a = amount(); debits.push(a); lines.push({ account: accounts[Math.floor(rnd() * accounts.length)], debit: a }); }
      const total = debits.reduce((s, a) => s + Math.round(Number(a) * 100), 0);
      lines.push({ account: accounts[Math.floor(rnd() * accounts.length)], credit: (total / 100).toFixed(2) });
      batch.push({ date: `2026-0${1 + Math.floor(rnd() * 9)}-1${Math.floor(rnd() * 9)}`, lines });
    }
    for (let i = 0; i < batch.length; i += 200) {
      const r = await t.api('POST', '/api/finance/entries/batch', { entries: batch.slice(i, i + 200) });
      expect(r.status, JSON.stringify(r.body).slice(0, 500)).toBe(201);
      expect(r.body.data).toHaveLength(200);
    }
    docs += batch.length;
    // …and 100 invoices and 100 payments through REST.
    for (let i = 0; i < 100; i++) {
      const lines = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => ({ description: 'x', quantity: String(1 + Math.floor(rnd() * 5)), price: amount(), discountPercent: rnd() < 0.3 ? '7.5' : undefined, vatRate: ['22', '20', '10', '7', '5', '0', 'exempt'][Math.floor(rnd() * 7)] }));
      const d = await t.api('POST', '/api/finance/invoices', { kind: rnd() < 0.7 ? 'customer' : 'supplier', organization: acme, date: '2026-07-01', dueDate: '2026-07-31', lines });
      const p = await t.api('POST', `/api/finance/invoices/${d.body.id}/post`);
      expect(p.status, JSON.stringify(p.body)).toBe(200);
      if (p.body.invoice.kind === 'customer') invoices.push(p.body.invoice);
      docs++;
    }
    for (let i = 0; i < 100; i++) {
      const inv = invoices[i % invoices.length];
      const pay = await t.api('POST', '/api/finance/payments', { direction: 'in', organization: acme, date: '2026-07-15', amount: amount() });
      const due = Number((await t.api('GET', `/api/finance/invoices/${inv.id}`)).body.total) - Number((await t.api('GET', `/api/finance/invoices/${inv.id}`)).body.paidAmount);
      const alloc = Math.min(due, Number(pay.body.amount));
      const r = await t.api('POST', `/api/finance/payments/${pay.body.id}/post`, alloc > 0 ? { allocations: [{ invoice: inv.id, amount: alloc.toFixed(2) }] } : {});
      expect([200, 409]).toContain(r.status);
      docs++;
    }
    expect(docs).toBe(1000);
    await expectBalanced(t);
    const tb = await t.api('GET', '/api/finance/reports/trial-balance');
    expect(tb.body.balanced).toBe(true);
    const bs = await t.api('GET', '/api/finance/reports/balance-sheet?asOf=2026-12-31');
    expect(bs.body.balanced).toBe(true);
  });
});
