import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../helpers/manual-clock.ts';
import { FIXTURE_PLUGINS, SHIPPED_PLUGINS, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { publishWorkflow, trail, type InstanceView } from '../helpers/workflow-helpers.ts';

let t: TestKubiki;
/** Shared by the instance restarted in "timers", as processes share the database's time. */
const clock = new ManualClock();
let server: http.Server;
let port: number;
/** What the local HTTP endpoint received, and what it answers next (status codes, in order). */
const received: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
let answers: number[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      const status = answers.shift() ?? 200;
      if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2000);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: status < 400, echo: body ? JSON.parse(body) : null }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  t = await startKubiki({ clock, pluginDirs: [SHIPPED_PLUGINS, FIXTURE_PLUGINS], enable: ['alpha'], config: { workflowHttpAllow: ['127.0.0.1'] } });
});
afterAll(async () => {
  await t?.close();
  server?.close();
});

async function runManual(id: string, body: unknown = {}): Promise<InstanceView> {
  const res = await t.api('POST', `/api/workflows/${id}/run`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  await t.k.workflowRuntime.settle();
  return (await t.api('GET', `/api/workflows/instances/${res.body.instanceId}`)).body;
}

describe('step types', () => {
  it('parallel branches meet at the join; switch, query, callAction and renderDocument run in between', async () => {
    const org = await t.api('POST', '/api/base/organizations', { name: 'Romashka LLC', inn: '7707083893' });
    await publishWorkflow(t, `
id: workflows.fanout
title: Fan out
kind: automation
trigger: { type: manual, entity: base.organizations }
start: split
steps:
  split: { type: parallel, branches: [count, print], join: meet }
  count: { type: callAction, action: alpha.bumpStats, input: { key: "'fanout'", n: "3" }, next: look }
  look: { type: queryRecords, entity: base.organizations, where: { inn: record.inn }, next: meet }
  print: { type: renderDocument, template: base.organization-card, recordId: record.id, next: meet }
  meet: { type: join, next: pick }
  pick: { type: switch, value: "steps.look.count", cases: { "1": one }, default: many }
  one: { type: set, variables: { found: "'one'", doc: steps.print.id } }
  many: { type: set, variables: { found: "'many'" } }
`);
    const done = await runManual('workflows.fanout', { recordId: org.body.id });
    expect(done.status, done.error ?? '').toBe('completed');
    expect(trail(done).sort()).toEqual(['count:done', 'look:done', 'meet:done', 'one:done', 'pick:done', 'print:done', 'split:done']);
    expect(done.steps.filter((s) => s.step === 'meet')).toHaveLength(1);
    expect(done.vars.found).toBe('one');
    const stats = await t.k.db.table('alpha_widget_stats').where({ key: 'fanout' }).first();
    expect(stats.created).toBe(3);
    const doc = await t.api('GET', `/api/documents/${String(done.vars.doc)}/content`);
    expect(doc.status).toBe(200);
    expect(doc.body).toContain('Romashka LLC');
  });

  it('record steps store the record exactly as the API shows it, for every field kind', async () => {
    await publishWorkflow(t, `
id: workflows.make-widget
title: Make a widget
kind: automation
trigger: { type: manual }
start: make
steps:
  make:
    type: createRecord
    entity: alpha.widgets
    fields: { code: "'W-GEAR-1'", name: "'Gear'", price: "'12.5'", quantity: "3", releasedOn: "'2026-11-27'", inspectedAt: "'2026-11-27T10:11:12.345+03:00'", active: "true", tags: "['a', 'b']" }
    next: touch
  touch: { type: updateRecord, entity: alpha.widgets, id: steps.make.id, fields: { price: "'13'", tags: "['c']" } }
`);
    const done = await runManual('workflows.make-widget');
    expect(done.status, done.error ?? '').toBe('completed');
    const made = done.steps[0].output;
    expect(made).toMatchObject({ price: '12.50', quantity: 3, releasedOn: '2026-11-27', inspectedAt: '2026-11-27T07:11:12.345Z', active: true, tags: ['a', 'b'] });
    const now = (await t.api('GET', `/api/alpha/widgets/${String(made.id)}`)).body;
    expect(done.steps[1].output).toEqual(now);
    expect(now).toMatchObject({ price: '13.00', tags: ['c'], version: 2 });
  });

  it('an update of a record changed since the claim loses its optimistic write and runs again at once', async () => {
    const org = (await t.api('POST', '/api/base/organizations', { name: 'Raced LLC' })).body;
    await publishWorkflow(t, `
id: workflows.raced
title: Raced
kind: automation
trigger: { type: manual, entity: base.organizations }
start: meddle
steps:
  meddle: { type: callAction, action: alpha.touchRecord, input: { entity: "'base.organizations'", id: record.id, notes: "'meddled'" }, next: mark }
  mark: { type: updateRecord, entity: base.organizations, id: record.id, fields: { website: "'https://raced.example'" } }
`);
    const done = await runManual('workflows.raced', { recordId: org.id });
    expect(done.status, done.error ?? '').toBe('completed');
    expect(trail(done)).toEqual(['meddle:done', 'mark:done']);
    // The first attempt used the record as claimed (version 1), lost to the action's write, and was retried without waiting.
    expect(done.steps[1].attempts).toBe(2);
    const now = (await t.api('GET', `/api/base/organizations/${org.id}`)).body;
    expect(now).toMatchObject({ notes: 'meddled', website: 'https://raced.example', version: 3 });
  });

  it('a sub-workflow runs to its end and hands its variables back', async () => {
    await publishWorkflow(t, `
id: workflows.child
title: Child
kind: automation
trigger: { type: manual }
start: compute
steps:
  compute: { type: set, variables: { doubled: "string(int(input.n) * 2)" } }
`);
    await publishWorkflow(t, `
id: workflows.parent
title: Parent
kind: automation
trigger: { type: manual }
start: call
steps:
  call: { type: subWorkflow, workflow: workflows.child, input: { n: "'21'" }, next: after }
  after: { type: set, variables: { answer: steps.call.vars.doubled } }
`);
    const done = await runManual('workflows.parent');
    expect(done.status).toBe('completed');
    expect(done.vars).toEqual({ answer: '42' });
    expect(done.children).toHaveLength(1);
    const child = (await t.api('GET', `/api/workflows/instances/${done.children[0]}`)).body;
    expect(child).toMatchObject({ status: 'completed', kind: 'subworkflow', parentId: done.id });
  });

  it('the HTTP step calls allow-listed hosts with an idempotency key that stays the same across retries', async () => {
    await publishWorkflow(t, `
id: workflows.call-out
title: Call out
kind: automation
trigger: { type: manual }
start: post
steps:
  post:
    type: http
    method: POST
    url: "'http://127.0.0.1:${port}/hook'"
    headers: { x-source: "'kubiki'" }
    body: "{'amount': '10.50'}"
    retry: { max: 3, backoff: PT0S }
    next: keep
  keep: { type: set, variables: { ok: steps.post.body.ok } }
`);
    received.length = 0;
    answers = [503, 502];
    const done = await runManual('workflows.call-out');
    expect(done.status, done.error ?? '').toBe('completed');
    expect(done.vars).toEqual({ ok: true });
    expect(done.steps[0].attempts).toBe(3);
    expect(received).toHaveLength(3);
    expect(new Set(received.map((r) => r.headers['idempotency-key'])).size).toBe(1);
    expect(received[0].headers['x-source']).toBe('kubiki');
    expect(JSON.parse(received[2].body)).toEqual({ amount: '10.50' });
  });

  it('refuses hosts off the allow-list and fails the instance with the reason; an admin retry runs it again', async () => {
    await publishWorkflow(t, `
id: workflows.call-far
title: Call far
kind: automation
trigger: { type: manual }
start: get
steps:
  get: { type: http, method: GET, url: "'http://example.invalid/x'" }
`);
    const failed = await runManual('workflows.call-far');
    expect(failed.status).toBe('failed');
    expect(failed.failedStep).toBe('get');
    expect(failed.error).toContain('allow-list');
    expect(failed.steps[0].attempts).toBe(1);
    const list = await t.api('GET', '/api/workflows/instances?status=failed&workflow=workflows.call-far');
    expect(list.body.data.map((i: { id: string }) => i.id)).toEqual([failed.id]);
    // Retrying cannot help while the host is refused: it fails again, visibly.
    const retried = await t.api('POST', `/api/workflows/instances/${failed.id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body.status).toBe('running');
    await t.k.workflowRuntime.settle();
    expect((await t.api('GET', `/api/workflows/instances/${failed.id}`)).body.status).toBe('failed');
    expect((await t.api('POST', `/api/workflows/instances/${failed.id}/cancel`)).body.status).toBe('cancelled');
    expect((await t.api('POST', `/api/workflows/instances/${failed.id}/retry`)).status).toBe(409);
  });

  it('times out slow HTTP answers', async () => {
    await publishWorkflow(t, `
id: workflows.call-slow
title: Call slow
kind: automation
trigger: { type: manual }
start: get
steps:
  get: { type: http, method: GET, url: "'http://127.0.0.1:${port}/slow'", timeoutMs: 200, retry: { max: 0 } }
`);
    const done = await runManual('workflows.call-slow');
    expect(done.status).toBe('failed');
    expect(done.error).toContain('within 200 ms');
  });

  it('a failing action is retried with back-off, then fails the instance; nothing of it is committed', async () => {
    await publishWorkflow(t, `
id: workflows.bad-action
title: Bad action
kind: automation
trigger: { type: manual }
start: bump
steps:
  bump: { type: callAction, action: alpha.bumpStats, input: { key: "'bad'", fail: "'yes'" }, retry: { max: 2, backoff: PT10S } }
`);
    const failedAt = clock.now().getTime();
    const first = await runManual('workflows.bad-action');
    expect(first.status).toBe('running');
    expect(first.steps[0]).toMatchObject({ status: 'pending', attempts: 1, dueAt: new Date(failedAt + 10_000).toISOString() });
    // The back-off doubles: the second attempt 10 s after the first, the third 20 s after that.
    await clock.advance(9_999);
    await t.k.workflowRuntime.settle();
    expect((await t.api('GET', `/api/workflows/instances/${first.id}`)).body.steps[0]).toMatchObject({ status: 'pending', attempts: 1 });
    await clock.advance(1);
    await t.k.workflowRuntime.settle();
    expect((await t.api('GET', `/api/workflows/instances/${first.id}`)).body.steps[0]).toMatchObject({ status: 'pending', attempts: 2, dueAt: new Date(failedAt + 30_000).toISOString() });
    await clock.advance(20_000);
    await t.k.workflowRuntime.settle();
    const done = (await t.api('GET', `/api/workflows/instances/${first.id}`)).body as InstanceView;
    expect(done.status).toBe('failed');
    expect(done.steps[0]).toMatchObject({ status: 'failed', attempts: 3, error: 'bumpStats was told to fail' });
    expect(await t.k.db.table('alpha_widget_stats').where({ key: 'bad' }).first()).toBeUndefined();
  });

  it('a createRecord with invalid data fails at once (no retry can fix it) and writes nothing', async () => {
    await publishWorkflow(t, `
id: workflows.bad-record
title: Bad record
kind: automation
trigger: { type: manual }
start: prep
steps:
  prep: { type: set, variables: { last: "'NoFirstName'" }, next: make }
  make: { type: createRecord, entity: base.people, fields: { lastName: vars.last } }
`);
    const before = await t.count('base_people');
    const done = await runManual('workflows.bad-record');
    expect(done.status).toBe('failed');
    expect(trail(done)).toEqual(['prep:done', 'make:failed']);
    expect(done.steps[1].attempts).toBe(1);
    expect(done.failedStep).toBe('make');
    expect(done.error).toContain('firstName');
    expect(await t.count('base_people')).toBe(before);
  });

  it('cancelling an instance stops its parallel branches and closes its tasks', async () => {
    await publishWorkflow(t, `
id: workflows.race
title: Race
kind: automation
trigger: { type: manual }
start: split
steps:
  split: { type: parallel, branches: [ask, pause], join: meet }
  ask: { type: approval, assignees: { role: admin }, approved: meet, rejected: meet }
  pause: { type: wait, duration: P1D, next: meet }
  meet: { type: join }
`);
    const waiting = await runManual('workflows.race');
    expect(waiting.status).toBe('waiting');
    const [task] = (await t.api('GET', '/api/tasks')).body.data.filter((x: { instanceId: string }) => x.instanceId === waiting.id);
    expect(task).toBeDefined();
    const cancelled = await t.api('POST', `/api/workflows/instances/${waiting.id}/cancel`);
    expect(cancelled.body.status).toBe('cancelled');
    const after = (await t.api('GET', `/api/workflows/instances/${waiting.id}`)).body as InstanceView;
    expect(trail(after).sort()).toEqual(['ask:cancelled', 'pause:cancelled', 'split:done']);
    expect((await t.api('GET', `/api/tasks/${task.id}`)).body.status).toBe('cancelled');
    expect((await t.api('POST', `/api/tasks/${task.id}/approve`)).status).toBe(409);
    expect((await t.api('POST', `/api/workflows/instances/${waiting.id}/cancel`)).status).toBe(409);
    expect(await t.count('kubiki_audit', { entity: 'workflow-instances', record_id: waiting.id, action: 'cancelled' })).toBe(1);
  });
});

describe('cross-module workflows', () => {
  it('start only while every plugin they require is enabled, and from the moment it is', async () => {
    const unknown = await t.api('POST', '/api/workflows/validate', { source: 'id: workflows.x\ntitle: X\nkind: automation\nrequires: [nosuch]\ntrigger: { type: manual }\nstart: a\nsteps:\n  a: { type: end }\n' });
    expect(unknown.body.errors).toEqual([expect.objectContaining({ path: '/requires/0', rule: 'unknown-plugin' })]);
    const { id } = await publishWorkflow(t, `
id: workflows.needs-beta
title: Needs beta
kind: automation
requires: [beta]
trigger: { type: event, entity: base.units, on: [created] }
start: note
steps:
  note: { type: set, variables: { unit: record.code } }
`);
    await t.api('POST', '/api/base/units', { code: 'box1', name: 'Box' });
    await t.k.workflowRuntime.settle();
    expect((await t.api('GET', `/api/workflows/instances?workflow=${id}`)).body.data).toEqual([]);
    for (const action of ['install', 'enable']) expect((await t.api('POST', `/api/plugins/beta/${action}`)).status).toBe(200);
    await t.api('POST', '/api/base/units', { code: 'box2', name: 'Big box' });
    await t.k.workflowRuntime.settle();
    const started = (await t.api('GET', `/api/workflows/instances?workflow=${id}`)).body.data;
    expect(started).toHaveLength(1);
    expect((await t.api('GET', `/api/workflows/instances/${started[0].id}`)).body.vars).toEqual({ unit: 'box2' });
    expect((await t.api('POST', '/api/plugins/beta/disable')).status).toBe(200);
  });
});

describe('versions', () => {
  it('a running instance finishes on the version it started on', async () => {
    const definition = (mark: string) => `
id: workflows.versioned
title: Versioned
kind: automation
trigger: { type: manual }
start: ask
steps:
  ask: { type: approval, assignees: { role: admin }, approved: mark, rejected: mark }
  mark: { type: set, variables: { ran: "'${mark}'" } }
`;
    await publishWorkflow(t, definition('v1'));
    const first = await runManual('workflows.versioned');
    const v2 = await publishWorkflow(t, definition('v2'));
    const second = await runManual('workflows.versioned');
    for (const id of [first.id, second.id]) {
      const [task] = (await t.api('GET', '/api/tasks')).body.data.filter((x: { instanceId: string }) => x.instanceId === id);
      expect((await t.api('POST', `/api/tasks/${task.id}/approve`)).status).toBe(200);
    }
    await t.k.workflowRuntime.settle();
    const [a, b] = await Promise.all([first.id, second.id].map(async (id) => (await t.api('GET', `/api/workflows/instances/${id}`)).body));
    expect([a.version, a.vars.ran]).toEqual([v2.version - 1, 'v1']);
    expect([b.version, b.vars.ran]).toEqual([v2.version, 'v2']);
  });
});

describe('timers', () => {
  it('a wait survives a restart and fires afterwards', async () => {
    await publishWorkflow(t, `
id: workflows.later
title: Later
kind: automation
trigger: { type: manual }
start: pause
steps:
  pause: { type: wait, duration: PT2S, next: note }
  note: { type: set, variables: { woke: now } }
`);
    const paused = clock.now().getTime();
    const started = await t.api('POST', '/api/workflows/workflows.later/run', {});
    await t.k.workflowRuntime.settle();
    const id = started.body.instanceId as string;
    expect((await t.api('GET', `/api/workflows/instances/${id}`)).body.status).toBe('waiting');
    const { schema, adminToken } = t;
    await t.close({ keepSchema: true });
    t = await startKubiki({ clock, schema, adminToken, pluginDirs: [SHIPPED_PLUGINS, FIXTURE_PLUGINS], enable: ['alpha'], config: { workflowHttpAllow: ['127.0.0.1'] } });
    await t.k.workflowRuntime.settle();
    expect((await t.api('GET', `/api/workflows/instances/${id}`)).body.status).toBe('waiting');
    await clock.advance(1999);
    await t.k.workflowRuntime.settle();
    expect((await t.api('GET', `/api/workflows/instances/${id}`)).body.status).toBe('waiting');
    await clock.advance(1);
    await t.k.workflowRuntime.settle();
    const done = (await t.api('GET', `/api/workflows/instances/${id}`)).body as InstanceView;
    expect(done.status).toBe('completed');
    expect(trail(done)).toEqual(['pause:done', 'note:done']);
    // It woke at its due time on the clock, not whenever a worker happened to look.
    expect(done.steps[0].output).toEqual({ until: new Date(paused + 2000).toISOString() });
    expect(done.vars.woke).toBe(new Date(paused + 2000).toISOString());
  });

  it('background workers poll on the clock: a start runs at once, a wait when the clock reaches it', async () => {
    await publishWorkflow(t, `
id: workflows.later-in-background
title: Later, in the background
kind: automation
trigger: { type: manual }
start: pause
steps:
  pause: { type: wait, duration: PT5S, next: note }
  note: { type: set, variables: { woke: now } }
`);
    const engine = t.k.workflowRuntime.engine;
    const status = async (id: string) => (await t.api('GET', `/api/workflows/instances/${id}`)).body.status;
    engine.start();
    try {
      const paused = clock.now().getTime();
      const { instanceId } = (await t.api('POST', '/api/workflows/workflows.later-in-background/run', {})).body;
      // Started by the kick, no clock needed; then nothing moves until the clock does.
      await vi.waitFor(async () => expect(await status(instanceId)).toBe('waiting'), { timeout: 5_000, interval: 20 });
      await clock.advance(4_999);
      expect(await engine.runUntilIdle()).toBe(0);
      expect(await status(instanceId)).toBe('waiting');
      // The poll timer fires on the clock: at 5 s it finds the wait due.
      await clock.advance(1);
      await vi.waitFor(async () => expect(await status(instanceId)).toBe('completed'), { timeout: 5_000, interval: 20 });
      expect((await t.api('GET', `/api/workflows/instances/${instanceId}`)).body.vars.woke).toBe(new Date(paused + 5_000).toISOString());
    } finally {
      await engine.stop();
    }
  });
});
