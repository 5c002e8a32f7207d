import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_PLUGINS, SHIPPED_PLUGINS, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { publishWorkflow } from '../helpers/workflow-helpers.ts';

// A document's lifecycle as data: states that lock the record, transitions guarded by a permission
// whose plugin action runs in the transition's own transaction.
const LIFECYCLE = `
id: alpha.product-posting
title: Product posting (test)
kind: lifecycle
entity: base.products
stateField: status
states:
  - { name: draft, initial: true }
  - { name: active, editable: [description] }
  - { name: archived, final: true, editable: false }
transitions:
  - { name: activate, from: [draft], to: active, permission: base.products.update, action: alpha.stampPosted }
  - { name: archive, from: [active], to: archived, permission: alpha.widgets.approve }
`;

let t: TestKubiki;
beforeAll(async () => {
  t = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, FIXTURE_PLUGINS], enable: ['alpha'] });
  await publishWorkflow(t, LIFECYCLE);
});
afterAll(async () => t?.close());

const product = async (fields: Record<string, unknown> = {}) => {
  const res = await t.api('POST', '/api/base/products', { sku: `SKU-${Math.random().toString(36).slice(2, 10)}`, name: 'Desk', ...fields });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; version: number };
};
const take = (id: string, name: string, body?: unknown, token?: string) => t.api('POST', `/api/base/products/${id}/transitions/${name}`, body, { token });
const stamped = async (id: string) => (await t.k.db.knex('alpha_widget_stats').withSchema(t.schema).where({ key: `posted:${id}` }).first()) ?? null;

describe('document moments', () => {
  it('runs the transition\'s action with the state change and answers its output', async () => {
    const p = await product({ price: '500.00' });
    const res = await take(p.id, 'activate');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ from: 'draft', to: 'active', output: { stamped: p.id, from: 'draft', input: {} } });
    // The answer is the record after the action's own writes.
    expect(res.body.record).toMatchObject({ status: 'active', description: 'activate by admin' });
    expect(await stamped(p.id)).toMatchObject({ created: 1 });
  });

  it('writes nothing when the action refuses: the state stays and the refusal reaches the caller', async () => {
    const p = await product({ price: '5000.00' });
    const res = await take(p.id, 'activate');
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'conflict', field: 'price' });
    expect(res.body.detail).toContain('over the limit');
    const after = await t.api('GET', `/api/base/products/${p.id}`);
    expect(after.body).toMatchObject({ status: 'draft', version: p.version });
    expect(await stamped(p.id)).toBeNull();
  });

  it('takes a transition once under concurrency: the action runs exactly once', async () => {
    const p = await product({ price: '10.00' });
    const answers = await Promise.all(Array.from({ length: 5 }, () => take(p.id, 'activate')));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409, 409, 409, 409]);
    expect(await stamped(p.id)).toMatchObject({ created: 1 });
  });

  it('locks the fields of a non-editable state from people, naming the field', async () => {
    const p = await product({ price: '10.00' });
    expect((await take(p.id, 'activate')).status).toBe(200);
    const name = await t.api('PATCH', `/api/base/products/${p.id}`, { name: 'Renamed' });
    expect(name.status).toBe(409);
    expect(name.body).toMatchObject({ code: 'document-locked', field: 'name', state: 'active' });
    expect(name.body.detail).toContain('only description may change');
    expect(name.body.detail).toContain('archive');
    const description = await t.api('PATCH', `/api/base/products/${p.id}`, { description: 'Still editable' });
    expect(description.status).toBe(200);
    expect((await t.api('DELETE', `/api/base/products/${p.id}`)).status).toBe(409);
    expect((await take(p.id, 'archive')).status).toBe(200);
    const archived = await t.api('PATCH', `/api/base/products/${p.id}`, { description: 'No more' });
    expect(archived.body).toMatchObject({ code: 'document-locked', field: 'description', state: 'archived' });
    const gone = await t.api('DELETE', `/api/base/products/${p.id}`);
    expect(gone.status).toBe(409);
    expect(gone.body.code).toBe('document-locked');
    expect((await t.api('GET', `/api/base/products/${p.id}`)).body.description).toBe('Still editable');
  });

  it('refuses to create a record in a locked state, and lets plugin code write it', async () => {
    const res = await t.api('POST', '/api/base/products', { sku: 'SKU-LOCKED', name: 'Locked', status: 'archived' });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'transition-required', field: 'status' });
    expect((await t.api('GET', '/api/base/products?sku=SKU-LOCKED')).body.data).toEqual([]);
  });

  it('guards a transition by its permission (403 saying which)', async () => {
    const clerk = await t.userWith(['base.products.read', 'base.products.update']);
    const p = await product({ price: '10.00' });
    expect((await take(p.id, 'activate', undefined, clerk.token)).status).toBe(200);
    const refused = await take(p.id, 'archive', undefined, clerk.token);
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toContain('alpha.widgets.approve');
    const listed = await t.api('GET', `/api/base/products/${p.id}/transitions`, undefined, { token: clerk.token });
    expect(listed.body.transitions.find((x: { name: string }) => x.name === 'archive')).toMatchObject({ allowed: false });
  });

  it('refuses a definition whose action or editable field does not exist', async () => {
    const bad = LIFECYCLE.replace('alpha.stampPosted', 'alpha.noSuchAction').replace('editable: [description]', 'editable: [nope]');
    const res = await t.api('POST', '/api/workflows/validate', { source: bad });
    expect(res.status).toBe(200);
    const rules = (res.body.errors as { path: string; rule: string }[]).map((e) => `${e.path} ${e.rule}`);
    expect(rules).toEqual(expect.arrayContaining(['/transitions/0/action unknown-action', '/states/1/editable/0 unknown-field']));
  });
});
