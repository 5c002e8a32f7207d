// Invoices and payments as documents: their states and transitions are the lifecycle workflow
// definitions finance ships (plugins/finance/workflows/*-lifecycle.yaml). finance's own routes
// (POST …/invoices/{id}/post, …/cancel, …/payments/{id}/post) take the same transitions as the
// generic POST …/{id}/transitions/{name}, so both answer alike and an analyst's edit applies to both.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { publishWorkflow } from '../helpers/workflow-helpers.ts';
import { expectBalanced, expectNothingWritten, org, snapshot } from './helpers.ts';

let t: TestKubiki;
let acme: string;
beforeAll(async () => {
  t = await startKubiki({ enable: ['base', 'finance'] });
  acme = await org(t, 'Acme', '7707083893');
});
afterAll(() => t?.close());

const SHIPPED = fs.readFileSync(path.join(repoRoot, 'plugins/finance/workflows/invoice-lifecycle.yaml'), 'utf8');
const lines = [{ description: 'Consulting', quantity: '2', price: '1000.00', vatRate: '22' }];
const draft = async (extra: Record<string, unknown> = {}) => {
  const r = await t.api('POST', '/api/finance/invoices', { kind: 'customer', organization: acme, date: '2026-02-10', dueDate: '2026-03-10', lines, ...extra });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { id: string; version: number };
};
const transitions = async (id: string, token?: string) => {
  const r = await t.api('GET', `/api/finance/invoices/${id}/transitions`, undefined, { token });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { workflow: string; state: string; transitions: { name: string; to: string; allowed: boolean; reason?: string; input?: unknown }[] };
};
const entriesOf = async (id: string) => (await t.api('GET', `/api/finance/entries?sourceEntity=finance.invoices&sourceId=${id}`)).body.data as { id: string }[];
type Line = { account: string; debit: string; credit: string; organization?: string };
const shape = (entry: { lines: Line[]; date: string; total?: string }) => ({ date: entry.date, lines: entry.lines.map((l) => [l.account, l.debit, l.credit, l.organization ?? null]) });

describe('the invoice lifecycle as a workflow definition', () => {
  it('is published at boot and lists post and cancel with allowed flags', async () => {
    const wf = (await t.api('GET', '/api/workflows/finance.invoice-lifecycle')).body;
    expect(wf).toMatchObject({ id: 'finance.invoice-lifecycle', kind: 'lifecycle', entity: 'finance.invoices', publishedVersion: expect.any(Number) });
    const d = await draft();
    const listed = await transitions(d.id);
    expect(listed).toMatchObject({ workflow: 'finance.invoice-lifecycle', state: 'draft' });
    expect(listed.transitions.map((x) => [x.name, x.to, x.allowed])).toEqual([['post', 'posted', true], ['cancel', 'cancelled', true]]);
    expect(listed.transitions[1].input).toMatchObject({ properties: { date: { format: 'date' }, reason: { maxLength: 1000 } } });
    // A reader may not post: the permission of the transition says so.
    const viewer = await t.userWith(['finance.invoices.read']);
    const forViewer = await transitions(d.id, viewer.token);
    expect(forViewer.transitions.find((x) => x.name === 'post')).toMatchObject({ allowed: false, reason: expect.stringContaining('finance.invoices.post') });
    expect((await t.api('POST', `/api/finance/invoices/${d.id}/transitions/post`, {}, { token: viewer.token })).status).toBe(403);
    expect((await t.api('POST', `/api/finance/invoices/${d.id}/post`, undefined, { token: viewer.token })).status).toBe(403);
    expect((await t.api('POST', `/api/finance/invoices/${d.id}/post`)).status).toBe(200);
    const posted = await transitions(d.id);
    expect(posted.state).toBe('posted');
    expect(posted.transitions.map((x) => [x.name, x.allowed])).toEqual([['post', false], ['cancel', true]]);
    expect(posted.transitions[0].reason).toContain('"posted"');
    const payments = (await t.api('GET', '/api/workflows/finance.payment-lifecycle')).body;
    expect(payments).toMatchObject({ kind: 'lifecycle', entity: 'finance.payments', publishedVersion: expect.any(Number) });
  });

  it('posts and cancels alike through the generic transition route and the old routes', async () => {
    const a = await draft();
    const b = await draft();
    const old = await t.api('POST', `/api/finance/invoices/${a.id}/post`);
    const generic = await t.api('POST', `/api/finance/invoices/${b.id}/transitions/post`, {});
    expect(old.status, JSON.stringify(old.body)).toBe(200);
    expect(generic.status, JSON.stringify(generic.body)).toBe(200);
    expect(generic.body).toMatchObject({ transition: 'post', from: 'draft', to: 'posted' });
    const viaOld = old.body.invoice;
    const viaGeneric = generic.body.record;
    for (const inv of [viaOld, viaGeneric]) {
      expect(inv).toMatchObject({ status: 'posted', subtotal: '2000.00', vatTotal: '440.00', total: '2440.00', paidAmount: '0.00', number: expect.stringMatching(/^INV-2026-\d{6}$/) });
    }
    expect(viaOld.entry).toBe(old.body.entry.id);
    expect(viaGeneric.entry).toBe(generic.body.output.entry.id);
    expect(generic.body.output).toMatchObject({ invoice: b.id, number: viaGeneric.number, total: '2440.00' });
    expect(shape(generic.body.output.entry)).toEqual(shape(old.body.entry));
    // Posting again is refused the same way by both.
    for (const again of [await t.api('POST', `/api/finance/invoices/${a.id}/post`), await t.api('POST', `/api/finance/invoices/${b.id}/transitions/post`, {})]) {
      expect(again.body).toMatchObject({ status: 409, code: 'transition-not-allowed' });
    }
    // Cancelling: the old route's body is the transition's input.
    const c1 = await t.api('POST', `/api/finance/invoices/${a.id}/cancel`, { date: '2026-02-12', reason: 'duplicate' });
    const c2 = await t.api('POST', `/api/finance/invoices/${b.id}/transitions/cancel`, { input: { date: '2026-02-12', reason: 'duplicate' } });
    expect(c1.status, JSON.stringify(c1.body)).toBe(200);
    expect(c2.status, JSON.stringify(c2.body)).toBe(200);
    expect(c1.body.invoice.status).toBe('cancelled');
    expect(c2.body.record.status).toBe('cancelled');
    expect(c1.body.reversal).toMatchObject({ reverses: old.body.entry.id, date: '2026-02-12', memo: `Cancellation of ${viaOld.number}: duplicate` });
    expect(c2.body.output.reversal).toMatchObject({ reverses: generic.body.output.entry.id, date: '2026-02-12', memo: `Cancellation of ${viaGeneric.number}: duplicate` });
    const badInput = await t.api('POST', `/api/finance/invoices/${(await draft()).id}/transitions/cancel`, { input: { refund: true } });
    expect(badInput.body).toMatchObject({ status: 400, code: 'validation-failed', field: 'input.refund' });
    // A draft is cancelled without a reversal, by either route.
    const d1 = await draft();
    const d2 = await draft();
    expect((await t.api('POST', `/api/finance/invoices/${d1.id}/cancel`)).body).toEqual({ invoice: expect.objectContaining({ status: 'cancelled' }) });
    expect((await t.api('POST', `/api/finance/invoices/${d2.id}/transitions/cancel`, {})).body).toMatchObject({ record: { status: 'cancelled' }, output: {} });
    await expectBalanced(t);
  });

  it('keeps a draft editable and a posted invoice locked; status and totals are not written by clients', async () => {
    const d = await draft();
    const relined = await t.api('PATCH', `/api/finance/invoices/${d.id}`, { lines: [{ description: 'Audit', quantity: '1', price: '100.00', vatRate: '22' }], notes: 'checked' });
    expect(relined.status, JSON.stringify(relined.body)).toBe(200);
    expect(relined.body).toMatchObject({ status: 'draft', subtotal: '100.00', vatTotal: '22.00', total: '122.00', notes: 'checked' });
    expect((await t.api('PATCH', `/api/finance/invoices/${d.id}`, { total: '1.00' })).body).toMatchObject({ status: 400, field: 'total', rule: 'read-only' });
    expect((await t.api('PATCH', `/api/finance/invoices/${d.id}`, { number: 'INV-X' })).body).toMatchObject({ status: 400, field: 'number', rule: 'read-only' });
    expect((await t.api('PATCH', `/api/finance/invoices/${d.id}`, { status: 'posted' })).body).toMatchObject({ status: 409, code: 'transition-required', field: 'status' });
    expect((await t.api('POST', '/api/finance/invoices', { kind: 'customer', status: 'paid' })).body).toMatchObject({ status: 409, code: 'transition-required', field: 'status' });
    expect((await t.api('POST', '/api/finance/invoices', { kind: 'customer', status: 'draft', lines })).status).toBe(201);
    expect((await t.api('POST', `/api/finance/invoices/${d.id}/post`)).status).toBe(200);
    const locked = await t.api('PATCH', `/api/finance/invoices/${d.id}`, { lines });
    expect(locked.body).toMatchObject({ status: 409, code: 'document-locked', field: 'lines', state: 'posted' });
    expect((await t.api('PATCH', `/api/finance/invoices/${d.id}`, { status: 'draft' })).body).toMatchObject({ status: 409, code: 'transition-required' });
    expect((await t.api('DELETE', `/api/finance/invoices/${d.id}`)).body).toMatchObject({ status: 409, code: 'document-locked' });
    // The due date and notes of a posted invoice stay open.
    const noted = await t.api('PATCH', `/api/finance/invoices/${d.id}`, { notes: 'sent by post', dueDate: '2026-04-10' });
    expect(noted.status, JSON.stringify(noted.body)).toBe(200);
    expect(noted.body).toMatchObject({ status: 'posted', total: '122.00', notes: 'sent by post', dueDate: '2026-04-10' });
    expect((await t.api('POST', `/api/finance/invoices/${d.id}/cancel`)).status).toBe(200);
    expect((await t.api('PATCH', `/api/finance/invoices/${d.id}`, { notes: 'again' })).body).toMatchObject({ status: 409, code: 'document-locked', state: 'cancelled' });
  });

  it('refuses posting into a closed period by either route, writing nothing', async () => {
    const d = await draft({ date: '2025-10-05', dueDate: '2025-11-05' });
    await t.api('POST', '/api/finance/entries', { date: '2025-10-01', lines: [{ account: '51', debit: '1.00' }, { account: '80', credit: '1.00' }] });
    const period = (await t.api('GET', '/api/finance/periods?month=2025-10')).body.data[0];
    expect((await t.api('POST', `/api/finance/periods/${period.id}/close`)).status).toBe(200);
    const before = await snapshot(t);
    const counters = await t.k.db.table('finance_counters').select();
    for (const r of [await t.api('POST', `/api/finance/invoices/${d.id}/post`), await t.api('POST', `/api/finance/invoices/${d.id}/transitions/post`, {})]) {
      expect(r.body).toMatchObject({ status: 409, code: 'finance.period-closed', field: 'date' });
    }
    await expectNothingWritten(t, before);
    expect(await t.k.db.table('finance_counters').select()).toEqual(counters);
    expect((await t.api('GET', `/api/finance/invoices/${d.id}`)).body).toMatchObject({ status: 'draft', version: d.version });
    expect(await entriesOf(d.id)).toEqual([]);
  });

  it('posts an invoice once under 5 concurrent posts through both routes: exactly one entry', async () => {
    const d = await draft();
    const calls = [0, 1, 2, 3, 4].map((i) => (i % 2 === 0 ? t.api('POST', `/api/finance/invoices/${d.id}/post`) : t.api('POST', `/api/finance/invoices/${d.id}/transitions/post`, {})));
    const answers = await Promise.all(calls);
    expect(answers.map((a) => a.status).sort(), JSON.stringify(answers.map((a) => a.body))).toEqual([200, 409, 409, 409, 409]);
    for (const a of answers.filter((x) => x.status === 409)) expect(a.body.code).toBe('transition-not-allowed');
    expect(await entriesOf(d.id)).toHaveLength(1);
    const invoice = (await t.api('GET', `/api/finance/invoices/${d.id}`)).body;
    expect(invoice).toMatchObject({ status: 'posted', entry: (await entriesOf(d.id))[0].id });
    await expectBalanced(t);
  });

  it('posts a payment alike through the generic transition route and the old route', async () => {
    const inv = (await t.api('POST', `/api/finance/invoices/${(await draft()).id}/post`)).body.invoice;
    const pay = async () => (await t.api('POST', '/api/finance/payments', { direction: 'in', organization: acme, date: '2026-02-15', amount: '1000.00' })).body.id as string;
    const p1 = await pay();
    const p2 = await pay();
    const old = await t.api('POST', `/api/finance/payments/${p1}/post`, { allocations: [{ invoice: inv.id, amount: '1000.00' }] });
    const generic = await t.api('POST', `/api/finance/payments/${p2}/transitions/post`, { input: { allocations: [{ invoice: inv.id, amount: '1000.00' }] } });
    expect(old.status, JSON.stringify(old.body)).toBe(200);
    expect(generic.status, JSON.stringify(generic.body)).toBe(200);
    expect(old.body.payment).toMatchObject({ status: 'posted', unallocated: '0.00', entry: old.body.entry.id });
    expect(generic.body.record).toMatchObject({ status: 'posted', unallocated: '0.00', entry: generic.body.output.entry.id });
    expect(shape(generic.body.output.entry)).toEqual(shape(old.body.entry));
    expect(old.body.invoices[0]).toMatchObject({ status: 'partlyPaid', paidAmount: '1000.00' });
    expect(generic.body.output.invoices[0]).toMatchObject({ status: 'partlyPaid', paidAmount: '2000.00' });
    expect((await t.api('PATCH', `/api/finance/payments/${p1}`, { reference: 'x' })).body).toMatchObject({ status: 409, code: 'document-locked' });
    expect((await t.api('POST', `/api/finance/payments/${p2}/post`)).body).toMatchObject({ status: 409, code: 'transition-not-allowed' });
    expect((await t.api('POST', '/api/finance/payments', { direction: 'in', amount: '1.00', unallocated: '1.00' })).body).toMatchObject({ status: 400, field: 'unallocated', rule: 'read-only' });
  });

  it('posts from a workflow step (callAction finance.postInvoice) with the same posting, once', async () => {
    await publishWorkflow(t, `
id: workflows.post-invoice-step
title: Post an invoice (test)
kind: automation
trigger: { type: manual, input: { type: object, properties: { invoice: { type: string } }, required: [invoice] } }
start: post
steps:
  post: { type: callAction, action: finance.postInvoice, input: { invoice: input.invoice }, retry: { max: 3, backoff: PT1S } }
`);
    const run = async (invoice: string) => {
      const r = await t.api('POST', '/api/workflows/workflows.post-invoice-step/run', { input: { invoice } });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      await t.k.workflowRuntime.settle();
      return (await t.api('GET', `/api/workflows/instances/${r.body.instanceId}`)).body as { status: string; steps: { attempts: number; output: any; error: string | null }[] };
    };
    const d = await draft();
    const done = await run(d.id);
    expect(done.status).toBe('completed');
    const invoice = (await t.api('GET', `/api/finance/invoices/${d.id}`)).body;
    expect(invoice).toMatchObject({ status: 'posted', total: '2440.00', number: expect.stringMatching(/^INV-2026-/) });
    expect(done.steps[0].output).toEqual({ invoice: d.id, number: invoice.number, total: '2440.00' });
    expect(await entriesOf(d.id)).toHaveLength(1);
    // Posting a posted invoice fails the step for good (no retries), naming the state.
    const again = await run(d.id);
    expect(again.status).toBe('failed');
    expect(again.steps[0].attempts).toBe(1);
    expect(again.steps[0].error).toMatch(/draft/);
    expect(await entriesOf(d.id)).toHaveLength(1);
  });

  it('applies an analyst\'s edit of the lifecycle (a role to post) to the old route too', async () => {
    const clerk = await t.userWith(['finance.invoices.read', 'finance.invoices.create', 'finance.invoices.post']);
    const accountantUser = await t.api('POST', '/api/users', { username: 'chief-accountant', roles: ['accountant'] });
    expect(accountantUser.status, JSON.stringify(accountantUser.body)).toBe(201);
    const accountant = (await t.api('POST', `/api/users/${accountantUser.body.id}/tokens`, { name: 'test' })).body.token as string;
    const before = await draft();
    expect((await t.api('POST', `/api/finance/invoices/${before.id}/post`, undefined, { token: clerk.token })).status).toBe(200);

    const edited = SHIPPED.replace('    permission: finance.invoices.post\n    # Checks the draft', '    permission: finance.invoices.post\n    roles: [accountant]\n    # Checks the draft');
    expect(edited).not.toBe(SHIPPED);
    await publishWorkflow(t, edited);
    try {
      const d = await draft();
      const old = await t.api('POST', `/api/finance/invoices/${d.id}/post`, undefined, { token: clerk.token });
      const generic = await t.api('POST', `/api/finance/invoices/${d.id}/transitions/post`, {}, { token: clerk.token });
      for (const r of [old, generic]) {
        expect(r.status, JSON.stringify(r.body)).toBe(403);
        expect(r.body.detail).toContain('accountant');
      }
      expect((await transitions(d.id, clerk.token)).transitions.find((x) => x.name === 'post')).toMatchObject({ allowed: false });
      expect((await t.api('GET', `/api/finance/invoices/${d.id}`)).body.status).toBe('draft');
      // Cancelling was not edited: the clerk still may.
      const other = await draft();
      expect((await t.api('POST', `/api/finance/invoices/${other.id}/cancel`, undefined, { token: clerk.token })).status).toBe(200);
      const byAccountant = await t.api('POST', `/api/finance/invoices/${d.id}/post`, undefined, { token: accountant });
      expect(byAccountant.status, JSON.stringify(byAccountant.body)).toBe(200);
      expect(byAccountant.body.invoice.status).toBe('posted');
    } finally {
      await publishWorkflow(t, SHIPPED);
    }
    const after = await draft();
    expect((await t.api('POST', `/api/finance/invoices/${after.id}/post`, undefined, { token: clerk.token })).status).toBe(200);
  });
});
