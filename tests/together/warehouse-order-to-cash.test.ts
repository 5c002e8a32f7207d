// The warehouse between CRM and finance (workflows/deal-won-sales-order.yaml, shipment-invoice.yaml,
// shipment-on-timeline.yaml, receipt-supplier-invoice.yaml): a won deal becomes a draft sales order
// (and, with the warehouse on, no invoice of its own); a shipped shipment becomes a draft customer
// invoice for what it carries and an entry on the customer's timeline; a goods receipt becomes a
// draft supplier invoice debiting the account the receipt credited, so stock is counted once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

let t: TestKubiki;
let orgId: string;
let warehouseId: string;

beforeAll(async () => {
  t = await startKubiki({ enable: ['crm', 'finance', 'warehouse'] });
  orgId = (await ok('POST', '/api/base/organizations', { name: 'Stock & Sales LLC', roles: ['customer', 'supplier'] })).id;
  await ok('POST', '/api/crm/customers', { organization: orgId });
  warehouseId = (await ok('POST', '/api/warehouse/warehouses', { code: 'A-MAIN', name: 'Main warehouse' })).id;
}, 180_000);
afterAll(async () => t?.close());

async function ok<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await t.api(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body as T;
}
const settle = () => t.k.workflowRuntime.settle();
const product = async (sku: string) => (await ok('POST', '/api/base/products', { sku, name: `Product ${sku}` })).id as string;
/** An entry's lines as "account:debit/credit", sorted. */
async function entryLines(id: string): Promise<string[]> {
  const entry = await ok('GET', `/api/finance/entries/${id}`);
  const codes = new Map<string, string>((await ok('GET', '/api/finance/accounts?limit=500')).data.map((a: any) => [a.id, a.code]));
  return entry.lines.map((l: any) => `${codes.get(l.account) ?? l.account}:${l.debit ?? '0.00'}/${l.credit ?? '0.00'}`).sort();
}

describe('procure to pay', () => {
  it('a goods receipt gets a draft supplier invoice for what was received, debiting goods received not invoiced (60), not purchases', async () => {
    const p = await product('PTP-1');
    const po = await ok('POST', '/api/warehouse/purchaseOrders', { supplier: orgId, warehouse: warehouseId, date: '2026-04-01', lines: [{ product: p, description: 'Bolts', quantity: '10', price: '100.00', vatRate: '20' }] });
    await ok('POST', `/api/warehouse/purchaseOrders/${po.id}/confirm`);
    const receipt = await ok('POST', `/api/warehouse/purchaseOrders/${po.id}/receive`, { date: '2026-04-03', lines: [{ line: 0, quantity: '4' }] });
    await settle();
    const invoices = (await ok('GET', `/api/finance/invoices?sourceId=${receipt.id}`)).data;
    expect(invoices).toHaveLength(1);
    expect(invoices[0]).toMatchObject({ kind: 'supplier', status: 'draft', organization: orgId, date: '2026-04-03', sourceEntity: 'warehouse.receipts', debitAccount: '60', subtotal: '400.00', vatTotal: '80.00', total: '480.00' });
    expect(invoices[0].lines).toEqual([expect.objectContaining({ product: p, quantity: '4', price: '100.00', vatRate: '20' })]);
    // The receipt's move: Dr 41 / Cr 60 400.00. The invoice: Dr 60 400.00 and Dr 19 80.00 / Cr 60 480.00.
    const posted = await ok('POST', `/api/finance/invoices/${invoices[0].id}/post`);
    expect(await entryLines(posted.invoice.entry)).toEqual(['19:80.00/0.00', '60:0.00/480.00', '60:400.00/0.00']);
    const trial = await ok('GET', '/api/finance/reports/trial-balance?from=2026-01-01&to=2026-12-31');
    const row = (code: string) => trial.rows.find((r: any) => r.account === code || r.code === code);
    // Inventory counted once: 400.00 on 41, not 800.00.
    expect(row('41')).toMatchObject({ closingDebit: '400.00' });
    // A customer invoice has no debit account to choose.
    const wrong = await ok('POST', '/api/finance/invoices', { kind: 'customer', organization: orgId, date: '2026-04-03', debitAccount: '60', lines: [{ description: 'X', quantity: '1', price: '1.00', vatRate: '20' }] });
    const refused = await t.api('POST', `/api/finance/invoices/${wrong.id}/post`);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ field: 'debitAccount' });
  });
});

describe('order to cash with a warehouse', () => {
  it('a won deal becomes a draft sales order from its quote, and no invoice of its own', async () => {
    const p = await product('OTC-1');
    const quote = await ok('POST', '/api/crm/quotes', { organization: orgId, lines: [{ product: p, description: 'Chairs', quantity: '3', price: '1000.00', vatRate: '22' }] });
    const deal = await ok('POST', '/api/crm/deals', { title: 'Chairs for the office', organization: orgId, quote: quote.id });
    await ok('POST', `/api/crm/deals/${deal.id}/transitions/propose`);
    await ok('POST', `/api/crm/deals/${deal.id}/transitions/win`);
    await settle();
    const orders = (await ok('GET', `/api/warehouse/salesOrders?sourceId=${deal.id}`)).data;
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({ status: 'draft', customer: orgId, warehouse: warehouseId, sourceEntity: 'crm.deals', subtotal: quote.subtotal, total: quote.total });
    expect(orders[0].lines).toEqual([expect.objectContaining({ product: p, quantity: '3', price: '1000.00' })]);
    // The deal is invoiced through its shipments, not at once.
    expect((await ok('GET', `/api/finance/invoices?sourceId=${deal.id}`)).data).toEqual([]);
  });

  it('a shipped shipment gets a draft customer invoice for what it carries and appears on the customer\'s timeline', async () => {
    const p = await product('OTC-2');
    await ok('POST', '/api/warehouse/moves', { kind: 'receipt', product: p, quantity: '10', fromLocation: '019b0000-0000-7000-8000-000000000001', toLocation: (await ok('GET', `/api/warehouse/warehouses/${warehouseId}`)).location, unitCost: '50.00' });
    const so = await ok('POST', '/api/warehouse/salesOrders', { customer: orgId, warehouse: warehouseId, lines: [{ product: p, description: 'Tables', quantity: '5', price: '200.00', vatRate: '20' }] });
    await ok('POST', `/api/warehouse/salesOrders/${so.id}/confirm`);
    const shipment = await ok('POST', `/api/warehouse/salesOrders/${so.id}/shipments`, { lines: [{ line: 0, quantity: '2' }] });
    await ok('POST', `/api/warehouse/shipments/${shipment.id}/pack`);
    await ok('POST', `/api/warehouse/shipments/${shipment.id}/ship`, { date: '2026-05-20' });
    await settle();
    const invoices = (await ok('GET', `/api/finance/invoices?sourceId=${shipment.id}`)).data;
    expect(invoices).toHaveLength(1);
    expect(invoices[0]).toMatchObject({ kind: 'customer', status: 'draft', organization: orgId, date: '2026-05-20', dueDate: '2026-06-03', sourceEntity: 'warehouse.shipments', subtotal: '400.00', vatTotal: '80.00', total: '480.00' });
    const activities = (await ok('GET', `/api/crm/activities?sourceId=${shipment.id}`)).data;
    expect(activities).toEqual([expect.objectContaining({ kind: 'shipment', organization: orgId, subject: `Shipment ${shipment.number} shipped: 480.00` })]);
    // Shipping again does not happen; the order's rest is shipped and invoiced on its own.
    const rest = await ok('POST', `/api/warehouse/salesOrders/${so.id}/shipments`);
    await ok('POST', `/api/warehouse/shipments/${rest.id}/pack`);
    await ok('POST', `/api/warehouse/shipments/${rest.id}/ship`, { date: '2026-05-21' });
    await settle();
    expect((await ok('GET', `/api/finance/invoices?sourceEntity=warehouse.shipments&sourceId=${rest.id}`)).data).toEqual([expect.objectContaining({ total: '720.00' })]);
    expect((await ok('GET', `/api/finance/invoices?sourceId=${shipment.id}`)).data).toHaveLength(1);
  });
});
