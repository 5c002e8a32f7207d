import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM } from '../../core/auth/principal.ts';
import { KubikiError } from '../../core/errors.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { expectBalanced, expectNothingWritten, org, snapshot } from './helpers.ts';

let t: TestKubiki;
let acme: string;
let supplier: string;
beforeAll(async () => {
  t = await startKubiki({ enable: ['base', 'finance'] });
  acme = await org(t, 'Acme', '7707083893');
  supplier = await org(t, 'Parts Ltd', '7736207543');
});
afterAll(() => t?.close());

const lines = [
  { description: 'Consulting', quantity: '3', price: '1000.00', vatRate: '22' },
  { description: 'Books', quantity: '2', price: '99.99', discountPercent: '10', vatRate: '10' },
  { description: 'Training', quantity: '1', price: '500', vatRate: 'exempt' },
];
const draft = async (extra: Record<string, unknown> = {}) => {
  const r = await t.api('POST', '/api/finance/invoices', { kind: 'customer', organization: acme, date: '2026-02-10', dueDate: '2026-03-10', lines, ...extra });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
};

describe('invoices', () => {
  it('accepts a draft with lines and no totals (the CRM quote line shape), previewing totals', async () => {
    const d = await draft({ sourceEntity: 'crm.deals', sourceId: '0190f1c2-0000-7000-8000-000000000001' });
    expect(d).toMatchObject({ status: 'draft', subtotal: '3679.98', vatTotal: '678.00', total: '4357.98', sourceEntity: 'crm.deals' });
    expect(d.number).toBeUndefined();
    const bad = await t.api('POST', '/api/finance/invoices', { kind: 'customer', lines: [{ description: 'x', quantity: '1', price: '1', vatRate: '18' }] });
    expect(bad.status).toBe(400);
    expect(bad.body.field).toBe('lines.0.vatRate');
    const float = await t.api('POST', '/api/finance/invoices', { kind: 'customer', lines: [{ description: 'x', quantity: 1, price: '1', vatRate: '20' }] });
    expect(float.body).toMatchObject({ status: 400, field: 'lines.0.quantity' });
    // The status belongs to the lifecycle (finance.invoice-lifecycle): an invoice starts as a draft.
    const status = await t.api('POST', '/api/finance/invoices', { kind: 'customer', status: 'paid' });
    expect(status.body).toMatchObject({ status: 409, code: 'transition-required', field: 'status' });
    const num = await t.api('POST', '/api/finance/invoices', { kind: 'customer', number: 'INV-1' });
    expect(num.body).toMatchObject({ status: 400, field: 'number', rule: 'read-only' });
  });

  it('posts: VAT per line, number, journal entry Dr 62 / Cr 90.01 + 68.02, all in one transaction', async () => {
    const d = await draft();
    const r = await t.api('POST', `/api/finance/invoices/${d.id}/post`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    // 3 × 1000 = 3000.00, VAT 22 % = 660.00; 2 × 99.99 − 10 % = 179.982 → 179.98, VAT 10 % = 17.998 → 18.00; 500 exempt.
    expect(r.body.invoice).toMatchObject({ status: 'posted', number: 'INV-2026-000001', subtotal: '3679.98', vatTotal: '678.00', total: '4357.98', paidAmount: '0.00', entry: r.body.entry.id });
    expect(r.body.entry.lines).toEqual([
      { account: '62', accountId: expect.any(String), debit: '4357.98', credit: '0.00', organization: acme },
      { account: '90.01', accountId: expect.any(String), debit: '0.00', credit: '3679.98' },
      { account: '68.02', accountId: expect.any(String), debit: '0.00', credit: '678.00' },
    ]);
    expect(r.body.entry.source).toEqual({ entity: 'finance.invoices', id: d.id });
    const second = await draft();
    expect((await t.api('POST', `/api/finance/invoices/${second.id}/post`)).body.invoice.number).toBe('INV-2026-000002');
    // Posted invoices are not edited (but for dueDate and notes), re-posted, deleted or patched to another status.
    expect((await t.api('PATCH', `/api/finance/invoices/${d.id}`, { lines: [lines[0]] })).body).toMatchObject({ status: 409, code: 'document-locked', field: 'lines' });
    expect((await t.api('PATCH', `/api/finance/invoices/${d.id}`, { notes: 'x' })).status).toBe(200);
    expect((await t.api('POST', `/api/finance/invoices/${d.id}/post`)).body).toMatchObject({ status: 409, code: 'transition-not-allowed' });
    expect((await t.api('DELETE', `/api/finance/invoices/${d.id}`)).body).toMatchObject({ status: 409, code: 'document-locked' });
    const draft2 = await draft();
    const p = await t.api('PATCH', `/api/finance/invoices/${draft2.id}`, { status: 'paid' });
    expect(p.body).toMatchObject({ status: 409, code: 'transition-required', field: 'status' });
    const edited = await t.api('PATCH', `/api/finance/invoices/${draft2.id}`, { lines: [lines[0]] });
    expect(edited.body).toMatchObject({ status: 'draft', total: '3660.00' });
    await expectBalanced(t);
  });

  it('posts a supplier invoice as the mirror: Dr 41 + Dr 19 / Cr 60', async () => {
    const d = await draft({ kind: 'supplier', organization: supplier, supplierNumber: 'P-77' });
    const r = await t.api('POST', `/api/finance/invoices/${d.id}/post`);
    expect(r.body.invoice.number).toBe('SINV-2026-000001');
    expect(r.body.entry.lines.map((l: { account: string; debit: string; credit: string }) => [l.account, l.debit, l.credit])).toEqual([
      ['41', '3679.98', '0.00'], ['19', '678.00', '0.00'], ['60', '0.00', '4357.98'],
    ]);
  });

  it('refuses to post an invalid draft or into a closed period, writing nothing', async () => {
    const noOrg = await draft({ organization: undefined });
    const empty = await draft({ lines: [] });
    const zero = await draft({ lines: [{ description: 'free', quantity: '0', price: '10', vatRate: '22' }] });
    const noDate = await draft({ date: undefined, dueDate: undefined });
    const closedDate = await draft({ date: '2025-11-05', dueDate: '2025-12-05' });
    await t.api('POST', '/api/finance/entries', { date: '2025-11-01', lines: [{ account: '51', debit: '1.00' }, { account: '80', credit: '1.00' }] });
    const period = (await t.api('GET', '/api/finance/periods?month=2025-11')).body.data[0];
    expect((await t.api('POST', `/api/finance/periods/${period.id}/close`)).status).toBe(200);
    const before = await snapshot(t);
    const counter = await t.k.db.table('finance_counters').select();
    const cases: [string, number, string][] = [
      [noOrg.id, 400, 'organization'], [empty.id, 400, 'lines'], [zero.id, 400, 'lines.0.quantity'], [noDate.id, 400, 'date'], [closedDate.id, 409, 'date'],
    ];
    for (const [id, status, field] of cases) {
      const r = await t.api('POST', `/api/finance/invoices/${id}/post`);
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(r.body.field).toBe(field);
    }
    expect((await t.api('POST', `/api/finance/invoices/${noOrg.id}/post`, { extra: true })).body).toMatchObject({ status: 400, field: 'extra' });
    expect((await t.api('POST', '/api/finance/invoices/0190f1c2-0000-7000-8000-0000000000aa/post')).status).toBe(404);
    await expectNothingWritten(t, before);
    expect(await t.k.db.table('finance_counters').select()).toEqual(counter);
    expect((await t.api('GET', `/api/finance/invoices/${closedDate.id}`)).body.status).toBe('draft');
  });

  it('cancels a draft, and a posted unpaid invoice with a reversal entry', async () => {
    const d = await draft();
    const c = await t.api('POST', `/api/finance/invoices/${d.id}/cancel`);
    expect(c.body.invoice.status).toBe('cancelled');
    expect(c.body.reversal).toBeUndefined();
    const posted = await draft();
    const post = await t.api('POST', `/api/finance/invoices/${posted.id}/post`);
    const cancel = await t.api('POST', `/api/finance/invoices/${posted.id}/cancel`, { date: '2026-02-11', reason: 'wrong customer' });
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(200);
    expect(cancel.body.invoice.status).toBe('cancelled');
    expect(cancel.body.reversal).toMatchObject({ reverses: post.body.entry.id, date: '2026-02-11' });
    expect((await t.api('POST', `/api/finance/invoices/${posted.id}/cancel`)).status).toBe(409);
    expect((await t.api('POST', `/api/finance/invoices/${posted.id}/cancel`, { date: 'x' })).body.field).toBe('date');
    await expectBalanced(t);
  });

  it('prints from templates/finance/invoice.hbs with VAT lines, totals and the amount in words', async () => {
    const d = await draft();
    await t.api('POST', `/api/finance/invoices/${d.id}/post`);
    const r = await t.api('POST', '/api/templates/finance.invoice/render', { recordId: d.id, format: 'html' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const doc = await fetch(`${t.url}/api/documents/${r.body.id}/content`, { headers: { authorization: `Bearer ${t.adminToken}` } });
    const html = await doc.text();
    expect(html).toContain('INV-2026-');
    expect(html).toContain('Acme');
    expect(html).toMatch(/4\s357,98/);
    expect(html).toContain('Четыре тысячи триста пятьдесят семь рублей 98 копеек');
    expect(html).toMatch(/НДС 22\s%/);
  });
});

describe('the write guard on finance documents', () => {
  it('refuses computed fields to every writer, and leaves the status to the lifecycle for people', async () => {
    const repo = t.k.repository('finance.invoices');
    const refused = async (work: Promise<unknown>) => (await work.catch((e: unknown) => e)) as KubikiError;
    const admin = (await t.k.auth.authenticate(t.adminToken))!;
    const before = await snapshot(t);
    // Computed fields are refused whoever writes them (plugin code too); a person may not create a posted invoice.
    expect((await refused(repo.create({ kind: 'customer', organization: acme, lines, total: '1.00' }, { actor: SYSTEM }))).issues[0]).toMatchObject({ field: 'total', rule: 'read-only' });
    expect((await refused(repo.create({ kind: 'customer', organization: acme, lines, entry: '0190f1c2-0000-7000-8000-000000000001' }, { actor: SYSTEM }))).issues[0]).toMatchObject({ field: 'entry', rule: 'read-only' });
    expect(await refused(repo.create({ kind: 'customer', organization: acme, lines, status: 'posted' }, { actor: admin }))).toMatchObject({ code: 'transition-required', status: 409 });
    await expectNothingWritten(t, before);
    const d = await draft();
    // Drafts stay editable by anyone allowed to; computed fields do not.
    expect((await repo.update(d.id, { notes: 'checked' }, { actor: SYSTEM })).notes).toBe('checked');
    expect((await refused(repo.update(d.id, { paidAmount: '10.00' }, { actor: SYSTEM }))).issues[0]).toMatchObject({ field: 'paidAmount', rule: 'read-only' });
    expect((await t.api('POST', `/api/finance/invoices/${d.id}/post`)).status).toBe(200);
    // Posted: people edit only dueDate and notes; plugin code (SYSTEM) still writes.
    const posted = await refused(repo.update(d.id, { supplierNumber: 'changed after posting' }, { actor: admin }));
    expect(posted).toMatchObject({ code: 'document-locked', status: 409 });
    expect(posted.issues[0]).toMatchObject({ field: 'supplierNumber', rule: 'editable' });
    expect((await repo.update(d.id, { notes: 'seen by finance' }, { actor: SYSTEM })).notes).toBe('seen by finance');
  });
});
