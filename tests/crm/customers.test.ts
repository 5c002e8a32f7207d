import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { counts, created, organization, startCrm, userWithRoles } from './crm-helpers.ts';

let t: TestKubiki;

beforeAll(async () => {
  t = await startCrm({ extra: ['factsy'], enable: ['factsy'] });
});
afterAll(async () => t?.close());

describe('customer cards and the timeline', () => {
  it('keeps one customer card per organization', async () => {
    const org = await organization(t);
    const card = await created(t, '/api/crm/customers', { organization: org.id, segment: 'key', tags: ['vip', 'msk'], source: 'exhibition' });
    expect(card).toMatchObject({ organization: org.id, tags: ['vip', 'msk'], unsubscribed: false });
    const twin = await t.api('POST', '/api/crm/customers', { organization: org.id });
    expect(twin.status).toBe(409);
    expect(twin.body.code).toBe('unique-violation');
    const noOrg = await t.api('POST', '/api/crm/customers', { segment: 'x' });
    expect(noOrg.body).toMatchObject({ status: 400, field: 'organization' });
  });

  it('lists the timeline newest first, paged, with entries from deals and from other modules', async () => {
    const org = await organization(t);
    const base = Date.parse('2026-03-01T10:00:00Z');
    for (let i = 0; i < 5; i++) {
      await created(t, '/api/crm/activities', { organization: org.id, kind: 'call', subject: `Call ${i}`, direction: 'out', durationSeconds: 60 * i, occurredAt: new Date(base + i * 3600_000).toISOString() });
    }
    // What a cross-module workflow writes when finance issues an invoice.
    await created(t, '/api/crm/activities', {
      organization: org.id, kind: 'invoice', subject: 'Invoice 17 issued', amount: '1200.50', sourceEntity: 'finance.invoices',
      sourceId: '0190f1c2-0000-7000-8000-000000000001', occurredAt: '2026-03-02T09:00:00Z',
    });
    const deal = await created(t, '/api/crm/deals', { title: 'Chairs', organization: org.id, amount: '5000.00' });
    await t.k.workflowRuntime.settle();
    const page1 = await t.api('GET', `/api/crm/customers/${org.id}/timeline?limit=3`);
    expect(page1.status).toBe(200);
    // The deal's entry was recorded now, so it is the newest.
    expect(page1.body.data.map((a: { subject: string }) => a.subject)).toEqual(['Deal created: Chairs', 'Invoice 17 issued', 'Call 4']);
    expect(page1.body.data[0]).toMatchObject({ kind: 'deal', deal: deal.id, sourceEntity: 'crm.deals', sourceId: deal.id, amount: '5000.00' });
    const page2 = await t.api('GET', `/api/crm/customers/${org.id}/timeline?limit=3&cursor=${page1.body.next}`);
    expect(page2.body.data.map((a: { subject: string }) => a.subject)).toEqual(['Call 3', 'Call 2', 'Call 1']);
    const page3 = await t.api('GET', `/api/crm/customers/${org.id}/timeline?limit=3&cursor=${page2.body.next}`);
    expect(page3.body.data.map((a: { subject: string }) => a.subject)).toEqual(['Call 0']);
    expect(page3.body.next).toBeNull();
  });

  it('does not add a timeline entry twice when an event is delivered again', async () => {
    const org = await organization(t);
    await created(t, '/api/crm/deals', { title: 'Tables', organization: org.id });
    await t.k.workflowRuntime.settle();
    expect(await t.count('crm_activities', { organization: org.id })).toBe(1);
    // Redeliver every event of this deal (at-least-once delivery may do that).
    await t.k.db.table('kubiki_outbox').where({ entity: 'deals' }).update({ dispatched_at: null, next_attempt_at: t.k.db.knex.fn.now() });
    await t.k.workflowRuntime.settle();
    expect(await t.count('crm_activities', { organization: org.id })).toBe(1);
  });

  it('shows the card: organization, customer, open deals, last activities and facts from other plugins', async () => {
    const org = await organization(t, { inn: '7707083893' });
    await created(t, '/api/crm/customers', { organization: org.id, segment: 'smb' });
    await created(t, '/api/crm/deals', { title: 'Open deal', organization: org.id });
    await created(t, '/api/crm/activities', { organization: org.id, kind: 'note', subject: 'Met at the fair' });
    await t.k.workflowRuntime.settle();
    const res = await t.api('GET', `/api/crm/customers/${org.id}/card`);
    expect(res.status).toBe(200);
    expect(res.body.organization).toMatchObject({ id: org.id, inn: '7707083893' });
    expect(res.body.customer).toMatchObject({ organization: org.id, segment: 'smb' });
    expect(res.body.openDeals.map((d: { title: string }) => d.title)).toEqual(['Open deal']);
    expect(res.body.lastActivities.map((a: { subject: string }) => a.subject).sort()).toEqual(['Deal created: Open deal', 'Met at the fair']);
    // A failing contribution is reported under its name; the others still answer.
    expect(res.body.facts).toEqual({
      ledger: { openBalance: '1500.00', overdue: '0.00', currency: 'RUB', organizationId: org.id },
      broken: { error: 'ledger service is down' },
    });
  });

  it('shows the organization on the card with its currency expanded to the currency record', async () => {
    const rub = (await t.api('GET', '/api/base/currencies?code=RUB')).body.data[0];
    const org = await organization(t, { currency: rub.id });
    const res = await t.api('GET', `/api/crm/customers/${org.id}/card`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.organization).toMatchObject({ id: org.id, currency: { id: rub.id, code: 'RUB' } });
  });

  it('answers a card with no customer record and no contributions while the contributor is off', async () => {
    const org = await organization(t);
    expect((await t.api('POST', '/api/plugins/factsy/disable')).status).toBe(200);
    try {
      const res = await t.api('GET', `/api/crm/customers/${org.id}/card`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ customer: null, openDeals: [], lastActivities: [], facts: {} });
    } finally {
      expect((await t.api('POST', '/api/plugins/factsy/enable')).status).toBe(200);
    }
  });

  it('checks permissions and refuses bad input with problem+json naming the field, writing nothing', async () => {
    const org = await organization(t);
    const nobody = await t.userWith(['base.organizations.read']);
    expect((await t.api('GET', `/api/crm/customers/${org.id}/card`, undefined, { token: nobody.token })).status).toBe(403);
    expect((await t.api('GET', `/api/crm/customers/${org.id}/timeline`, undefined, { token: nobody.token })).status).toBe(403);
    const sales = await userWithRoles(t, ['sales']);
    expect((await t.api('GET', `/api/crm/customers/${org.id}/card`, undefined, { token: sales.token })).status).toBe(200);

    const before = await counts(t);
    // A malformed organization id is a 404 naming it; a bad query parameter a 400 bad-query naming it.
    const cases: [string, string, number, string, string][] = [
      ['GET', '/api/crm/customers/not-a-uuid/timeline', 404, 'not-found', 'organizationId'],
      ['GET', `/api/crm/customers/${org.id}/timeline?limit=0`, 400, 'bad-query', 'limit'],
      ['GET', `/api/crm/customers/${org.id}/timeline?limit=201`, 400, 'bad-query', 'limit'],
      ['GET', `/api/crm/customers/${org.id}/timeline?cursor=xyz`, 400, 'bad-query', 'cursor'],
      ['GET', `/api/crm/customers/${org.id}/timeline?cursor=${encodeURIComponent('{"at":1}')}`, 400, 'bad-query', 'cursor'],
      ['GET', `/api/crm/customers/${org.id}/timeline?sort=x`, 400, 'bad-query', 'sort'],
      ['GET', '/api/crm/customers/not-a-uuid/card', 404, 'not-found', 'organizationId'],
      ['GET', `/api/crm/customers/urn:uuid:${org.id}/card`, 404, 'not-found', 'organizationId'],
      ['GET', `/api/crm/customers/${org.id}/card?expand=currency`, 400, 'bad-query', 'expand'],
    ];
    for (const [method, url, status, code, field] of cases) {
      const res = await t.api(method, url);
      expect(res.status, url).toBe(status);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.body, url).toMatchObject({ code, field });
    }
    expect((await t.api('GET', '/api/crm/customers/0190f1c2-0000-7000-8000-000000000000/card')).status).toBe(404);
    const badActivities: [Record<string, unknown>, string][] = [
      [{ organization: org.id, kind: 'fax', subject: 'x' }, 'kind'],
      [{ organization: org.id, kind: 'call', subject: 'x', amount: 12.5 }, 'amount'],
      [{ organization: org.id, kind: 'call', subject: 'x', recordingUrl: 'not a url' }, 'recordingUrl'],
      [{ organization: org.id, kind: 'call', subject: 'x', durationSeconds: -1 }, 'durationSeconds'],
      [{ organization: org.id, kind: 'call' }, 'subject'],
      [{ kind: 'call', subject: 'x' }, 'organization'],
    ];
    for (const [body, field] of badActivities) {
      const res = await t.api('POST', '/api/crm/activities', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.field, JSON.stringify(body)).toBe(field);
    }
    expect(await counts(t)).toEqual(before);
  });
});
