// The first cross-module process (workflows/deal-won-invoice.yaml, invoice-on-timeline.yaml,
// payment-on-timeline.yaml): a won CRM deal becomes a draft finance invoice; posting it and each
// payment shows on the customer's timeline; the customer card shows the open balance. Also with
// CRM alone (nothing attempted), and with finance enabled after deals were already won.
import { afterEach, describe, expect, it } from 'vitest';
import { completeInn } from '../../core/entities/russian-tax-ids.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

let t: TestKubiki | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function ok<T = any>(k: TestKubiki, method: string, path: string, body?: unknown): Promise<T> {
  const res = await k.api(method, path, body);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
  return res.body as T;
}

/** A customer with a quote of two lines and a deal on it, taken to "won". */
async function winDeal(k: TestKubiki, name: string, options: { withQuote?: boolean } = {}) {
  const org = await ok(k, 'POST', '/api/base/organizations', { name, inn: completeInn(String(770000000 + Math.floor(Math.random() * 9999999))) });
  await ok(k, 'POST', '/api/crm/customers', { organization: org.id });
  let quote: { id: string } | undefined;
  if (options.withQuote !== false) {
    quote = await ok(k, 'POST', '/api/crm/quotes', {
      organization: org.id,
      lines: [
        { description: 'Office chair', quantity: '4', price: '12500.00', vatRate: '22' },
        { description: 'Delivery', quantity: '1', price: '1500', discountPercent: '10', vatRate: '22' },
      ],
    });
  }
  const deal = await ok(k, 'POST', '/api/crm/deals', { title: `Chairs for ${name}`, organization: org.id, amount: '51350.00', ...(quote ? { quote: quote.id } : {}) });
  await ok(k, 'POST', `/api/crm/deals/${deal.id}/transitions/propose`);
  const won = await ok(k, 'POST', `/api/crm/deals/${deal.id}/transitions/win`);
  expect(won.record.stage).toBe('won');
  await k.k.workflowRuntime.settle();
  return { org, quote, deal };
}

const invoicesOf = async (k: TestKubiki, dealId: string) => (await ok(k, 'GET', `/api/finance/invoices?sourceId=${dealId}`)).data as Record<string, any>[];
const timeline = async (k: TestKubiki, orgId: string) => (await ok(k, 'GET', `/api/crm/customers/${orgId}/timeline?limit=100`)).data as { kind: string; subject: string; amount?: string; sourceId?: string }[];

describe('order to cash', () => {
  it('with CRM and finance: won deal → draft invoice from the quote → posted → paid, all on the timeline and the card', async () => {
    t = await startKubiki({ enable: ['crm', 'finance'] });
    const { org, deal } = await winDeal(t, 'Romashka LLC');
    const [draft] = await invoicesOf(t, deal.id);
    expect(draft).toMatchObject({ status: 'draft', kind: 'customer', organization: org.id, sourceEntity: 'crm.deals', sourceId: deal.id });
    expect(draft.lines).toEqual([
      { description: 'Office chair', quantity: '4', price: '12500.00', vatRate: '22' },
      { description: 'Delivery', quantity: '1', price: '1500', discountPercent: '10', vatRate: '22' },
    ]);
    // Once per deal: redelivered events start nothing new.
    await t.k.db.table('kubiki_outbox').update({ dispatched_at: null, next_attempt_at: t.k.db.knex.fn.now() });
    await t.k.workflowRuntime.settle();
    expect(await invoicesOf(t, deal.id)).toHaveLength(1);

    const posted = await ok(t, 'POST', `/api/finance/invoices/${draft.id}/post`);
    const invoice = posted.invoice ?? posted;
    // 4 × 12,500 + 1,500 − 10 % = 51,350.00 net; VAT 22 % = 11,297.00.
    expect(invoice).toMatchObject({ status: 'posted', subtotal: '51350.00', vatTotal: '11297.00', total: '62647.00' });
    await t.k.workflowRuntime.settle();
    let card = await ok(t, 'GET', `/api/crm/customers/${org.id}/card`);
    expect(card.facts.finance).toMatchObject({ openBalance: '62647.00', openInvoices: 1 });

    const payment = await ok(t, 'POST', '/api/finance/payments', { direction: 'in', organization: org.id, date: invoice.date, amount: '40000.00', reference: `Payment for ${invoice.number}` });
    await ok(t, 'POST', `/api/finance/payments/${payment.id}/post`, { allocations: [{ invoice: invoice.id, amount: '40000.00' }] });
    await t.k.workflowRuntime.settle();
    card = await ok(t, 'GET', `/api/crm/customers/${org.id}/card`);
    expect(card.facts.finance).toMatchObject({ openBalance: '22647.00' });
    expect((await ok(t, 'GET', `/api/finance/invoices/${invoice.id}`)).status).toBe('partlyPaid');

    const kinds = (await timeline(t, org.id)).map((a) => a.kind);
    expect(kinds).toEqual(expect.arrayContaining(['deal', 'invoice', 'payment']));
    const items = await timeline(t, org.id);
    expect(items.find((a) => a.kind === 'invoice')).toMatchObject({ amount: '62647.00', sourceId: invoice.id });
    expect(items.find((a) => a.kind === 'payment')).toMatchObject({ amount: '40000.00', sourceId: payment.id });
    // Every instance of the three cross-module workflows completed.
    const instances = await ok(t, 'GET', '/api/workflows/instances?limit=200');
    const together = instances.data.filter((i: { workflowId: string }) => ['workflows.deal-won-invoice', 'workflows.invoice-on-timeline', 'workflows.payment-on-timeline'].includes(i.workflowId));
    expect(together.map((i: { workflowId: string; status: string }) => `${i.workflowId}:${i.status}`).sort()).toEqual([
      'workflows.deal-won-invoice:completed', 'workflows.invoice-on-timeline:completed', 'workflows.payment-on-timeline:completed',
    ]);
  });

  it('a deal without a quote gets one line for its amount', async () => {
    t = await startKubiki({ enable: ['crm', 'finance'] });
    const { deal } = await winDeal(t, 'Vasilek LLC', { withQuote: false });
    const [draft] = await invoicesOf(t, deal.id);
    expect(draft.lines).toEqual([{ description: 'Chairs for Vasilek LLC', quantity: '1', price: '51350.00', vatRate: '22' }]);
  });

  it('with CRM alone: "won" works and no finance call is attempted', async () => {
    t = await startKubiki({ enable: ['crm'] });
    const { deal } = await winDeal(t, 'Solo CRM LLC');
    expect((await ok(t, 'GET', `/api/crm/deals/${deal.id}`)).stage).toBe('won');
    expect((await t.api('GET', '/api/finance/invoices')).status).toBe(404);
    const all = (await ok(t, 'GET', '/api/workflows/instances?limit=200')).data as { workflowId: string; status: string }[];
    expect(all.filter((i) => i.workflowId.startsWith('workflows.'))).toEqual([]);
    expect(all.filter((i) => i.status === 'failed')).toEqual([]);
    expect(await t.count('kubiki_plugins', { name: 'finance' })).toBe(0);
  });

  it('finance enabled later picks up deals won from then on', async () => {
    t = await startKubiki({ enable: ['crm'] });
    const before = await winDeal(t, 'Early LLC');
    for (const action of ['install', 'enable']) await ok(t, 'POST', `/api/plugins/finance/${action}`);
    const after = await winDeal(t, 'Later LLC');
    expect(await invoicesOf(t, before.deal.id)).toEqual([]);
    const [draft] = await invoicesOf(t, after.deal.id);
    expect(draft).toMatchObject({ status: 'draft', sourceId: after.deal.id });
  });
});
