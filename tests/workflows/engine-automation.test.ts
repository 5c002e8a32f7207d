import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

let t: TestKubiki;

async function publish(source: string): Promise<string> {
  const id = /^id: (\S+)$/m.exec(source)![1];
  const saved = await t.api('PUT', `/api/workflows/${id}`, { source });
  expect(saved.status, JSON.stringify(saved.body)).toBeLessThan(300);
  const published = await t.api('POST', `/api/workflows/${id}/publish`, { version: saved.body.version });
  expect(published.status, JSON.stringify(published.body)).toBe(200);
  return id;
}

const instancesOf = async (workflow: string) => (await t.api('GET', `/api/workflows/instances?workflow=${workflow}&limit=200`)).body.data as { id: string; status: string; error: string | null }[];

beforeAll(async () => {
  t = await startKubiki();
});
afterAll(async () => t?.close());

describe('event-triggered automation', () => {
  it('runs condition → set → create → notify → end once per created record, with history', async () => {
    const id = await publish(`
id: workflows.onboard
title: Onboard
kind: automation
trigger: { type: event, entity: base.organizations, on: [created] }
start: check
steps:
  check: { type: condition, if: "has(record.inn) && record.inn != ''", then: name, else: done }
  name: { type: set, variables: { contact: "'Contact of ' + record.name" }, next: create }
  create: { type: createRecord, entity: base.people, fields: { firstName: vars.contact, organization: record.id }, next: mark }
  mark: { type: updateRecord, entity: base.organizations, id: record.id, fields: { notes: "'onboarded by ' + steps.create.id" }, next: tell }
  tell: { type: notify, channel: email, to: "'sales@example.com'", subject: "'New: ' + record.name", body: "'Created ' + vars.contact", next: done }
  done: { type: end }
`);
    const withInn = await t.api('POST', '/api/base/organizations', { name: 'Acme', inn: '7707083893' });
    const without = await t.api('POST', '/api/base/organizations', { name: 'NoInn' });
    expect(withInn.status).toBe(201);
    await t.k.workflowRuntime.settle();
    const instances = await instancesOf(id);
    expect(instances.map((i) => i.status)).toEqual(['completed', 'completed']);
    expect(await t.count('base_people', { organization: withInn.body.id })).toBe(1);
    expect(await t.count('base_people', { organization: without.body.id })).toBe(0);
    const org = await t.api('GET', `/api/base/organizations/${withInn.body.id}`);
    expect(org.body.notes).toMatch(/^onboarded by [0-9a-f-]{36}$/);
    const detail = await t.api('GET', `/api/workflows/instances/${instances.find((i) => true)!.id}`);
    expect(detail.status).toBe(200);
    const acme = (await Promise.all(instances.map((i) => t.api('GET', `/api/workflows/instances/${i.id}`)))).map((r) => r.body).find((d) => d.recordId === withInn.body.id);
    expect(acme.steps.map((s: { step: string; status: string }) => `${s.step}:${s.status}`)).toEqual(['check:done', 'name:done', 'create:done', 'mark:done', 'tell:done', 'done:done']);
    expect(acme.vars).toEqual({ contact: 'Contact of Acme' });
    expect(acme.steps[4].output).toMatchObject({ status: 'held' });
    expect(acme.steps[2].attempts).toBe(1);
    // A record step's output is the record exactly as the API shows it (built in SQL with the write).
    const person = (await t.api('GET', `/api/base/people/${acme.steps[2].output.id}`)).body;
    expect(acme.steps[2].output).toEqual(person);
    expect(acme.outputs.create).toEqual(person);
    expect(acme.steps[3].output).toEqual(org.body);
    // Redelivering the same events starts nothing new.
    await t.k.db.table('kubiki_outbox').update({ dispatched_at: null, next_attempt_at: t.k.db.knex.fn.now() });
    await t.k.workflowRuntime.settle();
    expect(await instancesOf(id)).toHaveLength(2);
    expect(await t.count('base_people', { organization: withInn.body.id })).toBe(1);
  });
});
