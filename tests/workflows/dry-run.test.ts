import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

let t: TestKubiki;
let acme: { id: string };
let noInn: { id: string };
let actionCalls = 0;

const onboarding = fs.readFileSync(path.join(repoRoot, 'workflows/examples/organization-onboarding.yaml'), 'utf8')
  .replace('id: workflows.organization-onboarding', 'id: workflows.dry-onboarding');
const productLifecycle = fs.readFileSync(path.join(repoRoot, 'workflows/examples/product-lifecycle.yaml'), 'utf8');

const definitions: Record<string, string> = {
  'workflows.dry-onboarding': onboarding,
  'workflows.dry-update': `
id: workflows.dry-update
title: Review an organization
kind: automation
trigger: { type: manual, entity: base.organizations }
start: touch
steps:
  touch:
    type: updateRecord
    entity: base.organizations
    id: record.id
    fields:
      notes: "'Reviewed: ' + record.name"
      name: record.name
    next: contacts
  contacts:
    type: queryRecords
    entity: base.people
    where: { organization: record.id }
    sort: firstName
    limit: 10
    next: tell
  tell:
    type: http
    method: POST
    url: "'https://crm.example.com/hooks/' + record.id"
    headers: { X-Source: "'kubiki'" }
    body: "{'contacts': steps.contacts.count, 'first': steps.contacts.records[0].firstName, 'notes': steps.touch.notes}"
    next: mail
  mail:
    type: notify
    channel: sms
    to: "'+10000000000'"
    body: "record.notes"
`,
  'workflows.dry-approval': `
id: workflows.dry-approval
title: Approve a discount
kind: automation
trigger: { type: manual }
start: ask
steps:
  ask:
    type: approval
    assignees: { role: admin }
    subject: "'Discount of ' + string(input.percent) + '%'"
    deadline: P2D
    onDeadline: escalate
    approved: grant
    rejected: refuse
  grant:
    type: set
    variables: { granted: "true" }
    next: done
  escalate:
    type: set
    variables: { escalated: "true" }
    next: done
  refuse:
    type: end
    status: cancelled
  done:
    type: end
`,
  'workflows.dry-parallel': `
id: workflows.dry-parallel
title: Two things at once
kind: automation
trigger: { type: manual }
start: fork
steps:
  fork: { type: parallel, branches: [a1, b1], join: meet }
  a1: { type: set, variables: { a: "1" }, next: a2 }
  a2: { type: wait, duration: PT1H, next: meet }
  b1: { type: callAction, action: base.recalculate, input: { why: "'test'" }, next: meet }
  meet: { type: join, next: finish }
  finish: { type: set, variables: { both: "vars.a + 1" } }
`,
  'workflows.dry-child': `
id: workflows.dry-child
title: Greet
kind: automation
trigger: { type: manual }
start: greet
steps:
  greet:
    type: set
    variables: { greeting: "'Hello, ' + input.name" }
    next: render
  render:
    type: renderDocument
    template: base.invoice-missing
    recordId: "'00000000-0000-7000-8000-0000000000aa'"
`,
  'workflows.dry-parent': `
id: workflows.dry-parent
title: Call a child
kind: automation
trigger: { type: manual }
start: call
steps:
  call:
    type: subWorkflow
    workflow: workflows.dry-child
    input: { name: "'Ann'" }
    next: after
  after:
    type: set
    variables: { said: "steps.call.vars.greeting" }
`,
  'workflows.dry-broken': `
id: workflows.dry-broken
title: Fails on a missing field
kind: automation
trigger: { type: manual }
start: first
steps:
  first: { type: set, variables: { ok: "1" }, next: second }
  second: { type: set, variables: { bad: "record.nope + 1" }, next: third }
  third: { type: end }
`,
  'workflows.dry-loop': `
id: workflows.dry-loop
title: Never ends
kind: automation
trigger: { type: manual }
start: spin
steps:
  spin: { type: set, variables: { n: "has(vars.n) ? vars.n + 1 : 1" }, next: spin }
`,
  'base.product-lifecycle': productLifecycle,
};

const dry = (id: string, body: unknown, token?: string) => t.api('POST', `/api/workflows/${id}/dry-run`, body, token ? { token } : {});

beforeAll(async () => {
  t = await startKubiki({ config: { workflowHttpAllow: ['crm.example.com'] } });
  t.k.workflowRuntime.actions.register('base', 'recalculate', { handler: () => { actionCalls++; return null; } });
  acme = (await t.api('POST', '/api/base/organizations', { name: 'Acme', inn: '7701234560', email: 'anna@acme.example' })).body;
  noInn = (await t.api('POST', '/api/base/organizations', { name: 'Nameless' })).body;
  for (const firstName of ['Zoe', 'Boris']) {
    expect((await t.api('POST', '/api/base/people', { firstName, organization: acme.id })).status).toBe(201);
  }
  // renderDocument must name a template that exists.
  const templates = (await t.api('GET', '/api/templates')).body.data as { id: string }[];
  if (templates.length) definitions['workflows.dry-child'] = definitions['workflows.dry-child'].replace('base.invoice-missing', templates[0].id);
  for (const [id, source] of Object.entries(definitions)) {
    const put = await t.api('PUT', `/api/workflows/${id}`, { source });
    expect(put.status, `${id}: ${JSON.stringify(put.body)}`).toBe(200);
  }
  expect((await t.api('POST', '/api/workflows/workflows.dry-child/publish')).status).toBe(200);
});
afterAll(() => t?.close());

describe('POST /api/workflows/{id}/dry-run', () => {
  it('follows both branches of a condition, with set, createRecord and notify evaluated', async () => {
    const yes = await dry('workflows.dry-onboarding', { recordId: acme.id });
    expect(yes.status).toBe(200);
    expect(yes.body).toMatchObject({ workflow: 'workflows.dry-onboarding', version: 1, outcome: 'completed', vars: { contactName: 'anna' } });
    expect(yes.body.path).toEqual(['check-inn', 'remember-contact', 'create-contact', 'notify-sales', 'done']);
    const [check, remember, create, notify] = yes.body.steps;
    expect(check).toMatchObject({ step: 'check-inn', type: 'condition', title: 'Has a taxpayer id?', plan: { kind: 'go', next: 'remember-contact', output: { result: true } } });
    expect(remember).toMatchObject({ type: 'set', plan: { vars: { contactName: 'anna' } } });
    expect(create.effect).toMatchObject({ would: 'create', entity: 'base.people', fields: { firstName: 'anna', organization: acme.id, position: 'Primary contact' } });
    expect(create.effect.note).toMatch(/placeholder/);
    expect(create.output).toMatchObject({ id: '00000000-0000-7000-8000-000000000001', firstName: 'anna' });
    expect(notify.effect).toEqual({
      would: 'send', channel: 'email', to: 'sales@example.com', subject: 'New organization: Acme',
      body: 'Organization Acme (INN 7701234560) was added; contact anna created.',
      id: '00000000-0000-7000-8000-000000000002', note: expect.stringMatching(/placeholder/),
    });
    expect(notify.output).toEqual({ notificationId: '00000000-0000-7000-8000-000000000002', status: 'dry-run' });

    const no = await dry('workflows.dry-onboarding', { recordId: noInn.id });
    expect(no.body).toMatchObject({ outcome: 'completed', path: ['check-inn', 'done'], vars: {} });
    expect(no.body.steps[0].plan).toMatchObject({ next: 'done', output: { result: false } });

    // A record given inline, and a trigger of the caller's choosing.
    const inline = await dry('workflows.dry-onboarding', { record: { id: acme.id, name: 'Inline', inn: '7700000000' }, trigger: { type: 'event', event: 'base.organizations.updated' } });
    expect(inline.body).toMatchObject({ outcome: 'completed', vars: { contactName: 'Contact' } });
    expect(inline.body.steps[3].effect.subject).toBe('New organization: Inline');

    // The default event trigger: the record as just created.
    const event = await dry('workflows.never-saved-event', { record: { id: acme.id, name: 'Acme' }, source: `
id: workflows.never-saved-event
title: Event data
kind: automation
trigger: { type: event, entity: base.organizations }
start: s
steps:
  s: { type: set, variables: { event: "trigger.event", name: "trigger.changes.name.after", id: "trigger.recordId" } }
` });
    expect(event.body).toMatchObject({ outcome: 'completed', vars: { event: 'base.organizations.created', name: 'Acme', id: acme.id } });
  });

  it('reports an update as before/after, runs queries for real and shows what it would request and send', async () => {
    const res = await dry('workflows.dry-update', { recordId: acme.id });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'completed', path: ['touch', 'contacts', 'tell', 'mail'] });
    const [touch, contacts, tell, mail] = res.body.steps;
    expect(touch.effect).toEqual({ would: 'update', entity: 'base.organizations', id: acme.id, changes: { notes: { before: null, after: 'Reviewed: Acme' } }, unchanged: ['name'] });
    expect(touch.output).toMatchObject({ id: acme.id, name: 'Acme', notes: 'Reviewed: Acme', inn: '7701234560' });
    expect(contacts.effect).toBeUndefined();
    expect(contacts.output.count).toBe(2);
    expect(contacts.output.records.map((r: { firstName: string }) => r.firstName)).toEqual(['Boris', 'Zoe']);
    expect(tell.effect).toEqual({
      would: 'request', method: 'POST', url: `https://crm.example.com/hooks/${acme.id}`, headers: { 'X-Source': 'kubiki' },
      body: { contacts: 2, first: 'Boris', notes: 'Reviewed: Acme' }, allowed: true,
    });
    expect(tell.output).toBeUndefined(); // only the server could answer
    // Later steps see the workflow's own record as updated, as in a real run.
    expect(mail.effect).toMatchObject({ would: 'send', channel: 'sms', to: '+10000000000', body: 'Reviewed: Acme' });
    // Nothing was written.
    expect((await t.api('GET', `/api/base/organizations/${acme.id}`)).body.notes).toBeUndefined();
  });

  it('takes the approval branch the caller decides (approved by default)', async () => {
    const approved = await dry('workflows.dry-approval', { input: { percent: 15 } });
    expect(approved.body).toMatchObject({ outcome: 'completed', path: ['ask', 'grant', 'done'], vars: { granted: true } });
    expect(approved.body.steps[0]).toMatchObject({ decision: 'approved', effect: { would: 'ask', role: 'admin', users: [], mode: 'any', subject: 'Discount of 15%' } });
    expect(Date.parse(approved.body.steps[0].effect.deadlineAt) - Date.now()).toBeGreaterThan(47 * 3600_000);
    const rejected = await dry('workflows.dry-approval', { input: { percent: 15 }, decisions: { ask: 'rejected' } });
    expect(rejected.body).toMatchObject({ outcome: 'cancelled', path: ['ask', 'refuse'] });
    const late = await dry('workflows.dry-approval', { input: { percent: 15 }, decisions: { ask: 'deadline' } });
    expect(late.body).toMatchObject({ outcome: 'completed', path: ['ask', 'escalate', 'done'], vars: { escalated: true } });
  });

  it('walks parallel branches in order and continues from the join', async () => {
    const res = await dry('workflows.dry-parallel', {});
    expect(res.body).toMatchObject({ outcome: 'completed', path: ['fork', 'a1', 'a2', 'b1', 'meet', 'finish'], vars: { a: 1, both: 2 } });
    expect(res.body.steps[2].effect.would).toBe('wait');
    expect(res.body.steps[3].effect).toEqual({ would: 'call', action: 'base.recalculate', input: { why: 'test' } });
    expect(actionCalls).toBe(0);
  });

  it('dry-runs a sub-workflow and shows its trace', async () => {
    const res = await dry('workflows.dry-parent', {});
    expect(res.body).toMatchObject({ outcome: 'completed', path: ['call', 'after'], vars: { said: 'Hello, Ann' } });
    const call = res.body.steps[0];
    expect(call.plan).toMatchObject({ kind: 'subWorkflow', workflow: 'workflows.dry-child', input: { name: 'Ann' } });
    expect(call.child).toMatchObject({ workflow: 'workflows.dry-child', outcome: 'completed', path: ['greet', 'render'], vars: { greeting: 'Hello, Ann' } });
    expect(call.child.steps[1].effect).toMatchObject({ would: 'render', recordId: '00000000-0000-7000-8000-0000000000aa', format: 'html' });
    expect(call.child.steps[1].output.id).toBe('00000000-0000-7000-8000-000000000002');
    expect(call.output).toEqual({ instanceId: '00000000-0000-7000-8000-000000000001', status: 'completed', vars: { greeting: 'Hello, Ann' } });
  });

  it('tries lifecycle transitions: allowed, refused by state, refused by condition', async () => {
    const priced = (await t.api('POST', '/api/base/products', { sku: 'DRY-1', name: 'Widget', price: '10.00' })).body;
    const unpriced = (await t.api('POST', '/api/base/products', { sku: 'DRY-2', name: 'Gadget' })).body;
    const archived = (await t.api('POST', '/api/base/products', { sku: 'DRY-3', name: 'Relic', status: 'archived' })).body;

    const ok = await dry('base.product-lifecycle', { recordId: priced.id, transition: 'activate' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      outcome: 'completed', path: [],
      transition: {
        name: 'activate', from: 'draft', to: 'active', rolesRequired: ['admin'], callerHasRole: true,
        condition: { result: true }, effect: { would: 'update', entity: 'base.products', id: priced.id, changes: { status: { before: 'draft', after: 'active' } } },
      },
    });

    const noPrice = await dry('base.product-lifecycle', { recordId: unpriced.id, transition: 'activate' });
    expect(noPrice.body).toMatchObject({ outcome: 'refused', transition: { condition: { result: false } } });
    expect(noPrice.body.reason).toMatch(/condition/);

    const wrongState = await dry('base.product-lifecycle', { recordId: archived.id, transition: 'withdraw' });
    expect(wrongState.body).toMatchObject({ outcome: 'refused', transition: { from: 'archived' } });
    expect(wrongState.body.reason).toMatch(/"active"/);
    const fromFinal = await dry('base.product-lifecycle', { recordId: archived.id, transition: 'archive' });
    expect(fromFinal.body.outcome).toBe('refused');
    expect(fromFinal.body.reason).toMatch(/final/);

    // A transition's steps: the record already in the target state.
    const archive = await dry('base.product-lifecycle', { record: { sku: 'X-9', name: 'Thing', status: 'active' }, transition: 'archive' });
    expect(archive.body).toMatchObject({ outcome: 'completed', path: ['announce-archive'], transition: { from: 'active', to: 'archived' } });
    expect(archive.body.steps[0].effect).toMatchObject({ would: 'send', to: 'catalogue@example.com', subject: 'Product archived: X-9' });

    // Transition input is checked against its schema; the steps see the new state and the transition's trigger.
    const review = `
id: base.product-review
title: Review
kind: lifecycle
entity: base.products
stateField: status
states: [{ name: draft, initial: true }, { name: active }]
transitions:
  - name: activate
    from: [draft]
    to: active
    input: { type: object, properties: { reason: { type: string, minLength: 3 } }, required: [reason] }
    condition: "input.reason != 'nope'"
    steps: note
steps:
  note: { type: set, variables: { state: record.status, by: trigger.by, from: trigger.from, reason: input.reason } }
`;
    const reviewed = await dry('base.product-review', { source: review, recordId: unpriced.id, transition: 'activate', input: { reason: 'ready' } });
    expect(reviewed.body).toMatchObject({ outcome: 'completed', path: ['note'], vars: { state: 'active', by: 'admin', from: 'draft', reason: 'ready' } });
    expect((await dry('base.product-review', { source: review, recordId: unpriced.id, transition: 'activate', input: { reason: 'nope' } })).body.outcome).toBe('refused');
    const badInput = await dry('base.product-review', { source: review, recordId: unpriced.id, transition: 'activate', input: {} });
    expect(badInput).toMatchObject({ status: 400, body: { field: 'input.reason' } });

    const reader = await t.userWith(['core.workflows.read', 'base.products.read']);
    const asReader = await dry('base.product-lifecycle', { recordId: priced.id, transition: 'activate' }, reader.token);
    expect(asReader.body).toMatchObject({ outcome: 'completed', transition: { callerHasRole: false } });
    expect((await t.api('GET', `/api/base/products/${priced.id}`)).body.status).toBe('draft');
  });

  it('runs unsaved source text, and reports its errors like PUT does', async () => {
    const source = `
id: workflows.never-saved
title: Draft only
kind: automation
trigger: { type: manual }
start: s
steps:
  s: { type: set, variables: { twice: "input.n * 2", who: "trigger.by" }, next: call }
  call: { type: http, method: GET, url: "'https://elsewhere.example.org/x'" }
`;
    const res = await dry('workflows.never-saved', { source, input: { n: 21 } });
    expect(res.status).toBe(200);
    // The HTTP host is not on the allow-list: a real run would fail there, so the dry run does.
    expect(res.body).toMatchObject({ workflow: 'workflows.never-saved', outcome: 'failed', vars: { twice: 42, who: 'admin' }, error: { step: 'call' } });
    expect(res.body.error.message).toMatch(/elsewhere\.example\.org is not on the workflow HTTP allow-list/);
    expect(res.body.steps[1].effect).toMatchObject({ would: 'request', method: 'GET', allowed: false });
    expect(res.body.version).toBeUndefined();
    expect((await t.api('GET', '/api/workflows/workflows.never-saved')).status).toBe(404);

    const invalid = await dry('workflows.never-saved', { source: source.replace('start: s', 'start: nowhere') });
    expect(invalid.status).toBe(400);
    expect(invalid.headers.get('content-type')).toContain('application/problem+json');
    expect(invalid.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: '/start' })]));
    expect((await dry('workflows.other', { source })).body).toMatchObject({ status: 400, field: 'id' });
  });

  it('uses the latest (unpublished) version unless told otherwise', async () => {
    const v2 = definitions['workflows.dry-parallel'].replace('both: "vars.a + 1"', 'both: "vars.a + 100"');
    expect((await t.api('PUT', '/api/workflows/workflows.dry-parallel', { source: v2 })).status).toBe(200);
    expect((await dry('workflows.dry-parallel', {})).body).toMatchObject({ version: 2, vars: { both: 101 } });
    expect((await dry('workflows.dry-parallel', { version: 1 })).body).toMatchObject({ version: 1, vars: { both: 2 } });
  });

  it('stops with outcome failed at an expression error or a loop, keeping the trace', async () => {
    const res = await dry('workflows.dry-broken', { record: {} });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'failed', path: ['first'], vars: { ok: 1 }, error: { step: 'second', field: 'steps.second.variables.bad' } });
    expect(res.body.error.message).toMatch(/nope/);
    expect(res.body.steps).toHaveLength(1);

    const loop = await dry('workflows.dry-loop', {});
    expect(loop.body).toMatchObject({ outcome: 'failed', error: { step: 'spin' }, vars: { n: 1000 } });
    expect(loop.body.error.message).toMatch(/1,000 steps/);
    expect(loop.body.path).toHaveLength(1000);
  });

  it('answers client mistakes with problem+json naming the field', async () => {
    const expectProblem = async (res: Awaited<ReturnType<typeof dry>>, status: number, field?: string) => {
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      if (field !== undefined) expect(res.body.field).toBe(field);
    };
    await expectProblem(await dry('workflows.dry-onboarding', { recordId: acme.id, extra: 1 }), 400, 'extra');
    await expectProblem(await dry('workflows.dry-onboarding', { version: 'one' }), 400, 'version');
    await expectProblem(await dry('workflows.dry-onboarding', { version: 0 }), 400, 'version');
    await expectProblem(await dry('workflows.dry-onboarding', { version: 99 }), 404, 'version');
    await expectProblem(await dry('workflows.dry-onboarding', { recordId: '0190a0a0-0000-7000-8000-000000000000' }), 404);
    await expectProblem(await dry('workflows.dry-onboarding', { recordId: 42 }), 400, 'recordId');
    await expectProblem(await dry('workflows.dry-onboarding', { recordId: acme.id, record: {} }), 400, 'record');
    await expectProblem(await dry('workflows.dry-onboarding', { input: [1] }), 400, 'input');
    await expectProblem(await dry('workflows.dry-onboarding', { transition: 'activate' }), 400, 'transition');
    await expectProblem(await dry('workflows.dry-approval', { decisions: { ask: 'maybe' } }), 400, 'decisions.ask');
    await expectProblem(await dry('workflows.dry-approval', { version: 1, source: 'id: x' }), 400, 'source');
    await expectProblem(await dry('base.product-lifecycle', {}), 400, 'transition');
    await expectProblem(await dry('base.product-lifecycle', { transition: 'explode' }), 400, 'transition');
    await expectProblem(await dry('base.product-lifecycle', { transition: 'activate', input: { why: 'x' } }), 400, 'input');
    await expectProblem(await dry('workflows.no-such', {}), 404);
    await expectProblem(await t.api('POST', '/api/workflows/workflows.dry-approval/dry-run', '[1]'), 400, '');

    const outsider = await t.userWith([]);
    await expectProblem(await dry('workflows.dry-approval', {}, outsider.token), 403);
    const reader = await t.userWith(['core.workflows.read']);
    await expectProblem(await dry('workflows.dry-onboarding', { recordId: acme.id }, reader.token), 403);
  });

  it('writes nothing: no records, audit rows, events, notifications, documents or instances', async () => {
    const tables = [
      'kubiki_audit', 'kubiki_outbox', 'kubiki_notifications', 'kubiki_documents', 'kubiki_item_versions',
      t.k.registry.get('base.organizations').table, t.k.registry.get('base.people').table, t.k.registry.get('base.products').table,
    ];
    for (const extra of ['kubiki_wf_instances', 'kubiki_wf_steps', 'kubiki_wf_tasks']) {
      const exists = await t.k.db.knex('information_schema.tables').where({ table_schema: t.schema, table_name: extra }).first();
      if (exists) tables.push(extra);
    }
    const counts = async () => Object.fromEntries(await Promise.all(tables.map(async (table) => [table, await t.count(table)] as const)));
    const before = await counts();
    expect(before.kubiki_audit).toBeGreaterThan(0);
    const runs = await Promise.all([
      dry('workflows.dry-onboarding', { recordId: acme.id }),
      dry('workflows.dry-update', { recordId: acme.id }),
      dry('workflows.dry-approval', { input: { percent: 5 } }),
      dry('workflows.dry-parallel', {}),
      dry('workflows.dry-parent', {}),
      dry('base.product-lifecycle', { record: { sku: 'Y', name: 'Y', status: 'active' }, transition: 'archive' }),
    ]);
    for (const run of runs) expect(run.body.outcome, JSON.stringify(run.body)).toMatch(/completed|cancelled/);
    await t.k.workflowRuntime.settle();
    expect(await counts()).toEqual(before);
    expect(actionCalls).toBe(0);
  });
});
