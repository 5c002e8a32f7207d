// Money across CRM and finance: one computation (the core's money module) gives a quote and the
// invoice made from it the same totals; totals are computed in the write itself; a deal on a quote
// carries the quote's total; the dry run of the won-deal workflow plans what the engine writes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM } from '../../core/auth/principal.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

let t: TestKubiki;
let orgId: string;

beforeAll(async () => {
  t = await startKubiki({ enable: ['crm', 'finance'] });
  orgId = (await ok('POST', '/api/base/organizations', { name: 'Money LLC' })).id;
  await ok('POST', '/api/crm/customers', { organization: orgId });
});
afterAll(async () => t?.close());

async function ok<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await t.api(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body as T;
}

const THREE_LINES = [
  { description: 'A', quantity: '1', price: '99.99', vatRate: '20' },
  { description: 'B', quantity: '1', price: '49.99', vatRate: '20' },
  { description: 'C', quantity: '1', price: '19.99', vatRate: '20' },
];

async function winWithQuote(quote: Record<string, unknown>): Promise<{ quote: any; deal: any; invoice: any }> {
  const q = await ok('POST', '/api/crm/quotes', { organization: orgId, ...quote });
  const deal = await ok('POST', '/api/crm/deals', { title: `Deal ${Math.random()}`, organization: orgId, amount: '150000.00', quote: q.id });
  await ok('POST', `/api/crm/deals/${deal.id}/transitions/propose`);
  await ok('POST', `/api/crm/deals/${deal.id}/transitions/win`);
  await t.k.workflowRuntime.settle();
  const invoices = (await ok('GET', `/api/finance/invoices?sourceId=${deal.id}`)).data;
  expect(invoices).toHaveLength(1);
  return { quote: q, deal: await ok('GET', `/api/crm/deals/${deal.id}`), invoice: invoices[0] };
}

describe('money from quote to invoice', () => {
  it('a quote and its invoice total the same (99.99 + 49.99 + 19.99 at 20 %, VAT per line by default)', async () => {
    const { quote, invoice } = await winWithQuote({ lines: THREE_LINES });
    // Per line: 20.00 + 10.00 + 4.00 = 34.00 VAT (per rate group it would be 33.99).
    expect(quote).toMatchObject({ subtotal: '169.97', vatTotal: '34.00', total: '203.97' });
    expect(invoice).toMatchObject({ status: 'draft', subtotal: '169.97', vatTotal: '34.00', total: '203.97' });
    const posted = await ok('POST', `/api/finance/invoices/${invoice.id}/post`);
    expect(posted.invoice.total).toBe(quote.total);
  });

  it('a quote priced VAT-included becomes an invoice with the same total (no VAT added on top)', async () => {
    const { quote, invoice, deal } = await winWithQuote({ pricesIncludeVat: true, lines: [{ description: 'Chair', quantity: '1', price: '12200.00', vatRate: '22' }] });
    expect(quote).toMatchObject({ subtotal: '10000.00', vatTotal: '2200.00', total: '12200.00' });
    expect(invoice).toMatchObject({ pricesIncludeVat: true, subtotal: '10000.00', vatTotal: '2200.00', total: '12200.00' });
    expect(deal.amount).toBe('12200.00');
    const posted = await ok('POST', `/api/finance/invoices/${invoice.id}/post`);
    expect(posted.invoice).toMatchObject({ subtotal: '10000.00', vatTotal: '2200.00', total: '12200.00' });
    // Dr 62 12,200.00 / Cr 90.01 10,000.00 / Cr 68.02 2,200.00
    const entry = await ok('GET', `/api/finance/entries/${posted.invoice.entry}`);
    expect(entry.lines.map((l: any) => `${l.account.code ?? l.account}:${l.debit}/${l.credit}`)).toHaveLength(3);
    expect(entry.total).toBe('12200.00');
  });

  it('1,000 random line sets total the same as quotes and as invoices', async () => {
    const rates = ['22', '20', '10', '7', '5', '0', 'exempt'];
    const digits = (n: number) => String(Math.floor(Math.random() * 10 ** n));
    const sets = Array.from({ length: 1000 }, (_, i) => ({
      pricesIncludeVat: i % 3 === 0,
      lines: Array.from({ length: 1 + Math.floor(Math.random() * 6) }, (_, j) => ({
        description: `line ${j}`,
        quantity: `${1 + Math.floor(Math.random() * 50)}${Math.random() < 0.3 ? `.${digits(3)}` : ''}`,
        price: `${digits(5)}.${digits(2).padStart(2, '0')}`,
        ...(Math.random() < 0.3 ? { discountPercent: digits(2) } : {}),
        vatRate: rates[Math.floor(Math.random() * rates.length)],
      })),
    }));
    const quotes = await t.k.repository('crm.quotes').createMany(sets.map((s) => ({ organization: orgId, ...s })), { actor: SYSTEM });
    const invoices = await t.k.repository('finance.invoices').createMany(sets.map((s) => ({ kind: 'customer', organization: orgId, ...s })), { actor: SYSTEM });
    const mismatches = quotes.filter((q, i) => ['subtotal', 'vatTotal', 'total'].some((f) => q[f] !== invoices[i][f]));
    expect(mismatches).toEqual([]);
    expect(quotes.every((q) => typeof q.total === 'string')).toBe(true);
  });
});

describe('computed in the write', () => {
  it('a quote has its totals in the create response; a client cannot write them', async () => {
    const created = await ok('POST', '/api/crm/quotes', { organization: orgId, lines: THREE_LINES });
    expect(created.total).toBe('203.97');
    const refused = await t.api('POST', '/api/crm/quotes', { organization: orgId, lines: THREE_LINES, total: '1.00' });
    expect(refused.status, JSON.stringify(refused.body)).toBe(400);
    expect(refused.body).toMatchObject({ code: 'validation-failed', field: 'total', rule: 'read-only' });
    const patched = await t.api('PATCH', `/api/crm/quotes/${created.id}`, { total: '1.00' });
    expect(patched.status).toBe(400);
    expect(patched.body.field).toBe('total');
    // Sending back what was read is fine; changing the lines recomputes at once.
    const relined = await ok('PATCH', `/api/crm/quotes/${created.id}`, { total: '203.97', lines: THREE_LINES.slice(0, 1) });
    expect(relined).toMatchObject({ subtotal: '99.99', vatTotal: '20.00', total: '119.99' });
    expect((await ok('GET', `/api/crm/quotes/${created.id}`)).total).toBe('119.99');
  });

  it('a draft invoice made outside finance\'s routes (a workflow step, another plugin) has its totals', async () => {
    const draft = await t.k.repository('finance.invoices').create({ kind: 'customer', organization: orgId, lines: THREE_LINES }, { actor: SYSTEM });
    expect(draft).toMatchObject({ status: 'draft', subtotal: '169.97', vatTotal: '34.00', total: '203.97' });
    const emptied = await t.k.repository('finance.invoices').update(draft.id, { lines: [] }, { actor: SYSTEM });
    expect(emptied.total).toBeUndefined();
    await expect(t.k.repository('finance.invoices').create({ kind: 'customer', organization: orgId, lines: THREE_LINES, total: '5.00' }, { actor: SYSTEM }))
      .rejects.toMatchObject({ code: 'validation-failed', issues: [expect.objectContaining({ field: 'total', rule: 'read-only' })] });
  });

  it('a deal on a quote carries the quote\'s total, and follows when the quote changes', async () => {
    const quote = await ok('POST', '/api/crm/quotes', { organization: orgId, lines: [{ description: 'Service', quantity: '1', price: '48292.71', vatRate: '22' }] });
    expect(quote.total).toBe('58917.11');
    const deal = await ok('POST', '/api/crm/deals', { title: 'Synced deal', organization: orgId, amount: '150000.00', quote: quote.id });
    expect(deal.amount).toBe('58917.11');
    await ok('PATCH', `/api/crm/quotes/${quote.id}`, { lines: [{ description: 'Service', quantity: '2', price: '48292.71', vatRate: '22' }] });
    await t.k.workflowRuntime.settle();
    expect((await ok('GET', `/api/crm/deals/${deal.id}`)).amount).toBe('117834.21');
  });
});

describe('printing', () => {
  it('the taxLines helper in an invoice\'s template shows the VAT its totals were computed with (the company\'s policy)', async () => {
    const draft = await t.k.repository('finance.invoices').create({ kind: 'customer', organization: orgId, lines: THREE_LINES }, { actor: SYSTEM });
    const saved = await ok('PUT', '/api/templates/finance.invoice', { source: '<p>{{#each (taxLines totals.taxBase included=false)}}[{{base}}|{{tax}}|{{total}}]{{/each}} {{totals.vatTotal}} {{totals.total}}</p>', comment: 'VAT rows through taxLines' });
    const preview = await ok('POST', '/api/templates/finance.invoice/preview', { recordId: draft.id, version: saved.version });
    // Per rate group the helper used to say 33.99 / 203.96 under an invoice of 34.00 / 203.97.
    expect(preview.html).toContain('[169.97|34.00|203.97] 34.00 203.97');
  });
});

describe('dry run of the won-deal workflow', () => {
  it('plans the invoice exactly as the engine writes it: dates as dates, priced the quote\'s way', async () => {
    const quote = await ok('POST', '/api/crm/quotes', { organization: orgId, pricesIncludeVat: true, lines: THREE_LINES });
    const deal = await ok('POST', '/api/crm/deals', { title: 'Dry deal', organization: orgId, quote: quote.id });
    const res = await t.api('POST', '/api/workflows/workflows.deal-won-invoice/dry-run', { recordId: deal.id });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.outcome, JSON.stringify(res.body)).toBe('completed');
    const create = res.body.steps.find((s: any) => s.step === 'fromQuote');
    const today = new Date().toISOString().slice(0, 10);
    expect(create.effect).toMatchObject({ would: 'create', entity: 'finance.invoices', fields: { date: today, pricesIncludeVat: true } });
    expect(create.effect.fields.dueDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(create.output).toMatchObject({ total: quote.total });
  });
});
