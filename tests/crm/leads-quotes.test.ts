import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { counts, created, organization, startCrm, userWithRoles } from './crm-helpers.ts';

let t: TestKubiki;
let sales: { token: string; id: string };

beforeAll(async () => {
  t = await startCrm();
  sales = await userWithRoles(t, ['sales']);
});
afterAll(async () => t?.close());

describe('leads', () => {
  it('qualifies a lead into organization, person, customer and deal in one go', async () => {
    const lead = await created(t, '/api/crm/leads', { name: 'Ivan Petrov', company: 'Romashka LLC', email: 'Ivan@Romashka.ru', phone: '+7 (916) 123-45-67', inn: '7701234560', source: 'site' }, sales.token);
    const res = await t.api('POST', `/api/crm/leads/${lead.id}/qualify`, { dealTitle: 'Romashka: 40 chairs', amount: '80000.00' }, { token: sales.token });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.reused).toEqual({ organization: false, person: false, customer: false });
    expect(res.body.organization).toMatchObject({ name: 'Romashka LLC', inn: '7701234560', roles: ['customer'] });
    expect(res.body.person).toMatchObject({ firstName: 'Ivan Petrov', organization: res.body.organization.id, email: 'Ivan@Romashka.ru' });
    expect(res.body.customer).toMatchObject({ organization: res.body.organization.id, owner: sales.id, source: 'site' });
    expect(res.body.deal).toMatchObject({ title: 'Romashka: 40 chairs', stage: 'new', amount: '80000.00', contact: res.body.person.id, owner: sales.id });
    expect(res.body.lead).toMatchObject({ status: 'qualified', organization: res.body.organization.id, deal: res.body.deal.id });
    const again = await t.api('POST', `/api/crm/leads/${lead.id}/qualify`, {}, { token: sales.token });
    expect(again.status).toBe(409);
  });

  it('finds duplicates by normalised e-mail, phone and INN, and reuses the organization with the same INN', async () => {
    const org = await organization(t, { name: 'Vasilek', inn: '7709876545', phone: '8 (495) 111-22-33' });
    await created(t, '/api/base/people', { firstName: 'Olga', organization: org.id, email: 'olga@vasilek.ru', phone: '+7 495 1112233' });
    const first = await created(t, '/api/crm/leads', { name: 'Olga', email: 'OLGA@Vasilek.RU', phone: '84951112233' });
    const second = await created(t, '/api/crm/leads', { name: 'Olga S.', company: 'Vasilek', inn: '7709876545', email: 'olga@VASILEK.ru', phone: '+7-495-111-22-33' });
    const dup = await t.api('GET', `/api/crm/leads/${second.id}/duplicates`);
    expect(dup.status).toBe(200);
    expect(dup.body.normalized).toEqual({ email: 'olga@vasilek.ru', phone: '74951112233', inn: '7709876545' });
    expect(dup.body.leads).toEqual([expect.objectContaining({ id: first.id, matchedOn: ['email', 'phone'] })]);
    expect(dup.body.organizations).toEqual([expect.objectContaining({ id: org.id, matchedOn: ['inn', 'phone'] })]);
    expect(dup.body.people).toEqual([expect.objectContaining({ firstName: 'Olga', matchedOn: ['email', 'phone'] })]);

    const orgsBefore = await t.count('base_organizations');
    const peopleBefore = await t.count('base_people');
    const res = await t.api('POST', `/api/crm/leads/${second.id}/qualify`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.reused).toEqual({ organization: true, person: true, customer: false });
    expect(res.body.organization.id).toBe(org.id);
    expect(await t.count('base_organizations')).toBe(orgsBefore);
    expect(await t.count('base_people')).toBe(peopleBefore);
  });

  it('refuses bad input on qualify and duplicates, writing nothing (a failing step rolls the whole qualification back)', async () => {
    const lead = await created(t, '/api/crm/leads', { name: 'Petr', company: 'Lyutik' });
    const before = await counts(t);
    const cases: [string, unknown, string, number][] = [
      [`/api/crm/leads/${lead.id}/qualify`, { amount: 'lots' }, 'amount', 400],
      [`/api/crm/leads/${lead.id}/qualify`, { amount: '12.345' }, 'amount', 400],
      [`/api/crm/leads/${lead.id}/qualify`, { dealTitle: '' }, 'dealTitle', 400],
      [`/api/crm/leads/${lead.id}/qualify`, { organization: 'nope' }, 'organization', 400],
      [`/api/crm/leads/${lead.id}/qualify`, { organization: '0190f1c2-0000-7000-8000-000000000000' }, 'organization', 400],
      [`/api/crm/leads/${lead.id}/qualify`, { dealTitle: '   ' }, 'dealTitle', 400],
      [`/api/crm/leads/${lead.id}/qualify`, { dealTitle: 7 }, 'dealTitle', 400],
      [`/api/crm/leads/${lead.id}/qualify`, { currency: 'RUB' }, 'currency', 400],
      [`/api/crm/leads/${lead.id}/qualify`, { expectedCloseDate: '2026-02-30' }, 'expectedCloseDate', 400],
      [`/api/crm/leads/${lead.id}/qualify`, { color: 'red' }, 'color', 400],
      [`/api/crm/leads/${lead.id}/qualify`, [1], '', 400],
      ['/api/crm/leads/xyz/qualify', {}, 'id', 404],
    ];
    for (const [url, body, field, status] of cases) {
      const res = await t.api('POST', url, body);
      expect(res.status, `${url} ${JSON.stringify(body)}`).toBe(status);
      expect(res.body.field, `${url} ${JSON.stringify(body)}`).toBe(field);
    }
    expect((await t.api('GET', '/api/crm/leads/xyz/duplicates')).body).toMatchObject({ status: 404, code: 'not-found', field: 'id' });
    expect((await t.api('GET', `/api/crm/leads/${lead.id}/duplicates?limit=5`)).body).toMatchObject({ status: 400, code: 'bad-query', field: 'limit' });
    expect((await t.api('POST', '/api/crm/leads', { name: 'x', email: 'not-mail' })).body).toMatchObject({ status: 400, field: 'email' });
    expect((await t.api('POST', '/api/crm/leads', { name: 'x', inn: '123' })).body).toMatchObject({ status: 400, field: 'inn' });
    expect(await counts(t)).toEqual(before);
    expect((await t.api('GET', `/api/crm/leads/${lead.id}`)).body.status).toBe('new');
    const viewer = await t.userWith(['crm.leads.read']);
    expect((await t.api('POST', `/api/crm/leads/${lead.id}/qualify`, {}, { token: viewer.token })).status).toBe(403);
  });
});

describe('quotes', () => {
  const lines = [
    { description: 'Chair', quantity: '3', price: '1000.00', discountPercent: '10', vatRate: '22' },
    { description: 'Delivery', quantity: '1', price: '500', vatRate: '22' },
    { description: 'Booklet', quantity: '2.5', price: '10.01', vatRate: '10' },
    { description: 'Consulting', quantity: '1', price: '99.99', vatRate: 'exempt' },
  ];

  it('computes totals with exact decimals, puts the quote on the timeline and prints it', async () => {
    const rub = (await t.api('GET', '/api/base/currencies?code=RUB')).body.data[0];
    const org = await organization(t, { inn: '7712345671' });
    const quote = await created(t, '/api/crm/quotes', { number: 'КП-1', organization: org.id, currency: rub.id, date: '2026-03-01', validUntil: '2026-03-31', lines });
    await t.k.workflowRuntime.settle();
    // 2700.00 + 500.00 = 3200.00 at 22% → 704.00; 25.03 (25.025 rounded) at 10% → 2.50; 99.99 exempt.
    const q = (await t.api('GET', `/api/crm/quotes/${quote.id}`)).body;
    expect(q).toMatchObject({ subtotal: '3325.02', vatTotal: '706.50', total: '4031.52' });
    const recalc = await t.api('POST', `/api/crm/quotes/${quote.id}/recalculate`);
    expect(recalc.status).toBe(200);
    expect(recalc.body.computed.vat).toEqual([
      { rate: '22', base: '3200.00', tax: '704.00', total: '3904.00' },
      { rate: '10', base: '25.03', tax: '2.50', total: '27.53' },
      { rate: 'exempt', base: '99.99', tax: '0.00', total: '99.99' },
    ]);
    // Lines change: the totals follow; prices including VAT are split out of the amounts.
    await t.api('PATCH', `/api/crm/quotes/${quote.id}`, { lines: [{ description: 'Chair', quantity: '1', price: '122.00', vatRate: '22' }], pricesIncludeVat: true, status: 'sent' });
    await t.k.workflowRuntime.settle();
    expect((await t.api('GET', `/api/crm/quotes/${quote.id}`)).body).toMatchObject({ subtotal: '100.00', vatTotal: '22.00', total: '122.00' });
    const timeline = (await t.api('GET', `/api/crm/customers/${org.id}/timeline`)).body.data;
    expect(timeline.map((a: { subject: string; kind: string }) => `${a.kind}:${a.subject}`)).toEqual(['quote:Quote КП-1 draft → sent', 'quote:Quote КП-1 created']);
    const html = await t.api('POST', '/api/templates/crm.quote/render', { recordId: quote.id, format: 'html' });
    expect(html.status, JSON.stringify(html.body)).toBe(201);
    const content = await fetch(`${t.url}/api/documents/${html.body.id}/content`, { headers: { authorization: `Bearer ${t.adminToken}` } });
    const text = await content.text();
    expect(text).toContain('Коммерческое предложение № КП-1');
    expect(text).toContain('Сто двадцать два рубля 00 копеек');
    expect(text).toMatch(/В том числе НДС 22\s%/);
  });

  it('refuses bad lines and bad recalculate requests, writing nothing', async () => {
    const org = await organization(t);
    const before = await counts(t);
    const cases: [unknown[], string][] = [
      [[{ description: 'x', quantity: 3, price: '1', vatRate: '22' }], 'lines.0.quantity'],
      [[{ description: 'x', quantity: '1', price: '-1', vatRate: '22' }], 'lines.0.price'],
      [[{ description: 'x', quantity: '1', price: '1', vatRate: '18' }], 'lines.0.vatRate'],
      [[{ description: 'x', quantity: '1', price: '1', vatRate: '22', discountPercent: '120' }], 'lines.0.discountPercent'],
      [[{ quantity: '1', price: '1', vatRate: '22' }], 'lines.0.description'],
      [[{ description: 'x', quantity: '1', price: '1', vatRate: '22', amount: '1' }], 'lines.0.amount'],
    ];
    for (const [badLines, field] of cases) {
      const res = await t.api('POST', '/api/crm/quotes', { organization: org.id, lines: badLines });
      expect(res.status, JSON.stringify(badLines)).toBe(400);
      expect(res.body.field, JSON.stringify(badLines)).toBe(field);
    }
    expect((await t.api('POST', '/api/crm/quotes/nope/recalculate')).body).toMatchObject({ status: 404, code: 'not-found', field: 'id' });
    expect((await t.api('POST', '/api/crm/quotes/0190f1c2-0000-7000-8000-000000000000/recalculate')).status).toBe(404);
    expect(await counts(t)).toEqual(before);
  });
});
