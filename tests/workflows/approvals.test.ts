import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../helpers/manual-clock.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { instancesOf, publishWorkflow, trail } from '../helpers/workflow-helpers.ts';

let t: TestKubiki;
const clock = new ManualClock();
const approvers: { token: string; id: string; name: string }[] = [];

async function roleUser(name: string, role: string): Promise<{ token: string; id: string; name: string }> {
  const user = await t.api('POST', '/api/users', { username: name, roles: [role] });
  expect(user.status, JSON.stringify(user.body)).toBe(201);
  const token = await t.api('POST', `/api/users/${user.body.id}/tokens`, { name: 'test' });
  return { token: token.body.token, id: user.body.id, name };
}

const approval = (id: string, mode: string, extra = '') => `
id: ${id}
title: Approve by rule
kind: automation
trigger: { type: manual, input: { type: object, properties: { amount: { type: string } }, required: [amount] } }
start: ask
steps:
  ask:
    type: approval
    assignees: { role: buyers }
    mode: ${mode}
    subject: "'Purchase of ' + input.amount"
    approved: yes
    rejected: no
    ${extra}
  yes: { type: set, variables: { outcome: "'approved'" } }
  no: { type: set, variables: { outcome: "'rejected'" } }
`;

const run = async (id: string) => {
  const res = await t.api('POST', `/api/workflows/${id}/run`, { input: { amount: '1000.00' } });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  await t.k.workflowRuntime.settle();
  return res.body.instanceId as string;
};
type TaskView = { id: string; instanceId: string; subject: string; required: number; eligible: number; deadlineAt: string | null };
const tasksOf = async (user: { token: string }): Promise<TaskView[]> => {
  const res = await t.api('GET', '/api/tasks', undefined, { token: user.token });
  if (res.status !== 200) throw new Error(JSON.stringify(res.body));
  return res.body.data;
};
const instance = async (id: string) => (await t.api('GET', `/api/workflows/instances/${id}`)).body;

beforeAll(async () => {
  t = await startKubiki({ clock });
  expect((await t.api('PUT', '/api/roles/buyers', { permissions: ['base.products.read'] })).status).toBe(200);
  for (const n of ['ann', 'bob', 'cid', 'dan']) approvers.push(await roleUser(n, 'buyers'));
  await publishWorkflow(t, approval('workflows.buy-any', 'any'));
  await publishWorkflow(t, approval('workflows.buy-all', 'all'));
  await publishWorkflow(t, approval('workflows.buy-two', '{ atLeast: 2 }'));
  await publishWorkflow(t, approval('workflows.buy-deadline', 'any', 'deadline: PT1S\n    onDeadline: escalate').replace('  no: {', '  escalate: { type: set, variables: { outcome: "\'escalated\'" } }\n  no: {'));
});
afterAll(async () => t?.close());

describe('approvals', () => {
  it('gives every assignee a task in /api/tasks; any one decides', async () => {
    const id = await run('workflows.buy-any');
    expect((await instance(id)).status).toBe('waiting');
    const [task] = (await tasksOf(approvers[0])).filter((x) => x.instanceId === id);
    expect(task).toMatchObject({ subject: 'Purchase of 1000.00', required: 1, eligible: 4 });
    expect((await tasksOf(approvers[3])).some((x) => x.id === task.id)).toBe(true);
    // Admin is no buyer: not theirs to decide.
    expect((await t.api('POST', `/api/tasks/${task.id}/approve`)).status).toBe(403);
    const ok = await t.api('POST', `/api/tasks/${task.id}/approve`, { comment: 'fine' }, { token: approvers[1].token });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body).toMatchObject({ status: 'approved', decisions: [{ username: 'bob', decision: 'approved', comment: 'fine' }] });
    await t.k.workflowRuntime.settle();
    const done = await instance(id);
    expect(done.status).toBe('completed');
    expect(done.vars).toEqual({ outcome: 'approved' });
    expect(done.steps[0].output).toMatchObject({ outcome: 'approved' });
    // Decided: gone from everyone's list, and a late decision is refused.
    expect((await tasksOf(approvers[2])).some((x) => x.id === task.id)).toBe(false);
    const late = await t.api('POST', `/api/tasks/${task.id}/reject`, { comment: 'too late' }, { token: approvers[2].token });
    expect(late.status).toBe(409);
    expect(late.body.type).toBe('/problems/task-closed');
  });

  it('needs N of M approvals, and rejects once N cannot be reached', async () => {
    const approved = await run('workflows.buy-two');
    const [task] = (await tasksOf(approvers[0])).filter((x) => x.instanceId === approved);
    expect(task.required).toBe(2);
    await t.api('POST', `/api/tasks/${task.id}/approve`, {}, { token: approvers[0].token });
    await t.k.workflowRuntime.settle();
    expect((await instance(approved)).status).toBe('waiting');
    expect((await t.api('POST', `/api/tasks/${task.id}/approve`, {}, { token: approvers[0].token })).status).toBe(409);
    await t.api('POST', `/api/tasks/${task.id}/reject`, { comment: 'no budget' }, { token: approvers[1].token });
    expect((await instance(approved)).status).toBe('waiting');
    await t.api('POST', `/api/tasks/${task.id}/approve`, {}, { token: approvers[2].token });
    await t.k.workflowRuntime.settle();
    expect((await instance(approved)).vars).toEqual({ outcome: 'approved' });

    const rejected = await run('workflows.buy-two');
    const [task2] = (await tasksOf(approvers[0])).filter((x) => x.instanceId === rejected);
    for (const a of approvers.slice(0, 2)) await t.api('POST', `/api/tasks/${task2.id}/reject`, { comment: 'no' }, { token: a.token });
    expect((await instance(rejected)).status).toBe('waiting');
    // 3 rejections of 4: two approvals are out of reach.
    await t.api('POST', `/api/tasks/${task2.id}/reject`, { comment: 'no' }, { token: approvers[2].token });
    await t.k.workflowRuntime.settle();
    expect((await instance(rejected)).vars).toEqual({ outcome: 'rejected' });
  });

  it('"all" needs everyone; one rejection rejects', async () => {
    const id = await run('workflows.buy-all');
    const [task] = (await tasksOf(approvers[0])).filter((x) => x.instanceId === id);
    expect(task.required).toBe(4);
    for (const a of approvers.slice(0, 3)) await t.api('POST', `/api/tasks/${task.id}/approve`, {}, { token: a.token });
    expect((await instance(id)).status).toBe('waiting');
    await t.api('POST', `/api/tasks/${task.id}/reject`, { comment: 'not this one' }, { token: approvers[3].token });
    await t.k.workflowRuntime.settle();
    expect((await instance(id)).vars).toEqual({ outcome: 'rejected' });
  });

  it('two approvers deciding at once: one decision settles an "any" task, the other is refused', async () => {
    const id = await run('workflows.buy-any');
    const [task] = (await tasksOf(approvers[0])).filter((x) => x.instanceId === id);
    const results = await Promise.all(approvers.map((a) => t.api('POST', `/api/tasks/${task.id}/approve`, {}, { token: a.token })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(3);
    await t.k.workflowRuntime.settle();
    const done = await instance(id);
    expect(trail(done)).toEqual(['ask:done', 'yes:done']);
  });

  it('escalates when the deadline passes', async () => {
    const opened = clock.now().getTime();
    const id = await run('workflows.buy-deadline');
    const [task] = (await tasksOf(approvers[0])).filter((x) => x.instanceId === id);
    expect(task).toMatchObject({ instanceId: id, subject: 'Purchase of 1000.00', deadlineAt: new Date(opened + 1000).toISOString() });
    // Not a moment early: a millisecond before the deadline the task is still open.
    await clock.advance(999);
    await t.k.workflowRuntime.settle();
    expect((await instance(id)).status).toBe('waiting');
    expect((await t.api('GET', `/api/tasks/${task.id}`)).body.status).toBe('open');
    await clock.advance(1);
    await t.k.workflowRuntime.settle();
    const done = await instance(id);
    expect(done.status).toBe('completed');
    expect(done.vars).toEqual({ outcome: 'escalated' });
    expect((await t.api('GET', `/api/tasks/${task.id}`)).body.status).toBe('expired');
    expect((await t.api('POST', `/api/tasks/${task.id}/approve`, {}, { token: approvers[0].token })).status).toBe(409);
  });

  it('refuses bad decisions with problem+json', async () => {
    const id = await run('workflows.buy-any');
    const [task] = (await tasksOf(approvers[0])).filter((x) => x.instanceId === id);
    expect((await t.api('POST', `/api/tasks/${task.id}/reject`, {}, { token: approvers[0].token })).body).toMatchObject({ status: 400, field: 'comment' });
    expect((await t.api('POST', `/api/tasks/${task.id}/approve`, { why: 1 }, { token: approvers[0].token })).body).toMatchObject({ status: 400, field: 'why' });
    expect((await t.api('POST', `/api/tasks/${task.id}/approve`, { comment: 5 }, { token: approvers[0].token })).body).toMatchObject({ status: 400, field: 'comment' });
    expect((await t.api('POST', '/api/tasks/not-a-uuid/approve', {}, { token: approvers[0].token })).status).toBe(404);
    expect((await t.api('GET', '/api/tasks?mine=1', undefined, { token: approvers[0].token })).body).toMatchObject({ status: 400, field: 'mine' });
    expect((await t.api('GET', '/api/tasks', undefined, { token: null })).status).toBe(401);
    // The decision is audited.
    await t.api('POST', `/api/tasks/${task.id}/approve`, { comment: 'ok' }, { token: approvers[0].token });
    expect(await t.count('kubiki_audit', { entity: 'tasks', record_id: task.id, action: 'approved' })).toBe(1);
  });
});
