import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { instancesOf } from '../helpers/workflow-helpers.ts';
import { counts, created, organization, startCrm, userWithRoles } from './crm-helpers.ts';

let t: TestKubiki;
let sales: { token: string; id: string };
let manager: { token: string; id: string };

beforeAll(async () => {
  t = await startCrm();
  sales = await userWithRoles(t, ['sales']);
  manager = await userWithRoles(t, ['sales-manager']);
});
afterAll(async () => t?.close());

describe('tasks', () => {
  it('shows my day: my overdue and due-today tasks and my calls today', async () => {
    const now = Date.now();
    const today = new Date(now).toISOString().slice(0, 10);
    const iso = (ms: number) => new Date(ms).toISOString();
    const overdue = await created(t, '/api/crm/tasks', { subject: 'Overdue', owner: sales.id, dueAt: iso(Date.parse(`${today}T00:00:00Z`) - 3600_000) }, sales.token);
    const dueToday = await created(t, '/api/crm/tasks', { subject: 'Today', owner: sales.id, dueAt: `${today}T23:00:00.000Z` }, sales.token);
    await created(t, '/api/crm/tasks', { subject: 'Done', owner: sales.id, status: 'done', dueAt: `${today}T10:00:00.000Z` }, sales.token);
    await created(t, '/api/crm/tasks', { subject: 'Tomorrow', owner: sales.id, dueAt: iso(Date.parse(`${today}T00:00:00Z`) + 36 * 3600_000) }, sales.token);
    await created(t, '/api/crm/tasks', { subject: 'Someone else', owner: manager.id, dueAt: `${today}T10:00:00.000Z` });
    const org = await organization(t);
    await created(t, '/api/crm/activities', { organization: org.id, kind: 'call', subject: 'Called Olga', occurredAt: `${today}T08:00:00.000Z` }, sales.token);
    await created(t, '/api/crm/activities', { organization: org.id, kind: 'call', subject: 'Old call', occurredAt: '2020-01-01T08:00:00.000Z' }, sales.token);
    const res = await t.api('GET', '/api/crm/my-day', undefined, { token: sales.token });
    expect(res.status).toBe(200);
    expect(res.body.overdue.map((x: { id: string }) => x.id)).toEqual([overdue.id]);
    expect(res.body.dueToday.map((x: { id: string }) => x.id)).toEqual([dueToday.id]);
    expect(res.body.calls.map((x: { subject: string }) => x.subject)).toEqual(['Called Olga']);
    expect((await t.api('GET', '/api/crm/my-day?date=2026-02-30')).body).toMatchObject({ status: 400, field: 'date' });
    expect((await t.api('GET', '/api/crm/my-day?day=x')).body).toMatchObject({ status: 400, field: 'day' });
  });

  it("addresses the reminder to the owner's e-mail from their user unless one is given", async () => {
    const withMail = await userWithRoles(t, ['sales'], { email: 'olga@example.com' });
    const task = await created(t, '/api/crm/tasks', { subject: 'Call Olga back', owner: withMail.id, dueAt: new Date(Date.now() + 30 * 86400_000).toISOString() });
    const given = await created(t, '/api/crm/tasks', { subject: 'Chosen address', owner: withMail.id, ownerEmail: 'desk@example.com', dueAt: new Date(Date.now() + 30 * 86400_000).toISOString() });
    await t.k.workflowRuntime.settle();
    expect((await t.api('GET', `/api/crm/tasks/${task.id}`)).body.ownerEmail).toBe('olga@example.com');
    expect((await t.api('GET', `/api/crm/tasks/${given.id}`)).body.ownerEmail).toBe('desk@example.com');
  });

  it('reminds the owner an hour before a task is due and escalates it a day after', async () => {
    const due = new Date(Date.now() + 2 * 3600_000);
    const task = await created(t, '/api/crm/tasks', { subject: 'Send the contract', owner: sales.id, ownerEmail: 'sales@example.com', managerEmail: 'boss@example.com', dueAt: due.toISOString() }, sales.token);
    await created(t, '/api/crm/tasks', { subject: 'Already done', owner: sales.id, ownerEmail: 'sales@example.com', status: 'done', dueAt: due.toISOString() }, sales.token);
    await t.k.workflowRuntime.settle();
    expect(Date.parse((await t.api('GET', `/api/crm/tasks/${task.id}`)).body.remindAt)).toBe(due.getTime() - 3600_000);
    const triggers = t.k.workflowRuntime.triggers;
    expect(await triggers.scanDates(new Date(due.getTime() - 3700_000))).toBe(0);
    expect(await triggers.scanDates(new Date(due.getTime() - 3500_000))).toBe(1);
    await t.k.workflowRuntime.settle();
    const [reminder] = await instancesOf(t, 'crm.task-reminder');
    expect(reminder).toMatchObject({ status: 'completed', recordId: task.id });
    const mail = (await t.api('GET', '/api/notifications?channel=email')).body.data.find((n: { to: string }) => n.to === 'sales@example.com');
    expect(mail).toMatchObject({ subject: 'Reminder: Send the contract', status: 'held' });
    // Still open a day later: the manager hears of it.
    expect(await triggers.scanDates(new Date(due.getTime() + 24 * 3600_000 + 60_000))).toBe(1);
    await t.k.workflowRuntime.settle();
    const boss = (await t.api('GET', '/api/notifications?channel=email')).body.data.find((n: { to: string }) => n.to === 'boss@example.com');
    expect(boss).toMatchObject({ subject: 'Overdue task: Send the contract' });
  });
});

describe('reports', () => {
  it('aggregates pipeline, funnel, won/lost, activity and forecast', async () => {
    const org = await organization(t);
    const mk = async (title: string, amount: string, close: string, owner: string) => created(t, '/api/crm/deals', { title, organization: org.id, amount, expectedCloseDate: close, owner });
    const a = await mk('A', '1000.00', '2031-04-10', sales.id);
    const b = await mk('B', '2000.00', '2031-04-20', sales.id);
    const c = await mk('C', '3000.00', '2031-05-05', manager.id);
    const d = await mk('D', '400.00', '2031-05-05', manager.id);
    const go = async (id: string, ...names: string[]) => { for (const n of names) expect((await t.api('POST', `/api/crm/deals/${id}/transitions/${n}`, n === 'lose' ? { input: { reason: 'Price' } } : undefined)).status).toBe(200); };
    await go(b.id, 'qualify');
    await go(c.id, 'propose', 'negotiate', 'win');
    await go(d.id, 'qualify', 'lose');
    await t.k.workflowRuntime.settle();
    void a;
    const pipeline = (await t.api('GET', '/api/crm/reports/pipeline', undefined, { token: manager.token })).body;
    const stage = (s: string) => pipeline.byStage.find((x: { stage: string }) => x.stage === s);
    expect(stage('new')).toMatchObject({ count: 1, amount: '1000.00', weightedAmount: '100.00' });
    expect(stage('qualified')).toMatchObject({ count: 1, amount: '2000.00', weightedAmount: '500.00' });
    expect(stage('won')).toMatchObject({ count: 1, amount: '3000.00', weightedAmount: '3000.00' });
    expect(stage('lost')).toMatchObject({ count: 1, amount: '400.00', weightedAmount: '0.00' });
    expect(pipeline.byManager.find((m: { owner: string }) => m.owner === sales.id)).toMatchObject({ count: 2, amount: '3000.00', weightedAmount: '600.00' });

    const funnelRes = await t.api('GET', '/api/crm/reports/funnel');
    expect(funnelRes.status, JSON.stringify(funnelRes.body)).toBe(200);
    const funnel = funnelRes.body;
    expect(funnel.stages.map((s: { stage: string; count: number }) => `${s.stage}:${s.count}`)).toEqual(['new:4', 'qualified:3', 'proposal:1', 'negotiation:1', 'won:1']);
    expect(funnel.stages[1].fromPrevious).toBe(75);
    expect(funnel.lost).toBe(1);

    const wonLost = (await t.api('GET', '/api/crm/reports/won-lost')).body;
    expect(wonLost.won.count).toBe(1);
    expect(wonLost.lost.byReason).toEqual([{ reason: 'Price', currency: null, count: 1, amount: '400.00' }]);

    const forecastRes = await t.api('GET', '/api/crm/reports/forecast?from=2031-01-01&to=2031-12-31');
    expect(forecastRes.status, JSON.stringify(forecastRes.body)).toBe(200);
    const forecast = forecastRes.body;
    expect(forecast.months).toEqual([{ month: '2031-04', currency: null, count: 2, amount: '3000.00', weightedAmount: '600.00' }]);

    const activity = (await t.api('GET', `/api/crm/reports/activity?owner=${sales.id}`)).body;
    expect(activity.managers).toHaveLength(1);
    expect(activity.managers[0].byKind.call).toBe(2);

    const before = await counts(t);
    for (const [url, field] of [['pipeline?owner=x', 'owner'], ['funnel?from=yesterday', 'from'], ['forecast?to=2031-02-31', 'to'], ['activity?bogus=1', 'bogus'], ['won-lost?pipeline=1', 'pipeline']]) {
      const res = await t.api('GET', `/api/crm/reports/${url}`);
      expect(res.status, url).toBe(400);
      expect(res.body.field, url).toBe(field);
    }
    expect(await counts(t)).toEqual(before);
    expect((await t.api('GET', '/api/crm/reports/pipeline', undefined, { token: sales.token })).status).toBe(403);
  });
});

describe('mailings', () => {
  it('sends to a segment once per recipient, skipping the unsubscribed, and reports delivery', async () => {
    const mk = async (name: string, fields: Record<string, unknown>, orgFields: Record<string, unknown> = {}) => {
      const org = await organization(t, { name, ...orgFields });
      return created(t, '/api/crm/customers', { organization: org.id, name, ...fields });
    };
    const a = await mk('Alpha', { segment: 'retail', tags: ['spring', 'vip'] }, { email: 'alpha@example.com' });
    const b = await mk('Beta', { segment: 'retail', tags: ['spring'], email: 'beta@example.com' });
    const c = await mk('Gamma', { segment: 'retail', tags: ['spring'], email: 'gamma@example.com', unsubscribed: true });
    await mk('Delta', { segment: 'wholesale', tags: ['spring'], email: 'delta@example.com' });
    const noMail = await mk('Epsilon', { segment: 'retail', tags: ['spring'] });
    const segment = await created(t, '/api/crm/segments', { name: 'Retail spring', segment: 'retail', tags: ['spring'] });
    const mailing = await created(t, '/api/crm/mailings', { title: 'Spring sale', channel: 'email', segment: segment.id, subject: 'Spring offers for {{name}}', body: 'Dear {{ name }}, {{unknown}} stays.' });
    const notificationsBefore = await t.count('kubiki_notifications');
    const sent = await t.api('POST', `/api/crm/mailings/${mailing.id}/send`, undefined, { token: manager.token });
    expect(sent.status, JSON.stringify(sent.body)).toBe(200);
    expect(sent.body).toMatchObject({ total: 4, held: 2, skipped: 2 });
    expect(sent.body.mailing.status).toBe('sent');
    expect(await t.count('kubiki_notifications')).toBe(notificationsBefore + 2);
    const recipients = (await t.api('GET', `/api/crm/mailings/${mailing.id}/recipients`)).body.data;
    const byCustomer = Object.fromEntries(recipients.map((r: { customer: string }) => [r.customer, r]));
    expect(byCustomer[a.id]).toMatchObject({ address: 'alpha@example.com', status: 'held' });
    expect(byCustomer[b.id]).toMatchObject({ address: 'beta@example.com', status: 'held' });
    expect(byCustomer[c.id]).toMatchObject({ status: 'skipped', reason: 'unsubscribed' });
    expect(byCustomer[noMail.id]).toMatchObject({ status: 'skipped', reason: 'no e-mail address' });
    const note = (await t.api('GET', `/api/notifications/${byCustomer[a.id].notification}`)).body;
    expect(note).toMatchObject({ subject: 'Spring offers for Alpha', body: 'Dear Alpha, {{unknown}} stays.' });
    // Sending again duplicates nothing.
    expect((await t.api('POST', `/api/crm/mailings/${mailing.id}/send`, undefined, { token: manager.token })).status).toBe(200);
    expect(await t.count('kubiki_notifications')).toBe(notificationsBefore + 2);
    expect((await t.api('GET', `/api/crm/mailings/${mailing.id}/recipients?status=skipped&limit=1`)).body.next).not.toBeNull();
  });

  it('refuses bad requests and missing permissions, writing nothing', async () => {
    const segment = await created(t, '/api/crm/segments', { name: `Seg ${Date.now()}`, segment: 'none' });
    const noSubject = await created(t, '/api/crm/mailings', { title: 'No subject', segment: segment.id, body: 'Hi' });
    const before = await counts(t);
    expect((await t.api('POST', `/api/crm/mailings/${noSubject.id}/send`)).body).toMatchObject({ status: 400, field: 'subject' });
    expect((await t.api('POST', '/api/crm/mailings/zzz/send')).body).toMatchObject({ status: 404, code: 'not-found', field: 'id' });
    expect((await t.api('POST', `/api/crm/mailings/${noSubject.id}/send`, { now: true })).body).toMatchObject({ status: 400, field: 'now' });
    expect((await t.api('GET', `/api/crm/mailings/${noSubject.id}/recipients?status=lost`)).body).toMatchObject({ status: 400, field: 'status' });
    expect((await t.api('GET', `/api/crm/mailings/${noSubject.id}/recipients?cursor=abc`)).body).toMatchObject({ status: 400, field: 'cursor' });
    expect((await t.api('POST', '/api/crm/mailings', { title: 'x', segment: segment.id, body: 'x', channel: 'fax' })).body).toMatchObject({ status: 400, field: 'channel' });
    expect((await t.api('POST', `/api/crm/mailings/${noSubject.id}/send`, undefined, { token: sales.token })).status).toBe(403);
    expect(await counts(t)).toEqual(before);
  });
});
