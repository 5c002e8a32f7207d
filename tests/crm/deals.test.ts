import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { counts, created, organization, startCrm, userWithRoles } from './crm-helpers.ts';

let t: TestKubiki;
let sales: { token: string; id: string };
let viewer: { token: string; id: string };

beforeAll(async () => {
  t = await startCrm();
  sales = await userWithRoles(t, ['sales']);
  viewer = await t.userWith(['crm.deals.read', 'base.organizations.read']);
});
afterAll(async () => t?.close());

const deal = async (fields: Record<string, unknown> = {}, token?: string) => {
  const org = await organization(t);
  return created(t, '/api/crm/deals', { title: 'Office chairs', organization: org.id, ...fields }, token);
};
const take = (id: string, name: string, body?: unknown, token?: string) => t.api('POST', `/api/crm/deals/${id}/transitions/${name}`, body, { token });

describe('deal pipeline', () => {
  it('ships the default pipeline, the sales roles and a published lifecycle', async () => {
    const pipelines = (await t.api('GET', '/api/crm/pipelines')).body.data;
    expect(pipelines).toHaveLength(1);
    expect(pipelines[0]).toMatchObject({ name: 'Default', isDefault: true });
    expect(pipelines[0].stages.map((s: { name: string; probability: number }) => `${s.name}:${s.probability}`)).toEqual(['new:10', 'qualified:25', 'proposal:50', 'negotiation:75', 'won:100', 'lost:0']);
    const roles = (await t.api('GET', '/api/roles')).body.data.map((r: { name: string }) => r.name);
    expect(roles).toEqual(expect.arrayContaining(['sales', 'sales-manager']));
    expect((await t.api('GET', '/api/workflows/crm.deal-lifecycle')).body).toMatchObject({ publishedVersion: 1 });
  });

  it('starts deals as new and moves them only through transitions', async () => {
    const d = await deal({ amount: '120000.00' }, sales.token);
    expect(d.stage).toBe('new');
    const patch = await t.api('PATCH', `/api/crm/deals/${d.id}`, { stage: 'won' }, { token: sales.token });
    expect(patch.status).toBe(409);
    expect(patch.body).toMatchObject({ code: 'transition-required', field: 'stage' });
    expect((await t.api('GET', `/api/crm/deals/${d.id}`)).body.stage).toBe('new');
    for (const [name, to] of [['qualify', 'qualified'], ['propose', 'proposal'], ['negotiate', 'negotiation'], ['win', 'won']]) {
      const res = await take(d.id, name, undefined, sales.token);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.record.stage).toBe(to);
    }
    await t.k.workflowRuntime.settle();
    const won = (await t.api('GET', `/api/crm/deals/${d.id}`)).body;
    expect(won.closedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    // Each stage is on the customer's timeline.
    const timeline = (await t.api('GET', `/api/crm/customers/${d.organization}/timeline`)).body.data;
    expect(timeline.map((a: { subject: string }) => a.subject)).toEqual([
      'Deal "Office chairs": negotiation → won', 'Deal "Office chairs": proposal → negotiation', 'Deal "Office chairs": qualified → proposal',
      'Deal "Office chairs": new → qualified', 'Deal created: Office chairs',
    ]);
    expect(timeline[0]).toMatchObject({ kind: 'deal', owner: sales.id, amount: '120000.00', outcome: 'won' });
    // Won is final.
    expect((await take(d.id, 'lose', { input: { reason: 'changed mind' } })).body).toMatchObject({ status: 409, code: 'transition-not-allowed' });
  });

  it('refuses transitions without permission (403), from the wrong state (409) and without an amount to win (409)', async () => {
    const d = await deal();
    const byViewer = await take(d.id, 'qualify', undefined, viewer.token);
    expect(byViewer.status).toBe(403);
    expect(byViewer.body.detail).toContain('sales');
    const wrong = await take(d.id, 'negotiate');
    expect(wrong.status).toBe(409);
    expect(wrong.body).toMatchObject({ code: 'transition-not-allowed', state: 'new' });
    expect((await take(d.id, 'propose')).status).toBe(200);
    const noAmount = await take(d.id, 'win');
    expect(noAmount.status).toBe(409);
    expect(noAmount.body.code).toBe('transition-condition-failed');
    expect((await t.api('GET', `/api/crm/deals/${d.id}`)).body.stage).toBe('proposal');
  });

  it('needs a reason to lose a deal, writes it to lostReason, and lets a lost deal be reopened', async () => {
    const d = await deal({ amount: '10.00' });
    const before = await counts(t);
    for (const body of [undefined, { input: {} }, { input: { reason: 'no' } }, { input: { reason: 42 } }]) {
      const res = await take(d.id, 'lose', body, sales.token);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.field).toMatch(/^input/);
    }
    expect(await counts(t)).toEqual(before);
    expect((await t.api('GET', `/api/crm/deals/${d.id}`)).body.stage).toBe('new');
    const lost = await take(d.id, 'lose', { input: { reason: 'Too expensive' } }, sales.token);
    expect(lost.status).toBe(200);
    await t.k.workflowRuntime.settle();
    expect((await t.api('GET', `/api/crm/deals/${d.id}`)).body).toMatchObject({ stage: 'lost', lostReason: 'Too expensive' });
    expect((await take(d.id, 'reopen', undefined, sales.token)).status).toBe(200);
    await t.k.workflowRuntime.settle();
    const reopened = (await t.api('GET', `/api/crm/deals/${d.id}`)).body;
    expect(reopened.stage).toBe('qualified');
    expect(reopened.lostReason ?? '').toBe('');
  });

  it('guards transitions by role: a permission to edit deals is not enough', async () => {
    const clerk = await t.userWith(['crm.deals.*', 'base.organizations.*']);
    const d = await deal();
    const byClerk = await take(d.id, 'qualify', undefined, clerk.token);
    expect(byClerk.status).toBe(403);
    expect(byClerk.body.detail).toContain('sales');
    expect((await take(d.id, 'qualify', undefined, sales.token)).status).toBe(200);
  });

  it('validates deal fields with problem+json naming the field, writing nothing', async () => {
    const org = await organization(t);
    const before = await counts(t);
    const cases: [Record<string, unknown>, string][] = [
      [{ organization: org.id }, 'title'],
      [{ title: 'x' }, 'organization'],
      [{ title: 'x', organization: org.id, amount: 100.5 }, 'amount'],
      [{ title: 'x', organization: org.id, amount: '1.234' }, 'amount'],
      [{ title: 'x', organization: org.id, stage: 'done' }, 'stage'],
      [{ title: 'x', organization: org.id, probability: 101 }, 'probability'],
      [{ title: 'x', organization: org.id, expectedCloseDate: '2026-13-01' }, 'expectedCloseDate'],
      [{ title: 'x', organization: '0190f1c2-0000-7000-8000-000000000000' }, 'organization'],
    ];
    for (const [body, field] of cases) {
      const res = await t.api('POST', '/api/crm/deals', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.field, JSON.stringify(body)).toBe(field);
    }
    expect(await counts(t)).toEqual(before);
  });
});
