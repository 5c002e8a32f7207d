import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../helpers/manual-clock.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { instancesOf, publishWorkflow } from '../helpers/workflow-helpers.ts';

let t: TestKubiki;
const clock = new ManualClock();
const SECRET = 'kubiki-test-secret';

beforeAll(async () => {
  t = await startKubiki({ clock, env: { KUBIKI_PARTNER_SECRET: SECRET } });
});
afterAll(async () => t?.close());

const sign = (body: string, secret = SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
const hook = (id: string, body: string, headers: Record<string, string>) => t.api('POST', `/api/workflows/${id}/webhook`, body, { token: null, headers: { 'content-type': 'application/json', ...headers } });

describe('event triggers', () => {
  it('fire on "field changed to" with a condition, and not otherwise', async () => {
    const { id } = await publishWorkflow(t, `
id: workflows.went-inactive
title: Product withdrawn
kind: automation
trigger:
  type: event
  entity: base.products
  on: [updated]
  changed: { field: active, to: "false" }
  condition: "record.kind == 'goods'"
start: note
steps:
  note: { type: set, variables: { sku: record.sku, was: "string(trigger.changes.active.before)" } }
`);
    const goods = (await t.api('POST', '/api/base/products', { sku: 'G-1', name: 'Goods' })).body;
    const service = (await t.api('POST', '/api/base/products', { sku: 'S-1', name: 'Service', kind: 'service' })).body;
    await t.api('PATCH', `/api/base/products/${goods.id}`, { name: 'Goods renamed' });
    await t.api('PATCH', `/api/base/products/${goods.id}`, { active: false });
    await t.api('PATCH', `/api/base/products/${service.id}`, { active: false });
    await t.api('PATCH', `/api/base/products/${goods.id}`, { active: true });
    await t.k.workflowRuntime.settle();
    const instances = await instancesOf(t, id);
    expect(instances).toHaveLength(1);
    expect(instances[0]).toMatchObject({ status: 'completed', recordId: goods.id, vars: { sku: 'G-1', was: 'true' } });
  });
});

describe('publishing on another process', () => {
  it('events written before that process knew of the new version still start it (catch-up), earlier ones do not', async () => {
    const other = await startKubiki({ schema: t.schema, adminToken: t.adminToken, env: { KUBIKI_PARTNER_SECRET: SECRET } });
    try {
      const early = (await t.api('POST', '/api/base/units', { code: 'early', name: 'Before publishing' })).body;
      await new Promise((r) => setTimeout(r, 20));
      const { id } = await publishWorkflow(t, `
id: workflows.unit-added
title: Unit added
kind: automation
trigger: { type: event, entity: base.units, on: [created] }
start: note
steps:
  note: { type: set, variables: { code: record.code } }
`);
      // The other process has not reloaded yet: to it nobody listens, so the event is journaled as delivered.
      expect(other.k.workflowRuntime.triggers.listensTo('base.units.created')).toBe(false);
      const late = (await other.api('POST', '/api/base/units', { code: 'late', name: 'Right after' })).body;
      await t.k.workflowRuntime.settle();
      expect((await instancesOf(t, id)).map((i) => i.recordId)).toEqual([]);
      // Its next reload offers the events since the publish to the new version; running it twice changes nothing.
      await other.k.refresh();
      expect(await other.k.workflowRuntime.triggers.catchUp(other.k.workflowRuntime.published.all())).toBeGreaterThan(0);
      await t.k.workflowRuntime.triggers.catchUp(t.k.workflowRuntime.published.all());
      await t.k.workflowRuntime.settle();
      expect((await instancesOf(t, id)).map((i) => i.recordId)).toEqual([late.id]);
      expect(early.id).toBeTruthy();
    } finally {
      await other.close({ keepSchema: true });
    }
  });
});

describe('event loops', () => {
  it('a workflow\'s own writes do not trigger it again', async () => {
    const { id } = await publishWorkflow(t, `
id: workflows.stamp-notes
title: Stamp notes
kind: automation
trigger: { type: event, entity: base.organizations, on: [created, updated] }
start: stamp
steps:
  stamp: { type: updateRecord, entity: base.organizations, id: record.id, fields: { notes: "'stamped ' + string(int(has(record.notes) ? 1 : 0))" } }
`);
    const org = (await t.api('POST', '/api/base/organizations', { name: 'Loop Ltd' })).body;
    await t.k.workflowRuntime.settle();
    // created → stamped once; the step's own update is not a new trigger.
    expect((await instancesOf(t, id)).filter((i) => i.recordId === org.id)).toHaveLength(1);
    await t.api('PATCH', `/api/base/organizations/${org.id}`, { name: 'Loop Ltd 2' });
    await t.k.workflowRuntime.settle();
    expect((await instancesOf(t, id)).filter((i) => i.recordId === org.id)).toHaveLength(2);
    expect((await t.api('GET', `/api/base/organizations/${org.id}`)).body.notes).toBe('stamped 1');
  });
});

describe('schedules', () => {
  it('start one instance per slot however many processes fire it', async () => {
    const { id } = await publishWorkflow(t, `
id: workflows.nightly
title: Nightly
kind: automation
trigger: { type: schedule, cron: "0 3 * * *", timezone: Europe/Moscow }
start: stamp
steps:
  stamp: { type: set, variables: { slot: trigger.slot } }
`);
    const slot = new Date('2026-11-27T00:00:00.400Z');
    // Three "processes" firing the same slot, a moment apart: one instance.
    await Promise.all([0, 1, 2].map(() => t.k.workflowRuntime.triggers.fireSchedule(id, slot)));
    await t.k.workflowRuntime.triggers.fireSchedule(id, new Date('2026-11-28T00:00:00Z'));
    await t.k.workflowRuntime.settle();
    const instances = await instancesOf(t, id);
    expect(instances.map((i) => i.vars.slot).sort()).toEqual(['2026-11-27T00:00:00.000Z', '2026-11-28T00:00:00.000Z']);
  });

  it('a cron schedule fires at every second of the clock while the engine runs, and a late tick fires the slots it missed', async () => {
    const { id } = await publishWorkflow(t, `
id: workflows.every-second
title: Every second
kind: automation
trigger: { type: schedule, cron: "* * * * * *" }
start: stamp
steps:
  stamp: { type: set, variables: { slot: trigger.slot } }
`);
    const second = (n: number) => new Date((Math.floor(clock.now().getTime() / 1000) + n) * 1000).toISOString();
    const slots = async () => (await instancesOf(t, id)).map((i) => String(i.vars.slot)).sort();
    const triggers = t.k.workflowRuntime.triggers;
    triggers.start();
    try {
      // The second under way when the schedule is planned is not one of its slots.
      const expected = [second(1), second(2), second(3)];
      await clock.advance(3_000);
      await t.k.workflowRuntime.settle();
      expect(await slots()).toEqual(expected);
      // The process stalls until half a second into the second after next: its next tick comes
      // late and starts the two seconds it slept through.
      expected.push(second(1), second(2));
      await clock.advanceTo(Date.parse(second(2)) + 500, { stalled: true });
      await t.k.workflowRuntime.settle();
      expect(await slots()).toEqual(expected);
    } finally {
      await triggers.stop();
    }
    // Stopped: the clock moves on, nothing starts.
    await clock.advance(2_000);
    await t.k.workflowRuntime.settle();
    expect(await slots()).toHaveLength(5);
  });
});

describe('date-relative triggers', () => {
  it('start once per record and date when field + offset comes due', async () => {
    const now = new Date();
    const moment = new Date(now.getTime() + 12 * 3600_000);
    // "Some hours before the day": a negative offset from the next midnight lands on the moment.
    const day = new Date(moment.getTime() + 86400_000).toISOString().slice(0, 10);
    const offset = `-PT${Math.round((Date.parse(`${day}T00:00:00Z`) - moment.getTime()) / 1000)}S`;
    const { id } = await publishWorkflow(t, `
id: workflows.birthday
title: Birthday
kind: automation
trigger: { type: dateRelative, entity: base.people, field: birthDate, offset: ${offset}, condition: "!has(record.lastName) || record.lastName != 'Skip'" }
start: greet
steps:
  greet: { type: set, variables: { who: record.firstName, on: trigger.value } }
`);
    const due = (await t.api('POST', '/api/base/people', { firstName: 'Due', birthDate: day })).body;
    await t.api('POST', '/api/base/people', { firstName: 'Skipped', lastName: 'Skip', birthDate: day });
    await t.api('POST', '/api/base/people', { firstName: 'Later', birthDate: new Date(moment.getTime() + 3 * 86400_000).toISOString().slice(0, 10) });
    const triggers = t.k.workflowRuntime.triggers;
    expect(await triggers.scanDates(now)).toBe(0);
    const later = new Date(moment.getTime() + 60_000);
    expect(await triggers.scanDates(later)).toBe(1);
    expect(await triggers.scanDates(later)).toBe(0);
    // A new date is a new moment.
    const nextDay = new Date(moment.getTime() + 86400_000);
    const movedTo = new Date(nextDay.getTime() + 86400_000).toISOString().slice(0, 10);
    await t.api('PATCH', `/api/base/people/${due.id}`, { birthDate: movedTo });
    expect(await triggers.scanDates(new Date(nextDay.getTime() + 60_000))).toBe(1);
    await t.k.workflowRuntime.settle();
    const instances = await instancesOf(t, id);
    expect(instances.map((i) => i.vars)).toEqual([{ who: 'Due', on: day }, { who: 'Due', on: movedTo }]);
  });
});

describe('manual runs', () => {
  it('check roles and the input schema', async () => {
    const { id } = await publishWorkflow(t, `
id: workflows.recount
title: Recount
kind: automation
trigger: { type: manual, entity: base.organizations, roles: [admin], input: { type: object, required: [reason], properties: { reason: { type: string, minLength: 3 } }, additionalProperties: false } }
start: note
steps:
  note: { type: set, variables: { why: input.reason, org: record.name } }
`);
    const org = (await t.api('POST', '/api/base/organizations', { name: 'Vesna' })).body;
    const ok = await t.api('POST', `/api/workflows/${id}/run`, { recordId: org.id, input: { reason: 'audit' } });
    expect(ok.status).toBe(202);
    expect(ok.headers.get('location')).toBe(`/api/workflows/instances/${ok.body.instanceId}`);
    await t.k.workflowRuntime.settle();
    expect((await t.api('GET', `/api/workflows/instances/${ok.body.instanceId}`)).body.vars).toEqual({ why: 'audit', org: 'Vesna' });
    expect((await t.api('POST', `/api/workflows/${id}/run`, { recordId: org.id, input: { reason: 'x' } })).body).toMatchObject({ status: 400, field: 'input.reason' });
    expect((await t.api('POST', `/api/workflows/${id}/run`, { input: { reason: 'audit' } })).body).toMatchObject({ status: 400, field: 'recordId' });
    expect((await t.api('POST', `/api/workflows/${id}/run`, { recordId: org.id, input: { reason: 'audit' }, extra: 1 })).body).toMatchObject({ status: 400, field: 'extra' });
    expect((await t.api('POST', `/api/workflows/${id}/run`, { recordId: '00000000-0000-7000-8000-000000000001', input: { reason: 'audit' } })).status).toBe(404);
    const runner = await t.userWith(['core.workflows.run', 'base.organizations.read']);
    expect((await t.api('POST', `/api/workflows/${id}/run`, { recordId: org.id, input: { reason: 'audit' } }, { token: runner.token })).status).toBe(403);
    const nobody = await t.userWith(['base.organizations.read']);
    expect((await t.api('POST', `/api/workflows/${id}/run`, { recordId: org.id, input: { reason: 'audit' } }, { token: nobody.token })).status).toBe(403);
    expect((await t.api('POST', '/api/workflows/workflows.nightly/run', {})).status).toBe(409);
    expect((await t.api('POST', '/api/workflows/workflows.nope/run', {})).status).toBe(404);
  });
});

describe('webhooks', () => {
  it('start an instance for a correctly signed body, once per delivery id', async () => {
    const { id } = await publishWorkflow(t, `
id: workflows.partner-order
title: Partner order
kind: automation
trigger: { type: webhook, secretEnv: KUBIKI_PARTNER_SECRET, input: { type: object, required: [order], properties: { order: { type: string } } } }
start: keep
steps:
  keep: { type: set, variables: { order: input.order } }
`);
    const body = JSON.stringify({ order: 'PO-17' });
    const first = await hook(id, body, { 'x-kubiki-signature': sign(body), 'x-kubiki-delivery': 'd-1' });
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    const again = await hook(id, body, { 'x-kubiki-signature': sign(body), 'x-kubiki-delivery': 'd-1' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ instanceId: first.body.instanceId, created: false });
    await t.k.workflowRuntime.settle();
    expect((await instancesOf(t, id)).map((i) => i.vars)).toEqual([{ order: 'PO-17' }]);

    expect((await hook(id, body, {})).status).toBe(401);
    expect((await hook(id, body, { 'x-kubiki-signature': sign(body, 'wrong') })).status).toBe(401);
    expect((await hook(id, body.replace('17', '18'), { 'x-kubiki-signature': sign(body) })).status).toBe(401);
    const bad = JSON.stringify({ nope: 1 });
    expect((await hook(id, bad, { 'x-kubiki-signature': sign(bad) })).body).toMatchObject({ status: 400, field: 'body.order' });
    expect((await hook(id, body, { 'x-kubiki-signature': sign(body), 'x-kubiki-delivery': 'no spaces allowed' })).body).toMatchObject({ status: 400, field: 'X-Kubiki-Delivery' });
    expect(await instancesOf(t, id)).toHaveLength(1);
    // Other routes stay closed without a token.
    expect((await t.api('GET', '/api/workflows/instances', undefined, { token: null })).status).toBe(401);
  });
});

describe('instances API', () => {
  it('filters and pages, and refuses bad parameters', async () => {
    const all = await t.api('GET', '/api/workflows/instances?limit=2');
    expect(all.status).toBe(200);
    expect(all.body.data).toHaveLength(2);
    const next = await t.api('GET', `/api/workflows/instances?limit=2&cursor=${all.body.next}`);
    expect(next.body.data[0].id < all.body.data[1].id).toBe(true);
    expect((await t.api('GET', '/api/workflows/instances?status=completed')).body.data.every((i: { status: string }) => i.status === 'completed')).toBe(true);
    expect((await t.api('GET', '/api/workflows/instances?status=done')).body).toMatchObject({ status: 400, field: 'status' });
    expect((await t.api('GET', '/api/workflows/instances?limit=0')).body).toMatchObject({ status: 400, field: 'limit' });
    expect((await t.api('GET', '/api/workflows/instances?cursor=abc')).body).toMatchObject({ status: 400, field: 'cursor' });
    expect((await t.api('GET', '/api/workflows/instances?sort=x')).body).toMatchObject({ status: 400, field: 'sort' });
    expect((await t.api('GET', '/api/workflows/instances/not-an-id')).status).toBe(404);
    const reader = await t.userWith(['base.organizations.read']);
    expect((await t.api('GET', '/api/workflows/instances', undefined, { token: reader.token })).status).toBe(403);
    const analyst = await t.userWith(['core.workflows.read']);
    expect((await t.api('GET', '/api/workflows/instances', undefined, { token: analyst.token })).status).toBe(200);
    expect((await t.api('POST', `/api/workflows/instances/${all.body.data[0].id}/cancel`, undefined, { token: analyst.token })).status).toBe(403);
  });

  it('prunes finished instances past the retention period', async () => {
    const before = await t.count('kubiki_wf_instances');
    await t.k.db.table('kubiki_wf_instances').whereIn('status', ['completed']).update({ finished_at: t.k.db.knex.raw("now() - interval '100 days'") });
    const completed = await t.count('kubiki_wf_instances', { status: 'completed' });
    expect(await t.k.workflowRuntime.instances.prune(90)).toBe(completed);
    expect(await t.count('kubiki_wf_instances')).toBe(before - completed);
    expect(await t.k.workflowRuntime.instances.prune(0)).toBe(0);
  });
});
